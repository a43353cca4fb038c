//! Compressed copies of compressible files, made once when they are
//! published, so that no download pays for compression: a client that
//! accepts zstd, brotli or gzip is sent the smallest stored copy it accepts.
//!
//! A copy is kept only when it saves at least a tenth of the bytes, and a
//! file that does not shrink over its first megabyte is given up on early
//! (random or already compressed data, whatever its declared type).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_compression::Level;
use async_compression::futures::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use async_compression::zstd::CParameter;
use bytes::Bytes;
use domain::blob::{BlobError, BlobStore, ByteStream, StagedBlob};
use domain::update::ContentEncoding;
use futures_util::io::{AsyncRead, AsyncReadExt};
use futures_util::{StreamExt, TryStreamExt};

/// Brotli quality 5: within 1% of quality 9 on Hermes bytecode and
/// JavaScript, at ~8 MB of memory instead of ~40 MB (measured on the fixture
/// bundles). Quality 11 would save another ~10% but takes ~1 s per MB.
const BROTLI_QUALITY: i32 = 5;
const GZIP_LEVEL: i32 = 9;
/// zstd level 12 with a window no larger than the file (at most 4 MiB):
/// on the fixture's 1.5 MB Hermes bundle as small as brotli 5 in 0.07 s.
/// Level 18-19 saves another 8% but takes 0.4-0.6 s per 1.5 MB.
const ZSTD_LEVEL: i32 = 12;
const ZSTD_MAX_WINDOW_LOG: u32 = 22;

/// After this much input, a copy larger than [`KEEP_RATIO`] of it is
/// abandoned.
const EARLY_VERDICT_BYTES: u64 = 1024 * 1024;

/// A copy is kept when it is at most 9/10 of the original.
const KEEP_RATIO: (u64, u64) = (9, 10);

const CHUNK: usize = 64 * 1024;

/// Brotli's and zstd's best levels, for the background pass over a newly
/// published launch bundle: on the fixture bundles about 8-10% smaller than
/// the publish-time copies, at about a second per megabyte.
const BEST_BROTLI_QUALITY: i32 = 11;
/// Brotli's window at the best level: 4 MiB keeps its working set near
/// 100 MB whatever the bundle.
const BEST_BROTLI_WINDOW_LOG: u32 = 22;
const BEST_ZSTD_LEVEL: i32 = 19;

/// Bundles larger than this keep their publish-time copies: the best
/// levels would take minutes.
pub(crate) const BEST_LEVEL_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// Replaces the brotli and zstd copies of the blob at `key` (of `size`
/// bytes) with copies at the best levels, each only when it comes out
/// smaller. The copy is written to staging first and then put in place in
/// one step, so a download reads the old copy or the new one, never a mix;
/// both decode to the same file. Failures are logged and leave the
/// publish-time copies.
pub(crate) async fn recompress_best(blobs: &dyn BlobStore, key: &str, size: u64) {
    if size > BEST_LEVEL_MAX_BYTES {
        return;
    }
    for encoding in [ContentEncoding::Brotli, ContentEncoding::Zstd] {
        if let Err(error) = replace_copy(blobs, key, size, encoding).await {
            tracing::warn!(%error, key, encoding = encoding.token(), "could not recompress a copy at the best level");
        }
    }
}

