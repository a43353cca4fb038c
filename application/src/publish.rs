//! Publishing: turning the upload of an `npx expo export` into updates.
//!
//! Every file part is streamed into staging storage as it arrives (hashed on
//! the way), so memory stays bounded whatever the upload's size. Only once
//! the whole form is in and valid are the listed files promoted to their
//! content-addressed keys and the updates committed, in one transaction.
//! Whatever happens, staging is emptied before the request ends.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SubsecRound, Utc};
use domain::api_key::ApiKey;
use domain::audit::Actor;
use domain::blob::{BlobError, BlobStore, ByteStream, StagedBlob};
use domain::export::{self, parse_metadata};
use domain::id::{ProjectId, PublishId};
use domain::ports::{KnownFile, MemberStore, UpdateStore, UpdateStream};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{
    Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind, asset_blob_key, is_compressible,
    normalize_export_path, parse_message,
};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::access::{Caller, Need, authorize_caller};
use crate::audit::AuditLog;
use crate::error::{AppError, AppResult, not_found};
use crate::new_id;
use crate::precompress::precompress;
use crate::retention::Retention;

/// The largest `metadata.json`, `expoConfig.json` or `runtimeVersion` read.
const MAX_SMALL_PART_BYTES: usize = 1024 * 1024;

/// One part of the publish form, as the HTTP adapter hands it over.
pub struct UploadPart {
    pub name: String,
    /// Whether the part carried a file name (a file field).
    pub is_file: bool,
    pub body: ByteStream,
}

/// The parts of a publish form, read one after the other: a part's body
/// must be consumed before the next part is asked for.
#[async_trait]
pub trait UploadParts: Send {
    async fn next_part(&mut self) -> AppResult<Option<UploadPart>>;
}

/// What a successful publish answers.
#[derive(Debug, Clone)]
pub struct Published {
    pub publish_id: PublishId,
    pub updates: Vec<Update>,
}

pub struct PublishService {
    updates: Arc<dyn UpdateStore>,
    blobs: Arc<dyn BlobStore>,
    members: Arc<dyn MemberStore>,
    audit: AuditLog,
    max_upload_bytes: u64,
    retention: Retention,
}

/// A request to roll devices back to the update embedded in their binary.
#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    pub runtime_version: String,
    /// `None`: every platform.
    pub platforms: Option<Vec<String>>,
    /// `None`: the default branch.
    pub branch: Option<String>,
    pub message: Option<String>,
}

/// How to republish an earlier update; everything is optional.
#[derive(Debug, Clone, Default)]
pub struct RepublishRequest {
    /// `None`: the branch of the update republished.
    pub branch: Option<String>,
    pub message: Option<String>,
    /// `None`: 100 %.
    pub rollout_percentage: Option<i64>,
}

/// The form's fields, as read.
#[derive(Default)]
struct Form {
    runtime_version: Option<String>,
    branch: Option<String>,
    message: Option<String>,
    rollout_percentage: Option<String>,
    metadata: Option<Vec<u8>>,
    expo_config: Option<Vec<u8>>,
    /// Uploaded files by normalised path.
    files: HashMap<String, StagedBlob>,
    /// Files named by SHA-256 (hex) instead of uploaded (`sha256:<path>`
    /// fields), by normalised path: the project already has them.
    references: HashMap<String, String>,
}

/// The prefix of a form field that names a file by hash instead of uploading
/// it: `sha256:<path>` = `<hex SHA-256>`.
pub const REFERENCE_FIELD_PREFIX: &str = "sha256:";

/// The most hashes one missing-files question may ask about.
pub const MAX_HASHES_PER_QUERY: usize = 10_000;

/// What every update of one publish shares.
struct PublishHeader {
    /// With `created_at` and the updates' ids: empty until `store` stamps
    /// them under the project's reference lock.
    publish_id: String,
    project_id: ProjectId,
    runtime_version: String,
    branch: BranchName,
    message: Option<String>,
    rollout: RolloutPercentage,
    published_by: Actor,
    republished_from: Option<String>,
    created_at: DateTime<Utc>,
}

