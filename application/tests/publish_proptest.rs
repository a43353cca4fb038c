//! Property tests of the publish stream: `PublishService::publish` reading an
//! arbitrary multipart form part by part (the adapter hands it over as
//! [`UploadParts`]), `missing_files` reading client hashes, and `rollback`
//! reading a client's body.
//!
//! The service runs over in-memory ports written here (blob storage, update
//! store, audit log), so every case is fast and the store can be inspected
//! afterwards. Properties: no panic, no server error (`AppError::Internal`)
//! for anything a client can send, staging always emptied, only confined
//! paths stored, only content-addressed keys written, and a valid export
//! always publishes, uploaded or named by hash.
//!
//! Each property runs [`DEFAULT_CASES`] cases (a few seconds in a debug
//! build); `PROPTEST_CASES` overrides that.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use application::publish::MAX_HASHES_PER_QUERY;
use application::{
    AppError, AppResult, AuditLog, Caller, FormText, PartKind, PublishService, Retention,
    RollbackRequest, UploadPart, UploadParts,
};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use domain::api_key::ApiKey;
use domain::audit::AuditEvent;
use domain::blob::{BlobError, BlobInfo, BlobReader, BlobStore, ByteStream, StagedBlob};
use domain::embedded::{EmbeddedBundle, EmbeddedUpdateId};
use domain::export::parse_metadata;
use domain::id::{ApiKeyId, ProjectId, PublishId, UpdateId};
use domain::member::{MemberProfile, Membership, Role};
use domain::ports::{
    AuditStore, HistoryQuery, KnownFile, MemberStore, ReferenceLock, StoreError, StoreResult,
    UpdateStore, UpdateStream,
};
use domain::release::{BranchName, RolloutCandidate, RolloutPercentage};
use domain::update::{
    MAX_PATH_LEN, Platform, RuntimeVersion, Update, UpdateKind, asset_blob_key, blob_key_sha256,
    parse_message,
};
use futures_util::StreamExt;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use serde_json::{Value, json};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 1024;

/// `ProptestConfig::default()` reads `PROPTEST_CASES`, but a literal
/// `cases` would override it: read it here so the variable still wins.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Relative to the package: failing inputs are kept and replayed
        // first on the next run.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/publish_proptest.txt",
        ))),
        ..ProptestConfig::default()
    }
}

const PROJECT: &str = "0196d1c2-0000-7000-8000-000000000001";
const OTHER_PROJECT: &str = "0196d1c2-0000-7000-8000-000000000002";

/// [`PROJECT`] as the services take it.
fn project() -> ProjectId {
    ProjectId::from_trusted(PROJECT.to_owned())
}
/// Small, so the size limit is reached by generated forms.
const MAX_UPLOAD_BYTES: u64 = 4096;

// ------------------------------------------------------------------ in-memory ports

/// What the fakes answer for operations a publish never needs.
fn unused<T>() -> StoreResult<T> {
    Err(StoreError::backend("not implemented by the test store"))
}

/// A stand-in digest: equal bytes give equal digests, which is all content
/// addressing needs (the real SHA-256 lives in the storage adapter).
fn digest<const N: usize>(bytes: &[u8], salt: u8) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, i, bytes).hash(&mut hasher);
        let word = hasher.finish().to_be_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

#[derive(Default)]
struct MemoryBlobs {
    objects: Mutex<BTreeMap<String, Bytes>>,
    next_staging: Mutex<u64>,
}

impl MemoryBlobs {
    fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.objects.lock().unwrap().get(key).cloned()
    }
}

