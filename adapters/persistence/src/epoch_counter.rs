//! The local serve-epoch counter of one instance (what the caches key by)
//! and how often it follows the shared one; `serve_epoch` announces and
//! polls changes through it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// How often the shared counter is read: instances agree within this (plus
/// one query) after a change.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The local side of the epoch, shared by clones of one [`SqlStore`](crate::SqlStore).
#[derive(Debug, Default)]
pub(crate) struct LocalEpoch {
    local: AtomicU64,
    /// The highest shared value whose changes the local epoch covers: this
    /// instance's own bumps need no second invalidation by the poller.
    shared_seen: AtomicI64,
}

impl LocalEpoch {
    pub(crate) fn get(&self) -> u64 {
        self.local.load(Ordering::Acquire)
    }

    /// Called after a change committed (never before, or a reader could
    /// cache the old state under the new epoch), with the shared value it
    /// was announced as, when known. Every change counted up to that value
    /// committed before, so the new local epoch covers them all.
    pub(crate) fn advance(&self, shared: Option<i64>) {
        if let Some(shared) = shared {
            self.shared_seen.fetch_max(shared, Ordering::AcqRel);
        }
        self.local.fetch_add(1, Ordering::AcqRel);
    }

    /// This instance's own bump returned `shared`; its change is covered
    /// already. When no other instance bumped since the last value seen,
    /// that is all; otherwise their changes, committed before this bump,
    /// need one more advance.
    pub(crate) fn own_bump(&self, shared: i64) {
        let only_this_one = self
            .shared_seen
            .compare_exchange(shared - 1, shared, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !only_this_one {
            self.advance(Some(shared));
        }
    }

    /// The poller read `shared`: advances when it is news. A counter that
    /// went back (a database restored from a backup) is followed from its
    /// new value.
    pub(crate) fn observe(&self, shared: i64) {
        let seen = self.shared_seen.load(Ordering::Acquire);
        if shared > seen {
            self.advance(Some(shared));
        } else if shared < seen {
            self.shared_seen.store(shared, Ordering::Release);
            self.advance(None);
        }
    }
}
