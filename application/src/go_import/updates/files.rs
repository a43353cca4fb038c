//! The files of a platform: each read, checked against the hash the Go
//! server announced for it, and staged unless the project has it already.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::blob::{BlobError, ByteStream, StagedBlob};
use domain::go_server::UpdateDir;
use domain::go_server::ports::GoSourceError;
use domain::id::ProjectId;
use domain::update::{UpdateAsset, asset_blob_key};
use futures_util::StreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::Run;
use crate::go_import::types::ImportError;
use crate::publish::content_type_of;

/// The largest `metadata.json`, `expoConfig.json` or index file read.
const MAX_SMALL_FILE: u64 = 16 * 1024 * 1024;

/// One file of a platform, as the manifest will describe it.
pub(super) struct PlannedFile {
    pub(super) path: String,
    /// `None` for the bundle.
    pub(super) file_extension: Option<String>,
    /// What the Go server's index announced, when it wrote one.
    pub(super) expected: Option<(String, String)>,
}

/// A file read and checked.
pub(super) struct CheckedFile {
    pub(super) sha256: [u8; 32],
    pub(super) md5: [u8; 16],
    pub(super) size: u64,
    /// Its staging copy, unless it needed none.
    pub(super) staged: Option<StagedBlob>,
}

/// Why a platform of a directory is left out.
pub(super) enum Broken {
    /// A partial publish: the reason names the file.
    Partial(String),
    Source(GoSourceError),
}

impl Run<'_> {
    /// Reads one listed file, checks it against what the Go server
    /// announced, and stages it unless the project has it already.
    pub(super) async fn check_file(
        &mut self,
        dir: &UpdateDir,
        file: &PlannedFile,
    ) -> Result<CheckedFile, Broken> {
        if !dir.files.contains_key(&file.path) {
            return Err(Broken::Partial(format!("{} is missing", file.path)));
        }
        let path = dir.file_path(&file.path);
        let opened = match self.import.source.tree.open(&path).await {
            Ok(opened) => opened,
            Err(GoSourceError::NotFound(_)) => {
                return Err(Broken::Partial(format!("{} is missing", file.path)));
            }
            Err(other) => return Err(Broken::Source(other)),
        };
        let expected_sha = file
            .expected
            .as_ref()
            .and_then(|(hash, _)| URL_SAFE_NO_PAD.decode(hash).ok())
            .map(hex::encode);
        let target = (
            dir.project_id.clone(),
            expected_sha.clone().unwrap_or_default(),
        );
        let already_stored = match (&expected_sha, &self.import.target.blobs) {
            (Some(sha), Some(blobs)) => {
                self.stored.contains(&target)
                    || blobs
                        .exists(&asset_blob_key(&dir.project_id, sha))
                        .await
                        .unwrap_or(false)
            }
            _ => false,
        };
        let checked = match (
            &self.import.target.blobs,
            already_stored || !self.import.writes(),
        ) {
            (Some(blobs), false) => {
                let staged = blobs
                    .stage(opened.body, self.import.target.max_file_bytes)
                    .await
                    .map_err(|error| match error {
                        BlobError::TooLarge(limit) => Broken::Partial(format!(
                            "{} is larger than MAX_UPLOAD_BYTES ({limit} bytes)",
                            file.path
                        )),
                        BlobError::Body(detail) => Broken::Source(GoSourceError::Read {
                            path: path.clone(),
                            detail,
                        }),
                        other => Broken::Source(GoSourceError::Read {
                            path: path.clone(),
                            detail: format!("storing it failed: {other}"),
                        }),
                    })?;
                CheckedFile {
                    sha256: staged.sha256,
                    md5: staged.md5,
                    size: staged.size,
                    staged: Some(staged),
                }
            }
            _ if opened.size > self.import.target.max_file_bytes => {
                return Err(Broken::Partial(format!(
                    "{} is larger than MAX_UPLOAD_BYTES ({} bytes)",
                    file.path, self.import.target.max_file_bytes
                )));
            }
            _ => digest(opened.body).await.map_err(|detail| {
                Broken::Source(GoSourceError::Read {
                    path: path.clone(),
                    detail,
                })
            })?,
        };
        self.import.progress.file_done(checked.size);
        if let Some((hash, key)) = &file.expected {
            let actual_hash = URL_SAFE_NO_PAD.encode(checked.sha256);
            let actual_key = hex::encode(checked.md5);
            if *hash != actual_hash || *key != actual_key {
                if let (Some(blobs), Some(staged)) = (&self.import.target.blobs, &checked.staged) {
                    blobs.discard(staged).await;
                }
                return Err(Broken::Partial(format!(
                    "{} does not match the hash the Go server announced for it",
                    file.path
                )));
            }
        }
        Ok(checked)
    }

    /// Counts a file of a good platform once per project, unless the
    /// project's updates had it already: the same in a dry run as in a run.
    pub(super) async fn count_file(
        &mut self,
        project_id: &str,
        asset: &UpdateAsset,
    ) -> Result<(), ImportError> {
        if !self
            .counted
            .insert((project_id.to_owned(), asset.sha256_hex.clone()))
        {
            return Ok(());
        }
        let known = self
            .import
            .target
            .updates
            .known_files(
                &ProjectId::from_trusted(project_id.to_owned()),
                std::slice::from_ref(&asset.sha256_hex),
            )
            .await?;
        if !known.contains_key(&asset.sha256_hex) {
            self.report.imported.files += 1;
            self.report.imported.bytes += asset.size;
        }
        Ok(())
    }

    /// A small file of a directory; `None` when the listing has no such
    /// file (only regular files are listed: never a link or a pipe).
    pub(super) async fn read_small(
        &self,
        dir: &UpdateDir,
        relative: &str,
    ) -> Result<Option<Vec<u8>>, ImportError> {
        if !dir.files.contains_key(relative) {
            return Ok(None);
        }
        let path = dir.file_path(relative);
        let path = path.as_str();
        let opened = match self.import.source.tree.open(path).await {
            Ok(opened) => opened,
            Err(GoSourceError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        if opened.size > MAX_SMALL_FILE {
            return Err(ImportError::Source(GoSourceError::Read {
                path: path.to_owned(),
                detail: format!("larger than {MAX_SMALL_FILE} bytes"),
            }));
        }
        let mut body = opened.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| GoSourceError::Read {
                path: path.to_owned(),
                detail: error.to_string(),
            })?;
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }
}

pub(super) fn asset_of(file: &PlannedFile, checked: &CheckedFile) -> UpdateAsset {
    let content_type = match &file.file_extension {
        None => content_type_of(None),
        Some(ext) => content_type_of(Some(ext.trim_start_matches('.'))),
    };
    UpdateAsset {
        path: file.path.clone(),
        sha256_hex: hex::encode(checked.sha256),
        hash: URL_SAFE_NO_PAD.encode(checked.sha256),
        key: hex::encode(checked.md5),
        content_type,
        file_extension: file.file_extension.clone(),
        size: checked.size,
        is_launch_asset: file.file_extension.is_none(),
    }
}

/// Reads a body to its end, hashing it.
async fn digest(mut body: ByteStream) -> Result<CheckedFile, String> {
    let (mut sha256, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| error.to_string())?;
        size += chunk.len() as u64;
        sha256.update(&chunk);
        md5.update(&chunk);
    }
    Ok(CheckedFile {
        sha256: sha256.finalize().into(),
        md5: md5.finalize().into(),
        size,
        staged: None,
    })
}
