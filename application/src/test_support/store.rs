//! [`InMemoryStore`]: the state every store fake shares, and its serve epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use domain::audit::AuditEvent;
use domain::embedded::EmbeddedBundle;
use domain::insights::InsightCounts;
use domain::member::Membership;
use domain::patch::PatchRecord;
use domain::ports::ServeEpoch;
use domain::project::Project;
use domain::release::Channel;
use domain::signing_key::SigningKey;
use domain::update::Update;
use domain::user::User;

/// Every store port in memory, sharing one state (see the module docs).
/// Cloning shares the store.
#[derive(Clone, Default)]
pub struct InMemoryStore {
    pub(super) shared: Arc<Shared>,
}

#[derive(Default)]
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// The serve epoch: moved after every write that changes what is served.
    pub(super) epoch: AtomicU64,
    /// Per project: held by a [`ReferenceLock`](domain::ports::ReferenceLock)
    /// until it commits or is dropped.
    pub(super) reference_locks: Mutex<HashMap<String, Arc<futures_util::lock::Mutex<()>>>>,
}

/// The rows, as the database holds them.
#[derive(Default)]
pub(super) struct State {
    pub(super) users: Vec<User>,
    pub(super) projects: Vec<Project>,
    pub(super) members: Vec<Membership>,
    /// With their assets.
    pub(super) updates: Vec<Update>,
    pub(super) channels: Vec<Channel>,
    pub(super) audit: Vec<AuditEvent>,
    /// (instance id, counts) rows.
    pub(super) insights: Vec<(String, InsightCounts)>,
    pub(super) signing_keys: Vec<SigningKey>,
    /// Wanted patches, oldest first, with their claims.
    pub(super) patches: Vec<StoredPatch>,
    /// Uploaded embedded bundles, oldest first.
    pub(super) embedded: Vec<EmbeddedBundle>,
}

/// A patch row: the record and who holds it.
#[derive(Debug, Clone)]
pub(super) struct StoredPatch {
    pub(super) record: PatchRecord,
    pub(super) claim: Option<(String, DateTime<Utc>)>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces a committed change to what is served.
    pub(super) fn served_change(&self, changed: bool) -> bool {
        if changed {
            self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    /// Every stored update (with assets), in insertion order.
    pub fn updates(&self) -> Vec<Update> {
        self.state().updates.clone()
    }

    /// Every patch record, in any state, oldest first.
    pub fn patches(&self) -> Vec<PatchRecord> {
        self.state()
            .patches
            .iter()
            .map(|stored| stored.record.clone())
            .collect()
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
