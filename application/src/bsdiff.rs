//! BSDIFF40 patches between two launch bundles, in the format the
//! expo-updates clients apply (their vendored `bspatch.c`: Colin
//! Percival's bsdiff 4.x, three bzip2 streams). Made with `qbsdiff`, and
//! checked by applying them before they are kept: a patch that does not
//! rebuild the target exactly is never served.
//!
//! The match search is qbsdiff's, run on one thread (its parallel search
//! cuts the target into chunks and finds slightly worse matches; a server
//! also wants its cores for serving). Its output is then re-packed: each of
//! the three streams recompressed at the bzip2 block size that makes it
//! smallest. Bundle diffs are mostly zeros with local changes, and small
//! blocks often adapt better than Debian's fixed 900k ones: on the
//! fixtures this makes patches 2-3% smaller than Debian's `bsdiff`, where a
//! single fixed level was 1% larger.

use std::io::{self, Read, Write};

use bzip2::Compression;
use bzip2::read::BzDecoder;
use bzip2::write::BzEncoder;
use qbsdiff::{Bsdiff, Bspatch, ParallelScheme};
use sha2::{Digest, Sha256};

/// Why no patch came out.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("bsdiff failed: {0}")]
    Diff(#[source] io::Error),
    /// qbsdiff wrote something that is not a BSDIFF40 patch.
    #[error("the patch could not be re-packed: {0}")]
    Repack(String),
    /// Applying the patch did not give the target back.
    #[error("the patch does not rebuild the target: {0}")]
    Unverified(String),
}

/// A patch from `base` to `target`, verified against `target_sha256_hex`
/// (lower-case hex). CPU-bound, and several times the bundle in memory at
/// its peak (suffix array of `base` plus both inputs and the patch): run it
/// off the async workers and bound how many run at once.
pub fn make_patch(
    base: &[u8],
    target: &[u8],
    target_sha256_hex: &str,
) -> Result<Vec<u8>, DiffError> {
    let mut patch = Vec::new();
    // Every match kept, however short (qbsdiff skips matches under 12 bytes
    // by default): on the fixtures' Hermes bundles this makes patches 3-7%
    // smaller for ~10% more time. Level 1 only because `repack` redoes the
    // compression anyway.
    Bsdiff::new(base, target)
        .small_match(0)
        .parallel_scheme(ParallelScheme::Never)
        .compression_level(1)
        .compare(io::Cursor::new(&mut patch))
        .map_err(DiffError::Diff)?;
    let patch = repack(&patch)?;
    verify(base, &patch, target_sha256_hex)?;
    Ok(patch)
}

/// The bzip2 block sizes tried for each stream (in units of 100k; 9 is what
/// Debian's bsdiff always uses). Intermediate sizes rarely win by more than
/// a few bytes and each costs a full compression.
const BLOCK_SIZES: [u32; 4] = [1, 2, 3, 9];

/// Header: magic, the compressed lengths of the control and diff streams,
/// the target's length (bsdiff's sign-magnitude little-endian integers).
const HEADER_LEN: usize = 32;

/// `patch` with each of its three bzip2 streams recompressed at the block
/// size that makes it smallest; the streams' contents are unchanged, so the
/// result applies exactly as `patch` does.
fn repack(patch: &[u8]) -> Result<Vec<u8>, DiffError> {
    let invalid = |what: &str| DiffError::Repack(what.to_owned());
    let header = patch
        .get(..HEADER_LEN)
        .ok_or_else(|| invalid("too short"))?;
    let length = |at: usize| -> Result<usize, DiffError> {
        let bytes: [u8; 8] = header[at..at + 8]
            .try_into()
            .map_err(|_| invalid("bad header"))?;
        usize::try_from(u64::from_le_bytes(bytes)).map_err(|_| invalid("bad length"))
    };
    let (control_len, diff_len) = (length(8)?, length(16)?);
    let body = &patch[HEADER_LEN..];
    let (control, rest) = body
        .split_at_checked(control_len)
        .ok_or_else(|| invalid("control stream cut"))?;
    let (diff, extra) = rest
        .split_at_checked(diff_len)
        .ok_or_else(|| invalid("diff stream cut"))?;
    let streams = [control, diff, extra].map(smallest_recompression);
    let [control, diff, extra] = streams;
    let (control, diff, extra) = (control?, diff?, extra?);
    let mut repacked = Vec::with_capacity(HEADER_LEN + control.len() + diff.len() + extra.len());
    repacked.extend_from_slice(&patch[..8]);
    repacked.extend_from_slice(&(control.len() as u64).to_le_bytes());
    repacked.extend_from_slice(&(diff.len() as u64).to_le_bytes());
    repacked.extend_from_slice(&patch[24..HEADER_LEN]);
    for stream in [control, diff, extra] {
        repacked.extend_from_slice(&stream);
    }
    Ok(repacked)
}

