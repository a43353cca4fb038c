//! Checking a read form against what it lists, and storing a publish's
//! updates with their files under the project's reference lock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{SubsecRound, Utc};
use domain::audit::Actor;
use domain::blob::{BlobError, BlobStore, StagedBlob};
use domain::export::{self, parse_metadata};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::ports::{KnownFile, UpdateStore, UpdateStream};
use domain::release::RolloutPercentage;
use domain::update::{
    RuntimeVersion, Update, UpdateAsset, UpdateKind, asset_blob_key, is_compressible, parse_message,
};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::form::{Form, optional_branch};
use super::header::{PublishHeader, Published};
use crate::audit::AuditLog;
use crate::bundle_diffing::PatchService;
use crate::error::{AppError, AppResult, not_found};
use crate::ids::new_id;
use crate::precompress::{recompress_best, store_file};
use crate::retention::Retention;

/// Where publishes go: the updates, their files, the audit log, and the
/// retention applied after each.
pub(super) struct PublishStore {
    pub(super) updates: Arc<dyn UpdateStore>,
    pub(super) blobs: Arc<dyn BlobStore>,
    pub(super) audit: AuditLog,
    pub(super) retention: Retention,
    /// Bundle diffing, when on: the patches each publish wants.
    pub(super) patches: Option<Arc<PatchService>>,
    /// When on, newly stored launch bundles are recompressed at the best
    /// levels in the background, one at a time (the permit).
    pub(super) best_compression: Option<Arc<tokio::sync::Semaphore>>,
}

impl PublishStore {
    /// Validates the form, promotes the listed files and stores the updates.
    pub(super) async fn commit(
        &self,
        project_id: &ProjectId,
        form: &Form,
        actor: Actor,
    ) -> AppResult<Published> {
        let runtime_version = form
            .runtime_version
            .as_deref()
            .ok_or_else(|| AppError::Invalid("No runtimeVersion provided.".to_owned()))?;
        let runtime_version = RuntimeVersion::parse(runtime_version)?;
        let branch = optional_branch(form.branch.as_deref())?;
        let message = form.message.as_deref().map(parse_message).transpose()?;
        let rollout = match form.rollout_percentage.as_deref() {
            None => RolloutPercentage::FULL,
            Some(raw) => {
                let number = raw.trim().parse::<i64>().map_err(|_| {
                    AppError::Invalid("rolloutPercentage must be a whole number.".to_owned())
                })?;
                RolloutPercentage::parse_for_publish(number)?
            }
        };
        let metadata = form
            .metadata
            .as_deref()
            .ok_or_else(|| AppError::Invalid("No metadata.json provided.".to_owned()))?;
        let platforms = parse_metadata(metadata)?;
        let expo_config = form
            .expo_config
            .as_deref()
            .map(parse_expo_config)
            .transpose()?;
        // Every listed file must be there before anything is promoted: a
        // rejected publish adds nothing to the project's storage.
        for files in platforms.values() {
            let listed = std::iter::once((&files.bundle, "bundle"))
                .chain(files.assets.iter().map(|(path, _)| (path, "asset")));
            for (path, kind) in listed {
                if !form.files.contains_key(path) && !form.references.contains_key(path) {
                    return Err(AppError::Invalid(format!(
                        "{kind} {path} was listed in metadata.json but not uploaded."
                    )));
                }
            }
        }
        let referenced: Vec<String> = form.references.values().cloned().collect();
        let known = self.updates.known_files(project_id, &referenced).await?;
        for (path, sha256_hex) in &form.references {
            if !known.contains_key(sha256_hex) {
                return Err(AppError::Invalid(format!(
                    "{path} was named by hash, but this project has no file {sha256_hex}; upload it."
                )));
            }
        }

        let header = PublishHeader::new(
            project_id,
            &runtime_version,
            branch,
            message,
            rollout,
            actor,
        );
        let mut updates = Vec::new();
        for (platform, files) in &platforms {
            let mut assets = vec![
                self.asset(project_id.as_str(), form, &known, &files.bundle, None)
                    .await?,
            ];
            for (path, ext) in &files.assets {
                assets.push(
                    self.asset(project_id.as_str(), form, &known, path, Some(ext))
                        .await?,
                );
            }
            updates.push(header.update(*platform, UpdateKind::Update, expo_config.clone(), assets));
        }
        let staged: HashMap<String, &StagedBlob> = form
            .files
            .values()
            .map(|blob| (hex::encode(blob.sha256), blob))
            .collect();
        self.store(header, updates, "update.publish", &staged).await
    }

