//! What the server answers: a manifest or a directive for an update check,
//! and for a download the file (or a part, or a copy), a redirect, or "not
//! modified". Each answer says what it is, so the HTTP adapter frames it
//! and the metrics label it without looking inside.

use std::ops::Range;
use std::sync::Arc;

use domain::blob::BlobReader;
use domain::update::ContentEncoding;

/// A manifest or directive body, serialised, with its signature header.
/// Shared with the cache: serving one clones two pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    pub json: Arc<str>,
    pub signature: Option<Arc<str>>,
}

/// The answer to an update check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestAnswer {
    /// A manifest: the update to download.
    Update(SignedBody),
    /// The `noUpdateAvailable` directive (protocol 1): keep what runs.
    NoUpdateAvailable(SignedBody),
    /// The `rollBackToEmbedded` directive (protocol 1): run the update
    /// embedded in the app binary.
    RollBackToEmbedded(SignedBody),
    /// Nothing to download, for a protocol-1 client that takes only JSON
    /// and so cannot be sent a directive: `204 No Content`, which the
    /// protocol lets mean "no update".
    NoContent,
}

impl ManifestAnswer {
    /// The manifest or directive; `None` for [`Self::NoContent`].
    pub fn body(&self) -> Option<&SignedBody> {
        match self {
            Self::Update(body) | Self::NoUpdateAvailable(body) | Self::RollBackToEmbedded(body) => {
                Some(body)
            }
            Self::NoContent => None,
        }
    }

    /// The answer's name in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Update(_) => "update",
            Self::NoUpdateAvailable(_) => "noUpdateAvailable",
            Self::RollBackToEmbedded(_) => "rollBackToEmbedded",
            Self::NoContent => "noContent",
        }
    }
}

/// The answer with the branch it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedManifest {
    pub answer: ManifestAnswer,
    /// The `expo-manifest-filters` header: an SFV dictionary naming the
    /// branch, which the manifest's `metadata` matches, so clients keep only
    /// updates of this branch.
    pub manifest_filters: Arc<str>,
}

/// The answer to a download.
pub enum AssetAnswer {
    /// A BSDIFF40 patch from the update the device runs to the bundle it
    /// asked for: `226 IM Used`, never cached by anyone but the device.
    Patch {
        /// The patch's own validator.
        etag: String,
        /// `expo-base-update-id`: the base the client named, which it
        /// checks before applying the patch.
        base_update_id: String,
        body: BlobReader,
    },
    /// `If-None-Match` named this representation: 304.
    NotModified(Representation),
    /// Fetch the bytes from storage instead (a presigned URL).
    Redirect {
        location: String,
        /// Whether the URL that was asked for always names these bytes.
        immutable: bool,
        /// Whether the answer depends on `Accept-Encoding`.
        varies_by_encoding: bool,
        /// See [`Representation::varies_by_base`].
        varies_by_base: bool,
    },
    /// The bytes: the whole file or copy, or one range of the file.
    Body {
        representation: Representation,
        body: BlobReader,
        /// For a range: the window sent, and the whole file's size.
        range: Option<(Range<u64>, u64)>,
    },
    /// The range lies outside the file of this size: 416.
    RangeNotSatisfiable { size: u64 },
}

/// One representation of a file: what 200, 206 and 304 answers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    /// A strong validator: the content hash, suffixed for a compressed copy
    /// (its bytes differ).
    pub etag: String,
    pub content_type: String,
    /// The compressed copy this is, if it is one.
    pub encoding: Option<ContentEncoding>,
    /// Whether the URL always names these bytes (long, immutable caching).
    pub immutable: bool,
    /// Whether the answer depends on `Accept-Encoding`.
    pub varies_by_encoding: bool,
    /// Whether a client naming its running update could get a patch
    /// instead (`Vary: A-IM, Expo-Current-Update-ID`): a launch bundle,
    /// with bundle diffing on.
    pub varies_by_base: bool,
}