fn reader(bytes: Bytes) -> BlobReader {
    BlobReader {
        size: bytes.len() as u64,
        body: futures_util::stream::iter([Ok(bytes)]).boxed(),
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn stage(&self, mut body: ByteStream, max_bytes: u64) -> Result<StagedBlob, BlobError> {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| BlobError::Body(error.to_string()))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max_bytes {
                return Err(BlobError::TooLarge(max_bytes));
            }
        }
        let staging_key = {
            let mut next = self.next_staging.lock().unwrap();
            *next += 1;
            format!("staging/{next}")
        };
        let staged = StagedBlob {
            staging_key: staging_key.clone(),
            size: bytes.len() as u64,
            sha256: digest(&bytes, 1),
            md5: digest(&bytes, 2),
        };
        self.objects
            .lock()
            .unwrap()
            .insert(staging_key, Bytes::from(bytes));
        Ok(staged)
    }

    async fn promote(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError> {
        let mut objects = self.objects.lock().unwrap();
        let bytes = objects
            .get(&staged.staging_key)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(staged.staging_key.clone()))?;
        objects.entry(key.to_owned()).or_insert(bytes);
        Ok(())
    }

    async fn replace(&self, _staged: &StagedBlob, _key: &str) -> Result<(), BlobError> {
        Err(BlobError::Backend(
            "not implemented by the test store".to_owned(),
        ))
    }

    async fn discard(&self, staged: &StagedBlob) {
        self.objects.lock().unwrap().remove(&staged.staging_key);
    }

    async fn open(&self, key: &str) -> Result<BlobReader, BlobError> {
        self.get(key)
            .map(reader)
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))
    }

    async fn open_range(&self, key: &str, range: Range<u64>) -> Result<BlobReader, BlobError> {
        let bytes = self
            .get(key)
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))?;
        let (start, end) = (range.start as usize, range.end as usize);
        Ok(reader(
            bytes.slice(start.min(bytes.len())..end.min(bytes.len())),
        ))
    }

    async fn presigned_get(
        &self,
        _key: &str,
        _response_headers: &[(&str, &str)],
        _valid_for: Duration,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|bytes| bytes.len() as u64))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, BlobError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, bytes)| BlobInfo {
                key: key.clone(),
                size: bytes.len() as u64,
                last_modified: Utc::now(),
            })
            .collect())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), BlobError> {
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }

    async fn verify(&self) -> Result<(), BlobError> {
        Ok(())
    }

    async fn sweep_staging(&self, _age_seconds: u64) -> Result<usize, BlobError> {
        Ok(0)
    }
}

#[derive(Default)]
struct MemoryUpdates {
    updates: Arc<Mutex<Vec<Update>>>,
}

struct MemoryLock {
    updates: Arc<Mutex<Vec<Update>>>,
    pending: Vec<Update>,
}

#[async_trait]
impl ReferenceLock for MemoryLock {
    async fn referenced_blobs(&mut self) -> StoreResult<HashSet<String>> {
        Ok(self
            .updates
            .lock()
            .unwrap()
            .iter()
            .flat_map(|update| &update.assets)
            .map(|asset| asset.sha256_hex.clone())
            .collect())
    }

    async fn insert_publish(&mut self, updates: &[Update]) -> StoreResult<()> {
        self.pending.extend_from_slice(updates);
        Ok(())
    }

    async fn want_patches(
        &mut self,
        _patches: &[domain::patch::PatchKey],
        _now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        Ok(())
    }

    async fn forget_patches_to(&mut self, _target_sha256s: &[String]) -> StoreResult<()> {
        Ok(())
    }

    async fn put_embedded_bundle(&mut self, _bundle: &EmbeddedBundle) -> StoreResult<()> {
        unused()
    }

    async fn delete_embedded_bundle(&mut self, _update_id: &EmbeddedUpdateId) -> StoreResult<bool> {
        unused()
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.updates.lock().unwrap().extend(self.pending);
        Ok(())
    }
}

#[async_trait]
impl UpdateStore for MemoryUpdates {
    async fn lock_references(
        &self,
        _project_id: &ProjectId,
    ) -> StoreResult<Box<dyn ReferenceLock>> {
        Ok(Box::new(MemoryLock {
            updates: Arc::clone(&self.updates),
            pending: Vec::new(),
        }))
    }

    async fn candidates(
        &self,
        _project_id: &ProjectId,
        _branch: &BranchName,
        _runtime_version: &RuntimeVersion,
        _platform: Platform,
    ) -> StoreResult<Vec<RolloutCandidate>> {
        unused()
    }