impl PublishHeader {
    fn new(
        project_id: &ProjectId,
        runtime_version: &str,
        branch: BranchName,
        message: Option<String>,
        rollout: RolloutPercentage,
        published_by: Actor,
    ) -> Self {
        Self {
            // Stamped by `store` under the project's reference lock.
            publish_id: String::new(),
            project_id: project_id.clone(),
            runtime_version: runtime_version.to_owned(),
            branch,
            message,
            rollout,
            published_by,
            republished_from: None,
            created_at: Utc::now().trunc_subsecs(3),
        }
    }

    /// One platform's update of this publish. Its manifest `id` is its own
    /// id: every publish, republish included, is new to devices.
    fn update(
        &self,
        platform: Platform,
        kind: UpdateKind,
        expo_config: Option<String>,
        assets: Vec<UpdateAsset>,
    ) -> Update {
        // Ids and `created_at` are stamped by `store` under the lock.
        Update {
            manifest_id: String::new(),
            id: String::new(),
            publish_id: String::new(),
            project_id: self.project_id.to_string(),
            runtime_version: self.runtime_version.clone(),
            platform,
            kind,
            branch: self.branch.clone(),
            message: self.message.clone(),
            rollout: self.rollout,
            published_by: Some(self.published_by.clone()),
            republished_from: self.republished_from.clone(),
            expo_config,
            assets,
            created_at: self.created_at,
        }
    }
}

impl PublishService {
    pub fn new(
        updates: Arc<dyn UpdateStore>,
        blobs: Arc<dyn BlobStore>,
        members: Arc<dyn MemberStore>,
        audit: AuditLog,
        max_upload_bytes: u64,
        retention: Retention,
    ) -> Self {
        Self {
            updates,
            blobs,
            members,
            audit,
            max_upload_bytes,
            retention,
        }
    }

    /// Makes a rollback the latest for the runtime version on each platform
    /// of a branch; the next publish rolls forward again. Any member may do
    /// it: undoing a bad update must not wait for whoever holds the key.
    pub async fn rollback(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        request: &RollbackRequest,
    ) -> AppResult<Published> {
        let actor = authorize_caller(self.members.as_ref(), caller, project_id, Need::Read).await?;
        if request.runtime_version.is_empty() {
            return Err(AppError::Invalid("No runtimeVersion provided.".to_owned()));
        }
        let runtime_version = RuntimeVersion::parse(&request.runtime_version)?;
        let branch = optional_branch(request.branch.as_deref())?;
        let message = request.message.as_deref().map(parse_message).transpose()?;
        let platforms: Vec<Platform> = match &request.platforms {
            None => vec![Platform::Ios, Platform::Android],
            Some(names) if names.is_empty() => {
                return Err(AppError::Invalid("platforms must not be empty.".to_owned()));
            }
            Some(names) => names
                .iter()
                .map(|name| {
                    Platform::parse(name).ok_or_else(|| {
                        AppError::Invalid(format!(
                            "unsupported platform {name:?} (expected ios or android)."
                        ))
                    })
                })
                .collect::<AppResult<BTreeSet<_>>>()?
                .into_iter()
                .collect(),
        };
        let header = PublishHeader::new(
            project_id,
            runtime_version.as_str(),
            branch,
            message,
            RolloutPercentage::FULL,
            actor,
        );
        let updates: Vec<Update> = platforms
            .into_iter()
            .map(|platform| header.update(platform, UpdateKind::Rollback, None, Vec::new()))
            .collect();
        let published = self
            .store(header, updates, "update.rollback", &HashMap::new())
            .await?;
        tracing::info!(%project_id, publish_id = %published.publish_id, "rolled back to the embedded update");
        Ok(published)
    }

