//! What the server stored, read from outside the server: the files under `DATA_DIR/updates`
//! (local storage) or in the s3s-fs bucket directory (S3).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::{TestApp, list_files};

impl TestApp {
    /// The directory that holds the server's blobs, read from outside the server: for local
    /// storage `DATA_DIR/updates`; for S3 the s3s-fs bucket directory plus `S3_PREFIX` (an
    /// object `k` is the file `<s3s-fs root>/<bucket>/<prefix>/k`).
    pub fn blob_root(&self) -> PathBuf {
        match &self.s3 {
            None => self.data_dir().join("updates"),
            Some(s3) => {
                let prefix = self
                    .env
                    .get("S3_PREFIX")
                    .map(|p| p.trim_matches('/').to_owned())
                    .unwrap_or_default();
                let bucket = s3.bucket_dir();
                if prefix.is_empty() {
                    bucket
                } else {
                    bucket.join(prefix)
                }
            }
        }
    }

    /// Every stored object (regular file) under [`TestApp::blob_root`]: key (relative path
    /// with `/`) → size in bytes, except the compressed copies of files (see
    /// [`TestApp::stored_copies`]), which come and go with their files.
    pub fn stored_objects(&self) -> BTreeMap<String, u64> {
        let mut objects = list_files(&self.blob_root());
        objects.retain(|key, _| !is_compressed_copy(key));
        objects
    }

    /// The compressed copies made at publish: `…/<sha256>.zst`, `.br` and `.gz`.
    pub fn stored_copies(&self) -> BTreeMap<String, u64> {
        let mut objects = list_files(&self.blob_root());
        objects.retain(|key, _| is_compressed_copy(key));
        objects
    }

    /// Every object in the S3 bucket, prefix or not (empty for local storage).
    pub fn bucket_objects(&self) -> BTreeMap<String, u64> {
        match &self.s3 {
            Some(s3) => list_files(&s3.bucket_dir()),
            None => BTreeMap::new(),
        }
    }

    /// The stored objects whose key starts with `prefix` (e.g. `"staging/"`).
    pub fn stored_objects_under(&self, prefix: &str) -> BTreeMap<String, u64> {
        self.stored_objects()
            .into_iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .collect()
    }

    /// The bytes of the stored object `key`, or `None` when there is none.
    pub fn read_object(&self, key: &str) -> Option<Vec<u8>> {
        let path = key
            .split('/')
            .fold(self.blob_root(), |path, segment| path.join(segment));
        if !path.is_file() {
            return None;
        }
        Some(std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
    }
}

/// `projects/<id>/assets/<sha256>.zst`, `.br` or `.gz`, or a bundle patch
/// to that file, `<sha256>.<base's first 32 hex digits>.bsdiff`: stored and
/// collected with the file.
fn is_compressed_copy(key: &str) -> bool {
    let is_hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    key.starts_with("projects/")
        && key.rsplit('/').next().is_some_and(|name| {
            name.split_once('.').is_some_and(|(sha, suffix)| {
                is_hex(sha, 64)
                    && (matches!(suffix, "zst" | "br" | "gz")
                        || suffix
                            .strip_suffix(".bsdiff")
                            .is_some_and(|base| is_hex(base, 32)))
            })
        })
}
