//! Real-shaped values for tests, and the services wired over the fakes.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use domain::audit::{Actor, ActorKind};
use domain::blob::BlobStore;
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::patch::PatchPolicy;
use domain::ports::{ManifestSigner, UpdateStore};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind, asset_blob_key};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::blobs::InMemoryBlobs;
use super::ids::ordered_id;
use super::signer::FakeSigner;
use super::signing::{FakeKeySealer, FakeSigningKeys};
use super::store::InMemoryStore;
use crate::publish::content_type_of;
use crate::{AuditLog, InsightRecorder, InsightService, Keyring, PublishService, ReleaseService};
use crate::{PatchService, Retention, ServeService, SigningKeyService};

/// The public address asset URLs in manifests start with.
pub const ASSET_BASE_URL: &str = "https://updates.example.test";

/// One publish of real-shaped updates (one per platform, sharing the
/// publish id), with the bytes of their files: a JavaScript bundle per
/// platform and the assets added with [`asset`](Self::asset).
#[derive(Debug, Clone)]
pub struct TestPublish {
    project_id: String,
    runtime_version: String,
    branch: BranchName,
    platforms: Vec<Platform>,
    kind: UpdateKind,
    rollout: RolloutPercentage,
    message: Option<String>,
    expo_config: Option<String>,
    /// (path, bytes, extension without the dot).
    assets: Vec<(String, Vec<u8>, String)>,
    /// The launch bundle of every platform; `None`: one made up per publish
    /// and platform.
    bundle: Option<Vec<u8>>,
}