    /// Republishes an earlier update: a new update with the same content
    /// becomes the latest on its branch (or another one). Rolling back to an
    /// earlier update and promoting staging to production are both this.
    pub async fn republish(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        source_id: &PublishId,
        request: &RepublishRequest,
    ) -> AppResult<Published> {
        let actor = authorize_caller(self.members.as_ref(), caller, project_id, Need::Read).await?;
        let source = find_publish(self.updates.as_ref(), project_id, source_id).await?;
        let branch = match request.branch.as_deref() {
            Some(raw) => BranchName::parse(raw)?,
            None => source[0].branch.clone(),
        };
        let message = match request.message.as_deref() {
            Some(raw) => Some(parse_message(raw)?),
            None => Some(format!("Republish of {source_id}")),
        };
        let rollout = request
            .rollout_percentage
            .map(RolloutPercentage::parse_for_publish)
            .transpose()?
            .unwrap_or(RolloutPercentage::FULL);
        let mut header = PublishHeader::new(
            project_id,
            &source[0].runtime_version,
            branch,
            message,
            rollout,
            actor,
        );
        header.republished_from = Some(source_id.to_string());
        let updates = source
            .into_iter()
            .map(|old| header.update(old.platform, old.kind, old.expo_config, old.assets))
            .collect();
        self.store(header, updates, "update.republish", &HashMap::new())
            .await
    }

    /// The upload limit, for the HTTP layer's early `Content-Length` check.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    /// Publishes an export for the key's project.
    pub async fn publish(
        &self,
        key: &ApiKey,
        project_id: &ProjectId,
        parts: &mut dyn UploadParts,
    ) -> AppResult<Published> {
        let caller = Caller::Key(key.clone());
        let actor =
            authorize_caller(self.members.as_ref(), &caller, project_id, Need::Read).await?;
        let mut form = Form::default();
        let read = self.read_form(parts, &mut form).await;
        let result = match read {
            Ok(()) => self.commit(project_id, &form, actor).await,
            Err(error) => Err(error),
        };
        for staged in form.files.values() {
            self.blobs.discard(staged).await;
        }
        let published = result?;
        tracing::info!(
            %project_id,
            publish_id = %published.publish_id,
            platforms = published.updates.len(),
            "update published"
        );
        Ok(published)
    }

