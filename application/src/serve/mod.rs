//! Serving updates: what a device asking for its runtime version and
//! platform is told (a manifest, "no update", or "roll back"), and the
//! files a manifest points at.
//!
//! One call answers one request: [`ServeService::manifest`] an update check,
//! [`ServeService::asset`] a download. The jobs are split by module:
//! `request` and `answer` are the typed values at the boundary, `cache`
//! keeps streams, `body` serialises what devices are sent (once, signed over
//! exactly those bytes by `signed`), `decide` holds the serving rules and
//! `assets` the download rules.

mod answer;
mod assets;
mod body;
mod cache;
mod decide;
mod hot_files;
mod patches;
mod request;
mod signed;

use std::collections::HashMap;
use std::sync::Arc;

use domain::blob::BlobStore;
use domain::id::ProjectId;
use domain::ports::{
    ChannelStore, ManifestSigner, PatchStore, ProjectStore, ServeEpoch, UpdateStore,
};
use domain::release::{BranchName, ChannelName};
use domain::signing_key::{SigningKeyId, UnknownKeyId, choose_signing_key};
use domain::update::{Platform, RuntimeVersion, Update, UpdateKind};
use serde_json::json;

pub use answer::{AssetAnswer, ManifestAnswer, Representation, ServedManifest, SignedBody};
pub use assets::PRESIGNED_URL_LIFETIME;
pub use request::{
    AcceptedEncodings, AssetRequest, AssetTarget, ByteRange, IfNoneMatch, ManifestRequest,
    PatchRequest, ProtocolVersion, SignatureRequest,
};

use assets::{AssetFiles, LocatedAsset};
use body::Bodies;
use cache::{BranchView, PreparedUpdate, RecordRef, ServeCache, StreamRef, StreamView};
use decide::Resolution;
use patches::PatchLookup;
use signed::SignedOnce;

use crate::error::{AppError, AppResult};
use crate::insights::{InsightRecorder, LaunchDelivery};
use crate::signing_keys::{Keyring, ProjectSigners};

