//! The bundle-diffing service: what it holds and counts. Its work is split
//! by job: `plan` (what a publish wants), `worker` (computing one patch),
//! `status` (what people see).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::blob::BlobStore;
use domain::patch::PatchPolicy;
use domain::ports::{MemberStore, PatchStore, UpdateStore};

use crate::audit::AuditLog;

/// The patches wanted and made, and the work of making them.
pub struct PatchService {
    pub(super) members: Arc<dyn MemberStore>,
    pub(super) updates: Arc<dyn UpdateStore>,
    pub(super) patches: Arc<dyn PatchStore>,
    pub(super) blobs: Arc<dyn BlobStore>,
    pub(super) audit: AuditLog,
    pub(super) policy: PatchPolicy,
    /// Names this instance's claims.
    pub(super) instance_id: String,
    /// Rung when a publish wants patches, so idle workers start at once
    /// instead of at their next poll.
    pub(super) wanted: tokio::sync::Notify,
    pub(super) counts: PatchCounts,
}

/// What this instance's workers did since start-up.
#[derive(Debug, Default)]
pub(super) struct PatchCounts {
    pub(super) ready: AtomicU64,
    pub(super) not_worth_it: AtomicU64,
    pub(super) failed: AtomicU64,
}

/// [`PatchService::counts`]: patches this instance computed since start-up,
/// by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatchCounters {
    /// Stored and served.
    pub ready: u64,
    /// Computed, but not small enough to serve.
    pub not_worth_it: u64,
    /// Given up on (a bundle gone, too large, or a patch that did not
    /// rebuild its target).
    pub failed: u64,
}

impl PatchService {
    pub fn new(
        members: Arc<dyn MemberStore>,
        updates: Arc<dyn UpdateStore>,
        patches: Arc<dyn PatchStore>,
        blobs: Arc<dyn BlobStore>,
        audit: AuditLog,
        policy: PatchPolicy,
    ) -> Self {
        Self {
            members,
            updates,
            patches,
            blobs,
            audit,
            policy,
            instance_id: uuid::Uuid::now_v7().to_string(),
            wanted: tokio::sync::Notify::new(),
            counts: PatchCounts::default(),
        }
    }

    pub fn policy(&self) -> PatchPolicy {
        self.policy
    }

    /// Waits until a publish on this instance wants patches (or returns at
    /// once if one did since the last wait).
    pub async fn work_wanted(&self) {
        self.wanted.notified().await;
    }

    pub fn counts(&self) -> PatchCounters {
        PatchCounters {
            ready: self.counts.ready.load(Ordering::Relaxed),
            not_worth_it: self.counts.not_worth_it.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }
}
