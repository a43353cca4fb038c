//! Wanted patches in memory, answering as the SQL adapter
//! (`adapters/persistence/src/patches.rs`) does: oldest pending work
//! claimed first, a lapsed claim taken again, work claimed
//! [`MAX_PATCH_ATTEMPTS`] times without finishing marked failed, only the
//! current claimant's outcome written, and a ready patch moving the serve
//! epoch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::id::ProjectId;
use domain::patch::{MAX_PATCH_ATTEMPTS, PatchClaim, PatchKey, PatchRecord, PatchState};
use domain::ports::{PatchStore, StoreResult};

use super::store::{InMemoryStore, State, StoredPatch};

impl State {
    /// Deletes the project's patches to these bundles.
    pub(super) fn forget_patches_to(&mut self, project_id: &ProjectId, targets: &[String]) {
        self.patches.retain(|stored| {
            stored.record.key.project_id != *project_id
                || !targets.contains(&stored.record.key.target_sha256)
        });
    }

    /// Inserts the patches as pending, leaving known ones as they are.
    pub(super) fn want_patches(&mut self, patches: &[PatchKey], now: DateTime<Utc>) {
        for key in patches {
            if let Some(known) = self
                .patches
                .iter_mut()
                .find(|stored| stored.record.key == *key)
            {
                if matches!(known.record.state, PatchState::Failed { .. }) {
                    known.record.state = PatchState::Pending;
                    known.record.attempts = 0;
                    known.record.updated_at = now;
                    known.claim = None;
                }
                continue;
            }
            self.patches.push(StoredPatch {
                record: PatchRecord {
                    key: key.clone(),
                    state: PatchState::Pending,
                    attempts: 0,
                    created_at: now,
                    updated_at: now,
                },
                claim: None,
            });
        }
    }
}

fn free(stored: &StoredPatch, now: DateTime<Utc>) -> bool {
    stored.record.state == PatchState::Pending
        && stored.claim.as_ref().is_none_or(|(_, until)| *until < now)
}

#[async_trait]
impl PatchStore for InMemoryStore {
    async fn want(&self, patches: &[PatchKey], now: DateTime<Utc>) -> StoreResult<()> {
        let mut state = self.state();
        let of_existing: Vec<PatchKey> = patches
            .iter()
            .filter(|key| state.has_project(key.project_id.as_str()))
            .cloned()
            .collect();
        state.want_patches(&of_existing, now);
        Ok(())
    }

    async fn claim(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<PatchClaim>> {
        let mut state = self.state();
        for stored in &mut state.patches {
            if free(stored, now) && stored.record.attempts >= MAX_PATCH_ATTEMPTS {
                stored.record.state = PatchState::Failed {
                    error: format!("not finished after {MAX_PATCH_ATTEMPTS} attempts"),
                };
                stored.record.updated_at = now;
            }
        }
        let oldest = state
            .patches
            .iter_mut()
            .filter(|stored| free(stored, now))
            .min_by_key(|stored| stored.record.created_at);
        let Some(stored) = oldest else {
            return Ok(None);
        };
        stored.record.attempts += 1;
        stored.record.updated_at = now;
        stored.claim = Some((instance.to_owned(), until));
        Ok(Some(PatchClaim {
            key: stored.record.key.clone(),
            attempt: stored.record.attempts,
            claimed_by: instance.to_owned(),
            claimed_until: until,
        }))
    }

    async fn finish(
        &self,
        claim: &PatchClaim,
        state: &PatchState,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let finished = {
            let mut rows = self.state();
            let held = rows.patches.iter_mut().find(|stored| {
                stored.record.key == claim.key
                    && stored.record.attempts == claim.attempt
                    && stored
                        .claim
                        .as_ref()
                        .is_some_and(|(by, _)| *by == claim.claimed_by)
            });
            match held {
                Some(stored) => {
                    stored.record.state = state.clone();
                    stored.record.updated_at = now;
                    stored.claim = None;
                    true
                }
                None => false,
            }
        };
        self.served_change(finished && matches!(state, PatchState::Ready { .. }));
        Ok(finished)
    }

    async fn patches_to(
        &self,
        project_id: &ProjectId,
        target_sha256: &str,
    ) -> StoreResult<Vec<PatchRecord>> {
        let mut found: Vec<PatchRecord> = self
            .state()
            .patches
            .iter()
            .filter(|stored| {
                stored.record.key.project_id == *project_id
                    && stored.record.key.target_sha256 == target_sha256
            })
            .map(|stored| stored.record.clone())
            .collect();
        found.sort_by_key(|record| record.created_at);
        Ok(found)
    }
}