pub struct ServeService {
    projects: Arc<dyn ProjectStore>,
    updates: Arc<dyn UpdateStore>,
    channels: Arc<dyn ChannelStore>,
    /// The server's own key (`PRIVATE_KEY`), with its key id.
    signer: Option<(SigningKeyId, Arc<dyn ManifestSigner>)>,
    /// Projects' own keys, when the server can open them.
    keyring: Option<Keyring>,
    /// The keys of a project without any: shared, so no request allocates.
    no_project_signers: Arc<ProjectSigners>,
    bodies: Bodies,
    cache: ServeCache,
    files: AssetFiles,
    /// `{"type":"noUpdateAvailable"}`: one body for every device.
    no_update_available: SignedOnce,
    insights: Option<Arc<InsightRecorder>>,
    /// Bundle diffing's patches, when it is on.
    patches: Option<PatchLookup>,
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
            signer,
            keyring: None,
            no_project_signers: Arc::default(),
            bodies: Bodies { asset_base_url },
            cache: ServeCache::disabled(),
            files: AssetFiles::new(blobs),
            no_update_available: SignedOnce::new(
                json!({ "type": "noUpdateAvailable" }).to_string(),
            ),
            insights: None,
            patches: None,
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
        self.files.keep_hot_files(max_bytes);
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
        self.files.redirect = enabled;
        self
    }

    /// Serves ready patches of launch bundles to clients that ask for them
    /// (bundle diffing on).
    pub fn with_patches(mut self, patches: Arc<dyn PatchStore>) -> Self {
        self.patches = Some(PatchLookup {
            projects: Arc::clone(&self.projects),
            updates: Arc::clone(&self.updates),
            patches,
        });
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
        let signer = match &request.signature {
            request::SignatureRequest::NotRequested => None,
            request::SignatureRequest::AnyKey => {
                Some(self.signer_for(&request.project_id, None).await?)
            }
            request::SignatureRequest::Key(key_id) => {
                Some(self.signer_for(&request.project_id, Some(key_id)).await?)
            }
        };
        let stream = self
            .stream(
                &request.project_id,
                &request.channel,
                &request.runtime_version,
                request.platform,
            )
            .await?;
        let client_id = request.client_id.as_deref();
        self.record_failures(&stream, request);
        let (branch, resolution) = decide::resolve(&stream, &request.channel, client_id)?;
        if let Resolution::Update(prepared) = &resolution
            && prepared.update.kind == UpdateKind::Update
            && let Some(counters) = &prepared.counters
        {
            counters.record_check(client_id);
        }
        let answer = decide::answer(
            request,
            resolution,
            signer.as_deref(),
            &self.no_update_available,
        )?;
        Ok(ServedManifest {
            answer,
            manifest_filters: Arc::clone(&branch.manifest_filters),
        })
    }

    /// Answers a download, and counts it when it hands a device a whole
    /// launch asset.
    pub async fn asset(&self, request: &AssetRequest) -> AppResult<AssetAnswer> {
        let mut asset = self.locate(request).await?;
        asset.patchable = self.patches.is_some() && asset.launch_asset_of.is_some();
        if let Some(lookup) = &self.patches
            && let Some(patch) = lookup.find(&self.cache, &asset, request).await
            && let Some(patched) = self.files.answer_patch(&asset, request, patch).await?
        {
            if !request.head_only {
                self.record_launch_download(&asset, patched.delivery);
            }
            return Ok(patched.answer);
        }
        let answered = self.files.answer(&asset, request).await?;
        if let Some(bytes_sent) = answered.whole_download {
            let delivery = LaunchDelivery {
                bytes_sent,
                patch_instead_of: None,
            };
            self.record_launch_download(&asset, delivery);
        }
        Ok(answered.answer)
    }

    /// Counts a download that handed a device a whole launch asset (or a
    /// patch to one).
    fn record_launch_download(&self, asset: &LocatedAsset, delivery: LaunchDelivery) {
        if let (Some(insights), Some(update)) = (&self.insights, &asset.launch_asset_of) {
            insights.record_launch_download(update, delivery);
        }
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

    /// The stream's view: from the cache, or read from the store.
    async fn stream(
        &self,
        project_id: &ProjectId,
        channel: &ChannelName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
    ) -> AppResult<Arc<StreamView>> {
        let key = StreamRef {
            epoch: self.cache.epoch(),
            project_id: project_id.as_str(),
            channel: channel.as_str(),
            runtime_version: runtime_version.as_str(),
            platform,
        };
        let load = || async move {
            let view = self
                .load_stream(project_id, channel, runtime_version, platform)
                .await?;
            Ok(Arc::new(view))
        };
        self.cache.stream(key, load).await
    }

    /// Reads a stream from the store and serialises every body a device
    /// could be given.
    async fn load_stream(
        &self,
        project_id: &ProjectId,
        channel: &ChannelName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
    ) -> AppResult<StreamView> {
        if self.projects.find(project_id.as_str()).await?.is_none() {
            return Ok(StreamView::ProjectMissing);
        }
        let mapping = self.channels.find(project_id.as_str(), channel).await?;
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
                    updates.insert(candidate.id.clone(), self.prepare(update));
                }
            }
            let no_update = if candidates.is_empty() {
                let versions = self.updates.runtime_versions(project_id, platform).await?;
                Some(body::no_update_message(
                    runtime_version,
                    platform,
                    channel,
                    &branch,
                    &versions,
                ))
            } else {
                None
            };
            branches.push(BranchView {
                manifest_filters: body::manifest_filters(&branch).into(),
                branch,
                candidates,
                updates,
                no_update,
            });
        }
        Ok(StreamView::Found { mapping, branches })
    }

    fn prepare(&self, update: Update) -> PreparedUpdate {
        PreparedUpdate {
            counters: self
                .insights
                .as_ref()
                .and_then(|insights| insights.counters(&update)),
            body: SignedOnce::new(self.bodies.of(&update)),
            update: Arc::new(update),
        }
    }

    /// The key that signs for this project and requested key id: see
    /// [`choose_signing_key`].
    async fn signer_for(
        &self,
        project_id: &ProjectId,
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
    async fn project_signers(&self, project_id: &ProjectId) -> AppResult<Arc<ProjectSigners>> {
        let Some(keyring) = &self.keyring else {
            return Ok(Arc::clone(&self.no_project_signers));
        };
        let key = RecordRef {
            epoch: self.cache.epoch(),
            project_id: project_id.as_str(),
            record_id: "",
        };
        let load = || async move {
            let signers = keyring.project_signers(project_id.as_str()).await?;
            Ok(Arc::new(signers))
        };
        self.cache.signers(key, load).await
    }

    /// Finds the file an asset request names.
    async fn locate(&self, request: &AssetRequest) -> AppResult<LocatedAsset> {
        let not_found = || AppError::NotFound("Asset not found.".to_owned());
        let project_id = &request.project_id;
        let (update, path, immutable) = match &request.target {
            AssetTarget::OfUpdate { update_id, path } => {
                let key = RecordRef {
                    epoch: self.cache.epoch(),
                    project_id: project_id.as_str(),
                    record_id: update_id.as_str(),
                };
                let load = || async move {
                    let update = self.updates.find(project_id, update_id).await?;
                    Ok(update.map(Arc::new))
                };
                (self.cache.update(key, load).await?, path, true)
            }
            AssetTarget::Latest {
                runtime_version,
                platform,
                path,
            } => {
                // The old server's form knows no channels or devices: the
                // default channel's fully rolled-out update.
                let channel = ChannelName::default_channel();
                let stream = self
                    .stream(project_id, &channel, runtime_version, *platform)
                    .await?;
                let update = match decide::resolve(&stream, &channel, None) {
                    Ok((_, Resolution::Update(prepared))) => Some(Arc::clone(&prepared.update)),
                    _ => None,
                };
                (update, path, false)
            }
        };
        let update = update.ok_or_else(not_found)?;
        LocatedAsset::find(&update, path, immutable).ok_or_else(not_found)
    }
}
