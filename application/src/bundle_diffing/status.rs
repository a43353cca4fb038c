//! What people see of bundle diffing: per platform update of a publish,
//! the patches to its launch bundle and their sizes against the full file.

use domain::id::{ProjectId, PublishId, UpdateId};
use domain::patch::PatchRecord;
use domain::update::{Platform, asset_blob_key};

use super::service::PatchService;
use crate::access::{Caller, Need, authorize_caller};
use crate::error::{AppResult, not_found};

/// The patches to one platform update's launch bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePatches {
    pub platform: Platform,
    pub update_id: UpdateId,
    /// The launch bundle (SHA-256 hex) the patches rebuild.
    pub target_sha256: String,
    /// The fewest bytes a device downloads the bundle in without a patch
    /// (its smallest stored copy); `None` when the file is not stored.
    pub full_size: Option<u64>,
    /// Oldest first, in any state.
    pub patches: Vec<PatchRecord>,
}

impl PatchService {
    /// The patches to the launch bundles of a publish (members and the
    /// project's keys).
    pub async fn of_publish(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> AppResult<Vec<BundlePatches>> {
        authorize_caller(self.members.as_ref(), caller, project_id, Need::Read).await?;
        let updates = self.updates.find_publish(project_id, publish_id).await?;
        if updates.is_empty() {
            return Err(not_found::update(publish_id));
        }
        let mut found = Vec::with_capacity(updates.len());
        for update in &updates {
            let Some(bundle) = update.launch_asset() else {
                continue;
            };
            let key = asset_blob_key(project_id.as_str(), &bundle.sha256_hex);
            let full_size = match self.blobs.size(&key).await? {
                Some(size) => Some(self.smallest_copy(&key, size).await?),
                None => None,
            };
            found.push(BundlePatches {
                platform: update.platform,
                update_id: update.id.clone(),
                target_sha256: bundle.sha256_hex.clone(),
                full_size,
                patches: self
                    .patches
                    .patches_to(project_id, &bundle.sha256_hex)
                    .await?,
            });
        }
        Ok(found)
    }
}