/// One bzip2 stream recompressed at each of [`BLOCK_SIZES`], the smallest
/// kept (the original if none is smaller).
fn smallest_recompression(compressed: &[u8]) -> Result<Vec<u8>, DiffError> {
    let mut raw = Vec::new();
    BzDecoder::new(compressed)
        .read_to_end(&mut raw)
        .map_err(|error| DiffError::Repack(error.to_string()))?;
    let mut smallest = compressed.to_vec();
    for block_size in BLOCK_SIZES {
        let mut encoder = BzEncoder::new(Vec::new(), Compression::new(block_size));
        encoder
            .write_all(&raw)
            .map_err(|error| DiffError::Repack(error.to_string()))?;
        let candidate = encoder
            .finish()
            .map_err(|error| DiffError::Repack(error.to_string()))?;
        if candidate.len() < smallest.len() {
            smallest = candidate;
        }
    }
    Ok(smallest)
}

/// Applies `patch` to `base` and checks the result's SHA-256, as a client
/// does before it launches the result.
pub fn verify(base: &[u8], patch: &[u8], target_sha256_hex: &str) -> Result<(), DiffError> {
    let unverified = |error: io::Error| DiffError::Unverified(error.to_string());
    let patcher = Bspatch::new(patch).map_err(unverified)?;
    let capacity = usize::try_from(patcher.hint_target_size()).unwrap_or(0);
    let mut rebuilt = Vec::with_capacity(capacity);
    patcher
        .apply(base, io::Cursor::new(&mut rebuilt))
        .map_err(unverified)?;
    let hash = hex::encode(Sha256::digest(&rebuilt));
    if hash == target_sha256_hex {
        Ok(())
    } else {
        Err(DiffError::Unverified(format!("it rebuilds {hash}")))
    }
}

#[expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]
#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn a_patch_rebuilds_its_target_and_nothing_else() {
        let base: Vec<u8> = (0..50_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let mut target = base.clone();
        target[1000..1010].copy_from_slice(b"0123456789");
        target.extend_from_slice(b"and a tail");
        let patch = make_patch(&base, &target, &sha(&target)).unwrap();
        assert!(patch.starts_with(b"BSDIFF40"));
        assert!(patch.len() < target.len() / 10, "{} bytes", patch.len());
        // Against another base, or for another target, it is refused.
        let mut other = base.clone();
        other[0] ^= 1;
        assert!(matches!(
            verify(&other, &patch, &sha(&target)),
            Err(DiffError::Unverified(_))
        ));
        assert!(matches!(
            make_patch(&base, &target, &sha(&base)),
            Err(DiffError::Unverified(_))
        ));
        assert!(verify(&base, b"not a patch", &sha(&target)).is_err());
    }

    #[test]
    fn repacking_keeps_the_streams_and_refuses_a_cut_patch() {
        let base: Vec<u8> = (0..20_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let mut target = base.clone();
        target[500..520].copy_from_slice(&[7; 20]);
        let patch = make_patch(&base, &target, &sha(&target)).unwrap();
        // Repacking an already repacked patch changes nothing.
        assert_eq!(repack(&patch).unwrap(), patch);
        for cut in [0, 16, HEADER_LEN, patch.len() - 1] {
            assert!(repack(&patch[..cut]).is_err(), "cut at {cut}");
        }
    }
}