    async fn find(
        &self,
        project_id: &ProjectId,
        update_id: &UpdateId,
    ) -> StoreResult<Option<Update>> {
        Ok(self
            .updates
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.project_id == *project_id && u.id == *update_id)
            .cloned())
    }

    async fn find_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<Vec<Update>> {
        Ok(self
            .updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.project_id == *project_id && u.publish_id == *publish_id)
            .cloned()
            .collect())
    }

    async fn history(
        &self,
        _project_id: &ProjectId,
        _query: &HistoryQuery,
    ) -> StoreResult<Vec<Update>> {
        unused()
    }

    async fn branch_heads(&self, _project_id: &ProjectId) -> StoreResult<Vec<Update>> {
        unused()
    }

    async fn set_rollout(
        &self,
        _project_id: &ProjectId,
        _publish_id: &PublishId,
        _rollout: RolloutPercentage,
    ) -> StoreResult<bool> {
        unused()
    }

    async fn delete_publish(
        &self,
        _project_id: &ProjectId,
        _publish_id: &PublishId,
    ) -> StoreResult<bool> {
        unused()
    }

    async fn prune(
        &self,
        _project_id: &ProjectId,
        _branch: &BranchName,
        _runtime_version: &RuntimeVersion,
        _platform: Platform,
        _keep: u64,
    ) -> StoreResult<Vec<UpdateId>> {
        unused()
    }

    async fn runtime_versions(
        &self,
        _project_id: &ProjectId,
        _platform: Platform,
    ) -> StoreResult<Vec<RuntimeVersion>> {
        unused()
    }

    async fn streams(&self) -> StoreResult<Vec<UpdateStream>> {
        unused()
    }

    async fn launch_bundle_of(
        &self,
        _project_id: &ProjectId,
        _runtime_version: &RuntimeVersion,
        _platform: Platform,
        _manifest_id: &str,
    ) -> StoreResult<Option<String>> {
        unused()
    }

    async fn embedded_bundles(&self, _project_id: &ProjectId) -> StoreResult<Vec<EmbeddedBundle>> {
        Ok(Vec::new())
    }

    async fn embedded_bundle_of(
        &self,
        _project_id: &ProjectId,
        _runtime_version: &RuntimeVersion,
        _platform: Platform,
        _update_id: &str,
    ) -> StoreResult<Option<String>> {
        unused()
    }

    async fn known_files(
        &self,
        project_id: &ProjectId,
        sha256_hexes: &[String],
    ) -> StoreResult<HashMap<String, KnownFile>> {
        let wanted: HashSet<&String> = sha256_hexes.iter().collect();
        Ok(self
            .updates
            .lock()
            .unwrap()
            .iter()
            .filter(|update| update.project_id == *project_id)
            .flat_map(|update| &update.assets)
            .filter(|asset| wanted.contains(&asset.sha256_hex))
            .map(|asset| {
                (
                    asset.sha256_hex.clone(),
                    KnownFile {
                        md5_hex: asset.key.clone(),
                        size: asset.size,
                    },
                )
            })
            .collect())
    }
}

/// Publishing with a key and rolling back never asks who is a member.
struct NoMembers;

#[async_trait]
impl MemberStore for NoMembers {
    async fn find(&self, _project_id: &str, _user_id: &str) -> StoreResult<Option<Membership>> {
        unused()
    }
    async fn insert(&self, _membership: &Membership) -> StoreResult<()> {
        unused()
    }
    async fn list(&self, _project_id: &str) -> StoreResult<Vec<MemberProfile>> {
        unused()
    }
    async fn change_role(
        &self,
        _project_id: &str,
        _user_id: &str,
        _role: Role,
    ) -> StoreResult<Option<Membership>> {
        unused()
    }
    async fn remove(&self, _project_id: &str, _user_id: &str) -> StoreResult<bool> {
        unused()
    }
}

#[derive(Default)]
struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

#[async_trait]
impl AuditStore for MemoryAudit {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn list(
        &self,
        _project_id: &str,
        _before: Option<&str>,
        _limit: u64,
    ) -> StoreResult<Vec<AuditEvent>> {
        unused()
    }
}