async fn replace_copy(
    blobs: &dyn BlobStore,
    key: &str,
    size: u64,
    encoding: ContentEncoding,
) -> Result<(), BlobError> {
    let copy_key = encoding.blob_key(key);
    // Only copies made at publish are improved on.
    let Some(current) = blobs.size(&copy_key).await? else {
        return Ok(());
    };
    if encoding == ContentEncoding::Gzip {
        return Ok(());
    }
    let input = blobs.open(key).await?.body.into_async_read();
    let compressed = compress(input, encoding, size, Levels::BEST);
    // Over the current copy's size, staging fails: not worth replacing.
    match blobs.stage(compressed, current.saturating_sub(1)).await {
        Ok(staged) => {
            let stored = blobs.replace(&staged, &copy_key).await;
            blobs.discard(&staged).await;
            stored
        }
        Err(BlobError::TooLarge(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Stores one file of an update at `key` (of `size` bytes): promotes it
/// from staging when it was staged, then, when it is `compressible`, makes
/// its compressed copies (a copy already there is kept). What publish,
/// republish and the Go import each do with a file they store.
pub(crate) async fn store_file(
    blobs: &dyn BlobStore,
    key: &str,
    staged: Option<&StagedBlob>,
    size: u64,
    compressible: bool,
) -> Result<(), BlobError> {
    if let Some(blob) = staged {
        blobs.promote(blob, key).await?;
    }
    if compressible {
        precompress(blobs, key, size).await;
    }
    Ok(())
}

/// Makes the brotli and gzip copies of the blob at `key` (of `size` bytes).
/// Failures are logged and leave the file served uncompressed.
async fn precompress(blobs: &dyn BlobStore, key: &str, size: u64) {
    for encoding in ContentEncoding::ALL {
        if let Err(error) = make_copy(blobs, key, size, encoding).await {
            tracing::warn!(%error, key, encoding = encoding.token(), "could not store a compressed copy");
        }
    }
}

async fn make_copy(
    blobs: &dyn BlobStore,
    key: &str,
    size: u64,
    encoding: ContentEncoding,
) -> Result<(), BlobError> {
    let copy_key = encoding.blob_key(key);
    // Uploaded again (a client that does not ask `assets/missing` first):
    // the copy from last time holds the same bytes.
    if blobs.exists(&copy_key).await? {
        return Ok(());
    }
    let original = blobs.open(key).await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = {
        let consumed = Arc::clone(&consumed);
        original.body.inspect_ok(move |chunk| {
            consumed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        })
    };
    let input = counted.into_async_read();
    let compressed = compress(input, encoding, size, Levels::AT_PUBLISH);
    let limit = size * KEEP_RATIO.0 / KEEP_RATIO.1;
    let verdict = give_up_unless_shrinking(compressed, consumed);
    // Over the limit, staging fails: the copy would not be worth keeping.
    match blobs.stage(verdict, limit).await {
        Ok(staged) => {
            let stored = blobs.promote(&staged, &copy_key).await;
            blobs.discard(&staged).await;
            stored
        }
        Err(BlobError::TooLarge(_)) => Ok(()),
        Err(BlobError::Body(reason)) if reason.contains(NOT_WORTH_IT) => Ok(()),
        Err(error) => Err(error),
    }
}

const NOT_WORTH_IT: &str = "the file does not shrink when compressed";

/// The levels a copy is made at.
struct Levels {
    brotli: i32,
    /// Brotli's window (log2), at most; `None`: the encoder's default.
    brotli_window_log: Option<u32>,
    zstd: i32,
}

impl Levels {
    const AT_PUBLISH: Self = Self {
        brotli: BROTLI_QUALITY,
        brotli_window_log: None,
        zstd: ZSTD_LEVEL,
    };
    const BEST: Self = Self {
        brotli: BEST_BROTLI_QUALITY,
        brotli_window_log: Some(BEST_BROTLI_WINDOW_LOG),
        zstd: BEST_ZSTD_LEVEL,
    };
}

/// `input` (a file of `size` bytes) compressed with `encoding` at `levels`.
fn compress<R>(input: R, encoding: ContentEncoding, size: u64, levels: Levels) -> ByteStream
where
    R: futures_util::io::AsyncBufRead + Unpin + Send + 'static,
{
    match encoding {
        ContentEncoding::Brotli => {
            let mut params = async_compression::brotli::EncoderParams::default()
                .quality(Level::Precise(levels.brotli))
                .size_hint(usize::try_from(size).unwrap_or(0));
            if let Some(window_log) = levels.brotli_window_log {
                let fitted = window_log.min(zstd_window_log(size)).max(16);
                params = params.window_size(i32::try_from(fitted).unwrap_or(22));
            }
            chunks(BrotliEncoder::with_params(input, params))
        }
        ContentEncoding::Gzip => {
            chunks(GzipEncoder::with_quality(input, Level::Precise(GZIP_LEVEL)))
        }
        ContentEncoding::Zstd => {
            // The hash and chain tables sized to the window, as zstd itself
            // does when it knows the input's size (a stream does not tell
            // it): at level 19 its defaults alone take ~80 MB.
            let window_log = zstd_window_log(size);
            let params = [
                CParameter::window_log(window_log),
                CParameter::hash_log((window_log + 1).min(ZSTD_MAX_TABLE_LOG)),
                CParameter::chain_log((window_log + 1).min(ZSTD_MAX_TABLE_LOG)),
            ];
            chunks(ZstdEncoder::with_quality_and_params(
                input,
                Level::Precise(levels.zstd),
                &params,
            ))
        }
    }
}

/// The largest hash and chain tables (log2 entries) a copy is made with.
const ZSTD_MAX_TABLE_LOG: u32 = 22;

/// The smallest window that holds the whole file, within zstd's limits and
/// [`ZSTD_MAX_WINDOW_LOG`]: a larger one costs memory and gains nothing.
fn zstd_window_log(size: u64) -> u32 {
    let needed = u64::BITS - size.saturating_sub(1).leading_zeros();
    needed.clamp(10, ZSTD_MAX_WINDOW_LOG)
}

/// Passes the compressed chunks through, but ends the stream with an error
/// once the input read shows it is not shrinking.
fn give_up_unless_shrinking(compressed: ByteStream, consumed: Arc<AtomicU64>) -> ByteStream {
    let mut produced = 0u64;
    Box::pin(compressed.map(move |chunk| {
        let chunk = chunk?;
        produced += chunk.len() as u64;
        let read = consumed.load(Ordering::Relaxed);
        if read >= EARLY_VERDICT_BYTES && produced * KEEP_RATIO.1 > read * KEEP_RATIO.0 {
            return Err(io::Error::other(NOT_WORTH_IT));
        }
        Ok(chunk)
    }))
}

/// Reads `reader` as a stream of chunks.
fn chunks<R: AsyncRead + Unpin + Send + 'static>(reader: R) -> ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        reader,
        |mut reader| async move {
            let mut buffer = vec![0u8; CHUNK];
            let read = reader.read(&mut buffer).await?;
            if read == 0 {
                return Ok(None);
            }
            buffer.truncate(read);
            Ok(Some((Bytes::from(buffer), reader)))
        },
    ))
}
