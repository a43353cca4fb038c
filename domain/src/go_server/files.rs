//! The files of a Go update directory that say what devices were served:
//! the manifest id (derived from `metadata.json`), the time (the directory
//! name) and `index.<platform>.json`, which the Go server wrote at publish.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::update::normalize_export_path;
use crate::validation::ValidationError;

/// The manifest id the Go server gave an update: the SHA-256 hex of the
/// exact `metadata.json` bytes, its first 32 characters as 8-4-4-4-12.
/// Devices running the update send it as `Expo-Current-Update-Id`, so an
/// imported update keeps it to be recognised as the one they have.
pub fn legacy_manifest_id(metadata_json: &[u8]) -> String {
    let hex = hex_lower(&Sha256::digest(metadata_json));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The time an update directory's name stands for (unix seconds): the
/// update's `createdAt` and a rollback's `commitTime`.
pub fn go_update_time(go_id: u64) -> Option<DateTime<Utc>> {
    let seconds = i64::try_from(go_id).ok()?;
    Utc.timestamp_opt(seconds, 0).single()
}

/// One file of `index.<platform>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoIndexFile {
    /// Normalised (`/`-separated) path in the update directory.
    pub path: String,
    /// Base64url SHA-256 without padding, as served in the manifest.
    pub hash: String,
    /// Lowercase hex MD5, as served in the manifest.
    pub key: String,
    /// With its dot (`.png`, or `.` for an asset without extension); `None`
    /// for the bundle.
    pub file_extension: Option<String>,
}

/// `index.<platform>.json`: what the Go server put in the platform's
/// manifest (`{"bundle": {...}, "assets": [{...}]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoIndex {
    pub bundle: GoIndexFile,
    pub assets: Vec<GoIndexFile>,
}

impl GoIndex {
    pub fn parse(bytes: &[u8]) -> Result<Self, ValidationError> {
        let invalid = |why: &str| ValidationError::new(format!("index file: {why}"));
        let json: Value = serde_json::from_slice(crate::export::strip_bom(bytes))
            .map_err(|_| invalid("not valid JSON"))?;
        let file = |value: &Value, is_bundle: bool| -> Result<GoIndexFile, ValidationError> {
            let text = |name: &str| {
                value
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(&format!("an entry has no {name}")))
            };
            let path = normalize_export_path(&text("path")?)?;
            let file_extension = match is_bundle {
                true => None,
                false => Some(text("fileExtension").unwrap_or_else(|_| ".".to_owned())),
            };
            let key = text("key")?;
            // Clients since expo-updates 57.0.14 reject a manifest whose
            // asset keys or extensions hold a path separator.
            let separated = |text: &str| text.contains(['/', '\\']);
            if separated(&key) || file_extension.as_deref().is_some_and(separated) {
                return Err(invalid("a key or fileExtension holds a path separator"));
            }
            Ok(GoIndexFile {
                path,
                hash: text("hash")?,
                key,
                file_extension,
            })
        };
        let bundle = json
            .get("bundle")
            .ok_or_else(|| invalid("no bundle"))
            .and_then(|bundle| file(bundle, true))?;
        let assets = json
            .get("assets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|asset| file(asset, false))
            .collect::<Result<_, _>>()?;
        Ok(Self { bundle, assets })
    }

    /// The bundle first, then the assets in order.
    pub fn files(&self) -> impl Iterator<Item = &GoIndexFile> {
        std::iter::once(&self.bundle).chain(&self.assets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_id_is_the_metadata_digest_shaped_as_a_uuid() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(
            legacy_manifest_id(b"abc"),
            "ba7816bf-8f01-cfea-4141-40de5dae2223"
        );
    }

    #[test]
    fn update_ids_are_unix_seconds() {
        assert_eq!(
            go_update_time(1_777_646_947).map(|t| t.to_rfc3339()),
            Some("2026-05-01T14:49:07+00:00".to_owned())
        );
        assert_eq!(go_update_time(u64::MAX), None);
    }

    #[test]
    fn index_files_are_read_with_normalised_paths() {
        let index = GoIndex::parse(
            br#"{"bundle":{"path":"bundles\\ios-1.js","hash":"h","key":"k","contentType":"application/javascript"},
                "assets":[{"path":"assets/a","hash":"h2","key":"k2","contentType":"","fileExtension":".png"}]}"#,
        )
        .expect("index");
        assert_eq!(index.bundle.path, "bundles/ios-1.js");
        assert_eq!(index.bundle.file_extension, None);
        assert_eq!(index.assets[0].file_extension.as_deref(), Some(".png"));
        assert_eq!(index.files().count(), 2);
        assert!(GoIndex::parse(br#"{"assets":[]}"#).is_err());
        assert!(GoIndex::parse(br#"{"bundle":{"path":"../x","hash":"h","key":"k"}}"#).is_err());
        // No path separators in keys or extensions (clients reject them).
        assert!(GoIndex::parse(br#"{"bundle":{"path":"b.js","hash":"h","key":"a/b"}}"#).is_err());
        assert!(
            GoIndex::parse(
                br#"{"bundle":{"path":"b.js","hash":"h","key":"k"},
                    "assets":[{"path":"a","hash":"h2","key":"k2","fileExtension":".p\\ng"}]}"#
            )
            .is_err()
        );
    }
}
