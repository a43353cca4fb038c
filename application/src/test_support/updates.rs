//! Updates in memory, answering as the SQL adapter
//! (`adapters/persistence/src/updates.rs`) does: the same rows in the same
//! order, ids and platforms compared as the database compares their text,
//! and the serve epoch moved by the same writes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::embedded::{EmbeddedBundle, EmbeddedUpdateId};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::patch::PatchKey;
use domain::ports::{
    Constraint, HistoryQuery, KnownFile, ReferenceLock, StoreError, StoreResult, UpdateStore,
    UpdateStream,
};
use domain::release::{BranchName, RolloutCandidate, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update};
use futures_util::lock::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::store::{InMemoryStore, State};

/// The most partial rollouts stacked on a branch that are considered (as
/// in the SQL adapter).
const MAX_CANDIDATES: usize = 200;

/// The most rows `runtime_versions` reads (as in the SQL adapter).
const MAX_RUNTIME_VERSION_ROWS: usize = 1000;

fn in_stream(
    update: &Update,
    project_id: &ProjectId,
    branch: &BranchName,
    runtime_version: &RuntimeVersion,
    platform: Platform,
) -> bool {
    update.project_id == *project_id
        && update.branch == *branch
        && update.runtime_version == *runtime_version
        && update.platform == platform
}

/// A row as queries without assets return it.
fn without_assets(update: &Update) -> Update {
    Update {
        assets: Vec::new(),
        ..update.clone()
    }
}

impl State {
    /// Newest first: every update down to and including the newest fully
    /// rolled-out one (all of them when none is), at most
    /// [`MAX_CANDIDATES`].
    fn candidates(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
    ) -> Vec<RolloutCandidate> {
        let stream: Vec<&Update> = self
            .updates
            .iter()
            .filter(|u| in_stream(u, project_id, branch, runtime_version, platform))
            .collect();
        let floor = stream
            .iter()
            .filter(|u| u.rollout.is_complete())
            .map(|u| u.id.as_str())
            .max();
        let mut rows: Vec<&Update> = stream
            .into_iter()
            .filter(|u| floor.is_none_or(|floor| u.id.as_str() >= floor))
            .collect();
        rows.sort_by(|a, b| b.id.cmp(&a.id));
        rows.truncate(MAX_CANDIDATES);
        rows.into_iter()
            .map(|u| RolloutCandidate {
                id: u.id.clone(),
                publish_id: u.publish_id.clone(),
                rollout: u.rollout,
            })
            .collect()
    }
}

/// A transaction holding a project's reference lock: other publishes of
/// the project wait in `lock_references` until it commits or is dropped.
/// Its inserts become visible together at `commit`, or never.
struct MemoryReferenceLock {
    store: InMemoryStore,
    project_id: ProjectId,
    pending: Vec<Update>,
    pending_patches: Vec<PatchKey>,
    pending_since: Option<DateTime<Utc>>,
    /// Bundles whose patches this transaction forgets.
    forgotten: Vec<String>,
    /// Embedded bundles put (`Ok`) or deleted (`Err`, by id), in order.
    embedded: Vec<Result<EmbeddedBundle, EmbeddedUpdateId>>,
    _held: OwnedMutexGuard<()>,
}

#[async_trait]
impl ReferenceLock for MemoryReferenceLock {
    /// Committed updates' blobs and this transaction's own.
    async fn referenced_blobs(&mut self) -> StoreResult<HashSet<String>> {
        let state = self.store.state();
        Ok(state
            .updates
            .iter()
            .filter(|u| u.project_id == self.project_id)
            .chain(&self.pending)
            .flat_map(|u| &u.assets)
            .map(|asset| asset.sha256_hex.clone())
            .chain(
                state
                    .embedded
                    .iter()
                    .filter(|bundle| bundle.project_id == self.project_id)
                    .map(|bundle| bundle.sha256_hex.clone()),
            )
            .collect())
    }

    /// `Conflict(Record)` for an update id already stored.
    async fn insert_publish(&mut self, updates: &[Update]) -> StoreResult<()> {
        let state = self.store.state();
        for update in updates {
            let taken = state
                .updates
                .iter()
                .chain(&self.pending)
                .any(|u| u.id == update.id);
            if taken {
                return Err(StoreError::Conflict(Constraint::Record));
            }
            self.pending.push(update.clone());
        }
        Ok(())
    }

    async fn want_patches(&mut self, patches: &[PatchKey], now: DateTime<Utc>) -> StoreResult<()> {
        self.pending_patches.extend_from_slice(patches);
        self.pending_since = Some(now);
        Ok(())
    }

    async fn forget_patches_to(&mut self, target_sha256s: &[String]) -> StoreResult<()> {
        self.forgotten.extend_from_slice(target_sha256s);
        Ok(())
    }

    async fn put_embedded_bundle(&mut self, bundle: &EmbeddedBundle) -> StoreResult<()> {
        self.embedded.push(Ok(bundle.clone()));
        Ok(())
    }

