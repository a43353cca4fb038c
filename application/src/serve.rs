//! Serving updates: what a device asking for its runtime version and
//! platform is told (a manifest, "no update", or "roll back"), and the
//! files a manifest points at.
//!
//! The manifest and directive bodies are serialised here, once, and signed
//! over exactly those bytes; the HTTP adapter frames them unchanged.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::blob::{BlobError, BlobReader, BlobStore};
use domain::id::is_valid_id;
use domain::ports::{ChannelStore, ManifestSigner, ProjectStore, ServeEpoch, UpdateStore};
use domain::signing_key::{SigningKeyId, UnknownKeyId, choose_signing_key};

use crate::insights::InsightRecorder;
use crate::signing_keys::{Keyring, ProjectSigners};
use domain::release::{BranchName, ChannelName, pick_for_device};
use domain::update::{
    ContentEncoding, Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind, asset_blob_key,
    is_compressible,
};
use serde_json::{Map, Value, json};

use crate::error::{AppError, AppResult};
use crate::hot_files::HotFiles;
use crate::serve_cache::{
    BranchView, CacheKey, Cached, PreparedUpdate, ServeCache, SignedOnce, StreamView,
};

/// How long a presigned asset URL stays valid: far longer than a download
/// takes, short enough that a leaked URL soon stops working.
pub const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// How many blobs' compressed-copy answers are remembered.
const COPIES_REMEMBERED: usize = 100_000;

/// The protocol versions the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    V0,
    V1,
}

/// What a device sent, already read from headers or query parameters.
#[derive(Debug, Clone)]
pub struct ManifestRequest {
    pub project_id: String,
    pub platform: Option<String>,
    pub runtime_version: Option<String>,
    pub protocol: ProtocolVersion,
    pub current_update_id: Option<String>,
    pub embedded_update_id: Option<String>,
    pub expects_signature: bool,
    /// The `keyid` of `expo-expect-signature`, when the device named one.
    pub signature_key_id: Option<String>,
    /// `Expo-Recent-Failed-Update-IDs`: updates that failed to launch on
    /// the device recently (manifest ids).
    pub failed_update_ids: Vec<String>,
    /// `Expo-Fatal-Error` was sent: the update the device runs crashed.
    pub fatal_error: bool,
    /// `expo-channel-name`; the `main` channel when absent.
    pub channel: Option<String>,
    /// `EAS-Client-ID`: places the device in or out of rollouts.
    pub client_id: Option<String>,
    /// Whether the response can carry directives (multipart); JSON-only
    /// clients can only be given a manifest.
    pub directives_allowed: bool,
}

/// A manifest or directive body, serialised, with its signature header.
/// Shared with the cache: serving one clones two pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    pub json: Arc<str>,
    pub signature: Option<Arc<str>>,
}

/// The answer to a manifest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestAnswer {
    Manifest(SignedBody),
    /// `noUpdateAvailable` or `rollBackToEmbedded` (protocol 1 only).
    Directive(SignedBody),
}

/// The answer with the branch it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedManifest {
    pub answer: ManifestAnswer,
    /// The `expo-manifest-filters` header: an SFV dictionary naming the
    /// branch, which the manifest's `metadata` matches, so clients keep only
    /// updates of this branch.
    pub manifest_filters: String,
}

