//! In-memory fakes of the ports, for tests of the application's rules
//! without a database, a disk or a private key (feature `test-support`).
//!
//! - [`InMemoryStore`]: one value implementing the store ports the serving,
//!   release, publish and insight services take ([`ProjectStore`],
//!   [`MemberStore`], [`UserStore`], [`UpdateStore`] with its
//!   [`ReferenceLock`], [`ChannelStore`], [`AuditStore`], [`InsightStore`],
//!   [`SigningKeyStore`], [`PatchStore`]) and the [`ServeEpoch`] their
//!   writes move.
//! - [`InMemoryBlobs`]: a [`BlobStore`] in memory, with real digests.
//! - [`FakeSigner`]: a [`ManifestSigner`] whose signature is a pure function
//!   of the key id and the bytes, and which counts its calls;
//!   [`FakeKeySealer`] and [`FakeSigningKeys`] open projects' stored keys
//!   into such signers, for a [`Keyring`](crate::Keyring).
//! - [`TestPublish`], [`Harness`] and [`ordered_id`]: real-shaped updates
//!   and the services wired over the fakes.
//!
//! The fakes mirror the SQL adapter's answers (`adapters/persistence`):
//! the same rows, in the same order, with the same `Ok(false)`, `Conflict`
//! and `ProjectGone` refusals, and the serve epoch moving, after the write,
//! on exactly the writes that change what devices are served (publish,
//! rollout, deletion, prune, channel, signing key, project deletion, a
//! ready patch). Ids
//! are compared as text, as the database compares them, so "newest" is the
//! greatest id ([`ordered_id`] hands out ids in order). Each method is
//! atomic (one mutex guards all of the state), and a reference lock holds
//! off the project's other publishes until it commits or is dropped. What
//! they do not model: other server instances (the epoch is local), crashes
//! between a commit and the epoch bump, backend failures, and API keys (no
//! such store here).
//!
//! [`ProjectStore`]: domain::ports::ProjectStore
//! [`MemberStore`]: domain::ports::MemberStore
//! [`UserStore`]: domain::ports::UserStore
//! [`UpdateStore`]: domain::ports::UpdateStore
//! [`ReferenceLock`]: domain::ports::ReferenceLock
//! [`ChannelStore`]: domain::ports::ChannelStore
//! [`AuditStore`]: domain::ports::AuditStore
//! [`InsightStore`]: domain::ports::InsightStore
//! [`SigningKeyStore`]: domain::ports::SigningKeyStore
//! [`PatchStore`]: domain::ports::PatchStore
//! [`ServeEpoch`]: domain::ports::ServeEpoch
//! [`BlobStore`]: domain::blob::BlobStore
//! [`ManifestSigner`]: domain::ports::ManifestSigner

mod blobs;
mod channels;
mod fixtures;
mod ids;
mod patches;
mod records;
mod signer;
mod signing;
mod store;
mod updates;

pub use blobs::InMemoryBlobs;
pub use fixtures::{ASSET_BASE_URL, Harness, TestPublish};
pub use ids::{ordered_id, test_user};
pub use signer::FakeSigner;
pub use signing::{FakeKeySealer, FakeSigningKeys};
pub use store::InMemoryStore;
