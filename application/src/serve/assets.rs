//! Downloads: the file an asset request names, in the representation the
//! client should get (a stored compressed copy, a range, a redirect to
//! storage, or "not modified"), and whether it counts as a download.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::blob::{BlobError, BlobReader, BlobStore};
use domain::update::{ContentEncoding, Update, asset_blob_key, is_compressible};

use super::answer::{AssetAnswer, Representation};
use super::hot_files::HotFiles;
use super::request::{AcceptedEncodings, AssetRequest, Unsatisfiable};
use crate::error::{AppError, AppResult};
use crate::insights::LaunchDelivery;

/// How long a presigned asset URL stays valid: far longer than a download
/// takes, short enough that a leaked URL soon stops working.
pub const PRESIGNED_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// How many blobs' compressed-copy answers are remembered.
const COPIES_REMEMBERED: usize = 100_000;

/// How long a blob's copy sizes are trusted before they are read again:
/// long enough that downloads almost never ask storage, short enough that
/// a copy made again at a better level is soon the one chosen.
const COPY_SIZES_FRESH: Duration = Duration::from_secs(300);

/// An asset a request named, found but not opened.
#[derive(Debug, Clone)]
pub(crate) struct LocatedAsset {
    /// The blob key of the uncompressed bytes.
    pub key: String,
    pub sha256_hex: String,
    /// Of the uncompressed bytes.
    pub size: u64,
    pub content_type: String,
    /// Whether the URL always names these bytes (long, immutable caching).
    pub immutable: bool,
    /// Whether compressed copies may exist (see `is_compressible`).
    pub compressible: bool,
    /// The update whose launch asset (bundle) this is, for insights and
    /// patches.
    pub launch_asset_of: Option<Arc<Update>>,
    /// Whether a patch could be served instead (a launch bundle, with
    /// bundle diffing on): the full file's answer then varies by base.
    pub patchable: bool,
}

impl LocatedAsset {
    /// The file at `path` (`\` read as `/`) of `update`, if it has one.
    pub(crate) fn find(update: &Arc<Update>, path: &str, immutable: bool) -> Option<Self> {
        let path = path.replace('\\', "/");
        let asset = update.assets.iter().find(|asset| asset.path == path)?;
        Some(Self {
            key: asset_blob_key(update.project_id.as_str(), &asset.sha256_hex),
            sha256_hex: asset.sha256_hex.clone(),
            size: asset.size,
            content_type: asset.content_type.clone(),
            immutable,
            compressible: is_compressible(&asset.content_type),
            launch_asset_of: asset.is_launch_asset.then(|| Arc::clone(update)),
            patchable: false,
        })
    }

    fn representation(&self, encoding: Option<ContentEncoding>) -> Representation {
        Representation {
            etag: etag(&self.sha256_hex, encoding),
            content_type: self.content_type.clone(),
            encoding,
            immutable: self.immutable,
            varies_by_encoding: self.compressible,
            varies_by_base: self.patchable,
        }
    }
}

/// A strong validator per representation: the content hash, suffixed for
/// a compressed copy (its bytes differ).
fn etag(sha256_hex: &str, encoding: Option<ContentEncoding>) -> String {
    match encoding {
        None => format!("\"{sha256_hex}\""),
        Some(encoding) => format!("\"{sha256_hex}-{}\"", encoding.token()),
    }
}

/// The size of each compressed copy of a blob, in [`ContentEncoding::ALL`]
/// order; `None` where it has none.
type CopySizes = [Option<u64>; ContentEncoding::ALL.len()];

/// The stored files and what is known about their copies.
pub(crate) struct AssetFiles {
    blobs: Arc<dyn BlobStore>,
    /// The sizes of a blob's compressed copies, by its key, and when they
    /// were read. Copies are made before the publish that names them
    /// commits and removed only with their blob; a launch bundle's are made
    /// again at the best levels in the background (possibly by another
    /// instance), so sizes older than [`COPY_SIZES_FRESH`] are read again.
    copies: quick_cache::sync::Cache<String, (CopySizes, Instant)>,
    hot_files: HotFiles,
    /// Send devices to presigned storage URLs instead of streaming bytes.
    pub redirect: bool,
}

/// An answer, and whether it hands the client the whole file (a download,
/// for insights): the bytes it sends when it does.
pub(crate) struct Answered {
    pub answer: AssetAnswer,
    pub whole_download: Option<u64>,
}

/// A stored patch to serve (found by `patches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadyPatch {
    pub blob_key: String,
    pub size: u64,
    pub etag: String,
    /// The manifest id the client sent as its running update.
    pub base_update_id: String,
}

/// A patch answer, and what it saved the client.
pub(crate) struct PatchAnswered {
    pub answer: AssetAnswer,
    pub delivery: LaunchDelivery,
}

