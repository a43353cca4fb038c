//! How the Go server's rows become this server's users, projects, members
//! and keys, and what is said about each one that breaks a rule here.
//!
//! Everything is kept that devices, CI jobs and people depend on (ids,
//! password hashes, key hashes, created times); what this server would
//! refuse is imported anyway where refusing would lock someone out, and
//! reported. The decisions are deterministic, so a second import of the
//! same data plans exactly the same rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::rows::{GoApiKey, GoDatabase, GoMembership, GoProject, GoUser, row_time};
use crate::api_key::{ApiKey, KeyName};
use crate::id::{ApiKeyId, ProjectId, UserId};
use crate::member::{Membership, Role};
use crate::project::{Project, ProjectName, Slug};
use crate::user::{Email, User, Username};

/// How serious a remark about a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Imported, with a change or a caveat.
    Warning,
    /// Left out on purpose (the rule says why).
    Skipped,
    /// Left out or left alone: a person has to decide.
    Problem,
}

/// A remark about one row or directory: what it is about and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    /// What it is about: `user <id>`, `project <id>`, `project_user <id>`,
    /// `key <id>`, or an update directory's path.
    pub subject: String,
    pub message: String,
}

impl Note {
    pub fn warning(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(NoteKind::Warning, subject, message)
    }

    pub fn skipped(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(NoteKind::Skipped, subject, message)
    }

    pub fn problem(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(NoteKind::Problem, subject, message)
    }

    fn new(kind: NoteKind, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
            message: message.into(),
        }
    }
}

/// What the import will write for the Go database, with the remarks.
#[derive(Debug, Clone, Default)]
pub struct ControlPlanePlan {
    /// Oldest first: when two names collide case-insensitively, the older
    /// account keeps the case-insensitive login.
    pub users: Vec<User>,
    /// Oldest first, with their slugs before any suffix (see [`slug_candidates`]).
    pub projects: Vec<PlannedProject>,
    /// By project id.
    pub members: BTreeMap<String, Vec<PlannedMembership>>,
    /// By project id.
    pub keys: BTreeMap<String, Vec<ApiKey>>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedProject {
    pub project: Project,
    /// The Go slug, when it was not a valid slug here.
    pub original_slug: Option<String>,
}

/// One membership, from one or more Go rows for the same (project, user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMembership {
    pub membership: Membership,
    /// Every Go row it stands for: a re-import recognises them all.
    pub source_rows: Vec<String>,
}

/// When a row has no readable time at all (the Go server always wrote one,
/// and its ids carry one): the Unix epoch, so the row sorts first.
fn time_of(created_at: Option<&str>, id: &str) -> DateTime<Utc> {
    row_time(created_at, id).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Plans the import of the Go database's rows.
pub fn plan_control_plane(db: &GoDatabase) -> ControlPlanePlan {
    let mut plan = ControlPlanePlan::default();
    plan_users(&db.users, &mut plan);
    plan_projects(&db.projects, &mut plan);
    let users: HashSet<String> = plan.users.iter().map(|user| user.id.to_string()).collect();
    let projects: HashSet<String> = plan
        .projects
        .iter()
        .map(|planned| planned.project.id.to_string())
        .collect();
    plan_members(&db.memberships, &users, &projects, &mut plan);
    plan_keys(&db.keys, &users, &projects, &mut plan);
    plan
}

/// A row with an id and a creation time.
trait DatedRow {
    fn id(&self) -> &str;
    fn created_at(&self) -> Option<&str>;
}

impl DatedRow for GoUser {
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> Option<&str> {
        self.created_at.as_deref()
    }
}

impl DatedRow for GoProject {
    fn id(&self) -> &str {
        &self.id
    }
    fn created_at(&self) -> Option<&str> {
        self.created_at.as_deref()
    }
}

/// The rows oldest first (then by id), without those whose id is no UUID
/// or was seen already: each of those gets a problem note (`what` names
/// the kind of row).
fn oldest_first_with_unique_ids<'a, R: DatedRow>(
    rows: &'a [R],
    kind: &str,
    what: &str,
    plan: &mut ControlPlanePlan,
) -> Vec<&'a R> {
    let mut rows: Vec<&R> = rows.iter().collect();
    rows.sort_by_key(|row| (time_of(row.created_at(), row.id()), row.id().to_owned()));
    let mut seen = HashSet::new();
    rows.retain(|row| {
        let fine = crate::id::is_valid_id(row.id()) && seen.insert(row.id().to_owned());
        if !fine {
            plan.notes.push(Note::problem(
                format!("{kind} {}", row.id()),
                format!("the id is not a UUID or appears twice; the {what} was not imported"),
            ));
        }
        fine
    });
    rows
}

