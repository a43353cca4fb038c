//! Users, projects, members and keys: the Go database's rows, planned by
//! `domain::go_server::plan` and written one by one with their ledger
//! entries. Rows an earlier run imported are left as they are; keys and
//! memberships it imported that the Go server no longer has are removed
//! (a key revoked there must not keep working here).

use std::collections::{HashMap, HashSet};

use domain::go_server::plan::{ControlPlanePlan, slug_candidates};
use domain::go_server::ports::LoginLookup;
use domain::id::ProjectId;
use domain::member::Membership;
use domain::ports::StoreError;
use domain::user::login_key;
use serde_json::json;

use super::report::ImportReport;
use super::types::{GoImport, ImportError, importer};

/// The projects updates may be imported into.
pub(super) struct Projects {
    /// Go project ids that exist here (imported now or earlier).
    pub here: HashSet<String>,
    /// Every project id of the Go database: only their ledger entries are
    /// this source's to remove (another Go server's imports are not).
    pub in_source: HashSet<String>,
}

pub(super) struct Run<'a> {
    import: &'a GoImport,
    ledger: &'a HashMap<String, String>,
    report: &'a mut ImportReport,
}

/// A failure that concerns one row (it is reported, the import goes on),
/// or the target as a whole (the import stops).
fn row_failure(error: StoreError) -> Result<String, ImportError> {
    match error {
        StoreError::Conflict(constraint) => Ok(format!(
            "not imported: this server already has a row with the same {constraint}"
        )),
        StoreError::ProjectGone => {
            Ok("not imported: its project was deleted on this server".to_owned())
        }
        StoreError::LastOwner(error) => Ok(error.to_string()),
        other => Err(other.into()),
    }
}

impl<'a> Run<'a> {
    pub fn new(
        import: &'a GoImport,
        ledger: &'a HashMap<String, String>,
        report: &'a mut ImportReport,
    ) -> Self {
        Self {
            import,
            ledger,
            report,
        }
    }

    pub async fn import(&mut self, plan: ControlPlanePlan) -> Result<Projects, ImportError> {
        for note in &plan.notes {
            self.report.note(note.clone());
        }
        self.users(&plan).await?;
        let projects = self.projects(&plan).await?;
        self.members(&plan, &projects).await?;
        self.keys(&plan, &projects).await?;
        self.remove_gone(&plan, &projects).await?;
        Ok(projects)
    }

    async fn users(&mut self, plan: &ControlPlanePlan) -> Result<(), ImportError> {
        let store = &self.import.target.store;
        // Usernames and emails are unique apart: one account's username may
        // equal another's email (the Go server allowed it).
        let mut usernames = store.taken_username_keys().await?;
        let mut emails = store.taken_email_keys().await?;
        for user in &plan.users {
            let source = format!("user:{}", user.id);
            if self.ledger.contains_key(&source) {
                self.report.already_imported.users += 1;
                continue;
            }
            let about = format!("user {}", user.id);
            let lookup = LoginLookup {
                username_folded: !usernames.contains(&login_key(&user.username)),
                email_folded: !emails.contains(&login_key(&user.email)),
            };
            for (folded, what, value) in [
                (lookup.username_folded, "username", &user.username),
                (lookup.email_folded, "email", &user.email),
            ] {
                if !folded {
                    self.report.warn(
                        &about,
                        format!("another account has the {what} {value:?} in some spelling; this one logs in with exactly {value:?} (as on the Go server)"),
                    );
                }
            }
            if self.import.writes()
                && let Err(error) = store.insert_user(user, lookup, &source).await
            {
                let reason = row_failure(error)?;
                self.report.problem(about, reason);
                continue;
            }
            if lookup.username_folded {
                usernames.insert(login_key(&user.username));
            }
            if lookup.email_folded {
                emails.insert(login_key(&user.email));
            }
            self.report.imported.users += 1;
        }
        Ok(())
    }

