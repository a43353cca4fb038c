//! Whole blobs in memory, for the jobs that need all of a file at once
//! (the hot-file cache, bundle diffing).

use bytes::{Bytes, BytesMut};
use domain::blob::{BlobError, BlobStore};
use futures_util::StreamExt;

/// The whole blob at `key`.
pub(crate) async fn read_whole(blobs: &dyn BlobStore, key: &str) -> Result<Bytes, BlobError> {
    let mut reader = blobs.open(key).await?;
    let mut whole = BytesMut::with_capacity(usize::try_from(reader.size).unwrap_or(0));
    while let Some(chunk) = reader.body.next().await {
        let chunk = chunk.map_err(|error| BlobError::Backend(error.to_string()))?;
        whole.extend_from_slice(&chunk);
    }
    Ok(whole.freeze())
}