fn plan_users(rows: &[GoUser], plan: &mut ControlPlanePlan) {
    for row in oldest_first_with_unique_ids(rows, "user", "account", plan) {
        let subject = format!("user {}", row.id);
        if row_time(row.created_at.as_deref(), &row.id).is_none() {
            plan.notes.push(Note::warning(
                &subject,
                "no readable created_at; the account is dated 1970-01-01",
            ));
        }
        if Username::parse(&row.username).is_err() {
            plan.notes.push(Note::warning(
                &subject,
                format!(
                    "username {:?} breaks this server's rules (no '@', spaces or control characters); kept as it is, and logging in with it works",
                    row.username
                ),
            ));
        }
        if Email::parse(&row.email).is_err() {
            plan.notes.push(Note::warning(
                &subject,
                format!(
                    "email {:?} is not a valid address; kept as it is",
                    row.email
                ),
            ));
        }
        plan.users.push(User {
            id: UserId::from_trusted(row.id.clone()),
            username: row.username.clone(),
            email: row.email.clone(),
            password_hash: row.password_hash.clone(),
            created_at: time_of(row.created_at.as_deref(), &row.id),
        });
    }
}

fn plan_projects(rows: &[GoProject], plan: &mut ControlPlanePlan) {
    for row in oldest_first_with_unique_ids(rows, "project", "project", plan) {
        let subject = format!("project {}", row.id);
        let name = match ProjectName::parse(&row.name) {
            Ok(name) => name.into_inner(),
            Err(_) => {
                let cleaned = clean_name(&row.name, ProjectName::MAX_LEN, "Imported project");
                plan.notes.push(Note::warning(
                    &subject,
                    format!(
                        "name {:?} is not a valid name here; renamed {cleaned:?}",
                        row.name
                    ),
                ));
                cleaned
            }
        };
        let base = slug_base(&row.slug);
        let original_slug = (base != row.slug).then(|| row.slug.clone());
        plan.projects.push(PlannedProject {
            project: Project {
                // Go ids are kept as they are: devices in the field name them.
                id: ProjectId::from_trusted(row.id.clone()),
                name,
                slug: base,
                created_at: time_of(row.created_at.as_deref(), &row.id),
                patch_from_embedded: false,
            },
            original_slug,
        });
    }
}

