//! Blob storage in memory.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::blob::{BlobError, BlobInfo, BlobReader, BlobStore, ByteStream, StagedBlob};
use domain::update::asset_blob_key;
use futures_util::StreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};

/// Where staging blobs live.
const STAGING_PREFIX: &str = "staging/";

/// A [`BlobStore`] in memory.
///
/// Mirrors the storage adapters' contract: real SHA-256 and MD5 digests of
/// staged bodies, `TooLarge` past the limit (nothing kept), `promote` that
/// keeps an existing key (content addressed), `NotFound` for a missing
/// key, ranges clamped to the blob. Presigned URLs exist only when asked
/// for ([`with_presigned_urls`](Self::with_presigned_urls)), like S3 and
/// unlike local disk. Counts reads, so tests can tell a cached file from a
/// storage read. Bodies are one chunk each; no backend failures.
#[derive(Default)]
pub struct InMemoryBlobs {
    objects: Mutex<BTreeMap<String, (Bytes, DateTime<Utc>)>>,
    next_staging: AtomicU64,
    opens: AtomicU64,
    presign_base: Option<String>,
}

impl InMemoryBlobs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `presigned_get` with `<base>/<key>?expires=<seconds>`.
    pub fn with_presigned_urls(mut self, base: &str) -> Self {
        self.presign_base = Some(base.to_owned());
        self
    }

    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, (Bytes, DateTime<Utc>)>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `bytes` at `key`, replacing what was there.
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>) {
        self.objects()
            .insert(key.to_owned(), (bytes.into(), Utc::now()));
    }

    /// Stores `bytes` as a blob of the project's assets; returns its
    /// SHA-256 (hex), which names it.
    pub fn put_asset(&self, project_id: &str, bytes: &[u8]) -> String {
        let sha256_hex = hex::encode(Sha256::digest(bytes));
        self.put(
            &asset_blob_key(project_id, &sha256_hex),
            Bytes::copy_from_slice(bytes),
        );
        sha256_hex
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.objects().get(key).map(|(bytes, _)| bytes.clone())
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.objects().keys().cloned().collect()
    }

    /// How many times a blob was opened (whole or a range) since creation.
    pub fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    fn read(&self, key: &str) -> Result<Bytes, BlobError> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.get(key)
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))
    }
}

fn reader(bytes: Bytes) -> BlobReader {
    BlobReader {
        size: bytes.len() as u64,
        body: futures_util::stream::iter([Ok(bytes)]).boxed(),
    }
}

#[async_trait]
impl BlobStore for InMemoryBlobs {
    async fn stage(&self, mut body: ByteStream, max_bytes: u64) -> Result<StagedBlob, BlobError> {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| BlobError::Body(error.to_string()))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max_bytes {
                return Err(BlobError::TooLarge(max_bytes));
            }
        }
        let n = self.next_staging.fetch_add(1, Ordering::Relaxed);
        let staged = StagedBlob {
            staging_key: format!("{STAGING_PREFIX}{n}"),
            size: bytes.len() as u64,
            sha256: Sha256::digest(&bytes).into(),
            md5: Md5::digest(&bytes).into(),
        };
        self.put(&staged.staging_key, bytes);
        Ok(staged)
    }

    async fn promote(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError> {
        let mut objects = self.objects();
        let blob = objects
            .get(&staged.staging_key)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(staged.staging_key.clone()))?;
        objects.entry(key.to_owned()).or_insert(blob);
        Ok(())
    }

    async fn replace(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError> {
        let mut objects = self.objects();
        let blob = objects
            .get(&staged.staging_key)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(staged.staging_key.clone()))?;
        objects.insert(key.to_owned(), blob);
        Ok(())
    }

    async fn discard(&self, staged: &StagedBlob) {
        self.objects().remove(&staged.staging_key);
    }

    async fn open(&self, key: &str) -> Result<BlobReader, BlobError> {
        self.read(key).map(reader)
    }

    async fn open_range(&self, key: &str, range: Range<u64>) -> Result<BlobReader, BlobError> {
        let bytes = self.read(key)?;
        let len = bytes.len();
        let start = usize::try_from(range.start).unwrap_or(len).min(len);
        let end = usize::try_from(range.end).unwrap_or(len).clamp(start, len);
        Ok(reader(bytes.slice(start..end)))
    }

    async fn presigned_get(
        &self,
        key: &str,
        _response_headers: &[(&str, &str)],
        valid_for: Duration,
    ) -> Result<Option<String>, BlobError> {
        Ok(self
            .presign_base
            .as_ref()
            .map(|base| format!("{base}/{key}?expires={}", valid_for.as_secs())))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        Ok(self.objects().get(key).map(|(bytes, _)| bytes.len() as u64))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, BlobError> {
        Ok(self
            .objects()
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, (bytes, at))| BlobInfo {
                key: key.clone(),
                size: bytes.len() as u64,
                last_modified: *at,
            })
            .collect())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), BlobError> {
        let mut objects = self.objects();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }

    async fn verify(&self) -> Result<(), BlobError> {
        Ok(())
    }

    async fn sweep_staging(&self, age_seconds: u64) -> Result<usize, BlobError> {
        let cutoff =
            Utc::now() - chrono::Duration::seconds(i64::try_from(age_seconds).unwrap_or(0));
        let mut objects = self.objects();
        let before = objects.len();
        objects.retain(|key, (_, at)| !(key.starts_with(STAGING_PREFIX) && *at < cutoff));
        Ok(before - objects.len())
    }
}
