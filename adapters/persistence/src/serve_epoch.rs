//! The serve epoch: a number that changes whenever anything a device could be
//! served changes (a publish, a rollout, a channel, a deletion), in this
//! instance at once and in every instance sharing the database within
//! [`POLL_INTERVAL`].
//!
//! Once such a change has committed, it bumps a one-row counter
//! (`serve_epoch`) and the local counter. A background task
//! polls the row and bumps the local counter when another instance moved it.
//! Caches key their entries by the local value, so a change makes every
//! older entry unreachable; no entry is ever patched in place.

use std::sync::Arc;
use std::time::Duration;

use domain::ports::StoreError;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement};

use crate::SqlStore;
use crate::epoch_counter::POLL_INTERVAL;
use crate::errors::store_error;

const BUMP: &str = "UPDATE serve_epoch SET value = value + 1 WHERE id = 1 RETURNING value";
const READ: &str = "SELECT value FROM serve_epoch WHERE id = 1";

/// Bumps the shared counter and returns its new value.
async fn bump_shared(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    first_value(db, BUMP).await
}

async fn read_shared(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    first_value(db, READ).await
}

async fn first_value(db: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await?;
    match row {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Err(DbErr::RecordNotFound("serve_epoch".to_owned())),
    }
}

impl domain::ports::ServeEpoch for SqlStore {
    fn current(&self) -> u64 {
        self.epoch.get()
    }
}

impl SqlStore {
    /// Commits a write transaction and, when it `changed` what devices are
    /// served, announces it. Returns `changed`.
    ///
    /// Announced even when the commit reports an error: a dropped connection
    /// may have committed all the same, and a needless invalidation costs
    /// one reload.
    pub(crate) async fn commit_served_change(
        &self,
        txn: DatabaseTransaction,
        changed: bool,
    ) -> Result<bool, StoreError> {
        let committed = txn.commit().await;
        if changed {
            self.announce_change();
        }
        committed.map_err(store_error)?;
        Ok(changed)
    }

    /// Tells this instance and (through the shared counter) every other one
    /// that a committed change altered what is served.
    ///
    /// The local epoch moves at once, with no `.await` between the commit
    /// and it, so a cancelled request cannot skip it. The shared counter is
    /// bumped in a task of its own, retried on failure, and in its own
    /// statement: bumped inside the change's transaction, the one row would
    /// serialise every project's publishes on PostgreSQL; bumped after, a
    /// reader elsewhere that loaded the old state did so under an epoch the
    /// bump retires. A crash between commit and bump leaves other instances
    /// stale until the next change or the next start of any instance (which
    /// bumps it too).
    pub(crate) fn announce_change(&self) {
        self.epoch.advance(None);
        let store = self.clone();
        tokio::spawn(async move { store.bump_until_done().await });
    }

    /// Tells every instance, and waits until the shared counter moved: for
    /// a process that is about to exit (an import), whose spawned
    /// announcements could otherwise die with it.
    pub async fn announce_now(&self) {
        self.bump_until_done().await;
    }

    /// At start-up, awaited: other instances learn that whatever a crashed
    /// instance committed without announcing may be in the database.
    pub(crate) async fn announce_start(&self) {
        self.bump_until_done().await;
    }

    async fn bump_until_done(&self) {
        for retry_after_ms in [100, 500, 2_000, 5_000, 0] {
            match bump_shared(&self.db).await {
                Ok(value) => return self.epoch.own_bump(value),
                Err(error) => {
                    tracing::warn!(%error, retry_after_ms, "bumping the serve epoch failed");
                    tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
                }
            }
        }
        tracing::error!(
            "gave up bumping the serve epoch: other instances may serve a stale answer until the next change"
        );
    }

    /// Follows other instances' changes until the process ends: reads the
    /// shared counter every [`POLL_INTERVAL`] and advances the local epoch
    /// when it moved. A failed read is logged and retried; a cache may then
    /// serve an older answer for as long as the database is unreachable,
    /// which is also when nothing can change.
    pub async fn follow_changes(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match read_shared(&self.db).await {
                Ok(value) => self.epoch.observe(value),
                Err(error) => tracing::warn!(%error, "reading the serve epoch failed"),
            }
        }
    }
}
