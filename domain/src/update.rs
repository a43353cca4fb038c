//! Updates: what a publish produces, one per platform, and the rules for the
//! values a release pipeline sends (runtime versions, platforms, file paths).

use chrono::{DateTime, Utc};

use crate::audit::Actor;
use crate::id::{ProjectId, PublishId, UpdateId};
use crate::release::{BranchName, RolloutPercentage};
use crate::validation::{ValidationError, has_control_chars};

/// A platform Expo updates are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Ios,
    Android,
}

impl Platform {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ios" => Some(Self::Ios),
            "android" => Some(Self::Android),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
        }
    }
}

/// Whether an update carries a bundle or tells devices to roll back to the
/// update embedded in the app binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Update,
    Rollback,
}

impl UpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Rollback => "rollback",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "update" => Some(Self::Update),
            "rollback" => Some(Self::Rollback),
            _ => None,
        }
    }
}

/// A runtime version: non-empty, at most 255 characters, no control
/// characters. It is compared exactly, as apps send it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuntimeVersion(String);

impl RuntimeVersion {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new("runtimeVersion must not be empty."));
        }
        if raw.chars().count() > Self::MAX_LEN || has_control_chars(raw) {
            return Err(ValidationError::new(format!(
                "runtimeVersion must be at most {} characters, without control characters.",
                Self::MAX_LEN
            )));
        }
        // The old server made directories of a runtime version (`1.0.0/beta`
        // is two), so `/` stays; but no segment may climb or be empty, and
        // there is no `\\`: a traversal attempt is a 400, not "no update".
        let climbs = raw
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..");
        if climbs || raw.contains('\\') {
            return Err(ValidationError::new(
                "runtimeVersion must not contain \\ nor empty, . or .. segments between /.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A runtime version read back from the server's own store, where it
    /// was checked when it was written (or imported as the old server
    /// stored it).
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for RuntimeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RuntimeVersion {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RuntimeVersion {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl From<RuntimeVersion> for String {
    fn from(version: RuntimeVersion) -> String {
        version.0
    }
}

/// The longest file path accepted in an export.
pub const MAX_PATH_LEN: usize = 1024;

/// Normalises a file path from an export (`\` becomes `/`) and confines it:
/// no absolute path, no `.` or `..` segment, no empty segment, no NUL or
/// other control character. The result is always a plain relative path.
pub fn normalize_export_path(raw: &str) -> Result<String, ValidationError> {
    let path = raw.replace('\\', "/");
    let refuse = |why: &str| Err(ValidationError::new(format!("file path {raw:?} {why}.")));
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return refuse(&format!("must be 1 to {MAX_PATH_LEN} bytes"));
    }
    if has_control_chars(&path) {
        return refuse("contains a control character");
    }
    if path.starts_with('/') || path.contains(':') {
        return refuse("must be relative");
    }
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return refuse("has an empty, '.' or '..' segment");
    }
    Ok(path)
}

/// One file of an update: the launch asset (the JavaScript bundle) or an
/// asset it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAsset {
    /// The path in the export, normalised.
    pub path: String,
    /// Lowercase hex SHA-256: names the stored blob.
    pub sha256_hex: String,
    /// Base64url SHA-256 without padding: the manifest's `hash`.
    pub hash: String,
    /// Lowercase hex MD5: the manifest's `key`.
    pub key: String,
    pub content_type: String,
    /// With its leading dot; `None` for the launch asset.
    pub file_extension: Option<String>,
    pub size: u64,
    pub is_launch_asset: bool,
}

/// One platform's update from one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Unique and time-ordered (UUIDv7): the newest has the greatest id.
    pub id: UpdateId,
    /// Shared by the platforms of one publish; returned as `updateId`.
    pub publish_id: PublishId,
    pub project_id: ProjectId,
    pub runtime_version: RuntimeVersion,
    pub platform: Platform,
    pub kind: UpdateKind,
    pub branch: BranchName,
    /// Shown in history; free text from the publisher.
    pub message: Option<String>,
    /// The share of devices served this update; the others get the branch's
    /// previous one.
    pub rollout: RolloutPercentage,
    /// Who published it; `None` for updates stored before this was recorded.
    pub published_by: Option<Actor>,
    /// The publish this one republished, for history.
    pub republished_from: Option<PublishId>,
    /// The manifest `id`: a UUID derived from everything served, so it
    /// changes exactly when the served content does.
    pub manifest_id: String,
    /// The public app config (`expoConfig.json`) as JSON text.
    pub expo_config: Option<String>,
    /// The launch asset first, then the other assets in export order.
    pub assets: Vec<UpdateAsset>,
    pub created_at: DateTime<Utc>,
}

impl Update {
    pub fn launch_asset(&self) -> Option<&UpdateAsset> {
        self.assets.iter().find(|asset| asset.is_launch_asset)
    }
}

/// The longest update message accepted.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Checks an update message: at most [`MAX_MESSAGE_LEN`] characters; tabs
/// and newlines are fine, other control characters are not.
pub fn parse_message(raw: &str) -> Result<String, ValidationError> {
    let bad_control = raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if raw.chars().count() > MAX_MESSAGE_LEN || bad_control {
        return Err(ValidationError::new(format!(
            "message must be at most {MAX_MESSAGE_LEN} characters, without control characters."
        )));
    }
    Ok(raw.to_owned())
}

/// The directory under which a project's asset blobs live.
pub fn asset_blob_prefix(project_id: &str) -> String {
    format!("projects/{project_id}/assets")
}

/// Where a project's asset blob lives: content addressed, per project.
pub fn asset_blob_key(project_id: &str, sha256_hex: &str) -> String {
    format!("{}/{sha256_hex}", asset_blob_prefix(project_id))
}

/// The content hash a blob key names: `…/<sha256>` or a compressed copy's
/// `…/<sha256>.br`.
pub fn blob_key_sha256(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or_default();
    name.split_once('.').map_or(name, |(sha256, _)| sha256)
}

/// Whether a blob key names a compressed copy (`…/<sha256>.br`) rather than
/// a file.
pub fn is_compressed_copy(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'))
}

/// A compressed copy of a blob, made once at publish and served to clients
/// that accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    /// Decoded by Android clients since expo-updates 56.0.14, which send
    /// `Accept-Encoding: zstd, br, gzip`.
    Zstd,
    Brotli,
    Gzip,
}