fn plan_members(
    rows: &[GoMembership],
    users: &HashSet<String>,
    projects: &HashSet<String>,
    plan: &mut ControlPlanePlan,
) {
    let mut rows: Vec<&GoMembership> = rows.iter().collect();
    rows.sort_by_key(|row| row.rowid);
    let mut grouped: BTreeMap<(String, String), Vec<&GoMembership>> = BTreeMap::new();
    for row in rows {
        let subject = format!("project_user {}", row.id);
        if !projects.contains(&row.project_id) {
            plan.notes.push(Note::skipped(
                subject,
                format!("names project {:?}, which does not exist", row.project_id),
            ));
        } else if !users.contains(&row.user_id) {
            plan.notes.push(Note::skipped(
                subject,
                format!("names user {:?}, which does not exist", row.user_id),
            ));
        } else {
            grouped
                .entry((row.project_id.clone(), row.user_id.clone()))
                .or_default()
                .push(row);
        }
    }
    // In the order of each (project, user)'s first row.
    let mut grouped: Vec<((String, String), Vec<&GoMembership>)> = grouped.into_iter().collect();
    grouped.sort_by_key(|(_, rows)| rows[0].rowid);
    for ((project_id, user_id), rows) in grouped {
        // The Go server looked memberships up without an order and used the
        // first row, which SQLite returns in insertion order: the earliest
        // row is the role it enforced.
        let first = rows[0];
        let subject = format!("project_user {}", first.id);
        if !crate::id::is_valid_id(&first.id) {
            plan.notes.push(Note::problem(
                subject,
                "the id is not a UUID; the membership was not imported (add the member again)",
            ));
            continue;
        }
        let role = match first.role.as_str() {
            "owner" => Role::Owner,
            "member" => Role::Member,
            other => {
                plan.notes.push(Note::warning(
                    &subject,
                    format!("role {other:?} is unknown here; imported as \"member\" (the Go server granted it nothing beyond \"member\")"),
                ));
                Role::Member
            }
        };
        if rows.len() > 1 {
            let others: Vec<String> = rows[1..]
                .iter()
                .map(|row| format!("{} ({:?})", row.id, row.role))
                .collect();
            plan.notes.push(Note::warning(
                &subject,
                format!(
                    "user {user_id} is in project {project_id} {} times; kept the earliest row (role {:?}), whose role the Go server enforced, and dropped {}",
                    rows.len(),
                    role.as_str(),
                    others.join(", ")
                ),
            ));
        }
        plan.members
            .entry(project_id.clone())
            .or_default()
            .push(PlannedMembership {
                membership: Membership {
                    id: first.id.clone(),
                    project_id: ProjectId::from_trusted(project_id),
                    user_id: UserId::from_trusted(user_id),
                    role,
                    created_at: time_of(first.created_at.as_deref(), &first.id),
                },
                source_rows: rows.iter().map(|row| row.id.clone()).collect(),
            });
    }
    for planned in &plan.projects {
        let id = &planned.project.id;
        let members = plan.members.entry(id.to_string()).or_default();
        if members.is_empty() {
            plan.notes.push(Note::problem(
                format!("project {id}"),
                "has no members: nobody can manage it until an owner is added",
            ));
        } else if !members.iter().any(|m| m.membership.role == Role::Owner) {
            // Already in insertion order of their first rows.
            let earliest = &mut members[0];
            earliest.membership.role = Role::Owner;
            plan.notes.push(Note::warning(
                format!("project {id}"),
                format!(
                    "had no owner; its earliest member, user {}, is its owner now",
                    earliest.membership.user_id
                ),
            ));
        }
    }
    plan.members.retain(|_, members| !members.is_empty());
}