/// A publish service over fresh in-memory ports, with handles on them.
struct World {
    service: PublishService,
    blobs: Arc<MemoryBlobs>,
    updates: Arc<MemoryUpdates>,
    audit: Arc<MemoryAudit>,
}

impl World {
    fn new() -> World {
        let blobs = Arc::new(MemoryBlobs::default());
        let updates = Arc::new(MemoryUpdates::default());
        let audit = Arc::new(MemoryAudit::default());
        let log = AuditLog::new(audit.clone());
        let service = PublishService::new(
            updates.clone(),
            blobs.clone(),
            Arc::new(NoMembers),
            log.clone(),
            MAX_UPLOAD_BYTES,
            Retention::new(None, updates.clone(), log),
        );
        World {
            service,
            blobs,
            updates,
            audit,
        }
    }

    fn stored_updates(&self) -> Vec<Update> {
        self.updates.updates.lock().unwrap().clone()
    }

    fn audit_count(&self) -> usize {
        self.audit.events.lock().unwrap().len()
    }
}

fn key(project_id: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId::parse("0196d1c2-0000-7000-8000-0000000000aa").unwrap(),
        project_id: ProjectId::parse(project_id).unwrap(),
        created_by: None,
        name: "ci".to_owned(),
        key_hash: "0".repeat(64),
        key_prefix: "eus_0000".to_owned(),
        created_at: Utc::now(),
        last_used_at: None,
    }
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

// ------------------------------------------------------------------ forms

/// One generated part: its body is sent in chunks, optionally ending with
/// a read error (a client that hung up).
#[derive(Debug, Clone)]
struct GenPart {
    name: String,
    is_file: bool,
    chunks: Vec<Vec<u8>>,
    broken: bool,
}

impl GenPart {
    fn text(name: &str, value: &str) -> GenPart {
        GenPart {
            name: name.to_owned(),
            is_file: false,
            chunks: vec![value.as_bytes().to_vec()],
            broken: false,
        }
    }

    fn file(name: &str, bytes: &[u8]) -> GenPart {
        GenPart {
            name: name.to_owned(),
            is_file: true,
            chunks: bytes.chunks(97).map(<[u8]>::to_vec).collect(),
            broken: false,
        }
    }
}

/// The parts, then optionally a malformed-multipart error.
struct Parts {
    parts: VecDeque<GenPart>,
    malformed_at_end: bool,
}

#[async_trait]
impl UploadParts for Parts {
    async fn next_part(&mut self) -> AppResult<Option<UploadPart>> {
        let Some(part) = self.parts.pop_front() else {
            if std::mem::take(&mut self.malformed_at_end) {
                return Err(AppError::Invalid("Malformed multipart body".to_owned()));
            }
            return Ok(None);
        };
        let mut chunks: Vec<std::io::Result<Bytes>> = part
            .chunks
            .into_iter()
            .map(|c| Ok(Bytes::from(c)))
            .collect();
        if part.broken {
            chunks.push(Err(std::io::Error::other("connection reset")));
        }
        Ok(Some(UploadPart {
            kind: part_kind(&part.name, part.is_file),
            name: part.name,
            body: futures_util::stream::iter(chunks).boxed(),
        }))
    }
}

/// The HTTP adapter's field name prefix for a file named by hash.
const REFERENCE_FIELD_PREFIX: &str = "sha256:";

/// What the HTTP adapter makes of a part's name, as it does it.
fn part_kind(name: &str, is_file: bool) -> PartKind {
    match name {
        "runtimeVersion" => PartKind::Text(FormText::RuntimeVersion),
        "branch" => PartKind::Text(FormText::Branch),
        "message" => PartKind::Text(FormText::Message),
        "rolloutPercentage" => PartKind::Text(FormText::RolloutPercentage),
        "metadata.json" => PartKind::Metadata,
        "expoConfig.json" => PartKind::ExpoConfig,
        _ => match name.strip_prefix(REFERENCE_FIELD_PREFIX) {
            Some(path) => PartKind::Reference(path.to_owned()),
            None if is_file => PartKind::File(name.to_owned()),
            None => PartKind::Ignored,
        },
    }
}

