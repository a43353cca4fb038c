//! The blob-storage port: where update files (bundles and assets) live.
//!
//! Uploads are written to a staging key while their digests are computed,
//! then promoted to their content-addressed home once the publish that
//! brought them is known to be valid, so a rejected or aborted publish
//! leaves nothing behind but staging blobs it deletes itself.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

/// A body being read or written, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A blob written to staging, with what was learnt while writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedBlob {
    pub staging_key: String,
    pub size: u64,
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
}

/// A stored blob opened for reading.
pub struct BlobReader {
    pub size: u64,
    pub body: ByteStream,
}

/// A stored blob as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob at {0}")]
    NotFound(String),
    /// The body grew past the limit given to `stage`; nothing was kept.
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    /// The client's body stream failed (connection dropped, malformed part).
    #[error("reading the upload failed: {0}")]
    Body(String),
    /// The storage has no room left (a full disk).
    #[error("the storage is full")]
    StorageFull,
    /// The storage backend failed; for the operator's log.
    #[error("storage backend error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Streams `body` into a new staging blob, computing its SHA-256 and MD5,
    /// and refuses (deleting what was written) once it exceeds `max_bytes`.
    async fn stage(&self, body: ByteStream, max_bytes: u64) -> Result<StagedBlob, BlobError>;
    /// Makes a staged blob available at `key`. Keys are content addressed,
    /// so a key that already exists holds the same bytes and is kept.
    async fn promote(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError>;
    /// Puts a staged blob at `key` in place of what is there, in one step:
    /// a reader gets the old bytes or the new ones, never a mix. Only for
    /// a compressed copy made again at a better level (other keys are
    /// content addressed and never change).
    async fn replace(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError>;
    /// Deletes a staging blob; failures are logged, not returned.
    async fn discard(&self, staged: &StagedBlob);
    async fn open(&self, key: &str) -> Result<BlobReader, BlobError>;
    /// Opens `range` of a blob (a `Range` request); `size` is the range's.
    async fn open_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<BlobReader, BlobError>;
    /// A time-limited URL at which a client may `GET` the blob straight from
    /// the backend, answered with these response headers (`Content-Type`,
    /// `Content-Encoding`, …); `None` when the backend has no such URLs
    /// (local disk).
    async fn presigned_get(
        &self,
        key: &str,
        response_headers: &[(&str, &str)],
        valid_for: std::time::Duration,
    ) -> Result<Option<String>, BlobError>;
    /// The size of the blob at `key`; `None` when there is none.
    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError>;
    /// Whether a blob exists at `key`.
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.size(key).await?.is_some())
    }
    /// Every blob under `prefix` (a `/`-separated key prefix).
    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, BlobError>;
    /// Deletes blobs; a key that is already gone is not an error.
    async fn delete_many(&self, keys: &[String]) -> Result<(), BlobError>;
    /// Proves the store is reachable and writable (at start-up).
    async fn verify(&self) -> Result<(), BlobError>;
    /// Deletes staging blobs older than `age_seconds`: what a crashed
    /// publish left behind. Younger ones may belong to a publish under way
    /// on another instance. Returns how many were deleted.
    async fn sweep_staging(&self, age_seconds: u64) -> Result<usize, BlobError>;
}
