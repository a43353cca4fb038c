//! Storage adapter: the blob port over object_store, on local disk
//! (`STORAGE_TYPE=local`, under `DATA_DIR/updates`) or any S3-compatible
//! service (`STORAGE_TYPE=s3`: AWS, Cloudflare R2, MinIO).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use domain::blob::{BlobError, BlobInfo, BlobReader, BlobStore, ByteStream, StagedBlob};
use futures_util::{StreamExt, TryStreamExt};
use md5::Md5;
use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

mod go_tree;
mod s3_client;
pub use go_tree::{LocalGoTree, S3GoTree};
pub use s3_client::StorageConfigError;
use s3_client::s3_client;

/// Where blobs go, as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    Local {
        root: PathBuf,
    },
    S3 {
        /// `None` for AWS itself; the service URL for R2, MinIO and the like.
        endpoint: Option<String>,
        bucket: String,
        region: String,
        access_key: String,
        secret_key: String,
        /// Keys are stored under this prefix (no leading or trailing `/`).
        prefix: Option<String>,
        /// Bucket in the host name instead of the path. Path style (the
        /// default, as the old server) is what MinIO and R2 need.
        virtual_hosted: bool,
    },
}

/// Never prints the S3 secret key.
impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { root } => f.debug_struct("Local").field("root", root).finish(),
            Self::S3 {
                endpoint,
                bucket,
                region,
                prefix,
                virtual_hosted,
                ..
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("prefix", prefix)
                .field("virtual_hosted", virtual_hosted)
                .finish_non_exhaustive(),
        }
    }
}

/// The blob store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    description: String,
    /// The directory on local disk, where interrupted writes leave
    /// temporary files that object_store does not list.
    local_root: Option<PathBuf>,
    /// On S3: the client that presigns URLs, and the key prefix it must add
    /// itself (the `PrefixStore` adds it for everything else).
    presigner: Option<(Arc<AmazonS3>, Option<String>)>,
}

const STAGING_PREFIX: &str = "staging";

impl ObjectBlobStore {
    pub fn new(config: &StorageConfig) -> Result<Self, StorageConfigError> {
        match config {
            StorageConfig::Local { root } => {
                std::fs::create_dir_all(root).map_err(|source| StorageConfigError::Local {
                    path: root.display().to_string(),
                    source,
                })?;
                let store = LocalFileSystem::new_with_prefix(root)
                    .map_err(|error| StorageConfigError::Local {
                        path: root.display().to_string(),
                        source: std::io::Error::other(error.to_string()),
                    })?
                    .with_automatic_cleanup(true);
                Ok(Self {
                    store: Arc::new(store),
                    description: format!("local disk at {}", root.display()),
                    local_root: Some(root.clone()),
                    presigner: None,
                })
            }
            StorageConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
                prefix,
                virtual_hosted,
            } => {
                let s3 = Arc::new(s3_client(
                    endpoint.as_deref(),
                    bucket,
                    region,
                    access_key,
                    secret_key,
                    *virtual_hosted,
                )?);
                let description = format!(
                    "S3 bucket {bucket} at {}",
                    endpoint.as_deref().unwrap_or("AWS")
                );
                let prefix = prefix.clone().filter(|p| !p.is_empty());
                let store: Arc<dyn ObjectStore> = match prefix.as_deref() {
                    Some(prefix) => Arc::new(PrefixStore::new(Arc::clone(&s3), prefix)),
                    None => s3.clone(),
                };
                Ok(Self {
                    store,
                    description,
                    local_root: None,
                    presigner: Some((s3, prefix)),
                })
            }
        }
    }

    /// Where the blobs live, for start-up logs.
    pub fn description(&self) -> &str {
        &self.description
    }
}

fn backend(error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { path, .. } => BlobError::NotFound(path),
        other if is_storage_full(&other) => BlobError::StorageFull,
        other => {
            BACKEND_ERRORS.fetch_add(1, Ordering::Relaxed);
            BlobError::Backend(other.to_string())
        }
    }
}

/// Whether an error comes from a full disk (ENOSPC), anywhere in its chain
/// of causes: the local store wraps the I/O error of the write that failed.
fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
        {
            return true;
        }
        cause = current.source();
    }
    // Some wrappers keep only the message.
    error.to_string().contains("No space left on device")
}

/// Storage operations that failed (a missing object is not a failure).
static BACKEND_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many storage operations failed since start-up, for `/metrics`.
pub fn backend_error_count() -> u64 {
    BACKEND_ERRORS.load(Ordering::Relaxed)
}