    /// Stores a publish's updates under the project's reference lock, after
    /// making sure every blob they name is in storage: a storage collection
    /// may have deleted one that was unreferenced when this publish found it
    /// already stored, so a missing one is promoted again from `staged`.
    /// Collection deletes only under the same lock, so nothing can vanish
    /// between this check and the commit. Then applies retention and
    /// records the change.
    pub(super) async fn store(
        &self,
        mut header: PublishHeader,
        mut updates: Vec<Update>,
        action: &str,
        staged: &HashMap<String, &StagedBlob>,
    ) -> AppResult<Published> {
        let project_id = header.project_id.clone();
        let wanted_patches = match &self.patches {
            Some(patches) => patches.wanted_for(&updates).await?,
            None => Vec::new(),
        };
        let mut lock = self.updates.lock_references(&project_id).await?;
        // Ids and timestamps are taken under the lock, so a project's
        // publishes are numbered in the order they commit: "latest" means
        // the last one stored, even when two CI runs race.
        header.publish_id = PublishId::from_trusted(new_id());
        header.created_at = Utc::now().trunc_subsecs(3);
        for update in &mut updates {
            let id = new_id();
            update.manifest_id = id.clone();
            update.id = UpdateId::from_trusted(id);
            update.publish_id = header.publish_id.clone();
            update.created_at = header.created_at;
        }
        let hashes: BTreeSet<String> = updates
            .iter()
            .flat_map(|update| &update.assets)
            .map(|asset| asset.sha256_hex.clone())
            .collect();
        // Checked concurrently: on SQLite the lock holds up every writer.
        let missing = self.absent_blobs(project_id.as_str(), hashes).await?;
        let fresh_bundles: Vec<(String, u64)> = updates
            .iter()
            .filter_map(Update::launch_asset)
            // Uploaded with this publish: new to the project.
            .filter(|bundle| staged.contains_key(&bundle.sha256_hex))
            .filter(|bundle| is_compressible(&bundle.content_type))
            .map(|bundle| {
                let key = asset_blob_key(project_id.as_str(), &bundle.sha256_hex);
                (key, bundle.size)
            })
            .collect();
        for sha256_hex in missing {
            let key = asset_blob_key(project_id.as_str(), &sha256_hex);
            match staged.get(&sha256_hex) {
                Some(blob) => {
                    // Its compressed copies went with it.
                    let compressible =
                        updates
                            .iter()
                            .flat_map(|update| &update.assets)
                            .any(|asset| {
                                asset.sha256_hex == sha256_hex
                                    && is_compressible(&asset.content_type)
                            });
                    store_file(
                        self.blobs.as_ref(),
                        &key,
                        Some(blob),
                        blob.size,
                        compressible,
                    )
                    .await
                    .map_err(AppError::from)?;
                }
                None => {
                    return Err(AppError::Conflict(
                        "A file of this update was removed from storage meanwhile; upload it again.".to_owned(),
                    ));
                }
            }
        }
        lock.insert_publish(&updates).await?;
        lock.want_patches(&wanted_patches, header.created_at)
            .await?;
        lock.commit().await?;
        if let Some(patches) = self.patches.as_ref().filter(|_| !wanted_patches.is_empty()) {
            patches.announce_wanted();
        }
        self.recompress_in_background(fresh_bundles);
        self.audit
            .record(
                &header.published_by,
                &project_id,
                action,
                json!({
                    "updateId": header.publish_id.as_str(),
                    "branch": header.branch.as_str(),
                    "runtimeVersion": header.runtime_version.as_str(),
                    "platforms": updates.iter().map(|u| u.platform.as_str()).collect::<Vec<_>>(),
                    "rolloutPercentage": header.rollout.value(),
                    "message": header.message,
                    "republishedFrom": header.republished_from.as_ref().map(PublishId::as_str),
                }),
            )
            .await;
        self.apply_retention(&header, &updates).await;
        Ok(Published {
            publish_id: header.publish_id,
            updates,
        })
    }