    async fn projects(&mut self, plan: &ControlPlanePlan) -> Result<Projects, ImportError> {
        let store = &self.import.target.store;
        let mut taken = store.taken_slugs().await?;
        let mut projects = Projects {
            here: HashSet::new(),
            in_source: plan
                .projects
                .iter()
                .map(|p| p.project.id.to_string())
                .collect(),
        };
        for planned in &plan.projects {
            let mut project = planned.project.clone();
            let source = format!("project:{}", project.id);
            if self.ledger.contains_key(&source) {
                self.report.already_imported.projects += 1;
                projects.here.insert(project.id.into_string());
                continue;
            }
            let about = format!("project {}", project.id);
            let base = project.slug.clone();
            project.slug = slug_candidates(&base)
                .find(|slug| !taken.contains(slug))
                .unwrap_or(base.clone());
            let original = planned.original_slug.as_deref().unwrap_or(&base);
            if project.slug != original {
                self.report.warn(
                    &about,
                    format!(
                        "slug {original:?} is taken or not valid here; its slug is {:?}",
                        project.slug
                    ),
                );
            }
            if self.import.writes()
                && let Err(error) = store.insert_project(&project, &source).await
            {
                let reason = row_failure(error)?;
                self.report.problem(about, reason);
                continue;
            }
            taken.insert(project.slug.clone());
            projects.here.insert(project.id.to_string());
            self.report.imported.projects += 1;
            self.record(
                &project.id,
                json!({ "project": project.id.as_str(), "slug": project.slug }),
            )
            .await;
        }
        Ok(projects)
    }

    async fn members(
        &mut self,
        plan: &ControlPlanePlan,
        projects: &Projects,
    ) -> Result<(), ImportError> {
        let store = &self.import.target.store;
        let existing = store.memberships().await?;
        for (project_id, members) in &plan.members {
            if !projects.here.contains(project_id) {
                continue;
            }
            for planned in members {
                let membership = &planned.membership;
                let sources: Vec<String> = planned
                    .source_rows
                    .iter()
                    .map(|row| format!("member:{project_id}/{row}"))
                    .collect();
                if sources
                    .iter()
                    .any(|source| self.ledger.contains_key(source))
                {
                    self.report.already_imported.members += 1;
                    continue;
                }
                let about = format!("project_user {}", membership.id);
                let pair = (project_id.clone(), membership.user_id.to_string());
                if let Some(current) = existing.get(&pair) {
                    self.member_again(&about, membership, current, &sources)
                        .await?;
                    continue;
                }
                if self.import.writes()
                    && let Err(error) = store.insert_membership(membership, &sources).await
                {
                    let reason = row_failure(error)?;
                    self.report.problem(about, reason);
                    continue;
                }
                self.report.imported.members += 1;
            }
        }
        Ok(())
    }

    /// A membership the Go database has under rows not imported yet, for a
    /// user already a member here. Imported earlier (the Go server changes a
    /// role by removing the member and adding them again): it takes the
    /// role the Go server now enforces, and the rows are recorded. Made
    /// here: left as it is.
    async fn member_again(
        &mut self,
        about: &str,
        planned: &Membership,
        current: &Membership,
        sources: &[String],
    ) -> Result<(), ImportError> {
        let imported_earlier = self.ledger.values().any(|target| *target == current.id);
        if !imported_earlier {
            self.report.skip(
                about,
                format!(
                    "user {} is already a member of project {} here",
                    planned.user_id, planned.project_id
                ),
            );
            return Ok(());
        }
        self.report.already_imported.members += 1;
        let changed = current.role != planned.role;
        if self.import.writes() {
            let updated = Membership {
                id: current.id.clone(),
                ..planned.clone()
            };
            if let Err(error) = self
                .import
                .target
                .store
                .update_membership(&updated, sources)
                .await
            {
                let reason = row_failure(error)?;
                self.report.problem(about, reason);
                return Ok(());
            }
        }
        if changed {
            self.report.warn(
                about,
                format!(
                    "the Go server now gives user {} the role {:?} in project {} (it was {:?} at the last import); changed here too",
                    planned.user_id,
                    planned.role.as_str(),
                    planned.project_id,
                    current.role.as_str()
                ),
            );
        }
        Ok(())
    }

