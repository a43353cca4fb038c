//! Users, projects, members and keys: the Go database's rows, planned by
//! `domain::go_server::plan` and written one by one with their ledger
//! entries. Rows an earlier run imported are left as they are; keys and
//! memberships it imported that the Go server no longer has are removed
//! (a key revoked there must not keep working here).

use std::collections::{HashMap, HashSet};

use domain::go_server::plan::{ControlPlanePlan, slug_candidates};
use domain::go_server::ports::LoginLookup;
use domain::ports::StoreError;
use domain::user::login_key;
use serde_json::json;

use super::report::ImportReport;
use super::{GoImport, ImportError, importer};

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
        StoreError::Conflict { field } => Ok(format!(
            "not imported: this server already has a row with the same {field}"
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
        let mut taken = store.taken_login_keys().await?;
        for user in &plan.users {
            let source = format!("user:{}", user.id);
            if self.ledger.contains_key(&source) {
                self.report.already_imported.users += 1;
                continue;
            }
            let about = format!("user {}", user.id);
            let lookup = LoginLookup {
                username_folded: !taken.contains(&login_key(&user.username)),
                email_folded: !taken.contains(&login_key(&user.email)),
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
                taken.insert(login_key(&user.username));
            }
            if lookup.email_folded {
                taken.insert(login_key(&user.email));
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
            in_source: plan.projects.iter().map(|p| p.project.id.clone()).collect(),
        };
        for planned in &plan.projects {
            let mut project = planned.project.clone();
            let source = format!("project:{}", project.id);
            if self.ledger.contains_key(&source) {
                self.report.already_imported.projects += 1;
                projects.here.insert(project.id);
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
            projects.here.insert(project.id.clone());
            self.report.imported.projects += 1;
            self.record(
                &project.id,
                json!({ "project": project.id, "slug": project.slug }),
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
                if existing.contains(&(project_id.clone(), membership.user_id.clone())) {
                    self.report.skip(
                        about,
                        format!(
                            "user {} is already a member of project {project_id} here",
                            membership.user_id
                        ),
                    );
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
        for (project_id, members) in &plan.members {
            for planned in members {
                for row in &planned.source_rows {
                    present.insert(format!("member:{project_id}/{row}"));
                }
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
            .filter(|(_, sources)| sources.iter().all(|source| !present.contains(source)))
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
            audit
                .record(&importer(), project_id, "project.import", details)
                .await;
        }
    }
}