    async fn read_form(&self, parts: &mut dyn UploadParts, form: &mut Form) -> AppResult<()> {
        let mut budget = self.max_upload_bytes;
        while let Some(part) = parts.next_part().await? {
            let field = match part.name.as_str() {
                "runtimeVersion" => Some(&mut form.runtime_version),
                "branch" => Some(&mut form.branch),
                "message" => Some(&mut form.message),
                "rolloutPercentage" => Some(&mut form.rollout_percentage),
                _ => None,
            };
            if let Some(field) = field {
                if field.is_some() {
                    return Err(sent_twice(&part.name));
                }
                *field = Some(text(&part.name, read_small(part.body).await?)?);
                continue;
            }
            if let Some(raw_path) = part.name.strip_prefix(REFERENCE_FIELD_PREFIX) {
                if form.references.len() >= MAX_HASHES_PER_QUERY {
                    return Err(AppError::Invalid(format!(
                        "at most {MAX_HASHES_PER_QUERY} files may be named by hash."
                    )));
                }
                let path = normalize_export_path(raw_path)?;
                let sha256_hex = text(&part.name, read_small(part.body).await?)?;
                if form
                    .references
                    .insert(path, parse_sha256_hex(&sha256_hex)?)
                    .is_some()
                {
                    return Err(sent_twice(&part.name));
                }
                continue;
            }
            match part.name.as_str() {
                "metadata.json" | "expoConfig.json" => {
                    let slot = match part.name.as_str() {
                        "metadata.json" => &mut form.metadata,
                        _ => &mut form.expo_config,
                    };
                    if slot.is_some() {
                        return Err(sent_twice(&part.name));
                    }
                    *slot = Some(read_small(part.body).await?);
                }
                name => {
                    let path = normalize_export_path(name).ok().filter(|_| part.is_file);
                    if let Some(path) = &path
                        && form.files.contains_key(path)
                    {
                        // Which of two different bodies would be served?
                        return Err(sent_twice(name));
                    }
                    match path {
                        Some(path) => {
                            let staged = self
                                .blobs
                                .stage(part.body, budget)
                                .await
                                .map_err(|error| upload_error(error, self.max_upload_bytes))?;
                            budget = budget.saturating_sub(staged.size);
                            form.files.insert(path, staged);
                        }
                        // Not a file we could ever serve: drain it.
                        None => drain(part.body).await?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Validates the form, promotes the listed files and stores the updates.
    async fn commit(
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
        let known = self
            .updates
            .known_files(project_id.as_str(), &referenced)
            .await?;
        for (path, sha256_hex) in &form.references {
            if !known.contains_key(sha256_hex) {
                return Err(AppError::Invalid(format!(
                    "{path} was named by hash, but this project has no file {sha256_hex}; upload it."
                )));
            }
        }

        let header = PublishHeader::new(
            project_id,
            runtime_version.as_str(),
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
    async fn store(
        &self,
        mut header: PublishHeader,
        mut updates: Vec<Update>,
        action: &str,
        staged: &HashMap<String, &StagedBlob>,
    ) -> AppResult<Published> {
        let project = header.project_id.clone();
        let project_id = project.as_str();
        let mut lock = self.updates.lock_references(project_id).await?;
        // Ids and timestamps are taken under the lock, so a project's
        // publishes are numbered in the order they commit: "latest" means
        // the last one stored, even when two CI runs race.
        header.publish_id = new_id();
        header.created_at = Utc::now().trunc_subsecs(3);
        for update in &mut updates {
            let id = new_id();
            update.manifest_id = id.clone();
            update.id = id;
            update.publish_id = header.publish_id.clone();
            update.created_at = header.created_at;
        }
        let hashes: BTreeSet<String> = updates
            .iter()
            .flat_map(|update| &update.assets)
            .map(|asset| asset.sha256_hex.clone())
            .collect();
        let storage_error = AppError::from;
        // Checked concurrently: on SQLite the lock holds up every writer.
        let missing = self.absent_blobs(project_id, hashes).await?;
        for sha256_hex in missing {
            let key = asset_blob_key(project_id, &sha256_hex);
            match staged.get(&sha256_hex) {
                Some(blob) => {
                    self.blobs
                        .promote(blob, &key)
                        .await
                        .map_err(storage_error)?;
                    // Its compressed copies went with it.
                    let compressible =
                        updates
                            .iter()
                            .flat_map(|update| &update.assets)
                            .any(|asset| {
                                asset.sha256_hex == sha256_hex
                                    && is_compressible(&asset.content_type)
                            });
                    if compressible {
                        precompress(self.blobs.as_ref(), &key, blob.size).await;
                    }
                }
                None => {
                    return Err(AppError::Conflict(
                        "A file of this update was removed from storage meanwhile; upload it again.".to_owned(),
                    ));
                }
            }
        }
        lock.insert_publish(&updates).await?;
        lock.commit().await?;
        self.audit
            .record(
                &header.published_by,
                &project,
                action,
                json!({
                    "updateId": header.publish_id,
                    "branch": header.branch.as_str(),
                    "runtimeVersion": header.runtime_version,
                    "platforms": updates.iter().map(|u| u.platform.as_str()).collect::<Vec<_>>(),
                    "rolloutPercentage": header.rollout.value(),
                    "message": header.message,
                    "republishedFrom": header.republished_from,
                }),
            )
            .await;
        self.apply_retention(&header, &updates).await;
        Ok(Published {
            publish_id: PublishId::from_trusted(header.publish_id),
            updates,
        })
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
                self.blobs
                    .promote(staged, &key)
                    .await
                    .map_err(AppError::from)?;
                if is_compressible(&content_type) {
                    precompress(self.blobs.as_ref(), &key, staged.size).await;
                }
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

    /// Which of these files (SHA-256 hex) the project does not have yet: a
    /// publishing client uploads only those and names the others by hash.
    pub async fn missing_files(
        &self,
        key: &ApiKey,
        project_id: &ProjectId,
        sha256_hexes: &[String],
    ) -> AppResult<Vec<String>> {
        authorize_caller(
            self.members.as_ref(),
            &Caller::Key(key.clone()),
            project_id,
            Need::Read,
        )
        .await?;
        if sha256_hexes.len() > MAX_HASHES_PER_QUERY {
            return Err(AppError::Invalid(format!(
                "at most {MAX_HASHES_PER_QUERY} hashes per request."
            )));
        }
        let wanted: BTreeSet<String> = sha256_hexes
            .iter()
            .map(|raw| parse_sha256_hex(raw))
            .collect::<AppResult<_>>()?;
        let wanted: Vec<String> = wanted.into_iter().collect();
        let known = self
            .updates
            .known_files(project_id.as_str(), &wanted)
            .await?;
        // What no update references is missing; what one does may still
        // have been deleted from storage by hand or by a crash.
        let (referenced, mut missing): (Vec<String>, Vec<String>) = wanted
            .into_iter()
            .partition(|sha256_hex| known.contains_key(sha256_hex));
        missing.extend(self.absent_blobs(project_id.as_str(), referenced).await?);
        missing.sort();
        Ok(missing)
    }

    /// Which of these blobs (SHA-256 hex) of the project are not in
    /// storage, asked concurrently.
    async fn absent_blobs(
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

/// A SHA-256 in lowercase hex, as a client sent it.
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

fn parse_sha256_hex(raw: &str) -> AppResult<String> {
    let hex = raw.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(AppError::Invalid(format!(
            "{raw:?} is not a SHA-256 in hex (64 characters)."
        )))
    }
}

/// A branch from a form or body; the default branch when left out.
fn optional_branch(raw: Option<&str>) -> AppResult<BranchName> {
    match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
        Some(raw) => Ok(BranchName::parse(raw)?),
        None => Ok(BranchName::default_branch()),
    }
}

/// The updates of one publish, or a 404 naming it.
pub(crate) async fn find_publish(
    updates: &dyn UpdateStore,
    project_id: &ProjectId,
    publish_id: &PublishId,
) -> AppResult<Vec<Update>> {
    let found = updates
        .find_publish(project_id.as_str(), publish_id.as_str())
        .await?;
    if found.is_empty() {
        return Err(not_found::update(publish_id));
    }
    Ok(found)
}

/// Checks `expoConfig.json` is a JSON object and returns it compact.
fn parse_expo_config(bytes: &[u8]) -> AppResult<String> {
    Ok(Value::Object(export::parse_expo_config(bytes)?).to_string())
}

/// A form field that appeared twice: refused rather than guessed at.
fn sent_twice(name: &str) -> AppError {
    AppError::Invalid(format!("{name} was sent twice; send each field once."))
}

fn text(field: &str, bytes: Vec<u8>) -> AppResult<String> {
    String::from_utf8(bytes).map_err(|_| AppError::Invalid(format!("{field} must be UTF-8 text.")))
}

/// Reads a small part fully, refusing one over [`MAX_SMALL_PART_BYTES`].
async fn read_small(mut body: ByteStream) -> AppResult<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| upload_error(BlobError::Body(error.to_string()), 0))?;
        if bytes.len() + chunk.len() > MAX_SMALL_PART_BYTES {
            return Err(AppError::TooLarge(format!(
                "a form field is larger than {MAX_SMALL_PART_BYTES} bytes."
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads and drops a part the publish does not use.
async fn drain(mut body: ByteStream) -> AppResult<()> {
    while let Some(chunk) = body.next().await {
        chunk.map_err(|error| upload_error(BlobError::Body(error.to_string()), 0))?;
    }
    Ok(())
}

fn upload_error(error: BlobError, limit: u64) -> AppError {
    match error {
        BlobError::TooLarge(_) => AppError::TooLarge(format!(
            "The upload is larger than MAX_UPLOAD_BYTES ({limit} bytes)."
        )),
        BlobError::Body(detail) => {
            AppError::Invalid(format!("The upload could not be read: {detail}"))
        }
        other => other.into(),
    }
}
