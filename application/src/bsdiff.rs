//! BSDIFF40 patches between two launch bundles, in the format the
//! expo-updates clients apply (their vendored `bspatch.c`: Colin
//! Percival's bsdiff 4.x, three bzip2 streams). Made with `qbsdiff`, and
//! checked by applying them before they are kept: a patch that does not
//! rebuild the target exactly is never served.

use std::io;

use qbsdiff::{Bsdiff, Bspatch};
use sha2::{Digest, Sha256};

/// Why no patch came out.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("bsdiff failed: {0}")]
    Diff(#[source] io::Error),
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
    // smaller, within 1% of Debian's bsdiff 4.3, for ~10% more time.
    Bsdiff::new(base, target)
        .small_match(0)
        .compare(io::Cursor::new(&mut patch))
        .map_err(DiffError::Diff)?;
    verify(base, &patch, target_sha256_hex)?;
    Ok(patch)
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
}