    async fn delete_embedded_bundle(&mut self, update_id: &EmbeddedUpdateId) -> StoreResult<bool> {
        let mut present =
            self.store.state().embedded.iter().any(|bundle| {
                bundle.project_id == self.project_id && bundle.update_id == *update_id
            });
        for change in &self.embedded {
            match change {
                Ok(bundle) if bundle.update_id == *update_id => present = true,
                Err(id) if id == update_id => present = false,
                _ => {}
            }
        }
        self.embedded.push(Err(update_id.clone()));
        Ok(present)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let Self {
            store,
            project_id,
            pending,
            pending_patches,
            pending_since,
            forgotten,
            embedded,
            ..
        } = *self;
        let changed = !pending.is_empty() || !embedded.is_empty();
        {
            let mut state = store.state();
            for change in embedded {
                let id = match &change {
                    Ok(bundle) => bundle.update_id.clone(),
                    Err(id) => id.clone(),
                };
                state
                    .embedded
                    .retain(|bundle| bundle.project_id != project_id || bundle.update_id != id);
                if let Ok(bundle) = change {
                    state.embedded.push(bundle);
                }
            }
            state.updates.extend(pending);
            if let Some(now) = pending_since {
                state.want_patches(&pending_patches, now);
            }
            state.forget_patches_to(&project_id, &forgotten);
        }
        store.served_change(changed);
        Ok(())
    }
}

