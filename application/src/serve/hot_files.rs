//! Recently served files, kept in memory: when a new update lands, every
//! device downloads the same bundle within minutes, and serving it from
//! memory spares the storage a read per download (a request to S3, or a
//! file opened and read in small pieces).
//!
//! Keys are content addressed (a blob key names its bytes forever), so an
//! entry is never stale and needs no invalidation. Only files up to
//! [`MAX_FILE_BYTES`] are kept, within a total bound in bytes.

use bytes::Bytes;
use domain::blob::{BlobError, BlobReader, BlobStore};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::blob_bytes::read_whole;
use crate::bounded_cache::bounded_cache;

/// Larger files are streamed from storage on every request.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone)]
struct ByLength;

impl Weighter<String, Bytes> for ByLength {
    fn weight(&self, key: &String, bytes: &Bytes) -> u64 {
        (key.len() + bytes.len()) as u64 + 64
    }
}

pub(crate) struct HotFiles {
    files: Option<Cache<String, Bytes, ByLength>>,
    /// The largest file kept: [`MAX_FILE_BYTES`], or a quarter of the
    /// budget when that is smaller (the cache refuses an item that would
    /// not fit beside others, and a refused file would be read whole on
    /// every request for nothing).
    max_file_bytes: u64,
}

impl HotFiles {
    /// Keeps at most `max_bytes` (0: nothing is kept).
    pub(crate) fn new(max_bytes: u64) -> Self {
        let files = (max_bytes > 0).then(|| {
            let items = (max_bytes / (256 * 1024)).clamp(16, 65_536);
            // One shard: a few thousand reads a second at most (each a
            // whole download), and the whole budget for any one file.
            bounded_cache(1, items as usize, max_bytes, ByLength)
        });
        Self {
            files,
            max_file_bytes: MAX_FILE_BYTES.min(max_bytes / 4),
        }
    }

    /// The whole blob at `key`, from memory when it is small enough to be
    /// kept (read from storage once), streamed from storage otherwise.
    /// `size_hint` is the size when known (an upper bound for a copy).
    pub(crate) async fn open(
        &self,
        blobs: &dyn BlobStore,
        key: &str,
        size_hint: u64,
    ) -> Result<BlobReader, BlobError> {
        let Some(files) = self
            .files
            .as_ref()
            .filter(|_| size_hint <= self.max_file_bytes)
        else {
            return blobs.open(key).await;
        };
        let bytes = files
            .get_or_insert_async(key, read_whole(blobs, key))
            .await?;
        Ok(in_pieces(bytes))
    }

    /// `range` of the blob, from memory when the whole blob is kept.
    pub(crate) async fn open_range(
        &self,
        blobs: &dyn BlobStore,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<BlobReader, BlobError> {
        let kept = self.files.as_ref().and_then(|files| files.get(key));
        match kept {
            Some(bytes) if range.end <= bytes.len() as u64 => Ok(in_pieces(
                bytes.slice(range.start as usize..range.end as usize),
            )),
            _ => blobs.open_range(key, range).await,
        }
    }
}

/// The size of the pieces a kept file is sent in.
const PIECE_BYTES: usize = 256 * 1024;

/// A kept file as a body of [`PIECE_BYTES`] slices (no copy): the HTTP
/// server copies each piece into its write buffer (poem's connections do not
/// take vectored writes), so one piece of a whole bundle would be copied
/// whole for every download in flight, where small pieces are copied only
/// as fast as the socket drains (at most about 400 KiB per connection).
fn in_pieces(bytes: Bytes) -> BlobReader {
    let size = bytes.len();
    let pieces = (0..size)
        .step_by(PIECE_BYTES)
        .map(move |start| Ok(bytes.slice(start..size.min(start + PIECE_BYTES))));
    BlobReader {
        size: size as u64,
        body: Box::pin(futures_util::stream::iter(pieces)),
    }
}