impl AssetFiles {
    pub(crate) fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self {
            blobs,
            copies: quick_cache::sync::Cache::new(COPIES_REMEMBERED),
            hot_files: HotFiles::new(0),
            redirect: false,
        }
    }

    pub(crate) fn keep_hot_files(&mut self, max_bytes: u64) {
        self.hot_files = HotFiles::new(max_bytes);
    }

    /// Answers a request for `asset` under its HTTP conditions.
    pub(crate) async fn answer(
        &self,
        asset: &LocatedAsset,
        request: &AssetRequest,
    ) -> AppResult<Answered> {
        let range = self.honoured_range(asset, request);
        // A range is of the uncompressed bytes: a ranged request gets those.
        let stored = match range {
            Some(_) => None,
            None => {
                self.stored_encoding(asset, request.accepted_encodings)
                    .await
            }
        };
        let encoding = stored.map(|(encoding, _)| encoding);
        let whole_bytes = stored.map_or(asset.size, |(_, size)| size);
        let representation = asset.representation(encoding);
        if request.if_none_match.matches(&representation.etag) {
            return Ok(Answered {
                answer: AssetAnswer::NotModified(representation),
                whole_download: None,
            });
        }
        let whole = (range.is_none() && !request.head_only).then_some(whole_bytes);
        // The storage answers the range, if any, itself.
        if let Some(location) = self.redirect_for(asset, encoding).await? {
            return Ok(Answered {
                answer: AssetAnswer::Redirect {
                    location,
                    immutable: asset.immutable,
                    varies_by_encoding: asset.compressible,
                    varies_by_base: asset.patchable,
                },
                whole_download: whole,
            });
        }
        let window = match range {
            None => None,
            Some(Ok(window)) => Some(window),
            Some(Err(Unsatisfiable)) => {
                return Ok(Answered {
                    answer: AssetAnswer::RangeNotSatisfiable { size: asset.size },
                    whole_download: None,
                });
            }
        };
        let (body, encoding) = self.open(asset, encoding, window.clone()).await?;
        let representation = match encoding == representation.encoding {
            true => representation,
            false => asset.representation(encoding),
        };
        Ok(Answered {
            whole_download: whole.map(|_| body.size),
            answer: AssetAnswer::Body {
                representation,
                body,
                range: window.map(|window| (window, asset.size)),
            },
        })
    }

    /// Answers with the patch when the request allows one: not when
    /// `If-None-Match` names a full representation (the client has the file:
    /// 304 as ever), and not when the patch has gone from storage (collected
    /// with its target, which a later publish stored again). `None`: answer
    /// with the file.
    pub(crate) async fn answer_patch(
        &self,
        asset: &LocatedAsset,
        request: &AssetRequest,
        patch: ReadyPatch,
    ) -> AppResult<Option<PatchAnswered>> {
        let full_etags = std::iter::once(None)
            .chain(ContentEncoding::ALL.map(Some))
            .map(|encoding| etag(&asset.sha256_hex, encoding));
        if full_etags
            .into_iter()
            .any(|full| request.if_none_match.matches(&full))
        {
            return Ok(None);
        }
        match self
            .hot_files
            .open(self.blobs.as_ref(), &patch.blob_key, patch.size)
            .await
        {
            Ok(body) => {
                let instead_of = self
                    .stored_encoding(asset, request.accepted_encodings)
                    .await
                    .map_or(asset.size, |(_, size)| size);
                Ok(Some(PatchAnswered {
                    delivery: LaunchDelivery {
                        bytes_sent: body.size,
                        patch_instead_of: Some(instead_of),
                    },
                    answer: AssetAnswer::Patch {
                        etag: patch.etag,
                        base_update_id: patch.base_update_id,
                        body,
                    },
                }))
            }
            Err(BlobError::NotFound(_)) => {
                tracing::warn!(
                    key = patch.blob_key,
                    "a ready patch is missing; serving the file"
                );
                Ok(None)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The range to serve: none when none was asked for, or when `If-Range`
    /// names another version (RFC 9110 §13.1.5: then the whole file).
    fn honoured_range(
        &self,
        asset: &LocatedAsset,
        request: &AssetRequest,
    ) -> Option<Result<Range<u64>, Unsatisfiable>> {
        let range = request.range?;
        if let Some(validator) = &request.if_range
            && *validator != etag(&asset.sha256_hex, None)
        {
            return None;
        }
        Some(range.window(asset.size))
    }

    /// The encoding to send the asset in: the smallest stored copy the
    /// client accepts (the fewest bytes, whatever the encoding), with its
    /// size.
    async fn stored_encoding(
        &self,
        asset: &LocatedAsset,
        accepted: AcceptedEncodings,
    ) -> Option<(ContentEncoding, u64)> {
        if !asset.compressible {
            return None;
        }
        let sizes = self.copy_sizes(&asset.key).await;
        ContentEncoding::ALL
            .into_iter()
            .zip(sizes)
            .filter(|(encoding, _)| accepted.accepts(*encoding))
            .filter_map(|(encoding, size)| Some((encoding, size?)))
            .min_by_key(|(_, size)| *size)
    }

    /// The sizes of the copies of the blob at `key`: remembered after the
    /// first answer, so a download costs one cache lookup and no storage
    /// request. Not remembered when the storage could not say.
    async fn copy_sizes(&self, key: &str) -> CopySizes {
        let now = Instant::now();
        if let Some((known, read_at)) = self.copies.get(key)
            && now.duration_since(read_at) < COPY_SIZES_FRESH
        {
            return known;
        }
        let mut sizes = CopySizes::default();
        for (size, encoding) in sizes.iter_mut().zip(ContentEncoding::ALL) {
            let copy = encoding.blob_key(key);
            match self.blobs.size(&copy).await {
                Ok(found) => *size = found,
                Err(error) => {
                    tracing::warn!(%error, key = copy, "could not check for a compressed copy");
                    return sizes;
                }
            }
        }
        self.copies.insert(key.to_owned(), (sizes, now));
        sizes
    }

    /// Where to send the client for the asset (or its compressed copy), when
    /// redirects are on and the storage can presign: a URL valid for
    /// [`PRESIGNED_URL_LIFETIME`] that answers with the asset's own headers.
    async fn redirect_for(
        &self,
        asset: &LocatedAsset,
        encoding: Option<ContentEncoding>,
    ) -> AppResult<Option<String>> {
        if !self.redirect {
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
    async fn open(
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
                    self.copies.remove(&asset.key);
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