#[async_trait]
impl UpdateStore for InMemoryStore {
    /// `ProjectGone` when the project does not exist.
    async fn lock_references(&self, project_id: &ProjectId) -> StoreResult<Box<dyn ReferenceLock>> {
        let lock = {
            let mut locks = self
                .shared
                .reference_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(project_id.to_string()).or_default())
        };
        let held = AsyncMutex::lock_owned(lock).await;
        if !self.state().has_project(project_id.as_str()) {
            return Err(StoreError::ProjectGone);
        }
        Ok(Box::new(MemoryReferenceLock {
            store: self.clone(),
            project_id: project_id.clone(),
            pending: Vec::new(),
            pending_patches: Vec::new(),
            pending_since: None,
            forgotten: Vec::new(),
            embedded: Vec::new(),
            _held: held,
        }))
    }

    async fn candidates(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
    ) -> StoreResult<Vec<RolloutCandidate>> {
        Ok(self
            .state()
            .candidates(project_id, branch, runtime_version, platform))
    }

    async fn find(
        &self,
        project_id: &ProjectId,
        update_id: &UpdateId,
    ) -> StoreResult<Option<Update>> {
        Ok(self
            .state()
            .updates
            .iter()
            .find(|u| u.project_id == *project_id && u.id == *update_id)
            .cloned())
    }

    /// By platform name (`android` before `ios`), with assets.
    async fn find_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<Vec<Update>> {
        let mut found: Vec<Update> = self
            .state()
            .updates
            .iter()
            .filter(|u| u.project_id == *project_id && u.publish_id == *publish_id)
            .cloned()
            .collect();
        found.sort_by_key(|u| u.platform.as_str());
        Ok(found)
    }

    /// Newest publish first, then by platform name; without assets.
    async fn history(
        &self,
        project_id: &ProjectId,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<Update>> {
        let state = self.state();
        let mut rows: Vec<&Update> = state
            .updates
            .iter()
            .filter(|u| u.project_id == *project_id)
            .filter(|u| query.branch.as_ref().is_none_or(|b| u.branch == *b))
            .filter(|u| {
                (query.runtime_version.as_ref())
                    .is_none_or(|rv| u.runtime_version.as_str() == rv.as_str())
            })
            .filter(|u| query.platform.is_none_or(|p| u.platform == p))
            .filter(|u| (query.before_publish.as_ref()).is_none_or(|before| u.publish_id < *before))
            .collect();
        rows.sort_by(|a, b| {
            (b.publish_id.as_str(), a.platform.as_str())
                .cmp(&(a.publish_id.as_str(), b.platform.as_str()))
        });
        rows.truncate(usize::try_from(query.limit_rows).unwrap_or(usize::MAX));
        Ok(rows.into_iter().map(without_assets).collect())
    }

    /// The greatest id per (branch, runtime version, platform); by branch,
    /// then newest first, then platform (the adapter's own sort).
    async fn branch_heads(&self, project_id: &ProjectId) -> StoreResult<Vec<Update>> {
        let state = self.state();
        let mut newest: HashMap<(&str, &str, Platform), &Update> = HashMap::new();
        for update in state.updates.iter().filter(|u| u.project_id == *project_id) {
            let key = (
                update.branch.as_str(),
                update.runtime_version.as_str(),
                update.platform,
            );
            let head = newest.entry(key).or_insert(update);
            if update.id > head.id {
                *head = update;
            }
        }
        let mut heads: Vec<Update> = newest.into_values().map(without_assets).collect();
        heads.sort_by(|a, b| {
            (a.branch.as_str(), b.id.as_str(), a.platform).cmp(&(
                b.branch.as_str(),
                a.id.as_str(),
                b.platform,
            ))
        });
        Ok(heads)
    }

    async fn set_rollout(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
        rollout: RolloutPercentage,
    ) -> StoreResult<bool> {
        let mut state = self.state();
        let mut changed = false;
        for update in state
            .updates
            .iter_mut()
            .filter(|u| u.project_id == *project_id && u.publish_id == *publish_id)
        {
            update.rollout = rollout;
            changed = true;
        }
        Ok(self.served_change(changed))
    }

    async fn delete_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<bool> {
        let mut state = self.state();
        let before = state.updates.len();
        state
            .updates
            .retain(|u| !(u.project_id == *project_id && u.publish_id == *publish_id));
        Ok(self.served_change(state.updates.len() < before))
    }

    /// Deletes beyond the newest `keep`, never a candidate; returns the
    /// deleted ids, newest first. Nothing when the project is gone.
    async fn prune(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        keep: u64,
    ) -> StoreResult<Vec<UpdateId>> {
        let mut state = self.state();
        if !state.has_project(project_id.as_str()) {
            return Ok(Vec::new());
        }
        let servable: HashSet<UpdateId> = state
            .candidates(project_id, branch, runtime_version, platform)
            .into_iter()
            .map(|candidate| candidate.id)
            .collect();
        let mut ids: Vec<UpdateId> = state
            .updates
            .iter()
            .filter(|u| in_stream(u, project_id, branch, runtime_version, platform))
            .map(|u| u.id.clone())
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        let doomed: Vec<UpdateId> = ids
            .into_iter()
            .skip(usize::try_from(keep).unwrap_or(usize::MAX))
            .filter(|id| !servable.contains(id))
            .collect();
        state.updates.retain(|u| !doomed.contains(&u.id));
        self.served_change(!doomed.is_empty());
        Ok(doomed)
    }

    /// Newest first: ordered by the newest of the last 1000 rows of each.
    async fn runtime_versions(
        &self,
        project_id: &ProjectId,
        platform: Platform,
    ) -> StoreResult<Vec<RuntimeVersion>> {
        let state = self.state();
        let mut rows: Vec<&Update> = state
            .updates
            .iter()
            .filter(|u| u.project_id == *project_id && u.platform == platform)
            .collect();
        rows.sort_by(|a, b| b.id.cmp(&a.id));
        rows.truncate(MAX_RUNTIME_VERSION_ROWS);
        let mut seen = BTreeSet::new();
        Ok(rows
            .into_iter()
            .filter(|u| seen.insert(u.runtime_version.as_str()))
            .map(|u| u.runtime_version.clone())
            .collect())
    }

    /// Distinct streams, in no particular order in SQL; sorted here.
    async fn streams(&self) -> StoreResult<Vec<UpdateStream>> {
        let key = |s: &UpdateStream| {
            (
                s.project_id.clone(),
                s.branch.as_str().to_owned(),
                s.runtime_version.clone(),
                s.platform.as_str(),
            )
        };
        let mut seen = BTreeSet::new();
        let mut streams: Vec<UpdateStream> = self
            .state()
            .updates
            .iter()
            .map(UpdateStream::of)
            .filter(|stream| seen.insert(key(stream)))
            .collect();
        streams.sort_by_key(key);
        Ok(streams)
    }

    async fn launch_bundle_of(
        &self,
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        manifest_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .state()
            .updates
            .iter()
            .filter(|u| {
                u.project_id == *project_id
                    && u.runtime_version == *runtime_version
                    && u.platform == platform
                    && u.manifest_id == manifest_id
            })
            .find_map(|u| u.launch_asset().map(|asset| asset.sha256_hex.clone())))
    }

    async fn embedded_bundles(&self, project_id: &ProjectId) -> StoreResult<Vec<EmbeddedBundle>> {
        let state = self.state();
        let mut found: Vec<EmbeddedBundle> = state
            .embedded
            .iter()
            .filter(|bundle| bundle.project_id == *project_id)
            .cloned()
            .collect();
        found.reverse();
        Ok(found)
    }

    async fn embedded_bundle_of(
        &self,
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        update_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .state()
            .embedded
            .iter()
            .find(|bundle| {
                bundle.project_id == *project_id
                    && bundle.runtime_version == *runtime_version
                    && bundle.platform == platform
                    && bundle.update_id.as_str() == update_id
            })
            .map(|bundle| bundle.sha256_hex.clone()))
    }

    async fn known_files(
        &self,
        project_id: &ProjectId,
        sha256_hexes: &[String],
    ) -> StoreResult<HashMap<String, KnownFile>> {
        let wanted: HashSet<&str> = sha256_hexes.iter().map(String::as_str).collect();
        Ok(self
            .state()
            .updates
            .iter()
            .filter(|u| u.project_id == *project_id)
            .flat_map(|u| &u.assets)
            .filter(|asset| wanted.contains(asset.sha256_hex.as_str()))
            .map(|asset| {
                let file = KnownFile {
                    md5_hex: asset.key.clone(),
                    size: asset.size,
                };
                (asset.sha256_hex.clone(), file)
            })
            .collect())
    }
}