fn hostile_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9_-]{1,5}",
        3 => Just("/".to_owned()),
        2 => Just("\\".to_owned()),
        2 => Just("..".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just("\0".to_owned()),
        1 => Just(":".to_owned()),
        1 => Just("%2e%2e".to_owned()),
        1 => Just("%00".to_owned()),
        1 => Just("\u{202e}".to_owned()),
        1 => Just("é".to_owned()),
        1 => any::<char>().prop_map(String::from),
    ]
}

fn hostile() -> impl Strategy<Value = String> {
    vec(hostile_fragment(), 0..8).prop_map(|pieces| pieces.concat())
}

fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => hostile(),
        1 => Just("1.0.0".to_owned()),
        1 => Just("main".to_owned()),
        1 => "-?[0-9]{1,4}",
        1 => " ?[0-9]{1,3} ?",
        1 => "[0-9a-fA-F]{64}",
        1 => vec(any::<char>(), 0..300).prop_map(String::from_iter),
    ]
}

/// A small export: its paths (valid or hostile), their contents, and the
/// `metadata.json` listing them.
#[derive(Debug, Clone)]
struct GenExport {
    files: Vec<(String, Vec<u8>)>,
    metadata: Value,
}

fn export(valid_paths: bool) -> impl Strategy<Value = GenExport> {
    let path = if valid_paths {
        "[a-z0-9_]{1,6}(/[a-z0-9_.-]{1,6}){0,3}"
            .prop_filter("no dot segments", |p| {
                p.split('/').all(|s| s != "." && s != "..")
            })
            .boxed()
    } else {
        prop_oneof![
            3 => "[a-z0-9_]{1,6}(/[a-z0-9_]{1,6}){0,3}",
            2 => hostile(),
        ]
        .boxed()
    };
    let file = (path, vec(any::<u8>(), 0..1200));
    (
        vec(file, 1..6),
        proptest::sample::subsequence(vec!["ios", "android"], 1..=2),
        "[a-z]{0,4}",
    )
        .prop_map(|(files, platforms, ext)| {
            let mut seen = BTreeSet::new();
            let files: Vec<(String, Vec<u8>)> = files
                .into_iter()
                .filter(|(path, _)| seen.insert(path.replace('\\', "/")))
                .collect();
            let listing = json!({
                "bundle": files[0].0,
                "assets": files[1..].iter()
                    .map(|(path, _)| json!({"path": path, "ext": ext}))
                    .collect::<Vec<_>>(),
            });
            let metadata = json!({
                "fileMetadata": platforms
                    .into_iter()
                    .map(|p| (p.to_owned(), listing.clone()))
                    .collect::<serde_json::Map<_, _>>(),
            });
            GenExport { files, metadata }
        })
}