/// What a branch has for a device.
enum Resolution<'a> {
    Update(&'a PreparedUpdate),
    /// The branch has updates, but none this device is in the rollout of.
    OutsideRollout,
    /// The branch has no update for this runtime version and platform; the
    /// 404 message says which runtime versions have.
    Nothing(&'a str),
}

/// Which file an asset request names.
#[derive(Debug, Clone)]
pub enum AssetRequest {
    /// The immutable form manifests use: an update and a file path.
    OfUpdate { update_id: String, path: String },
    /// The old server's form: the latest update for a runtime and platform.
    Latest {
        runtime_version: String,
        platform: String,
        path: String,
    },
}

/// An asset a request named, found but not opened: what the HTTP layer
/// needs for `ETag`, `Range` and encoding decisions.
#[derive(Debug, Clone)]
pub struct LocatedAsset {
    /// The blob key of the uncompressed bytes.
    key: String,
    pub sha256_hex: String,
    /// Of the uncompressed bytes.
    pub size: u64,
    pub content_type: String,
    /// Whether the URL always names these bytes (long, immutable caching).
    pub immutable: bool,
    /// Whether compressed copies may exist (see `is_compressible`).
    pub compressible: bool,
    /// The update whose launch asset (bundle) this is, for insights.
    launch_asset_of: Option<Arc<Update>>,
}

pub struct ServeService {
    projects: Arc<dyn ProjectStore>,
    updates: Arc<dyn UpdateStore>,
    channels: Arc<dyn ChannelStore>,
    blobs: Arc<dyn BlobStore>,
    /// The server's own key (`PRIVATE_KEY`), with its key id.
    signer: Option<(SigningKeyId, Arc<dyn ManifestSigner>)>,
    /// Projects' own keys, when the server can open them.
    keyring: Option<Keyring>,
    asset_base_url: String,
    cache: ServeCache,
    /// Whether a compressed copy of a blob exists. Copies are made before
    /// the publish that names them commits and removed only with their
    /// blob, so an answer never goes stale while the asset is served.
    copies: quick_cache::sync::Cache<String, bool>,
    /// `{"type":"noUpdateAvailable"}`: one body for every device.
    no_update_available: SignedOnce,
    /// Send devices to presigned storage URLs instead of streaming bytes.
    redirect_assets: bool,
    hot_files: HotFiles,
    insights: Option<Arc<InsightRecorder>>,
}

impl ServeService {
    pub fn new(
        projects: Arc<dyn ProjectStore>,
        updates: Arc<dyn UpdateStore>,
        channels: Arc<dyn ChannelStore>,
        blobs: Arc<dyn BlobStore>,
        signer: Option<(SigningKeyId, Arc<dyn ManifestSigner>)>,
        asset_base_url: String,
    ) -> Self {
        Self {
            projects,
            updates,
            channels,
            blobs,
            signer,
            keyring: None,
            asset_base_url,
            cache: ServeCache::disabled(),
            copies: quick_cache::sync::Cache::new(COPIES_REMEMBERED),
            no_update_available: SignedOnce::new(
                json!({ "type": "noUpdateAvailable" }).to_string(),
            ),
            redirect_assets: false,
            hot_files: HotFiles::new(0),
            insights: None,
        }
    }

    /// Counts checks, launch-asset downloads and reported failures.
    pub fn with_insights(mut self, recorder: Arc<InsightRecorder>) -> Self {
        self.insights = Some(recorder);
        self
    }

    /// Keeps recently served files of up to 16 MiB in at most `max_bytes`
    /// of memory (0: every download reads storage).
    pub fn with_hot_files(mut self, max_bytes: u64) -> Self {
        self.hot_files = HotFiles::new(max_bytes);
        self
    }

    /// Signs with projects' own keys where they have some.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Answers asset requests with a redirect to a presigned storage URL
    /// (S3), so asset bytes do not pass through the server.
    pub fn with_asset_redirects(mut self, enabled: bool) -> Self {
        self.redirect_assets = enabled;
        self
    }

    /// Caches resolved streams in at most `max_bytes` (0: no cache), keyed
    /// by `epoch`, which must move whenever what is served changes.
    pub fn with_cache(mut self, epoch: Arc<dyn ServeEpoch>, max_bytes: u64) -> Self {
        self.cache = ServeCache::new(epoch, max_bytes);
        self
    }

    /// Update-check and asset lookups answered from the cache, and those
    /// that read the store, since start-up.
    pub fn cache_counts(&self) -> (u64, u64) {
        self.cache.counts()
    }

    /// Decides what a device gets.
    pub async fn manifest(&self, request: &ManifestRequest) -> AppResult<ServedManifest> {
        let platform = request
            .platform
            .as_deref()
            .and_then(Platform::parse)
            .ok_or_else(|| {
                AppError::Invalid(
                    "No platform provided. Expected \"ios\" or \"android\".".to_owned(),
                )
            })?;
        let runtime_version = request
            .runtime_version
            .as_deref()
            .filter(|version| !version.is_empty())
            .ok_or_else(|| AppError::Invalid("No runtimeVersion provided.".to_owned()))?;
        // Checked before it reaches a query: PostgreSQL refuses NUL bytes.
        let runtime_version = RuntimeVersion::parse(runtime_version)?;
        let runtime_version = runtime_version.as_str();
        let channel = match request.channel.as_deref() {
            None => ChannelName::default_channel(),
            Some(raw) => ChannelName::parse(raw)
                .map_err(|error| AppError::Invalid(format!("expo-channel-name: {error}")))?,
        };
        let signer = match request.expects_signature {
            true => Some(
                self.signer_for(&request.project_id, request.signature_key_id.as_deref())
                    .await?,
            ),
            false => None,
        };
        let signer = signer.as_deref();
        let stream = self
            .stream(&request.project_id, &channel, runtime_version, platform)
            .await?;
        let client_id = request.client_id.as_deref();
        self.record_failures(&stream, request);
        let (branch, resolution) = resolve(&stream, &channel, client_id)?;
        if let Resolution::Update(prepared) = &resolution
            && prepared.update.kind == UpdateKind::Update
            && let Some(counters) = &prepared.counters
        {
            counters.record_check(client_id);
        }
        let answer = match resolution {
            Resolution::Nothing(message) => {
                return Err(AppError::NotFound(message.to_owned()));
            }
            Resolution::OutsideRollout => self.nothing_for_this_device(request, signer)?,
            Resolution::Update(prepared) => self.update_answer(request, prepared, signer)?,
        };
        Ok(ServedManifest {
            answer,
            manifest_filters: format!("branch=\"{}\"", branch.as_str()),
        })
    }

    /// Counts the failures a device reports against the updates of its
    /// stream that it names (others are not this stream's to count).
    fn record_failures(&self, stream: &StreamView, request: &ManifestRequest) {
        let Some(insights) = &self.insights else {
            return;
        };
        let StreamView::Found { branches, .. } = stream else {
            return;
        };
        let crashed = request
            .current_update_id
            .as_deref()
            .filter(|_| request.fatal_error);
        let failed = request.failed_update_ids.iter().map(String::as_str);
        for manifest_id in failed.chain(crashed) {
            let update = branches
                .iter()
                .flat_map(|view| view.updates.values())
                .find(|prepared| prepared.update.manifest_id == manifest_id);
            if let Some(prepared) = update {
                insights.record_failure(&prepared.update, request.client_id.as_deref());
            }
        }
    }

    /// Counts a whole download of an asset; only launch assets are counted.
    pub fn record_download(&self, asset: &LocatedAsset) {
        if let (Some(insights), Some(update)) = (&self.insights, &asset.launch_asset_of) {
            insights.record_launch_download(update);
        }
    }

    /// The stream's view: from the cache, or read from the store.
    async fn stream(
        &self,
        project_id: &str,
        channel: &ChannelName,
        runtime_version: &str,
        platform: Platform,
    ) -> AppResult<Arc<StreamView>> {
        // Not a project id at all: nothing to look up, nothing to keep.
        if !is_valid_id(project_id) {
            return Ok(Arc::new(StreamView::ProjectMissing));
        }
        let key = CacheKey::Stream {
            epoch: self.cache.epoch(),
            project_id: project_id.to_owned(),
            channel: channel.as_str().to_owned(),
            runtime_version: runtime_version.to_owned(),
            platform,
        };
        let load = async {
            let view = self
                .load_stream(project_id, channel, runtime_version, platform)
                .await?;
            Ok(Cached::Stream(Arc::new(view)))
        };
        match self.cache.get_or_load(key, load).await? {
            Cached::Stream(view) => Ok(view),
            _ => Err(AppError::Internal(
                "the serve cache held something else under a stream key".to_owned(),
            )),
        }
    }

    /// Reads a stream from the store and serialises every body a device
    /// could be given.
    async fn load_stream(
        &self,
        project_id: &str,
        channel: &ChannelName,
        runtime_version: &str,
        platform: Platform,
    ) -> AppResult<StreamView> {
        if self.projects.find(project_id).await?.is_none() {
            return Ok(StreamView::ProjectMissing);
        }
        let mapping = self.channels.find(project_id, channel).await?;
        let names: Vec<BranchName> = match &mapping {
            Some(mapping) => std::iter::once(mapping.branch.clone())
                .chain(mapping.split.as_ref().map(|split| split.branch.clone()))
                .collect(),
            None => vec![channel.same_name_branch()],
        };
        let mut branches = Vec::with_capacity(names.len());
        for branch in names {
            let candidates = self
                .updates
                .candidates(project_id, &branch, runtime_version, platform)
                .await?;
            let mut updates = HashMap::with_capacity(candidates.len());
            for candidate in &candidates {
                // Deleted between the two reads: as if it had never been there.
                if let Some(update) = self.updates.find(project_id, &candidate.id).await? {
                    let body = self.body_of(&update);
                    updates.insert(
                        candidate.id.clone(),
                        PreparedUpdate {
                            counters: self
                                .insights
                                .as_ref()
                                .and_then(|insights| insights.counters(&update)),
                            update: Arc::new(update),
                            body: SignedOnce::new(body),
                        },
                    );
                }
            }
            let no_update = if candidates.is_empty() {
                Some(
                    self.no_update(project_id, runtime_version, platform, channel, &branch)
                        .await?,
                )
            } else {
                None
            };
            branches.push(BranchView {
                branch,
                candidates,
                updates,
                no_update,
            });
        }
        Ok(StreamView::Found { mapping, branches })
    }

    /// The body a device is sent for an update: its manifest, or for a
    /// rollback the `rollBackToEmbedded` directive.
    fn body_of(&self, update: &Update) -> String {
        match update.kind {
            UpdateKind::Update => self.manifest_json(update).to_string(),
            UpdateKind::Rollback => json!({
                "type": "rollBackToEmbedded",
                "parameters": { "commitTime": timestamp(update.created_at) },
            })
            .to_string(),
        }
    }

    fn update_answer(
        &self,
        request: &ManifestRequest,
        prepared: &PreparedUpdate,
        signer: Option<&dyn ManifestSigner>,
    ) -> AppResult<ManifestAnswer> {
        let update = &prepared.update;
        match update.kind {
            UpdateKind::Rollback => self.rollback_answer(request, prepared, signer),
            UpdateKind::Update => {
                let already_running =
                    request.current_update_id.as_deref() == Some(update.manifest_id.as_str());
                if request.protocol == ProtocolVersion::V1
                    && request.directives_allowed
                    && already_running
                {
                    return self.no_update_available(signer);
                }
                Ok(ManifestAnswer::Manifest(prepared.body.body(signer)?))
            }
        }
    }

    /// A device outside every rollout of a branch with nothing older to
    /// fall back on: "no update" where the protocol can say it.
    fn nothing_for_this_device(
        &self,
        request: &ManifestRequest,
        signer: Option<&dyn ManifestSigner>,
    ) -> AppResult<ManifestAnswer> {
        if request.protocol == ProtocolVersion::V1 && request.directives_allowed {
            return self.no_update_available(signer);
        }
        Err(AppError::NotFound(
            "No update for this device yet: the only updates for its runtime version are in a partial rollout that does not include it.".to_owned(),
        ))
    }

    fn rollback_answer(
        &self,
        request: &ManifestRequest,
        rollback: &PreparedUpdate,
        signer: Option<&dyn ManifestSigner>,
    ) -> AppResult<ManifestAnswer> {
        if request.protocol == ProtocolVersion::V0 {
            return Err(AppError::NotFound(
                "The latest update for this runtime version is a rollback, which protocol version 0 cannot express.".to_owned(),
            ));
        }
        if !request.directives_allowed {
            return Err(AppError::NotAcceptable(
                "The latest update for this runtime version is a rollback, which only a multipart/mixed response can carry.".to_owned(),
            ));
        }
        let embedded = request.embedded_update_id.as_deref();
        if embedded.is_some() && embedded == request.current_update_id.as_deref() {
            return self.no_update_available(signer);
        }
        Ok(ManifestAnswer::Directive(rollback.body.body(signer)?))
    }

    fn no_update_available(
        &self,
        signer: Option<&dyn ManifestSigner>,
    ) -> AppResult<ManifestAnswer> {
        Ok(ManifestAnswer::Directive(
            self.no_update_available.body(signer)?,
        ))
    }

    /// The key that signs for this project and requested key id: see
    /// [`choose_signing_key`].
    async fn signer_for(
        &self,
        project_id: &str,
        requested: Option<&str>,
    ) -> AppResult<Arc<dyn ManifestSigner>> {
        let project_keys = self.project_signers(project_id).await?;
        match choose_signing_key(&project_keys, self.signer.as_ref(), requested) {
            Ok(Some(signer)) => Ok(Arc::clone(signer)),
            Ok(None) => Err(AppError::Invalid(
                "Code signing requested but no key supplied when starting server.".to_owned(),
            )),
            Err(UnknownKeyId) => {
                let known: Vec<String> = project_keys
                    .iter()
                    .chain(self.signer.as_ref())
                    .map(|(key_id, _)| format!("\"{key_id}\""))
                    .collect();
                Err(AppError::Invalid(format!(
                    "expo-expect-signature: unknown keyid \"{}\"; this project signs with {}.",
                    requested.unwrap_or_default(),
                    if known.is_empty() {
                        "no key".to_owned()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }

    /// The project's own keys, from the cache (they change only with the
    /// serve epoch), or none when the server has no keyring.
    async fn project_signers(&self, project_id: &str) -> AppResult<Arc<ProjectSigners>> {
        let Some(keyring) = &self.keyring else {
            return Ok(Arc::default());
        };
        if !is_valid_id(project_id) {
            return Ok(Arc::default());
        }
        let key = CacheKey::Signers {
            epoch: self.cache.epoch(),
            project_id: project_id.to_owned(),
        };
        let load = async {
            let signers = keyring.project_signers(project_id).await?;
            Ok(Cached::Signers(Arc::new(signers)))
        };
        match self.cache.get_or_load(key, load).await? {
            Cached::Signers(signers) => Ok(signers),
            _ => Err(AppError::Internal(
                "the serve cache held something else under a signers key".to_owned(),
            )),
        }
    }

    fn manifest_json(&self, update: &Update) -> Value {
        let launch = update.launch_asset();
        let assets: Vec<Value> = update
            .assets
            .iter()
            .filter(|asset| !asset.is_launch_asset)
            .map(|asset| self.asset_json(update, asset))
            .collect();
        let mut extra = Map::new();
        if let Some(Ok(config)) = update
            .expo_config
            .as_deref()
            .map(serde_json::from_str::<Value>)
        {
            extra.insert("expoClient".to_owned(), config);
        }
        json!({
            "id": update.manifest_id,
            "createdAt": timestamp(update.created_at),
            "runtimeVersion": update.runtime_version,
            "launchAsset": launch.map(|asset| self.asset_json(update, asset)),
            "assets": assets,
            "metadata": { "branch": update.branch.as_str() },
            "extra": extra,
        })
    }

    fn asset_json(&self, update: &Update, asset: &UpdateAsset) -> Value {
        let mut value = json!({
            "hash": asset.hash,
            "key": asset.key,
            "contentType": asset.content_type,
            "url": self.asset_url(update, asset),
        });
        if let (Some(ext), false) = (&asset.file_extension, asset.is_launch_asset) {
            value["fileExtension"] = json!(ext);
        }
        value
    }

    /// An absolute URL naming the update and the file, so it keeps working
    /// (and keeps its bytes) after newer publishes.
    fn asset_url(&self, update: &Update, asset: &UpdateAsset) -> String {
        format!(
            "{}/api/updates/{}/assets?update={}&asset={}",
            self.asset_base_url,
            percent_encode(&update.project_id),
            percent_encode(&update.id),
            percent_encode(&asset.path)
        )
    }

    /// A 404 that says which runtime versions do have updates: a mismatch
    /// between the app's runtime version and the published one is the most
    /// common reason an app sees no update.
    async fn no_update(
        &self,
        project_id: &str,
        runtime_version: &str,
        platform: Platform,
        channel: &ChannelName,
        branch: &BranchName,
    ) -> AppResult<String> {
        let versions = self.updates.runtime_versions(project_id, platform).await?;
        let available = if versions.is_empty() {
            format!(
                "no runtime version has updates for {} yet",
                platform.as_str()
            )
        } else {
            let listed: Vec<String> = versions.iter().take(20).map(|v| format!("{v:?}")).collect();
            format!(
                "runtime versions with updates for {}: {}",
                platform.as_str(),
                listed.join(", ")
            )
        };
        Ok(format!(
            "No update for runtime version {runtime_version:?} on {} in branch {:?} (channel {:?}); {available}.",
            platform.as_str(),
            branch.as_str(),
            channel.as_str(),
        ))
    }

    /// An update by id (for asset requests), from the cache or the store.
    async fn update_by_id(
        &self,
        project_id: &str,
        update_id: &str,
    ) -> AppResult<Option<Arc<Update>>> {
        let key = CacheKey::Update {
            epoch: self.cache.epoch(),
            project_id: project_id.to_owned(),
            update_id: update_id.to_owned(),
        };
        let load = async {
            let update = self.updates.find(project_id, update_id).await?;
            Ok(Cached::Update(update.map(Arc::new)))
        };
        match self.cache.get_or_load(key, load).await? {
            Cached::Update(update) => Ok(update),
            _ => Err(AppError::Internal(
                "the serve cache held something else under an update key".to_owned(),
            )),
        }
    }

    /// Finds an asset of one of the project's updates.
    pub async fn locate_asset(
        &self,
        project_id: &str,
        request: &AssetRequest,
    ) -> AppResult<LocatedAsset> {
        let not_found = || AppError::NotFound("Asset not found.".to_owned());
        if !is_valid_id(project_id) {
            return Err(not_found());
        }
        let (update, path, immutable) = match request {
            AssetRequest::OfUpdate { update_id, path } => {
                if !is_valid_id(update_id) {
                    return Err(not_found());
                }
                (self.update_by_id(project_id, update_id).await?, path, true)
            }
            AssetRequest::Latest {
                runtime_version,
                platform,
                path,
            } => {
                let platform = Platform::parse(platform).ok_or_else(not_found)?;
                let runtime_version =
                    RuntimeVersion::parse(runtime_version).map_err(|_| not_found())?;
                // The old server's form knows no channels or devices: the
                // default channel's fully rolled-out update.
                let channel = ChannelName::default_channel();
                let stream = self
                    .stream(project_id, &channel, runtime_version.as_str(), platform)
                    .await?;
                let update = match resolve(&stream, &channel, None) {
                    Ok((_, Resolution::Update(prepared))) => Some(Arc::clone(&prepared.update)),
                    _ => None,
                };
                (update, path, false)
            }
        };
        let update = update.ok_or_else(not_found)?;
        let path = path.replace('\\', "/");
        let asset = update
            .assets
            .iter()
            .find(|asset| asset.path == path)
            .ok_or_else(not_found)?;
        Ok(LocatedAsset {
            key: asset_blob_key(project_id, &asset.sha256_hex),
            sha256_hex: asset.sha256_hex.clone(),
            size: asset.size,
            content_type: asset.content_type.clone(),
            immutable,
            compressible: is_compressible(&asset.content_type),
            launch_asset_of: asset.is_launch_asset.then(|| Arc::clone(&update)),
        })
    }

    /// The encoding to send the asset in: the first of the server's
    /// preferences that the client accepts and that has a stored copy.
    pub async fn stored_encoding(
        &self,
        asset: &LocatedAsset,
        accepted: &[ContentEncoding],
    ) -> Option<ContentEncoding> {
        if !asset.compressible {
            return None;
        }
        for encoding in ContentEncoding::ALL {
            if accepted.contains(&encoding) && self.has_copy(&encoding.blob_key(&asset.key)).await {
                return Some(encoding);
            }
        }
        None
    }

    async fn has_copy(&self, key: &str) -> bool {
        if let Some(known) = self.copies.get(key) {
            return known;
        }
        match self.blobs.exists(key).await {
            Ok(exists) => {
                self.copies.insert(key.to_owned(), exists);
                exists
            }
            Err(error) => {
                tracing::warn!(%error, key, "could not check for a compressed copy");
                false
            }
        }
    }

    /// Where to send the client for the asset (or its compressed copy), when
    /// redirects are on and the storage can presign: a URL valid for
    /// [`PRESIGNED_URL_LIFETIME`] that answers with the asset's own headers.
    pub async fn asset_redirect(
        &self,
        asset: &LocatedAsset,
        encoding: Option<ContentEncoding>,
    ) -> AppResult<Option<String>> {
        if !self.redirect_assets {
            return Ok(None);
        }
        let (key, mut headers) = match encoding {
            Some(encoding) => (
                encoding.blob_key(&asset.key),
                vec![("Content-Encoding", encoding.token())],
            ),
            None => (asset.key.clone(), Vec::new()),
        };
        headers.push(("Content-Type", asset.content_type.as_str()));
        self.blobs
            .presigned_get(&key, &headers, PRESIGNED_URL_LIFETIME)
            .await
            .map_err(AppError::from)
    }

    /// Opens the asset's bytes, or its compressed copy, whole or a range of
    /// the uncompressed bytes; returns the encoding actually opened. A copy
    /// that has gone from storage (collected with its file, which a later
    /// publish stored again) is forgotten and the file served as it is.
    pub async fn open_asset(
        &self,
        asset: &LocatedAsset,
        encoding: Option<ContentEncoding>,
        range: Option<Range<u64>>,
    ) -> AppResult<(BlobReader, Option<ContentEncoding>)> {
        let blobs = self.blobs.as_ref();
        if let (Some(encoding), None) = (encoding, &range) {
            let key = encoding.blob_key(&asset.key);
            // A copy is smaller than the file it copies.
            match self.hot_files.open(blobs, &key, asset.size).await {
                Ok(reader) => return Ok((reader, Some(encoding))),
                Err(BlobError::NotFound(_)) => {
                    tracing::warn!(key, "a compressed copy is missing; serving the file");
                    self.copies.remove(&key);
                }
                Err(other) => return Err(AppError::Internal(other.to_string())),
            }
        }
        let opened = match range {
            Some(range) => self.hot_files.open_range(blobs, &asset.key, range).await,
            None => self.hot_files.open(blobs, &asset.key, asset.size).await,
        };
        let reader = opened.map_err(|error| match error {
            BlobError::NotFound(_) => AppError::Internal(format!("blob {} is missing", asset.key)),
            other => other.into(),
        })?;
        Ok((reader, None))
    }
}

/// The branch a channel sends this device to, and what that branch has for
/// it: decided from memory, per request.
fn resolve<'a>(
    stream: &'a StreamView,
    channel: &ChannelName,
    client_id: Option<&str>,
) -> AppResult<(&'a BranchName, Resolution<'a>)> {
    let StreamView::Found { mapping, branches } = stream else {
        return Err(AppError::NotFound("Project not found.".to_owned()));
    };
    let branch = match mapping {
        Some(mapping) => mapping.branch_for(client_id).clone(),
        None => channel.same_name_branch(),
    };
    let view = branches
        .iter()
        .find(|view| view.branch == branch)
        .ok_or_else(|| AppError::Internal(format!("branch {branch:?} was not loaded")))?;
    let resolution = match pick_for_device(&view.candidates, client_id) {
        Some(chosen) => match view.updates.get(&chosen.id) {
            Some(prepared) => Resolution::Update(prepared),
            // Deleted between the two reads: as if it had never been there.
            None => Resolution::OutsideRollout,
        },
        None => match &view.no_update {
            Some(message) => Resolution::Nothing(message),
            None => Resolution::OutsideRollout,
        },
    };
    Ok((&view.branch, resolution))
}

/// `2026-01-01T10:00:00.000Z`: the exact shape both clients parse.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at =
            DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            at.map(timestamp).ok().as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );
    }

    #[test]
    fn urls_are_percent_encoded() {
        assert_eq!(
            percent_encode("assets/a b&c=d?é"),
            "assets/a%20b%26c%3Dd%3F%C3%A9"
        );
    }
}