fn plan_keys(
    rows: &[GoApiKey],
    users: &HashSet<String>,
    projects: &HashSet<String>,
    plan: &mut ControlPlanePlan,
) {
    let mut rows: Vec<&GoApiKey> = rows.iter().collect();
    rows.sort_by_key(|row| (time_of(row.created_at.as_deref(), &row.id), row.id.clone()));
    let mut seen: HashMap<String, String> = HashMap::new();
    for row in rows {
        let subject = format!("key {}", row.id);
        if !crate::id::is_valid_id(&row.id) {
            plan.notes.push(Note::problem(
                subject,
                "the id is not a UUID; the key was not imported",
            ));
            continue;
        }
        if !projects.contains(&row.project_id) {
            plan.notes.push(Note::skipped(
                subject,
                format!(
                    "belongs to project {:?}, which does not exist",
                    row.project_id
                ),
            ));
            continue;
        }
        let hash_ok = row.key_hash.len() == 64
            && row
                .key_hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hash_ok {
            plan.notes.push(Note::problem(
                subject,
                "key_hash is not a SHA-256 in lowercase hex; the key could never authenticate and was not imported",
            ));
            continue;
        }
        if let Some(earlier) = seen.insert(row.key_hash.clone(), row.id.clone()) {
            plan.notes.push(Note::problem(
                subject,
                format!("has the same secret as key {earlier}; only that one was imported"),
            ));
            continue;
        }
        let created_by = match users.contains(&row.created_by) {
            true => Some(row.created_by.clone()),
            false => {
                plan.notes.push(Note::warning(
                    &subject,
                    format!(
                        "its creator {:?} does not exist; the key is kept and keeps working",
                        row.created_by
                    ),
                ));
                None
            }
        };
        let name = match KeyName::parse(&row.name) {
            Ok(name) => name.as_str().to_owned(),
            Err(_) => {
                let cleaned = clean_name(&row.name, KeyName::MAX_LEN, "imported key");
                plan.notes.push(Note::warning(
                    &subject,
                    format!(
                        "name {:?} is not a valid name here; renamed {cleaned:?}",
                        row.name
                    ),
                ));
                cleaned
            }
        };
        let prefix: String = row.key_prefix.chars().take(16).collect();
        plan.keys
            .entry(row.project_id.clone())
            .or_default()
            .push(ApiKey {
                id: ApiKeyId::from_trusted(row.id.clone()),
                project_id: ProjectId::from_trusted(row.project_id.clone()),
                created_by: created_by.map(UserId::from_trusted),
                name,
                key_hash: row.key_hash.clone(),
                key_prefix: prefix,
                created_at: time_of(row.created_at.as_deref(), &row.id),
                last_used_at: None,
            });
    }
}

/// A name without control characters, trimmed and cut to `max` characters;
/// `fallback` when nothing is left.
fn clean_name(raw: &str, max: usize, fallback: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .chars()
        .take(max)
        .collect();
    match cleaned.trim() {
        "" => fallback.to_owned(),
        kept => kept.to_owned(),
    }
}

/// A valid slug made from a Go slug: lowercase, every run of other
/// characters a single `-`, at most 60 characters (room for a suffix);
/// `project` when nothing is left.
pub fn slug_base(raw: &str) -> String {
    if Slug::parse(raw).is_ok() && raw.len() <= 60 {
        return raw.to_owned();
    }
    let mut slug = String::new();
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(60).collect();
    match slug.trim_end_matches('-') {
        "" => "project".to_owned(),
        kept => kept.to_owned(),
    }
}