    /// Replaces the copies of these new bundles (blob key, size) with
    /// best-level ones, after the publish and off its path.
    fn recompress_in_background(&self, bundles: Vec<(String, u64)>) {
        let Some(permits) = &self.best_compression else {
            return;
        };
        for (key, size) in bundles {
            let (blobs, permits) = (Arc::clone(&self.blobs), Arc::clone(permits));
            tokio::spawn(async move {
                let Ok(_one_at_a_time) = permits.acquire_owned().await else {
                    return;
                };
                recompress_best(blobs.as_ref(), &key, size).await;
            });
        }
    }

    /// Applies retention to the streams just published to.
    async fn apply_retention(&self, header: &PublishHeader, updates: &[Update]) {
        let streams: Vec<UpdateStream> = updates.iter().map(UpdateStream::of).collect();
        self.retention
            .apply(&header.published_by, &header.project_id, &streams)
            .await;
    }

    /// Promotes one listed file (or finds the stored one it names by hash)
    /// and describes it for the manifest.
    async fn asset(
        &self,
        project_id: &str,
        form: &Form,
        known: &HashMap<String, KnownFile>,
        path: &str,
        ext: Option<&str>,
    ) -> AppResult<UpdateAsset> {
        let kind = if ext.is_some() { "asset" } else { "bundle" };
        let not_uploaded = || {
            AppError::Invalid(format!(
                "{kind} {path} was listed in metadata.json but not uploaded."
            ))
        };
        let content_type = content_type_of(ext);
        let (sha256, md5_hex, size) = match form.files.get(path) {
            Some(staged) => {
                let key = asset_blob_key(project_id, &hex::encode(staged.sha256));
                store_file(
                    self.blobs.as_ref(),
                    &key,
                    Some(staged),
                    staged.size,
                    is_compressible(&content_type),
                )
                .await
                .map_err(AppError::from)?;
                (staged.sha256.to_vec(), hex::encode(staged.md5), staged.size)
            }
            None => {
                let sha256_hex = form.references.get(path).ok_or_else(not_uploaded)?;
                let file = known.get(sha256_hex).ok_or_else(not_uploaded)?;
                let sha256 = hex::decode(sha256_hex).map_err(|_| not_uploaded())?;
                (sha256, file.md5_hex.clone(), file.size)
            }
        };
        let file_extension = ext.map(|ext| format!(".{ext}"));
        Ok(UpdateAsset {
            path: path.to_owned(),
            hash: URL_SAFE_NO_PAD.encode(&sha256),
            sha256_hex: hex::encode(&sha256),
            key: md5_hex,
            content_type,
            file_extension,
            size,
            is_launch_asset: ext.is_none(),
        })
    }

    /// Which of these blobs (SHA-256 hex) of the project are not in
    /// storage, asked concurrently.
    pub(super) async fn absent_blobs(
        &self,
        project_id: &str,
        sha256_hexes: impl IntoIterator<Item = String>,
    ) -> AppResult<Vec<String>> {
        let checks = sha256_hexes.into_iter().map(|sha256_hex| {
            let blobs = Arc::clone(&self.blobs);
            let key = asset_blob_key(project_id, &sha256_hex);
            async move {
                let present = blobs.exists(&key).await?;
                Ok::<_, BlobError>((!present).then_some(sha256_hex))
            }
        });
        let absent: Vec<Option<String>> = futures_util::stream::iter(checks)
            .buffer_unordered(16)
            .try_collect()
            .await
            .map_err(AppError::from)?;
        Ok(absent.into_iter().flatten().collect())
    }
}

/// The type a file is served with: the bundle is JavaScript (Hermes
/// bytecode included), an asset's comes from its extension.
pub(crate) fn content_type_of(ext: Option<&str>) -> String {
    match ext {
        None => "application/javascript".to_owned(),
        Some(ext) => mime_guess::from_ext(ext).first().map_or_else(
            || "application/octet-stream".to_owned(),
            |mime| mime.to_string(),
        ),
    }
}

/// The updates of one publish, or a 404 naming it.
pub(crate) async fn find_publish(
    updates: &dyn UpdateStore,
    project_id: &ProjectId,
    publish_id: &PublishId,
) -> AppResult<Vec<Update>> {
    let found = updates.find_publish(project_id, publish_id).await?;
    if found.is_empty() {
        return Err(not_found::update(publish_id));
    }
    Ok(found)
}

/// Checks `expoConfig.json` is a JSON object and returns it compact.
fn parse_expo_config(bytes: &[u8]) -> AppResult<String> {
    Ok(Value::Object(export::parse_expo_config(bytes)?).to_string())
}
