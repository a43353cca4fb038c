//! After the import: where devices now get something other than the Go
//! server gave them, and the imported updates whose directories the Go
//! server has since deleted.

use std::collections::{BTreeMap, HashSet};

use domain::go_server::GoTree;
use domain::update::{Platform, UpdateKind};

use super::Run;
use super::sources::{PLATFORMS, source};
use crate::go_import::types::ImportError;

impl Run<'_> {
    /// Says, loudly, where devices now get something other than the Go
    /// server gave them: its latest directory for a runtime version was
    /// broken, lacked the platform, or was no update at all.
    pub(super) fn compare_latest(
        &mut self,
        project_id: &str,
        tree: &GoTree,
        served: &BTreeMap<(String, Platform), (u64, UpdateKind)>,
    ) {
        for ((tree_project, runtime_version), go_latest) in &tree.go_latest {
            if tree_project != project_id {
                continue;
            }
            for platform in PLATFORMS {
                let now = served.get(&(runtime_version.clone(), platform));
                if now.is_some_and(|(go_id, _)| go_id == go_latest) {
                    continue;
                }
                let latest_dir = format!("{project_id}/{runtime_version}/{go_latest}");
                let go_served_nothing = !self.listed.contains(&(latest_dir.clone(), platform))
                    && !tree
                        .update_dirs
                        .get(project_id)
                        .into_iter()
                        .flatten()
                        .any(|dir| dir.path == latest_dir && dir.has_rollback);
                let go_had_a_dir = tree
                    .update_dirs
                    .get(project_id)
                    .into_iter()
                    .flatten()
                    .any(|dir| dir.path == latest_dir);
                if now.is_none() && go_served_nothing && go_had_a_dir {
                    // The Go server had nothing for this platform either.
                    continue;
                }
                let instead = match now {
                    Some((go_id, UpdateKind::Update)) => format!(
                        "they now get the update of {project_id}/{runtime_version}/{go_id} instead"
                    ),
                    Some((go_id, UpdateKind::Rollback)) => format!(
                        "they now get the rollback of {project_id}/{runtime_version}/{go_id} instead"
                    ),
                    None => "there is no intact update for them: they get 404 (no update), and keep what they run".to_owned(),
                };
                self.report.problem(
                    latest_dir,
                    format!(
                        "was the Go server's latest for runtime version {runtime_version:?}, but nothing of it is served to {} devices (broken, not an update, or without {}); {instead}",
                        platform.as_str(),
                        platform.as_str()
                    ),
                );
            }
        }
    }

    /// Removes the updates an earlier run imported from directories of this
    /// Go server's projects that are gone (deleting a bad update's
    /// directory was how the Go server pulled it).
    pub(super) async fn remove_gone(&mut self, tree: &GoTree) -> Result<(), ImportError> {
        let in_tree: HashSet<String> = tree
            .update_dirs
            .values()
            .flatten()
            .flat_map(|dir| {
                PLATFORMS.iter().flat_map(move |platform| {
                    let mut kinds = Vec::new();
                    if dir.has_metadata {
                        kinds.push(source(UpdateKind::Update, dir, *platform));
                    }
                    if dir.has_rollback {
                        kinds.push(source(UpdateKind::Rollback, dir, *platform));
                    }
                    kinds
                })
            })
            .collect();
        let mut gone: Vec<(&String, &String)> = self
            .ledger
            .iter()
            .filter(|(source, _)| {
                let Some((kind, rest)) = source.split_once(':') else {
                    return false;
                };
                let project_id = rest.split('/').next().unwrap_or_default();
                matches!(kind, "update" | "rollback")
                    && self.projects.in_source.contains(project_id)
                    && !in_tree.contains(*source)
            })
            .collect();
        gone.sort();
        if !gone.is_empty() && tree.update_dirs.is_empty() {
            // A wrong --data-dir, a forgotten --s3-bucket, a copy not made
            // yet: an empty tree is never taken as "every update deleted".
            self.report.problem(
                self.import.source.tree.description(),
                format!(
                    "holds no update directory, but {} imported updates came from it: nothing was removed (is this the Go server's tree?)",
                    gone.len()
                ),
            );
            return Ok(());
        }
        // The runtime versions the tree still has, per project.
        let runtimes: HashSet<(&str, &str)> = tree
            .update_dirs
            .values()
            .flatten()
            .map(|dir| (dir.project_id.as_str(), dir.runtime_version.as_str()))
            .collect();
        for (source, update_id) in gone {
            let dir_path = source
                .split_once(':')
                .map_or("", |(_, rest)| rest)
                .rsplit_once('#')
                .map_or("", |(dir, _)| dir);
            let runtime_kept = dir_path
                .split_once('/')
                .and_then(|(project, rest)| {
                    rest.rsplit_once('/')
                        .map(|(runtime, _)| runtimes.contains(&(project, runtime)))
                })
                .unwrap_or(false);
            if !runtime_kept {
                self.report.warn(
                    source.clone(),
                    "gone from the Go tree with its whole runtime version's directory: kept here, in case the tree is incomplete (delete the update here if it was meant)",
                );
                continue;
            }
            if self.import.writes() {
                self.import
                    .target
                    .store
                    .remove_update(update_id, std::slice::from_ref(source))
                    .await?;
            }
            self.report.removed.updates += 1;
            self.report.warn(
                source.clone(),
                "deleted on the Go server since the last import; the update imported from it is deleted here too",
            );
        }
        Ok(())
    }
}
