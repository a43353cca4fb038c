//! Use cases of expo-updates-server: accounts, projects, members and API keys.
//!
//! Each service takes the domain's ports as trait objects, validates what a
//! client sent through the domain constructors, decides who may do what, and
//! returns an [`AppError`] whose variant says which HTTP class it belongs to.

pub mod access;
pub mod accounts;
pub mod api_keys;
pub mod audit;
mod blob_bytes;
mod bounded_cache;
pub mod bsdiff;
pub mod bundle_diffing;
pub mod error;
pub mod go_import;
mod ids;
pub mod insights;
pub mod members;
mod precompress;
pub mod projects;
pub mod publish;
pub mod releases;
pub mod retention;
pub mod serve;
mod services;
pub mod signing_keys;
pub mod storage_gc;
#[cfg(feature = "test-support")]
pub mod test_support;
mod timeline;

pub use access::Caller;
pub use accounts::{AccountService, Registration, RegistrationPolicy, Session};
pub use api_keys::{ApiKeyService, CreatedApiKey};
pub use audit::{AuditLog, AuditPage, AuditService};
pub use bundle_diffing::{EmbeddedUpload, PatchCounters, PatchService};
pub use error::{AppError, AppResult};
pub use insights::{
    AutoHalt, InsightRecorder, InsightService, InsightSummary, LaunchDelivery, UpdateInsights,
};
pub use members::{MemberRef, MemberService};
pub use projects::{ProjectChanges, ProjectService};
pub use publish::{
    FormText, PartKind, PublishService, Published, RepublishRequest, RollbackRequest, UploadPart,
    UploadParts,
};
pub use releases::{
    BranchSummary, ChannelChange, HistoryPage, HistoryRequest, NewChannel, Patch, ReleaseService,
    UpdateGroup,
};
pub use retention::Retention;
pub use serve::{
    AcceptedEncodings, AssetAnswer, AssetRequest, AssetTarget, ByteRange, IfNoneMatch,
    ManifestAnswer, ManifestRequest, PatchRequest, ProtocolVersion, Representation, ServeService,
    ServedManifest, SignatureRequest, SignedBody,
};
pub use services::{ServiceSet, Services};
pub use signing_keys::{Keyring, NewSigningKey, ProjectSigners, SigningKeyService};
pub use storage_gc::{GarbageCollector, GcReport};
pub use timeline::{PatchesPage, TimelinePage};
