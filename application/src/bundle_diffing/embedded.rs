//! Embedded bundles: an owner (or the project's API key, in a build
//! pipeline) uploads the launch bundle built into an app binary; patches
//! from it to the updates those devices would download are wanted at
//! once, and serving uses it as a base when the project opts in.

use chrono::{SubsecRound, Utc};
use domain::blob::{BlobError, ByteStream};
use domain::embedded::{EmbeddedBundle, EmbeddedUpdateId};
use domain::id::ProjectId;
use domain::patch::PatchKey;
use domain::update::{Platform, RuntimeVersion, asset_blob_key};
use serde_json::json;

use super::service::PatchService;
use super::worker::MAX_DIFF_INPUT_BYTES;
use crate::access::{Caller, Need, OWNER_FOR_PROJECT, authorize_caller};
use crate::error::{AppError, AppResult};
use crate::precompress::store_file;

/// An embedded bundle as a driving adapter received it: the fields as sent,
/// the bundle as a stream.
pub struct EmbeddedUpload {
    /// The embedded update's id (the `id` of the build's `app.manifest`).
    pub update_id: String,
    pub runtime_version: String,
    pub platform: String,
    pub bundle: ByteStream,
}

impl PatchService {
    /// Stores an embedded bundle (replacing one uploaded under the same
    /// update id) and wants patches from it to the launch bundles of the
    /// newest updates of its runtime version and platform, on every
    /// branch. Owners, or the project's API key.
    pub async fn upload_embedded(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        upload: EmbeddedUpload,
    ) -> AppResult<EmbeddedBundle> {
        let actor =
            authorize_caller(self.members.as_ref(), caller, project_id, OWNER_FOR_PROJECT).await?;
        let update_id = EmbeddedUpdateId::parse(&upload.update_id)?;
        let runtime_version = RuntimeVersion::parse(upload.runtime_version.trim())?;
        let platform = Platform::parse(upload.platform.trim()).ok_or_else(|| {
            AppError::Invalid("platform must be \"android\" or \"ios\".".to_owned())
        })?;
        let staged = self
            .blobs
            .stage(upload.bundle, MAX_DIFF_INPUT_BYTES)
            .await
            .map_err(|error| match error {
                BlobError::TooLarge(_) => AppError::TooLarge(format!(
                    "An embedded bundle may be at most {} MiB (larger bundles are not diffed).",
                    MAX_DIFF_INPUT_BYTES / 1024 / 1024
                )),
                BlobError::Body(detail) => {
                    AppError::Invalid(format!("The upload could not be read: {detail}"))
                }
                other => other.into(),
            })?;
        let bundle = EmbeddedBundle {
            project_id: project_id.clone(),
            update_id,
            runtime_version,
            platform,
            sha256_hex: hex::encode(staged.sha256),
            size: staged.size,
            uploaded_at: Utc::now().trunc_subsecs(3),
            uploaded_by: actor.name.clone(),
        };
        let stored = match staged.size {
            0 => Err(AppError::Invalid(
                "The embedded bundle is empty.".to_owned(),
            )),
            _ => self.store_embedded(&bundle, &staged).await,
        };
        self.blobs.discard(&staged).await;
        stored?;
        self.audit
            .record(
                &actor,
                project_id,
                "embedded.upload",
                json!({
                    "updateId": bundle.update_id.as_str(),
                    "runtimeVersion": bundle.runtime_version.as_str(),
                    "platform": bundle.platform.as_str(),
                    "sha256": bundle.sha256_hex,
                    "size": bundle.size,
                }),
            )
            .await;
        Ok(bundle)
    }

    /// The blob, the record and the wanted patches, in one transaction
    /// under the reference lock: collection never sees the blob
    /// unreferenced, and the patches are wanted exactly when it is stored.
    async fn store_embedded(
        &self,
        bundle: &EmbeddedBundle,
        staged: &domain::blob::StagedBlob,
    ) -> AppResult<()> {
        let wanted = self.wanted_from(bundle).await?;
        let mut lock = self.updates.lock_references(&bundle.project_id).await?;
        let key = asset_blob_key(bundle.project_id.as_str(), &bundle.sha256_hex);
        if !self.blobs.exists(&key).await? {
            store_file(self.blobs.as_ref(), &key, Some(staged), staged.size, false).await?;
        }
        lock.put_embedded_bundle(bundle).await?;
        lock.want_patches(&wanted, bundle.uploaded_at).await?;
        lock.commit().await?;
        if !wanted.is_empty() {
            self.announce_wanted();
        }
        Ok(())
    }

    /// Patches from `bundle` to the distinct launch bundles of the newest
    /// [`bases`](domain::patch::PatchPolicy::bases) updates of its runtime
    /// version and platform, whatever their branch: which one a device
    /// gets depends on its channel, which the build does not say.
    async fn wanted_from(&self, bundle: &EmbeddedBundle) -> AppResult<Vec<PatchKey>> {
        if !self.policy.enabled() {
            return Ok(Vec::new());
        }
        let targets = self
            .recent_bundles(
                &bundle.project_id,
                None,
                &bundle.runtime_version,
                bundle.platform,
                &bundle.sha256_hex,
            )
            .await?;
        Ok(targets
            .into_iter()
            .map(|target_sha256| PatchKey {
                project_id: bundle.project_id.clone(),
                base_sha256: bundle.sha256_hex.clone(),
                target_sha256,
            })
            .collect())
    }

    /// The project's embedded bundles, newest upload first (members and
    /// the project's key).
    pub async fn embedded_bundles(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
    ) -> AppResult<Vec<EmbeddedBundle>> {
        authorize_caller(self.members.as_ref(), caller, project_id, Need::Read).await?;
        Ok(self.updates.embedded_bundles(project_id).await?)
    }

    /// Forgets an embedded bundle: devices running it get full files again,
    /// and storage collection may remove its blob. Its patches go with
    /// their targets. Owners, or the project's API key.
    pub async fn delete_embedded(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        update_id: &str,
    ) -> AppResult<()> {
        let actor =
            authorize_caller(self.members.as_ref(), caller, project_id, OWNER_FOR_PROJECT).await?;
        let not_found = || {
            AppError::NotFound(format!(
                "No embedded bundle was uploaded for update {update_id}."
            ))
        };
        let update_id = EmbeddedUpdateId::parse(update_id).map_err(|_| not_found())?;
        let mut lock = self.updates.lock_references(project_id).await?;
        if !lock.delete_embedded_bundle(&update_id).await? {
            return Err(not_found());
        }
        lock.commit().await?;
        self.audit
            .record(
                &actor,
                project_id,
                "embedded.delete",
                json!({ "updateId": update_id.as_str() }),
            )
            .await;
        Ok(())
    }
}