impl TestPublish {
    /// An update for runtime `1.0.0` on both platforms, to `main`, fully
    /// rolled out, with one image asset.
    pub fn update(project_id: &str) -> Self {
        Self {
            project_id: project_id.to_owned(),
            runtime_version: "1.0.0".to_owned(),
            branch: BranchName::default_branch(),
            platforms: vec![Platform::Ios, Platform::Android],
            kind: UpdateKind::Update,
            rollout: RolloutPercentage::FULL,
            message: None,
            expo_config: Some(r#"{"name":"app","slug":"app"}"#.to_owned()),
            assets: vec![(
                "assets/icon.png".to_owned(),
                b"\x89PNG\r\n\x1a\n fake image".to_vec(),
                "png".to_owned(),
            )],
            bundle: None,
        }
    }

    /// A rollback to the embedded update (no files).
    pub fn rollback(project_id: &str) -> Self {
        Self {
            kind: UpdateKind::Rollback,
            expo_config: None,
            assets: Vec::new(),
            ..Self::update(project_id)
        }
    }

    pub fn runtime_version(mut self, runtime_version: &str) -> Self {
        runtime_version.clone_into(&mut self.runtime_version);
        self
    }

    /// # Panics
    ///
    /// When `branch` is not a valid branch name: a mistake in the test.
    pub fn branch(mut self, branch: &str) -> Self {
        self.branch = BranchName::parse(branch).expect("a valid branch name");
        self
    }

    pub fn platforms(mut self, platforms: &[Platform]) -> Self {
        self.platforms = platforms.to_vec();
        self
    }

    /// # Panics
    ///
    /// When `percentage` is over 100: a mistake in the test.
    pub fn rollout(mut self, percentage: u8) -> Self {
        self.rollout =
            RolloutPercentage::parse(i64::from(percentage)).expect("a percentage of 0 to 100");
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    /// Ships `bytes` as the launch bundle of every platform.
    pub fn bundle(mut self, bytes: &[u8]) -> Self {
        self.bundle = Some(bytes.to_vec());
        self
    }

    /// Adds an asset at `path` with an extension such as `png`.
    pub fn asset(mut self, path: &str, bytes: &[u8], extension: &str) -> Self {
        self.assets
            .push((path.to_owned(), bytes.to_vec(), extension.to_owned()));
        self
    }

    /// The updates, under a new publish id, and every file they name as
    /// (blob key, bytes).
    pub fn build(&self) -> (Vec<Update>, Vec<(String, Bytes)>) {
        let publish_id = ordered_id();
        let created_at = Utc::now().trunc_subsecs(3);
        let mut files = Vec::new();
        let mut updates = Vec::new();
        for platform in &self.platforms {
            let id = ordered_id();
            let mut assets = Vec::new();
            if self.kind == UpdateKind::Update {
                let bundle = match &self.bundle {
                    Some(bundle) => bundle.clone(),
                    None => bundle_bytes(&publish_id, *platform),
                };
                let path = format!("_expo/static/js/{}/index-{id}.hbc", platform.as_str());
                assets.push(self.file(&mut files, &path, &bundle, None));
                for (path, bytes, ext) in &self.assets {
                    assets.push(self.file(&mut files, path, bytes, Some(ext)));
                }
            }
            updates.push(Update {
                manifest_id: id.clone(),
                id: UpdateId::from_trusted(id),
                publish_id: PublishId::from_trusted(publish_id.clone()),
                project_id: ProjectId::from_trusted(self.project_id.clone()),
                runtime_version: RuntimeVersion::from_trusted(self.runtime_version.clone()),
                platform: *platform,
                kind: self.kind,
                branch: self.branch.clone(),
                message: self.message.clone(),
                rollout: self.rollout,
                published_by: Some(Actor {
                    kind: ActorKind::System,
                    id: "test".to_owned(),
                    name: "test".to_owned(),
                }),
                republished_from: None,
                expo_config: self.expo_config.clone(),
                assets,
                created_at,
            });
        }
        (updates, files)
    }

    /// Builds the publish, puts its files in `blobs` and stores it as a
    /// publish does (one transaction, moving the serve epoch).
    ///
    /// # Panics
    ///
    /// When the store refuses it (the project does not exist).
    pub async fn store(&self, store: &InMemoryStore, blobs: &InMemoryBlobs) -> Vec<Update> {
        let (updates, files) = self.build();
        for (key, bytes) in files {
            blobs.put(&key, bytes);
        }
        store
            .insert_publish(&updates)
            .await
            .expect("the project exists");
        updates
    }

    fn file(
        &self,
        files: &mut Vec<(String, Bytes)>,
        path: &str,
        bytes: &[u8],
        ext: Option<&str>,
    ) -> UpdateAsset {
        let sha256 = Sha256::digest(bytes);
        let sha256_hex = hex::encode(sha256);
        files.push((
            asset_blob_key(&self.project_id, &sha256_hex),
            Bytes::copy_from_slice(bytes),
        ));
        UpdateAsset {
            path: path.to_owned(),
            hash: URL_SAFE_NO_PAD.encode(sha256),
            sha256_hex,
            key: hex::encode(Md5::digest(bytes)),
            content_type: content_type_of(ext),
            file_extension: ext.map(|ext| format!(".{ext}")),
            size: bytes.len() as u64,
            is_launch_asset: ext.is_none(),
        }
    }
}

/// A bundle of a few kilobytes, different per publish and platform.
fn bundle_bytes(publish_id: &str, platform: Platform) -> Vec<u8> {
    let mut bundle = format!("// {publish_id} {}\n", platform.as_str());
    for line in 0..64 {
        bundle.push_str(&format!("console.log(\"line {line} of {publish_id}\");\n"));
    }
    bundle.into_bytes()
}

/// The fakes, and the services wired over them as the server wires them:
/// serving with a cache keyed by the store's epoch, the server key
/// ([`signer`](Self::signer), key id `main`), projects' own keys (a
/// keyring over the store) and insights.
pub struct Harness {
    pub store: Arc<InMemoryStore>,
    pub blobs: Arc<InMemoryBlobs>,
    pub signer: Arc<FakeSigner>,
    pub signing_keys: Arc<FakeSigningKeys>,
    pub insights: Arc<InsightRecorder>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with_blobs(InMemoryBlobs::new())
    }

    pub fn with_blobs(blobs: InMemoryBlobs) -> Self {
        Self {
            store: Arc::new(InMemoryStore::new()),
            blobs: Arc::new(blobs),
            signer: Arc::new(FakeSigner::new("main")),
            signing_keys: Arc::new(FakeSigningKeys::default()),
            insights: Arc::new(InsightRecorder::default()),
        }
    }

    /// The serving service as the server wires it, caching up to 64 MiB.
    pub fn serve(&self) -> ServeService {
        self.serve_without_keyring().with_keyring(self.keyring())
    }

    /// Projects' own keys, opened by [`FakeKeySealer`] and
    /// [`FakeSigningKeys`].
    pub fn keyring(&self) -> Keyring {
        Keyring::new(
            self.store.clone(),
            Some(Arc::new(FakeKeySealer)),
            self.signing_keys.clone(),
        )
    }

    pub fn signing_key_service(&self) -> SigningKeyService {
        SigningKeyService::new(self.keyring(), self.store.clone(), self.audit_log())
    }

    /// The serving service signing with the server key only.
    pub fn serve_without_keyring(&self) -> ServeService {
        let signer: Arc<dyn ManifestSigner> = self.signer.clone();
        let blobs: Arc<dyn BlobStore> = self.blobs.clone();
        ServeService::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            blobs,
            Some((self.signer.key_id().clone(), signer)),
            ASSET_BASE_URL.to_owned(),
        )
        .with_cache(self.store.clone(), 64 * 1024 * 1024)
        .with_insights(Arc::clone(&self.insights))
    }

    pub fn audit_log(&self) -> AuditLog {
        AuditLog::new(self.store.clone())
    }

    /// Retention keeping `keep` updates per stream (`None`: all).
    pub fn retention(&self, keep: Option<u64>) -> Retention {
        Retention::new(keep, self.store.clone(), self.audit_log())
    }

    pub fn releases(&self, keep: Option<u64>) -> ReleaseService {
        ReleaseService::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.audit_log(),
            self.retention(keep),
        )
    }

    /// Publishing with uploads of up to 16 MiB.
    pub fn publisher(&self, keep: Option<u64>) -> PublishService {
        PublishService::new(
            self.store.clone(),
            self.blobs.clone(),
            self.store.clone(),
            self.audit_log(),
            16 * 1024 * 1024,
            self.retention(keep),
        )
    }

    /// Bundle diffing over the fakes, with `policy`.
    pub fn patch_service(&self, policy: PatchPolicy) -> PatchService {
        PatchService::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.blobs.clone(),
            self.audit_log(),
            policy,
        )
    }

    /// Insights written to the store from this harness's recorder.
    pub fn insight_service(&self) -> InsightService {
        InsightService::new(
            Arc::clone(&self.insights),
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.audit_log(),
            None,
        )
    }
}