/// A form a client might send: a (possibly broken) export, text fields,
/// junk parts, references by hash, in any order, with hostile names.
fn arbitrary_form() -> impl Strategy<Value = (Vec<GenPart>, bool)> {
    let field_name = prop_oneof![
        Just("runtimeVersion".to_owned()),
        Just("branch".to_owned()),
        Just("message".to_owned()),
        Just("rolloutPercentage".to_owned()),
        Just("metadata.json".to_owned()),
        Just("expoConfig.json".to_owned()),
        hostile().prop_map(|p| format!("{REFERENCE_FIELD_PREFIX}{p}")),
        hostile(),
    ];
    let body = prop_oneof![
        3 => text_value().prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..200),
        1 => Just(br#"{"fileMetadata":{"ios":{"bundle":"b","assets":[]}}}"#.to_vec()),
        1 => Just(b"{}".to_vec()),
    ];
    // A broken body only rarely: most forms should get as far as
    // validation.
    let broken = proptest::bool::weighted(0.03);
    let junk = (field_name, any::<bool>(), body, broken, 1usize..4).prop_map(
        |(name, is_file, body, broken, pieces)| {
            let size = body.len().div_ceil(pieces).max(1);
            GenPart {
                name,
                is_file,
                chunks: body.chunks(size).map(<[u8]>::to_vec).collect(),
                broken,
            }
        },
    );
    (
        export(false),
        text_value(),
        vec(junk, 0..6),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(export, runtime_version, junk, backslashes, malformed, order)| {
                let mut parts = vec![
                    GenPart::text("runtimeVersion", &runtime_version),
                    GenPart::file(
                        "metadata.json",
                        &serde_json::to_vec(&export.metadata).unwrap(),
                    ),
                ];
                for (path, bytes) in &export.files {
                    let name = if backslashes {
                        path.replace('/', "\\")
                    } else {
                        path.clone()
                    };
                    parts.push(GenPart::file(&name, bytes));
                }
                parts.extend(junk);
                // A deterministic shuffle driven by the generated seed.
                let mut seed = order;
                for i in (1..parts.len()).rev() {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    parts.swap(i, (seed >> 33) as usize % (i + 1));
                }
                (parts, malformed && order % 4 == 0)
            },
        )
}

// ------------------------------------------------------------------ invariants

