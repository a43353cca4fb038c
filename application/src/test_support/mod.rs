//! In-memory fakes of the ports, for tests of the application's rules
//! without a database, a disk or a private key (feature `test-support`).
//!
//! - [`InMemoryStore`]: one value implementing the store ports the serving,
//!   release, publish and insight services take ([`ProjectStore`],
//!   [`MemberStore`], [`UserStore`], [`UpdateStore`] with its
//!   [`ReferenceLock`], [`ChannelStore`], [`AuditStore`], [`InsightStore`],
//!   [`SigningKeyStore`]) and the [`ServeEpoch`] their writes move.
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
//! rollout, deletion, prune, channel, signing key, project deletion). Ids
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
//! [`ServeEpoch`]: domain::ports::ServeEpoch
//! [`BlobStore`]: domain::blob::BlobStore
//! [`ManifestSigner`]: domain::ports::ManifestSigner

mod blobs;
mod channels;
mod fixtures;
mod records;
mod signer;
mod signing;
mod updates;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::audit::AuditEvent;
use domain::insights::InsightCounts;
use domain::member::Membership;
use domain::ports::ServeEpoch;
use domain::project::Project;
use domain::release::Channel;
use domain::signing_key::SigningKey;
use domain::update::Update;
use domain::user::User;

pub use blobs::InMemoryBlobs;
pub use fixtures::{ASSET_BASE_URL, Harness, TestPublish, ordered_id, test_user};
pub use signer::FakeSigner;
pub use signing::{FakeKeySealer, FakeSigningKeys};

/// Every store port in memory, sharing one state (see the module docs).
/// Cloning shares the store.
#[derive(Clone, Default)]
pub struct InMemoryStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The serve epoch: moved after every write that changes what is served.
    epoch: AtomicU64,
    /// Per project: held by a [`ReferenceLock`](domain::ports::ReferenceLock)
    /// until it commits or is dropped.
    reference_locks: Mutex<HashMap<String, Arc<futures_util::lock::Mutex<()>>>>,
}

/// The rows, as the database holds them.
#[derive(Default)]
struct State {
    users: Vec<User>,
    projects: Vec<Project>,
    members: Vec<Membership>,
    /// With their assets.
    updates: Vec<Update>,
    channels: Vec<Channel>,
    audit: Vec<AuditEvent>,
    /// (instance id, counts) rows.
    insights: Vec<(String, InsightCounts)>,
    signing_keys: Vec<SigningKey>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces a committed change to what is served.
    fn served_change(&self, changed: bool) -> bool {
        if changed {
            self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    /// Every stored update (with assets), in insertion order.
    pub fn updates(&self) -> Vec<Update> {
        self.state().updates.clone()
    }

    /// Every stored channel mapping.
    pub fn channels(&self) -> Vec<Channel> {
        self.state().channels.clone()
    }

    /// The audit actions recorded for a project, oldest first.
    pub fn audit_actions(&self, project_id: &str) -> Vec<String> {
        self.state()
            .audit
            .iter()
            .filter(|event| event.project_id == project_id)
            .map(|event| event.action.clone())
            .collect()
    }

    /// The audit events recorded for a project, oldest first.
    pub fn audit_events(&self, project_id: &str) -> Vec<AuditEvent> {
        self.state()
            .audit
            .iter()
            .filter(|event| event.project_id == project_id)
            .cloned()
            .collect()
    }

    /// Every insight row written, with the instance that wrote it.
    pub fn insight_rows(&self) -> Vec<(String, InsightCounts)> {
        self.state().insights.clone()
    }
}

impl ServeEpoch for InMemoryStore {
    fn current(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }
}
