//! Embedded bundles: the launch bundle built into an app binary, which an
//! owner uploads so that devices still running it (the update embedded in
//! the build, never replaced by a download) can get a patch instead of the
//! whole bundle of their first update.
//!
//! Serving such patches is opt-in per project
//! ([`Project::patch_from_embedded`](crate::project::Project)): Android
//! clients before expo-updates 57.0.23 download a patch against an embedded
//! base, throw it away and download the full file, which costs them more
//! than no patch.

use chrono::{DateTime, Utc};

use crate::ValidationError;
use crate::id::ProjectId;
use crate::update::{Platform, RuntimeVersion};

/// The id of an embedded update (the `id` of the build's `app.manifest`),
/// as a device sends it in `Expo-Current-Update-ID`: a UUID, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmbeddedUpdateId(String);

impl EmbeddedUpdateId {
    /// A UUID in its hyphenated form, in either case.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        let groups: Vec<&str> = raw.split('-').collect();
        let lengths_match = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(group, length)| group.len() == length);
        if lengths_match
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(ValidationError::new(
                "updateId must be the embedded update's id, a UUID (the \"id\" of the build's app.manifest).",
            ))
        }
    }

    /// An id read back from the store, which only holds parsed ones.
    pub fn from_trusted(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmbeddedUpdateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A launch bundle embedded in a build of a project's app, as uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedBundle {
    pub project_id: ProjectId,
    pub update_id: EmbeddedUpdateId,
    pub runtime_version: RuntimeVersion,
    pub platform: Platform,
    /// Lower-case hex SHA-256 of the bundle; stored as the project's
    /// asset of that hash.
    pub sha256_hex: String,
    pub size: u64,
    pub uploaded_at: DateTime<Utc>,
    /// Who uploaded it, as the audit log names them.
    pub uploaded_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_update_ids_are_hyphenated_uuids_lower_cased() {
        let id = EmbeddedUpdateId::parse(" 0195F1A2-7C3B-7D4E-8F90-123456789ABC ");
        assert_eq!(
            id.map(|id| id.as_str().to_owned()),
            Ok("0195f1a2-7c3b-7d4e-8f90-123456789abc".to_owned())
        );
        for bad in [
            "",
            "not-a-uuid",
            "0195f1a27c3b7d4e8f90123456789abc",
            "0195f1a2-7c3b-7d4e-8f90-123456789abg",
            "../../0195f1a2-7c3b-7d4e-8f90-12345678",
        ] {
            assert!(EmbeddedUpdateId::parse(bad).is_err(), "{bad}");
        }
    }
}
