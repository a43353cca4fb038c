//! Which patches a publish wants: to each of its launch bundles, from the
//! launch bundles of the updates before it in the same stream, which are
//! what devices on that branch, runtime version and platform still run.

use domain::patch::PatchKey;
use domain::ports::HistoryQuery;
use domain::update::{Update, UpdateKind};

use super::service::PatchService;
use crate::error::AppResult;

impl PatchService {
    /// The patches a publish of `updates` wants: to each update's launch
    /// bundle from the distinct launch bundles of the previous
    /// [`bases`](domain::patch::PatchPolicy::bases) updates of its stream,
    /// newest first. Read before the publish takes its lock: a base
    /// published meanwhile is missed, which costs the devices running it a
    /// full download, nothing more.
    pub(crate) async fn wanted_for(&self, updates: &[Update]) -> AppResult<Vec<PatchKey>> {
        let mut wanted = Vec::new();
        if !self.policy.enabled() {
            return Ok(wanted);
        }
        for update in updates {
            let Some(target) = update.launch_asset() else {
                continue;
            };
            for base_sha256 in self.previous_bundles(update, &target.sha256_hex).await? {
                wanted.push(PatchKey {
                    project_id: update.project_id.clone(),
                    base_sha256,
                    target_sha256: target.sha256_hex.clone(),
                });
            }
        }
        Ok(wanted)
    }

    /// Tells idle workers that a committed publish wants patches.
    pub(crate) fn announce_wanted(&self) {
        self.wanted.notify_waiters();
        // A worker between its last claim and its wait finds this permit.
        self.wanted.notify_one();
    }

    /// The launch bundles (SHA-256 hex) of the updates before `update` in
    /// its stream, newest first, without `target` and without repeats.
    async fn previous_bundles(&self, update: &Update, target: &str) -> AppResult<Vec<String>> {
        let wanted = usize::try_from(self.policy.bases).unwrap_or(usize::MAX);
        let query = HistoryQuery {
            branch: Some(update.branch.clone()),
            runtime_version: Some(update.runtime_version.clone()),
            platform: Some(update.platform),
            before_publish: None,
            // Rollbacks and republishes of one bundle take a row each.
            limit_rows: u64::from(self.policy.bases).saturating_mul(3),
        };
        let rows = self.updates.history(&update.project_id, &query).await?;
        let mut bundles: Vec<String> = Vec::with_capacity(wanted);
        for row in rows {
            if bundles.len() >= wanted {
                break;
            }
            if row.kind != UpdateKind::Update {
                continue;
            }
            let Some(earlier) = self.updates.find(&row.project_id, &row.id).await? else {
                continue;
            };
            if let Some(bundle) = earlier.launch_asset()
                && bundle.sha256_hex != target
                && !bundles.contains(&bundle.sha256_hex)
            {
                bundles.push(bundle.sha256_hex.clone());
            }
        }
        Ok(bundles)
    }
}