fn assert_confined(path: &str) {
    assert!(
        !path.is_empty() && path.len() <= MAX_PATH_LEN,
        "stored path {path:?}"
    );
    assert!(!path.starts_with('/'), "stored absolute path {path:?}");
    assert!(
        !path.contains('\\') && !path.contains('\0') && !path.contains(':'),
        "stored path {path:?}"
    );
    assert!(!path.chars().any(char::is_control), "stored path {path:?}");
    assert!(
        path.split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".."),
        "stored path {path:?}"
    );
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What must hold after any publish attempt, successful or not.
fn check_after_publish(world: &World, result: &AppResult<application::Published>) {
    let keys = world.blobs.keys();
    assert!(
        keys.iter().all(|key| !key.starts_with("staging/")),
        "staging was not emptied: {keys:?} after {result:?}"
    );
    let prefix = format!("projects/{PROJECT}/assets/");
    for key in &keys {
        let name = key
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("a blob outside the project's assets: {key:?}"));
        let (sha, suffix) = name.split_once('.').unwrap_or((name, ""));
        assert!(
            is_hex64(sha) && ["", "br", "gz"].contains(&suffix),
            "a blob key that is not content addressed: {key:?}"
        );
        assert_eq!(blob_key_sha256(key), sha);
    }
    for update in world.stored_updates() {
        assert_eq!(update.project_id, PROJECT);
        let launch_assets = update.assets.iter().filter(|a| a.is_launch_asset).count();
        match update.kind {
            UpdateKind::Update => assert_eq!(launch_assets, 1, "{update:?}"),
            UpdateKind::Rollback => assert!(update.assets.is_empty(), "{update:?}"),
        }
        for asset in &update.assets {
            assert_confined(&asset.path);
            assert!(is_hex64(&asset.sha256_hex), "{asset:?}");
            assert!(
                keys.contains(&asset_blob_key(PROJECT, &asset.sha256_hex)),
                "{asset:?} names a blob that is not stored"
            );
        }
    }
    if let Err(error) = result {
        assert!(
            !matches!(error, AppError::Internal(_) | AppError::Fault(_)),
            "a client's form caused a server error: {error:?}"
        );
    }
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(config())]

    /// Any form: no panic, no server error, staging emptied, only confined
    /// paths and content-addressed keys stored; a success stores one update
    /// per platform of its metadata, with the listed paths, and is audited.
    #[test]
    fn any_form_is_answered_cleanly((parts, malformed) in arbitrary_form()) {
        let world = World::new();
        let mut form = Parts { parts: parts.clone().into(), malformed_at_end: malformed };
        let result = run(world.service.publish(&key(PROJECT), &project(), &mut form));
        check_after_publish(&world, &result);
        match &result {
            Ok(published) => {
                prop_assert_eq!(world.audit_count(), 1);
                let metadata = parts.iter().rev().find(|p| p.name == "metadata.json").unwrap();
                let platforms = parse_metadata(&metadata.chunks.concat()).unwrap();
                prop_assert_eq!(published.updates.len(), platforms.len());
                for update in &published.updates {
                    let listed: Vec<&str> = platforms[&update.platform].paths().collect();
                    let stored: Vec<&str> = update.assets.iter().map(|a| a.path.as_str()).collect();
                    prop_assert_eq!(stored, listed);
                }
            }
            Err(_) => {
                prop_assert_eq!(world.audit_count(), 0);
                prop_assert!(world.stored_updates().is_empty());
            }
        }
    }

    /// A valid export publishes, whatever the part order, separators and
    /// unrelated extra parts; each stored file holds the uploaded bytes.
    /// Published again with every file named by hash instead, it publishes
    /// the same files without uploading any.
    #[test]
    fn valid_exports_publish_and_republish_by_hash(
        export in export(true),
        backslashes in any::<bool>(),
        branch in proptest::option::of("[a-z0-9][a-z0-9/_.-]{0,20}"),
        rollout in proptest::option::of(1i64..=100),
    ) {
        let total: usize = export.files.iter().map(|(_, b)| b.len()).sum();
        let world = World::new();
        let metadata = serde_json::to_vec(&export.metadata).unwrap();
        let mut parts = vec![
            GenPart::text("runtimeVersion", "1.0.0"),
            GenPart::file("metadata.json", &metadata),
            GenPart::file("expoConfig.json", br#"{"name":"app"}"#),
            GenPart::text("unrelated", "ignored"),
        ];
        if let Some(branch) = &branch {
            parts.push(GenPart::text("branch", branch));
        }
        if let Some(rollout) = rollout {
            parts.push(GenPart::text("rolloutPercentage", &rollout.to_string()));
        }
        for (path, bytes) in &export.files {
            let name = if backslashes { path.replace('/', "\\") } else { path.clone() };
            parts.push(GenPart::file(&name, bytes));
        }
        parts.reverse();
        let mut form = Parts { parts: parts.into(), malformed_at_end: false };
        let result = run(world.service.publish(&key(PROJECT), &project(), &mut form));
        check_after_publish(&world, &result);
        if total as u64 > MAX_UPLOAD_BYTES {
            prop_assert!(matches!(result, Err(AppError::TooLarge(_))), "{result:?}");
            prop_assert!(world.blobs.keys().is_empty());
            return Ok(());
        }
        let published = result.unwrap();
        let contents: HashMap<&str, &[u8]> =
            export.files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
        for update in &published.updates {
            prop_assert_eq!(update.branch.as_str(), branch.as_deref().unwrap_or("main"));
            prop_assert_eq!(i64::from(update.rollout.value()), rollout.unwrap_or(100));
            prop_assert_eq!(update.expo_config.as_deref(), Some(r#"{"name":"app"}"#));
            for asset in &update.assets {
                let stored = world.blobs.get(&asset_blob_key(PROJECT, &asset.sha256_hex)).unwrap();
                prop_assert_eq!(stored.as_ref(), contents[asset.path.as_str()]);
                prop_assert_eq!(asset.size, stored.len() as u64);
            }
        }

        // Again, every file named by hash: nothing uploaded, same files.
        let hashes: BTreeMap<String, String> = published.updates[0]
            .assets
            .iter()
            .map(|asset| (asset.path.clone(), asset.sha256_hex.clone()))
            .collect();
        let mut parts = vec![
            GenPart::text("runtimeVersion", "1.0.0"),
            GenPart::file("metadata.json", &metadata),
        ];
        for (path, sha) in &hashes {
            parts.push(GenPart::text(&format!("{REFERENCE_FIELD_PREFIX}{path}"), &sha.to_uppercase()));
        }
        let mut form = Parts { parts: parts.into(), malformed_at_end: false };
        let again = run(world.service.publish(&key(PROJECT), &project(), &mut form));
        check_after_publish(&world, &again);
        let again = again.unwrap();
        for (first, second) in published.updates.iter().zip(&again.updates) {
            prop_assert_eq!(&first.assets, &second.assets);
        }
        prop_assert_eq!(world.audit_count(), 2);
    }

    /// A key of another project is refused before the form is read.
    #[test]
    fn a_foreign_key_publishes_nothing((parts, _) in arbitrary_form()) {
        let world = World::new();
        let mut form = Parts { parts: parts.into(), malformed_at_end: false };
        let result = run(world.service.publish(&key(OTHER_PROJECT), &project(), &mut form));
        prop_assert!(matches!(result, Err(AppError::Forbidden(_))), "{result:?}");
        prop_assert!(world.blobs.keys().is_empty());
    }

    /// `assets/missing`: accepted exactly when every value is 64 hex digits
    /// (any case, surrounding spaces ignored); the answer is sorted,
    /// lowercase, without duplicates, and names only what was asked.
    #[test]
    fn missing_files_reads_hashes(hashes in vec(text_value(), 0..20)) {
        let world = World::new();
        let result = run(world.service.missing_files(&key(PROJECT), &project(), &hashes));
        let normalised: Option<BTreeSet<String>> = hashes
            .iter()
            .map(|raw| {
                let hex = raw.trim().to_ascii_lowercase();
                (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
            })
            .collect();
        match (&result, normalised) {
            (Ok(missing), Some(expected)) => {
                // Nothing is stored yet: all are missing.
                prop_assert_eq!(missing, &expected.into_iter().collect::<Vec<_>>());
            }
            (Err(AppError::Invalid(_)), None) => {}
            (result, expected) => prop_assert!(false, "{result:?} for {hashes:?} (expected {expected:?})"),
        }
    }

    /// Rollback bodies: accepted exactly when the runtime version, the
    /// platforms, the branch and the message are valid; one rollback per
    /// distinct platform.
    #[test]
    fn rollback_reads_its_body(
        runtime_version in text_value(),
        platforms in proptest::option::of(vec(prop_oneof![Just("ios".to_owned()), Just("android".to_owned()), hostile()], 0..4)),
        branch in proptest::option::of(text_value()),
        message in proptest::option::of(text_value()),
    ) {
        let world = World::new();
        let request = RollbackRequest {
            runtime_version: runtime_version.clone(),
            platforms: platforms.clone(),
            branch: branch.clone(),
            message: message.clone(),
        };
        let result = run(world.service.rollback(&Caller::Key(key(PROJECT)), &project(), &request));
        check_after_publish(&world, &result);
        let expected_platforms: Option<BTreeSet<Platform>> = match &platforms {
            None => Some([Platform::Ios, Platform::Android].into()),
            Some(names) if names.is_empty() => None,
            Some(names) => names.iter().map(|n| Platform::parse(n)).collect(),
        };
        let branch_ok = match branch.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            None => true,
            Some(b) => BranchName::parse(b).is_ok(),
        };
        let valid = RuntimeVersion::parse(&runtime_version).is_ok()
            && expected_platforms.is_some()
            && branch_ok
            && message.as_deref().is_none_or(|m| parse_message(m).is_ok());
        match &result {
            Ok(published) => {
                prop_assert!(valid, "accepted {request:?}");
                let got: BTreeSet<Platform> = published.updates.iter().map(|u| u.platform).collect();
                prop_assert_eq!(published.updates.len(), got.len());
                prop_assert_eq!(Some(got), expected_platforms);
            }
            Err(error) => {
                prop_assert!(!valid, "refused {request:?}: {error:?}");
                prop_assert!(matches!(error, AppError::Invalid(_)), "{error:?}");
            }
        }
    }
}

/// One hash over the limit is refused as a client error.
#[test]
fn missing_files_refuses_too_many_hashes() {
    let world = World::new();
    let hashes: Vec<String> = (0..=MAX_HASHES_PER_QUERY)
        .map(|n| format!("{n:064x}"))
        .collect();
    let result = run(world
        .service
        .missing_files(&key(PROJECT), &project(), &hashes));
    assert!(matches!(result, Err(AppError::Invalid(_))), "{result:?}");
}
