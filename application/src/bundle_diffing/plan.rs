//! Which patches a publish wants: to each of its launch bundles, from the
//! launch bundles of the updates before it in the same stream, which are
//! what devices on that branch, runtime version and platform still run;
//! and from the project's embedded bundles of that runtime version and
//! platform, which devices run until their first update.

use domain::id::ProjectId;
use domain::patch::PatchKey;
use domain::ports::HistoryQuery;
use domain::release::BranchName;
use domain::update::{Platform, RuntimeVersion, Update, UpdateKind};

use super::service::PatchService;
use crate::error::AppResult;

impl PatchService {
    /// The patches a publish of `updates` wants: to each update's launch
    /// bundle from the distinct launch bundles of the previous
    /// [`bases`](domain::patch::PatchPolicy::bases) updates of its stream,
    /// newest first, and from as many of the newest embedded bundles of its
    /// runtime version and platform. Read before the publish takes its
    /// lock: a base published meanwhile is missed, which costs the devices
    /// running it a full download, nothing more.
    pub(crate) async fn wanted_for(&self, updates: &[Update]) -> AppResult<Vec<PatchKey>> {
        let mut wanted = Vec::new();
        if !self.policy.enabled() {
            return Ok(wanted);
        }
        for update in updates {
            let Some(target) = update.launch_asset() else {
                continue;
            };
            let mut bases = self
                .recent_bundles(
                    &update.project_id,
                    Some(&update.branch),
                    &update.runtime_version,
                    update.platform,
                    &target.sha256_hex,
                )
                .await?;
            for embedded in self.embedded_bases(update, &target.sha256_hex).await? {
                if !bases.contains(&embedded) {
                    bases.push(embedded);
                }
            }
            for base_sha256 in bases {
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

    /// The launch bundles (SHA-256 hex) of the newest stored updates of a
    /// runtime version and platform (on `branch`, or on any), newest first,
    /// at most [`bases`](domain::patch::PatchPolicy::bases) of them,
    /// without `exclude` and without repeats.
    pub(super) async fn recent_bundles(
        &self,
        project_id: &ProjectId,
        branch: Option<&BranchName>,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        exclude: &str,
    ) -> AppResult<Vec<String>> {
        let wanted = usize::try_from(self.policy.bases).unwrap_or(usize::MAX);
        let query = HistoryQuery {
            branch: branch.cloned(),
            runtime_version: Some(runtime_version.clone()),
            platform: Some(platform),
            before_publish: None,
            // Rollbacks and republishes of one bundle take a row each.
            limit_rows: u64::from(self.policy.bases).saturating_mul(3),
        };
        let rows = self.updates.history(project_id, &query).await?;
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
                && bundle.sha256_hex != exclude
                && !bundles.contains(&bundle.sha256_hex)
            {
                bundles.push(bundle.sha256_hex.clone());
            }
        }
        Ok(bundles)
    }

    /// The newest embedded bundles (SHA-256 hex) of `update`'s runtime
    /// version and platform, at most
    /// [`bases`](domain::patch::PatchPolicy::bases), without `target`.
    async fn embedded_bases(&self, update: &Update, target: &str) -> AppResult<Vec<String>> {
        let wanted = usize::try_from(self.policy.bases).unwrap_or(usize::MAX);
        let mut bases: Vec<String> = Vec::new();
        for bundle in self.updates.embedded_bundles(&update.project_id).await? {
            if bases.len() >= wanted {
                break;
            }
            if bundle.runtime_version == update.runtime_version
                && bundle.platform == update.platform
                && bundle.sha256_hex != target
                && !bases.contains(&bundle.sha256_hex)
            {
                bases.push(bundle.sha256_hex);
            }
        }
        Ok(bases)
    }
}
