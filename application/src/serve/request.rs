//! What a device asks for, as typed values: the HTTP adapter reads headers
//! and query parameters once into these, and the serving rules never see
//! raw text.

use std::ops::Range;

use domain::id::{ProjectId, UpdateId};
use domain::release::ChannelName;
use domain::update::{ContentEncoding, Platform, RuntimeVersion};

/// The protocol versions the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    V0,
    V1,
}

/// What `expo-expect-signature` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureRequest {
    /// No header: the answer is not signed.
    NotRequested,
    /// A signature by whichever key signs for the project.
    AnyKey,
    /// A signature by the key with this `keyid`.
    Key(String),
}

/// An update check.
#[derive(Debug, Clone)]
pub struct ManifestRequest {
    pub project_id: ProjectId,
    pub platform: Platform,
    pub runtime_version: RuntimeVersion,
    /// `expo-channel-name`; the `main` channel when absent.
    pub channel: ChannelName,
    pub protocol: ProtocolVersion,
    /// `expo-current-update-id`, lower-cased: a manifest id.
    pub current_update_id: Option<String>,
    /// `expo-embedded-update-id`, lower-cased.
    pub embedded_update_id: Option<String>,
    pub signature: SignatureRequest,
    /// `Expo-Recent-Failed-Update-IDs`: updates that failed to launch on
    /// the device recently (manifest ids).
    pub failed_update_ids: Vec<String>,
    /// `Expo-Fatal-Error` was sent: the update the device runs crashed.
    pub fatal_error: bool,
    /// `EAS-Client-ID`: places the device in or out of rollouts.
    pub client_id: Option<String>,
    /// Whether the response can carry directives (multipart); JSON-only
    /// clients can only be given a manifest.
    pub directives_allowed: bool,
}

/// Which file an asset request names.
#[derive(Debug, Clone)]
pub enum AssetTarget {
    /// The immutable form manifests use: an update and a file path.
    OfUpdate { update_id: UpdateId, path: String },
    /// The old server's form: the latest update for a runtime and platform.
    Latest {
        runtime_version: RuntimeVersion,
        platform: Platform,
        path: String,
    },
}

/// A download: which file, and the conditions HTTP puts on the answer.
#[derive(Debug, Clone)]
pub struct AssetRequest {
    pub project_id: ProjectId,
    pub target: AssetTarget,
    pub accepted_encodings: AcceptedEncodings,
    /// A single byte range (`Range: bytes=…`), when one was asked for in a
    /// form the server honours.
    pub range: Option<ByteRange>,
    /// `If-Range`: the range is served only if this names the file itself.
    pub if_range: Option<String>,
    pub if_none_match: IfNoneMatch,
    /// `HEAD`: the same answer without a body, and not a download.
    pub head_only: bool,
    /// `A-IM: bsdiff` with a base: the client takes a patch instead of the
    /// launch bundle.
    pub patch: Option<PatchRequest>,
}

/// What a client that takes bundle patches (`A-IM: bsdiff`) says about
/// the update it runs and the one it downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRequest {
    /// `Expo-Current-Update-ID`, lower-cased: the manifest id of the update
    /// the device runs, whose bundle the patch applies to.
    pub base_manifest_id: String,
    /// `Expo-Requested-Update-ID`, lower-cased: the manifest id of the
    /// update being downloaded (an asset URL need not name it).
    pub requested_manifest_id: Option<String>,
}

/// The content codings a client accepts (`Accept-Encoding`, q > 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptedEncodings {
    zstd: bool,
    brotli: bool,
    gzip: bool,
}

impl AcceptedEncodings {
    pub fn accept(&mut self, encoding: ContentEncoding) {
        match encoding {
            ContentEncoding::Zstd => self.zstd = true,
            ContentEncoding::Brotli => self.brotli = true,
            ContentEncoding::Gzip => self.gzip = true,
        }
    }

    pub fn accepts(self, encoding: ContentEncoding) -> bool {
        match encoding {
            ContentEncoding::Zstd => self.zstd,
            ContentEncoding::Brotli => self.brotli,
            ContentEncoding::Gzip => self.gzip,
        }
    }
}

/// `If-None-Match` (RFC 9110 §13.1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IfNoneMatch {
    #[default]
    Absent,
    /// `*`: any representation matches.
    Any,
    /// The entity tags listed, weak ones with `W/` removed (the comparison
    /// is weak).
    Tags(Vec<String>),
}

impl IfNoneMatch {
    pub fn matches(&self, etag: &str) -> bool {
        match self {
            Self::Absent => false,
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|tag| tag == etag),
        }
    }
}

/// One byte range as a `Range` header writes it, before the file's size is
/// known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-` or `bytes=first-last` (`last` ≥ `first`).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// A range that cannot be served: 416.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

impl ByteRange {
    /// The window of a file of `size` bytes this range selects.
    pub fn window(self, size: u64) -> Result<Range<u64>, Unsatisfiable> {
        let window = match self {
            Self::Suffix(0) => return Err(Unsatisfiable),
            Self::Suffix(n) => size.saturating_sub(n)..size,
            Self::From { first, last } => {
                let end = last.map_or(size, |last| last.saturating_add(1).min(size));
                first..end
            }
        };
        if window.start >= size || window.is_empty() {
            return Err(Unsatisfiable);
        }
        Ok(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let from = |first, last| ByteRange::From { first, last };
        assert_eq!(from(0, Some(9)).window(100), Ok(0..10));
        assert_eq!(from(90, None).window(100), Ok(90..100));
        assert_eq!(ByteRange::Suffix(10).window(100), Ok(90..100));
        assert_eq!(ByteRange::Suffix(1000).window(100), Ok(0..100));
        assert_eq!(from(50, Some(1000)).window(100), Ok(50..100));
        assert_eq!(from(100, None).window(100), Err(Unsatisfiable));
        assert_eq!(ByteRange::Suffix(0).window(100), Err(Unsatisfiable));
    }

    #[test]
    fn if_none_match_is_weak() {
        let tags = IfNoneMatch::Tags(vec!["\"x\"".to_owned(), "\"abc\"".to_owned()]);
        assert!(tags.matches("\"abc\""));
        assert!(!tags.matches("\"abd\""));
        assert!(IfNoneMatch::Any.matches("\"abc\""));
        assert!(!IfNoneMatch::Absent.matches("\"abc\""));
    }
}
