//! Which patch, if any, answers a launch-bundle download: the client must
//! ask for one (`A-IM: bsdiff`), name the update it runs, and be
//! downloading the update the URL names; the server must have a ready
//! patch from that update's bundle to this one. Anything else gets the
//! full file, never an error: these headers can only make a download
//! smaller.
//!
//! The base is the launch bundle of the project's update the device names,
//! or, when the project opted in, the embedded bundle uploaded for that id.

use std::sync::Arc;

use domain::id::ProjectId;
use domain::patch::{PatchKey, PatchState};
use domain::ports::{PatchStore, ProjectStore, StoreResult, UpdateStore};
use domain::update::Update;

use super::assets::{LocatedAsset, ReadyPatch};
use super::cache::{ReadyPatches, RecordRef, ServeCache};
use super::request::AssetRequest;

/// Where patches are looked up (set when bundle diffing is on).
pub(crate) struct PatchLookup {
    pub projects: Arc<dyn ProjectStore>,
    pub updates: Arc<dyn UpdateStore>,
    pub patches: Arc<dyn PatchStore>,
}

impl PatchLookup {
    /// The patch that answers `request` for `asset`, if any. Lookups are
    /// cached by serve epoch (a patch becoming ready moves it), so a patch
    /// download costs what a file download costs.
    pub(crate) async fn find(
        &self,
        cache: &ServeCache,
        asset: &LocatedAsset,
        request: &AssetRequest,
    ) -> Option<ReadyPatch> {
        let update = asset.launch_asset_of.as_ref()?;
        let wanted = request.patch.as_ref()?;
        // A range is of the full file.
        if request.range.is_some() || wanted.base_manifest_id == update.manifest_id {
            return None;
        }
        if let Some(requested) = &wanted.requested_manifest_id
            && *requested != update.manifest_id
        {
            return None;
        }
        let project_id = &update.project_id;
        let base_ref = format!(
            "{}\n{}\n{}",
            update.runtime_version.as_str(),
            update.platform.as_str(),
            wanted.base_manifest_id
        );
        let key = RecordRef {
            epoch: cache.epoch(),
            project_id: project_id.as_str(),
            record_id: &base_ref,
        };
        let load = || async {
            let found = self
                .updates
                .launch_bundle_of(
                    project_id,
                    &update.runtime_version,
                    update.platform,
                    &wanted.base_manifest_id,
                )
                .await?;
            let found = match found {
                Some(found) => Some(found),
                None => {
                    self.embedded_base(project_id, update, &wanted.base_manifest_id)
                        .await?
                }
            };
            Ok(found.map(Arc::<str>::from))
        };
        let base = match cache.patch_base(key, load).await {
            Ok(base) => base?,
            Err(error) => {
                tracing::warn!(%error, "could not look up a patch base; serving the file");
                return None;
            }
        };
        if *base == asset.sha256_hex {
            return None;
        }
        let key = RecordRef {
            epoch: cache.epoch(),
            project_id: project_id.as_str(),
            record_id: &asset.sha256_hex,
        };
        let load = || async {
            let records = self
                .patches
                .patches_to(project_id, &asset.sha256_hex)
                .await?;
            let ready = records.into_iter().filter_map(|record| match record.state {
                PatchState::Ready { size } => Some((record.key.base_sha256, size)),
                _ => None,
            });
            Ok(Arc::new(ready.collect::<ReadyPatches>()))
        };
        let ready = match cache.ready_patches(key, load).await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::warn!(%error, "could not look up patches; serving the file");
                return None;
            }
        };
        let size = *ready.get(&*base)?;
        let patch = PatchKey {
            project_id: project_id.clone(),
            base_sha256: base.to_string(),
            target_sha256: asset.sha256_hex.clone(),
        };
        Some(ReadyPatch {
            blob_key: patch.blob_key(),
            size,
            etag: format!("\"{}-bsdiff-{}\"", asset.sha256_hex, base),
            base_update_id: wanted.base_manifest_id.clone(),
        })
    }

    /// The embedded bundle a device running embedded update `base_id` has,
    /// when the project opted in to patching from embedded bundles (looked
    /// up only when the id names none of its updates, and cached with it).
    async fn embedded_base(
        &self,
        project_id: &ProjectId,
        update: &Update,
        base_id: &str,
    ) -> StoreResult<Option<String>> {
        let opted_in = self
            .projects
            .find(project_id.as_str())
            .await?
            .is_some_and(|project| project.patch_from_embedded);
        if !opted_in {
            return Ok(None);
        }
        self.updates
            .embedded_bundle_of(
                project_id,
                &update.runtime_version,
                update.platform,
                base_id,
            )
            .await
    }
}
