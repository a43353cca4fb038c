//! The Go server's update tree, read-only: a directory on disk
//! (`<GO_DATA_DIR>/updates`) or a bucket from its root. Nothing here writes,
//! creates or deletes anything in the source.

use std::path::{Path as FsPath, PathBuf};

use async_trait::async_trait;
use domain::blob::BlobReader;
use domain::go_server::TreeEntry;
use domain::go_server::ports::{GoSourceError, GoUpdateTree};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::s3_client::{StorageConfigError, s3_client};

/// A tree path from the listing, checked before it is joined to anything:
/// relative, no empty, `.` or `..` segment.
fn checked(path: &str) -> Result<&str, GoSourceError> {
    let valid = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    match valid {
        true => Ok(path),
        false => Err(GoSourceError::NotFound(path.to_owned())),
    }
}

/// The tree in a local directory.
#[derive(Debug, Clone)]
pub struct LocalGoTree {
    root: PathBuf,
}

impl LocalGoTree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

/// Lists `dir` (relative path `prefix`) recursively, without following
/// symbolic links (the Go server did not serve symlinked update dirs).
/// Names that are not UTF-8 are left out: no app could ask for them.
fn walk(dir: &FsPath, prefix: &str, entries: &mut Vec<TreeEntry>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(dir = %dir.display(), "skipping a file name that is not UTF-8");
            continue;
        };
        let path = match prefix {
            "" => name,
            _ => format!("{prefix}/{name}"),
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            entries.push(TreeEntry::dir(path.clone()));
            walk(&entry.path(), &path, entries)?;
        } else if kind.is_file() {
            entries.push(TreeEntry::file(path, entry.metadata()?.len()));
        }
    }
    Ok(())
}

#[async_trait]
impl GoUpdateTree for LocalGoTree {
    fn description(&self) -> String {
        format!("directory {}", self.root.display())
    }

    async fn list(&self) -> Result<Vec<TreeEntry>, GoSourceError> {
        let root = self.root.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            match std::fs::metadata(&root) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
                Err(error) => return Err(error),
                Ok(_) => {}
            }
            walk(&root, "", &mut entries).map(|()| entries)
        })
        .await
        .map_err(|error| GoSourceError::Unusable(error.to_string()))?;
        listed.map_err(|error| {
            GoSourceError::Unusable(format!("cannot list {}: {error}", self.root.display()))
        })
    }

    async fn open(&self, path: &str) -> Result<BlobReader, GoSourceError> {
        let full = self.root.join(checked(path)?);
        let file = tokio::fs::File::open(&full)
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => GoSourceError::NotFound(path.to_owned()),
                _ => GoSourceError::Read {
                    path: path.to_owned(),
                    detail: error.to_string(),
                },
            })?;
        let meta = file.metadata().await.map_err(|error| GoSourceError::Read {
            path: path.to_owned(),
            detail: error.to_string(),
        })?;
        if !meta.is_file() {
            return Err(GoSourceError::NotFound(path.to_owned()));
        }
        let body = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).boxed();
        Ok(BlobReader {
            size: meta.len(),
            body,
        })
    }
}

/// The tree in a bucket, from its root (the Go server used no prefix),
/// path-style unless told otherwise.
#[derive(Debug, Clone)]
pub struct S3GoTree {
    store: std::sync::Arc<AmazonS3>,
    description: String,
}

impl S3GoTree {
    pub fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Self, StorageConfigError> {
        let store = s3_client(endpoint, bucket, region, access_key, secret_key, false)?;
        Ok(Self {
            store: std::sync::Arc::new(store),
            description: format!("S3 bucket {bucket} at {}", endpoint.unwrap_or("AWS")),
        })
    }
}

fn read_error(path: &str, error: object_store::Error) -> GoSourceError {
    match error {
        object_store::Error::NotFound { .. } => GoSourceError::NotFound(path.to_owned()),
        other => GoSourceError::Read {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

#[async_trait]
impl GoUpdateTree for S3GoTree {
    fn description(&self) -> String {
        self.description.clone()
    }

    async fn list(&self) -> Result<Vec<TreeEntry>, GoSourceError> {
        // Paginated by object_store: every object, not the Go server's
        // first 1,000.
        self.store
            .list(None)
            .map_ok(|meta| {
                let path = meta.location.to_string();
                match path.strip_suffix('/') {
                    Some(dir) => TreeEntry::dir(dir),
                    None => TreeEntry::file(path, meta.size),
                }
            })
            .try_collect()
            .await
            .map_err(|error| {
                GoSourceError::Unusable(format!("cannot list {}: {error}", self.description))
            })
    }

    async fn open(&self, path: &str) -> Result<BlobReader, GoSourceError> {
        let location =
            Path::parse(checked(path)?).map_err(|_| GoSourceError::NotFound(path.to_owned()))?;
        let result = self
            .store
            .get(&location)
            .await
            .map_err(|error| read_error(path, error))?;
        let size = result.meta.size;
        let body = result
            .into_stream()
            .map_err(|error| std::io::Error::other(error.to_string()))
            .boxed();
        Ok(BlobReader { size, body })
    }
}