    async fn keys(
        &mut self,
        plan: &ControlPlanePlan,
        projects: &Projects,
    ) -> Result<(), ImportError> {
        let store = &self.import.target.store;
        let taken = store.taken_key_hashes().await?;
        for (project_id, keys) in &plan.keys {
            if !projects.here.contains(project_id) {
                continue;
            }
            for key in keys {
                let source = format!("key:{project_id}/{}", key.id);
                if self.ledger.contains_key(&source) {
                    self.report.already_imported.keys += 1;
                    continue;
                }
                let about = format!("key {}", key.id);
                if taken.contains(&key.key_hash) {
                    self.report.problem(
                        about,
                        "a key with the same secret is already on this server; not imported",
                    );
                    continue;
                }
                if self.import.writes()
                    && let Err(error) = store.insert_key(key, &source).await
                {
                    let reason = row_failure(error)?;
                    self.report.problem(about, reason);
                    continue;
                }
                self.report.imported.keys += 1;
            }
        }
        Ok(())
    }

    /// Removes the keys and memberships an earlier run imported from this
    /// Go server's projects that its database no longer has.
    async fn remove_gone(
        &mut self,
        plan: &ControlPlanePlan,
        projects: &Projects,
    ) -> Result<(), ImportError> {
        let mut present: HashSet<String> = HashSet::new();
        // A membership stays while the Go database has any row for its
        // (project, user), whichever rows it was imported from.
        let kept_pairs: HashSet<(&str, &str)> = plan
            .members
            .iter()
            .flat_map(|(project_id, members)| {
                members
                    .iter()
                    .map(move |m| (project_id.as_str(), m.membership.user_id.as_str()))
            })
            .collect();
        let existing = self.import.target.store.memberships().await?;
        for membership in existing.values() {
            if kept_pairs.contains(&(membership.project_id.as_str(), membership.user_id.as_str())) {
                present.insert(format!("member-id:{}", membership.id));
            }
        }
        for (project_id, keys) in &plan.keys {
            for key in keys {
                present.insert(format!("key:{project_id}/{}", key.id));
            }
        }
        // Sources by the row they became: a membership may stand for
        // several Go rows, and goes only when all of them are gone.
        let mut by_target: HashMap<(&str, &str), Vec<String>> = HashMap::new();
        for (source, target) in self.ledger {
            let Some((kind, rest)) = source.split_once(':') else {
                continue;
            };
            let Some((project_id, _)) = rest.split_once('/') else {
                continue;
            };
            if matches!(kind, "member" | "key") && projects.in_source.contains(project_id) {
                by_target
                    .entry((kind, target.as_str()))
                    .or_default()
                    .push(source.clone());
            }
        }
        let mut gone: Vec<((&str, &str), Vec<String>)> = by_target
            .into_iter()
            .filter(|((kind, target), sources)| {
                let kept_membership =
                    *kind == "member" && present.contains(&format!("member-id:{target}"));
                !kept_membership && sources.iter().all(|source| !present.contains(source))
            })
            .collect();
        gone.sort();
        let store = &self.import.target.store;
        for ((kind, target), sources) in gone {
            let removed = match !self.import.writes() {
                true => Ok(()),
                false if kind == "key" => store.remove_key(target, &sources).await,
                false => store.remove_membership(target, &sources).await,
            };
            let about = match kind {
                "key" => format!("key {target}"),
                _ => format!("project_user {target}"),
            };
            match removed {
                Ok(()) => {
                    let what = match kind {
                        "key" => {
                            self.report.removed.keys += 1;
                            "the key was revoked on the Go server since the last import; revoked here too"
                        }
                        _ => {
                            self.report.removed.members += 1;
                            "the membership was removed on the Go server since the last import; removed here too"
                        }
                    };
                    self.report.warn(about, what);
                }
                Err(error) => {
                    let reason = row_failure(error)?;
                    self.report.problem(
                        about,
                        format!("removed on the Go server since the last import, but kept here: {reason}"),
                    );
                }
            }
        }
        Ok(())
    }

    async fn record(&self, project_id: &str, details: serde_json::Value) {
        if let (true, Some(audit)) = (self.import.writes(), &self.import.target.audit) {
            // The plan kept only rows whose ids are ids.
            let project_id = ProjectId::from_trusted(project_id.to_owned());
            audit
                .record(&importer(), &project_id, "project.import", details)
                .await;
        }
    }
}
