//! Bundle diffing: patches from one launch bundle to another, wanted when
//! an update is published and computed in the background, once, by
//! whichever instance claims the work first.
//!
//! A patch is named by its project and the two bundles' content hashes, so
//! a republish (same bundle) reuses the patches of the update it copies.

use chrono::{DateTime, Utc};

use crate::id::ProjectId;
use crate::update::asset_blob_key;

/// A patch from the launch bundle `base_sha256` to `target_sha256` (both
/// lower-case SHA-256 hex) within one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatchKey {
    pub project_id: ProjectId,
    pub base_sha256: String,
    pub target_sha256: String,
}

impl PatchKey {
    /// Where the patch is stored: beside the target's blob and its
    /// compressed copies (`…/assets/<target>.<base>.bsdiff`), so storage
    /// collection removes it with the target.
    ///
    /// The base is named by the first [`BASE_NAME_HEX`] hex digits of its
    /// hash: file-backed S3 servers (s3s-fs, which the tests run) keep each
    /// object's metadata in a file named by the base64 of its whole key, so
    /// a key over about 160 bytes cannot be stored there. 128 bits still
    /// name a base beyond doubt (and a wrong patch would only fail the
    /// client's hash check, which then downloads the file).
    pub fn blob_key(&self) -> String {
        let base = self
            .base_sha256
            .get(..BASE_NAME_HEX)
            .unwrap_or(&self.base_sha256);
        format!(
            "{}.{base}.bsdiff",
            asset_blob_key(self.project_id.as_str(), &self.target_sha256),
        )
    }
}

/// How much of the base's hash names a patch's object (see
/// [`PatchKey::blob_key`]).
pub const BASE_NAME_HEX: usize = 32;

/// Where a wanted patch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchState {
    /// Waiting to be computed (or being computed, under a claim).
    Pending,
    /// Stored, verified, and worth serving: `size` bytes.
    Ready { size: u64 },
    /// Computed but not kept: not meaningfully smaller than the best
    /// compressed copy of the target (`size` bytes).
    NotWorthIt { size: u64 },
    /// Given up on after repeated failures; `error` says why.
    Failed { error: String },
}

impl PatchState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready { .. } => "ready",
            Self::NotWorthIt { .. } => "not_worth_it",
            Self::Failed { .. } => "failed",
        }
    }
}

/// A patch, its state and its bookkeeping, as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRecord {
    pub key: PatchKey,
    pub state: PatchState,
    /// How many times it was claimed; a job that keeps failing (or keeps
    /// killing its instance) is given up on after [`MAX_PATCH_ATTEMPTS`].
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Claims after which a patch that never finished is marked failed.
pub const MAX_PATCH_ATTEMPTS: u32 = 3;

/// Which patches are made, and which are kept (`PATCH_BASES`,
/// `PATCH_MAX_PERCENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchPolicy {
    /// How many earlier launch bundles of a stream a new one is patched
    /// from; 0 turns bundle diffing off.
    pub bases: u32,
    /// A patch is kept only when it is at most this percentage of the
    /// smallest compressed copy of its target: a patch barely smaller than
    /// the brotli'd bundle is not worth a second code path on the device.
    pub max_percent: u32,
}

impl Default for PatchPolicy {
    fn default() -> Self {
        Self {
            bases: 5,
            max_percent: 50,
        }
    }
}

impl PatchPolicy {
    pub fn enabled(&self) -> bool {
        self.bases > 0
    }

    /// Whether a patch of `patch_size` bytes is worth serving instead of a
    /// full download of `full_size` bytes (the smallest copy a client could
    /// otherwise get).
    pub fn worth_keeping(&self, patch_size: u64, full_size: u64) -> bool {
        u128::from(patch_size) * 100 <= u128::from(full_size) * u128::from(self.max_percent)
    }
}

/// A claimed patch: the claimant computes it and reports with
/// `PatchStore::finish` before `claimed_until`, or another instance may
/// claim it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchClaim {
    pub key: PatchKey,
    /// This claim's attempt number (1 for the first).
    pub attempt: u32,
    pub claimed_by: String,
    pub claimed_until: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::{blob_key_sha256, is_compressed_copy};

    #[test]
    fn a_patch_is_kept_only_when_it_saves_enough() {
        let policy = PatchPolicy::default();
        assert!(policy.worth_keeping(50, 100));
        assert!(!policy.worth_keeping(51, 100));
        assert!(policy.worth_keeping(0, 0));
        assert!(
            !PatchPolicy {
                bases: 0,
                max_percent: 50
            }
            .enabled()
        );
        assert!(
            PatchPolicy {
                bases: 1,
                max_percent: 100
            }
            .worth_keeping(u64::MAX, u64::MAX)
        );
    }

    #[test]
    fn a_patch_is_stored_beside_its_target_and_collected_with_it() {
        let key = PatchKey {
            project_id: ProjectId::from_trusted("p".to_owned()),
            base_sha256: "a".repeat(64),
            target_sha256: "b".repeat(64),
        };
        let blob = key.blob_key();
        assert_eq!(
            blob,
            format!(
                "projects/p/assets/{}.{}.bsdiff",
                "b".repeat(64),
                "a".repeat(32)
            )
        );
        // Storage collection reads it as a copy of the target's file.
        assert!(is_compressed_copy(&blob));
        assert_eq!(blob_key_sha256(&blob), "b".repeat(64));
    }
}