/// Deletes files in a local staging directory last modified before `cutoff`,
/// including the temporary files of interrupted multipart writes.
fn sweep_local_dir(
    dir: &std::path::Path,
    cutoff: std::time::SystemTime,
) -> Result<usize, BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(BlobError::Backend(error.to_string())),
    };
    let mut deleted = 0;
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified < cutoff);
        if stale && entry.file_type().is_ok_and(|kind| kind.is_file()) {
            std::fs::remove_file(entry.path())
                .map_err(|error| BlobError::Backend(error.to_string()))?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Turns a key into an object path. Keys are built by the application from
/// validated parts; refusing anything odd here is a second line of defence.
fn object_path(key: &str) -> Result<Path, BlobError> {
    let valid = !key.is_empty()
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if !valid {
        return Err(BlobError::Backend(format!("refusing blob key {key:?}")));
    }
    Path::parse(key).map_err(|error| BlobError::Backend(error.to_string()))
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn stage(&self, mut body: ByteStream, max_bytes: u64) -> Result<StagedBlob, BlobError> {
        let staging_key = format!("{STAGING_PREFIX}/{}", uuid::Uuid::new_v4().simple());
        let path = object_path(&staging_key)?;
        let upload = self.store.put_multipart(&path).await.map_err(backend)?;
        let mut writer = WriteMultipart::new(upload);
        let (mut sha256, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
        let outcome = loop {
            let chunk = match body.next().await {
                None => break Ok(()),
                Some(Err(error)) => break Err(BlobError::Body(error.to_string())),
                Some(Ok(chunk)) => chunk,
            };
            size += chunk.len() as u64;
            if size > max_bytes {
                break Err(BlobError::TooLarge(max_bytes));
            }
            sha256.update(&chunk);
            md5.update(&chunk);
            // Bounded memory: one part in flight while the next fills.
            if let Err(error) = writer.wait_for_capacity(1).await {
                break Err(backend(error));
            }
            writer.put(chunk);
        };
        if let Err(error) = outcome {
            if let Err(abort_error) = writer.abort().await {
                tracing::warn!(%abort_error, "aborting a staged upload failed");
            }
            return Err(error);
        }
        writer.finish().await.map_err(backend)?;
        Ok(StagedBlob {
            staging_key,
            size,
            sha256: sha256.finalize().into(),
            md5: md5.finalize().into(),
        })
    }

    async fn promote(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError> {
        let target = object_path(key)?;
        match self.store.head(&target).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(backend(error)),
        }
        let source = object_path(&staged.staging_key)?;
        self.store.copy(&source, &target).await.map_err(backend)
    }

    async fn replace(&self, staged: &StagedBlob, key: &str) -> Result<(), BlobError> {
        let source = object_path(&staged.staging_key)?;
        // An S3 copy and object_store's local copy (a hard link renamed into
        // place) are both atomic.
        self.store
            .copy(&source, &object_path(key)?)
            .await
            .map_err(backend)
    }

    async fn discard(&self, staged: &StagedBlob) {
        let Ok(path) = object_path(&staged.staging_key) else {
            return;
        };
        if let Err(error) = self.store.delete(&path).await {
            tracing::warn!(key = %staged.staging_key, %error, "deleting a staged blob failed");
        }
    }

    async fn open(&self, key: &str) -> Result<BlobReader, BlobError> {
        let result = self.store.get(&object_path(key)?).await.map_err(backend)?;
        let size = result.meta.size;
        let body = result
            .into_stream()
            .map_err(|error| std::io::Error::other(error.to_string()))
            .boxed();
        Ok(BlobReader { size, body })
    }

    async fn open_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<BlobReader, BlobError> {
        let options = GetOptions::new().with_range(Some(range));
        let result = self
            .store
            .get_opts(&object_path(key)?, options)
            .await
            .map_err(backend)?;
        let size = result.range.end - result.range.start;
        let body = result
            .into_stream()
            .map_err(|error| std::io::Error::other(error.to_string()))
            .boxed();
        Ok(BlobReader { size, body })
    }

    async fn presigned_get(
        &self,
        key: &str,
        response_headers: &[(&str, &str)],
        valid_for: std::time::Duration,
    ) -> Result<Option<String>, BlobError> {
        let Some((s3, prefix)) = &self.presigner else {
            return Ok(None);
        };
        // Validated like every other key, then placed under the prefix.
        let path = object_path(key)?;
        let path = match prefix {
            Some(prefix) => Path::from(format!("{prefix}/{path}")),
            None => path,
        };
        // S3 answers with these headers in place of the stored ones.
        let overrides = response_headers
            .iter()
            .map(|(name, value)| (format!("response-{}", name.to_ascii_lowercase()), *value));
        let options = SignedUrlOptions::new().with_query(overrides);
        let url = s3
            .signed_url_opts(Method::GET, &path, valid_for, &options)
            .await
            .map_err(backend)?;
        Ok(Some(url.to_string()))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.store.head(&object_path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, BlobError> {
        let prefix = object_path(prefix)?;
        self.store
            .list(Some(&prefix))
            .map_ok(|meta| BlobInfo {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .try_collect()
            .await
            .map_err(backend)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), BlobError> {
        let paths = keys
            .iter()
            .map(|key| object_path(key))
            .collect::<Result<Vec<_>, _>>()?;
        // One batched request per 1,000 keys on S3; plain deletes locally.
        let mut results = self
            .store
            .delete_stream(futures_util::stream::iter(paths.into_iter().map(Ok)).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(backend(error)),
            }
        }
        Ok(())
    }

    async fn sweep_staging(&self, age_seconds: u64) -> Result<usize, BlobError> {
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(age_seconds);
        if let Some(root) = &self.local_root {
            return sweep_local_dir(&root.join(STAGING_PREFIX), cutoff);
        }
        let prefix = Path::from(STAGING_PREFIX);
        let stale: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .try_filter_map(|meta| async move {
                let modified: std::time::SystemTime = meta.last_modified.into();
                Ok((modified < cutoff).then_some(meta.location))
            })
            .try_collect()
            .await
            .map_err(backend)?;
        for path in &stale {
            self.store.delete(path).await.map_err(backend)?;
        }
        Ok(stale.len())
    }

    async fn verify(&self) -> Result<(), BlobError> {
        let probe = object_path(&format!(
            "{STAGING_PREFIX}/probe-{}",
            uuid::Uuid::new_v4().simple()
        ))?;
        self.store
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .map_err(backend)?;
        let read = self.store.get(&probe).await.map_err(backend)?.bytes().await;
        let deleted = self.store.delete(&probe).await;
        match (read, deleted) {
            (Ok(bytes), Ok(())) if bytes.as_ref() == b"probe" => Ok(()),
            (Ok(_), Ok(())) => Err(BlobError::Backend(
                "the probe object read back wrong".to_owned(),
            )),
            (Err(error), _) | (_, Err(error)) => Err(backend(error)),
        }
    }
}