impl ContentEncoding {
    /// Every copy made at publish. Which one a client gets is the smallest
    /// stored copy it accepts, not an order of preference.
    pub const ALL: [Self; 3] = [Self::Zstd, Self::Brotli, Self::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }

    /// Where the copy of the blob at `key` is stored.
    pub fn blob_key(self, key: &str) -> String {
        let suffix = match self {
            Self::Zstd => "zst",
            Self::Brotli => "br",
            Self::Gzip => "gz",
        };
        format!("{key}.{suffix}")
    }
}

/// Whether files of this type shrink when compressed: text, JavaScript
/// (Hermes bytecode included, served as `application/javascript`), JSON and
/// SVG. Images, fonts and audio are compressed already.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "image/svg+xml"
                | "application/wasm"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_copies_name_the_blob_they_copy() {
        let key = asset_blob_key("p", "abc");
        assert_eq!(
            ContentEncoding::Brotli.blob_key(&key),
            "projects/p/assets/abc.br"
        );
        assert_eq!(
            blob_key_sha256(&ContentEncoding::Gzip.blob_key(&key)),
            "abc"
        );
        assert_eq!(blob_key_sha256(&key), "abc");
        assert!(is_compressed_copy(&ContentEncoding::Gzip.blob_key(&key)));
        assert!(!is_compressed_copy(&key));
        assert!(is_compressible("application/javascript"));
        assert!(is_compressible("image/svg+xml"));
        assert!(is_compressible("Text/Plain; charset=utf-8"));
        assert!(!is_compressible("image/png"));
        assert!(!is_compressible("font/ttf"));
    }

    #[test]
    fn paths_are_normalised_and_confined() {
        assert_eq!(
            normalize_export_path(r"_expo\static\js\ios\index-1.hbc").as_deref(),
            Ok("_expo/static/js/ios/index-1.hbc")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/\0b",
            "C:/x",
            "a/",
        ] {
            assert!(normalize_export_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn runtime_versions_are_bounded() {
        assert!(RuntimeVersion::parse("1.0.0").is_ok());
        assert!(RuntimeVersion::parse("exposdk:56.0.0").is_ok());
        assert!(RuntimeVersion::parse("1.0.0/beta").is_ok());
        for bad in [
            "",
            "1.0\n",
            &"9".repeat(256),
            ".",
            "..",
            "../etc",
            "a\\b",
            "a//b",
            "a/",
            "/a",
            "a/./b",
        ] {
            assert!(RuntimeVersion::parse(bad).is_err());
        }
    }
}