/// The slugs a project with this base slug is given, in order: the base,
/// then `base-2`, `base-3`, ...: the first that is free is taken.
pub fn slug_candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(base.to_owned()).chain((2..).map(move |n| format!("{base}-{n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, name: &str, email: &str, at: &str) -> GoUser {
        GoUser {
            id: id.into(),
            username: name.into(),
            email: email.into(),
            password_hash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA".into(),
            created_at: Some(at.into()),
        }
    }

    fn member(id: &str, project: &str, user: &str, role: &str, rowid: i64) -> GoMembership {
        GoMembership {
            id: id.into(),
            project_id: project.into(),
            user_id: user.into(),
            role: role.into(),
            created_at: Some("2026-04-01T00:00:00Z".into()),
            rowid,
        }
    }

    const P1: &str = "019d0000-0000-7000-8000-000000000001";
    const P2: &str = "019d0000-0000-7000-8000-000000000002";
    const U1: &str = "019d0000-0000-7000-8000-0000000000a1";
    const U2: &str = "019d0000-0000-7000-8000-0000000000a2";
    const GONE: &str = "019d0000-0000-7000-8000-0000000000ff";

    fn database() -> GoDatabase {
        GoDatabase {
            users: vec![
                user(
                    U2,
                    "alice@example.com",
                    "mallory@example.com",
                    "2026-04-02T00:00:00Z",
                ),
                user(U1, "alice", "alice@example.com", "2026-04-01T00:00:00Z"),
            ],
            projects: vec![
                GoProject {
                    id: P2.into(),
                    name: "Second".into(),
                    slug: "My App!".into(),
                    created_at: Some("2026-04-03T00:00:00Z".into()),
                },
                GoProject {
                    id: P1.into(),
                    name: "First".into(),
                    slug: "my-app".into(),
                    created_at: Some("2026-04-01T00:00:00Z".into()),
                },
            ],
            memberships: vec![
                member("019d0000-0000-7000-8000-000000000001", P1, U1, "member", 1),
                member("019d0000-0000-7000-8000-000000000002", P1, U1, "owner", 2),
                member("019d0000-0000-7000-8000-000000000003", P1, GONE, "owner", 3),
                member("019d0000-0000-7000-8000-000000000004", P2, U2, "", 4),
                member("019d0000-0000-7000-8000-000000000005", P2, U1, "member", 5),
            ],
            keys: vec![GoApiKey {
                id: "019d0000-0000-7000-8000-0000000000c1".into(),
                project_id: P1.into(),
                created_by: GONE.into(),
                name: "ci".into(),
                key_hash: "a".repeat(64),
                key_prefix: "0123abcd".into(),
                created_at: None,
            }],
        }
    }

    #[test]
    fn users_keep_everything_and_rule_breaks_are_reported() {
        let plan = plan_control_plane(&database());
        let ids: Vec<&str> = plan.users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, [U1, U2], "oldest first");
        assert_eq!(plan.users[1].username, "alice@example.com");
        assert!(plan.notes.iter().any(|n| n.subject == format!("user {U2}")
            && n.kind == NoteKind::Warning
            && n.message.contains("'@'")));
    }

    #[test]
    fn duplicate_memberships_keep_the_earliest_row_and_projects_get_an_owner() {
        let plan = plan_control_plane(&database());
        let p1 = &plan.members[P1];
        assert_eq!(p1.len(), 1);
        assert_eq!(p1[0].membership.id, "019d0000-0000-7000-8000-000000000001");
        assert_eq!(
            p1[0].source_rows,
            [
                "019d0000-0000-7000-8000-000000000001",
                "019d0000-0000-7000-8000-000000000002"
            ]
        );
        // m1 said "member"; with no other owner the earliest member owns it.
        assert_eq!(p1[0].membership.role, Role::Owner);
        let p2 = &plan.members[P2];
        assert_eq!(
            p2[0].membership.role,
            Role::Owner,
            "earliest of P2 (m4, role \"\")"
        );
        assert_eq!(p2[1].membership.role, Role::Member);
        let about = |subject: &str| {
            plan.notes
                .iter()
                .filter(|n| n.subject == subject)
                .map(|n| n.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            about("project_user 019d0000-0000-7000-8000-000000000003"),
            [NoteKind::Skipped]
        );
        assert_eq!(
            about("project_user 019d0000-0000-7000-8000-000000000004"),
            [NoteKind::Warning],
            "empty role"
        );
        assert_eq!(
            about("project_user 019d0000-0000-7000-8000-000000000001"),
            [NoteKind::Warning],
            "collapsed"
        );
        assert_eq!(about(&format!("project {P1}")), [NoteKind::Warning]);
    }

    #[test]
    fn slugs_become_valid_and_keys_survive_a_missing_creator() {
        let plan = plan_control_plane(&database());
        let slugs: Vec<&str> = plan
            .projects
            .iter()
            .map(|p| p.project.slug.as_str())
            .collect();
        assert_eq!(
            slugs,
            ["my-app", "my-app"],
            "suffixes are the store's to give"
        );
        assert_eq!(plan.projects[1].original_slug.as_deref(), Some("My App!"));
        let key = &plan.keys[P1][0];
        assert_eq!(key.created_by, None);
        assert_eq!(key.key_hash, "a".repeat(64));
        assert_eq!(key.created_at.timestamp_millis(), 0x019d_0000_0000);
        let mut candidates = slug_candidates("my-app");
        assert_eq!(candidates.next().as_deref(), Some("my-app"));
        assert_eq!(candidates.next().as_deref(), Some("my-app-2"));
        assert_eq!(slug_base("  Ünïcode -- App  "), "n-code-app");
        assert_eq!(slug_base("!!!"), "project");
    }
}
