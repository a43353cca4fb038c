//! Retention (`RETENTION_KEEP_PER_BRANCH`): keeping only the newest N
//! updates of each branch, runtime version and platform. Applied right after
//! a change to a stream (publish, republish, rollback, a completed rollout)
//! and, in the background, to every stream, so enabling it on existing data
//! or a stream that no longer receives publishes is covered too.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::audit::{Actor, ActorKind};
use domain::id::{ProjectId, UpdateId};
use domain::ports::{UpdateStore, UpdateStream};
use serde_json::json;

use crate::audit::AuditLog;
use crate::error::AppResult;

#[derive(Clone)]
pub struct Retention {
    /// `None`: keep everything.
    keep: Option<u64>,
    updates: Arc<dyn UpdateStore>,
    audit: AuditLog,
}

impl Retention {
    pub fn new(keep: Option<u64>, updates: Arc<dyn UpdateStore>, audit: AuditLog) -> Self {
        Self {
            keep,
            updates,
            audit,
        }
    }

    /// Prunes the given streams of one project, recording what went as done
    /// by `actor`. Failures are logged: the change that triggered this has
    /// succeeded, and the next run retries.
    pub async fn apply(&self, actor: &Actor, project_id: &ProjectId, streams: &[UpdateStream]) {
        let Some(keep) = self.keep else {
            return;
        };
        // One audit event per branch, naming what went.
        let mut removed: BTreeMap<&str, Vec<UpdateId>> = BTreeMap::new();
        for stream in streams {
            match self
                .updates
                .prune(
                    project_id,
                    &stream.branch,
                    &stream.runtime_version,
                    stream.platform,
                    keep,
                )
                .await
            {
                Ok(ids) if !ids.is_empty() => removed
                    .entry(stream.branch.as_str())
                    .or_default()
                    .extend(ids),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, %project_id, "applying retention failed"),
            }
        }
        for (branch, ids) in removed {
            tracing::info!(
                %project_id,
                branch,
                removed = ids.len(),
                "retention removed old updates"
            );
            self.audit
                .record(
                    actor,
                    project_id,
                    "update.retention",
                    json!({ "keepPerBranch": keep, "branch": branch, "removedUpdates": ids.iter().map(UpdateId::as_str).collect::<Vec<_>>() }),
                )
                .await;
        }
    }

    /// Prunes every stream of every project (the background task).
    pub async fn apply_everywhere(&self) -> AppResult<()> {
        if self.keep.is_none() {
            return Ok(());
        }
        let mut by_project: BTreeMap<ProjectId, Vec<UpdateStream>> = BTreeMap::new();
        for stream in self.updates.streams().await? {
            by_project
                .entry(stream.project_id.clone())
                .or_default()
                .push(stream);
        }
        let system = Actor {
            kind: ActorKind::System,
            id: "retention".to_owned(),
            name: "retention".to_owned(),
        };
        for (project_id, streams) in by_project {
            self.apply(&system, &project_id, &streams).await;
        }
        Ok(())
    }
}
