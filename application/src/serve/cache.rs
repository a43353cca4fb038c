//! The in-memory caches behind update checks and asset requests.
//!
//! What a device is served depends on its project, channel, runtime version
//! and platform (the *stream*), and then on the device itself (rollout
//! buckets, the update it runs, protocol, signing). The stream cache holds
//! the first part, read from the store once, with every body a device could
//! get already serialised; the second part is decided per request from
//! memory. Two smaller caches hold updates by id (for downloads) and
//! projects' own signing keys.
//!
//! Entries are keyed by the serve epoch ([`ServeEpoch`]): any change to what
//! is served, in this instance or another sharing the database, moves the
//! epoch, so older entries are never read again and age out. An entry
//! loaded while a change commits is stored under the epoch read before the
//! load began, which is already stale, so it cannot outlive the change.
//!
//! Each cache is bounded in bytes; concurrent misses on one key wait for a
//! single load (no stampede on the database after a publish). A hit builds
//! no owned key: lookups go by borrowed keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use domain::id::UpdateId;
use domain::ports::ServeEpoch;
use domain::release::{BranchName, Channel, RolloutCandidate};
use domain::update::{Platform, Update};
use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use super::signed::SignedOnce;
use crate::bounded_cache::bounded_cache;
use crate::error::AppResult;
use crate::insights::UpdateCounters;
use crate::signing_keys::ProjectSigners;

/// The ready patches to one bundle: their size, by base bundle (SHA-256
/// hex).
pub(crate) type ReadyPatches = HashMap<String, u64>;

/// An update ready to be served: its record and its body.
#[derive(Debug)]
pub(crate) struct PreparedUpdate {
    pub update: Arc<Update>,
    /// The manifest, or for a rollback the `rollBackToEmbedded` directive.
    pub body: SignedOnce,
    /// Its insight counters, when insights are counted.
    pub counters: Option<Arc<UpdateCounters>>,
}

/// What one branch has for a runtime version and platform.
#[derive(Debug)]
pub(crate) struct BranchView {
    pub branch: BranchName,
    /// The `expo-manifest-filters` header naming this branch.
    pub manifest_filters: Arc<str>,
    /// Newest first, down to the newest fully rolled-out update.
    pub candidates: Vec<RolloutCandidate>,
    pub updates: HashMap<UpdateId, PreparedUpdate>,
    /// When there are no candidates: protocol 0's 404 message naming the
    /// runtime versions that do have updates (protocol 1 says "no update").
    pub no_update: Option<String>,
}

/// Everything about a stream that does not depend on the device.
#[derive(Debug)]
pub(crate) enum StreamView {
    ProjectMissing,
    Found {
        /// The channel's explicit mapping; none means the same-name branch.
        mapping: Option<Channel>,
        /// One view per branch the channel can send a device to.
        branches: Vec<BranchView>,
    },
}

impl StreamView {
    fn weight(&self) -> u64 {
        match self {
            Self::ProjectMissing => 64,
            Self::Found { branches, .. } => branches
                .iter()
                .map(|view| {
                    256 + view.no_update.as_ref().map_or(0, String::len) as u64
                        + view
                            .updates
                            .values()
                            // The record is about the size of its body.
                            .map(|prepared| 2 * prepared.body.weight())
                            .sum::<u64>()
                })
                .sum(),
        }
    }
}

/// A stream, as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StreamKey {
    epoch: u64,
    project_id: String,
    channel: String,
    runtime_version: String,
    platform: Platform,
}

/// A stream, as a request names it. Hashes exactly as [`StreamKey`] (same
/// fields, same order; `&str` hashes as `String`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StreamRef<'a> {
    pub epoch: u64,
    pub project_id: &'a str,
    pub channel: &'a str,
    pub runtime_version: &'a str,
    pub platform: Platform,
}

impl Equivalent<StreamKey> for StreamRef<'_> {
    fn equivalent(&self, key: &StreamKey) -> bool {
        self.epoch == key.epoch
            && self.platform == key.platform
            && self.project_id == key.project_id
            && self.channel == key.channel
            && self.runtime_version == key.runtime_version
    }
}

impl StreamRef<'_> {
    fn to_key(self) -> StreamKey {
        StreamKey {
            epoch: self.epoch,
            project_id: self.project_id.to_owned(),
            channel: self.channel.to_owned(),
            runtime_version: self.runtime_version.to_owned(),
            platform: self.platform,
        }
    }
}

/// A record of one project (an update by id, the project's keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RecordKey {
    epoch: u64,
    project_id: String,
    record_id: String,
}

/// A record, as a request names it; hashes as [`RecordKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RecordRef<'a> {
    pub epoch: u64,
    pub project_id: &'a str,
    pub record_id: &'a str,
}

impl Equivalent<RecordKey> for RecordRef<'_> {
    fn equivalent(&self, key: &RecordKey) -> bool {
        self.epoch == key.epoch
            && self.project_id == key.project_id
            && self.record_id == key.record_id
    }
}

impl RecordRef<'_> {
    fn to_key(self) -> RecordKey {
        RecordKey {
            epoch: self.epoch,
            project_id: self.project_id.to_owned(),
            record_id: self.record_id.to_owned(),
        }
    }
}

/// How much a cached value weighs, in bytes (roughly).
trait Weight {
    fn weight(&self) -> u64;
}

impl Weight for Arc<StreamView> {
    fn weight(&self) -> u64 {
        StreamView::weight(self)
    }
}

impl Weight for Option<Arc<Update>> {
    fn weight(&self) -> u64 {
        self.as_ref().map_or(64, |update| {
            256 + update
                .assets
                .iter()
                .map(|asset| 192 + asset.path.len() as u64 + asset.key.len() as u64)
                .sum::<u64>()
        })
    }
}

impl Weight for Arc<ProjectSigners> {
    fn weight(&self) -> u64 {
        // An RSA key pair held by ring, with its precomputed values.
        64 + 2048 * self.len() as u64
    }
}

impl Weight for Option<Arc<str>> {
    fn weight(&self) -> u64 {
        32 + self.as_ref().map_or(0, |text| text.len() as u64)
    }
}

impl Weight for Arc<ReadyPatches> {
    fn weight(&self) -> u64 {
        64 + 96 * self.len() as u64
    }
}

trait KeyWeight {
    fn key_weight(&self) -> u64;
}

impl KeyWeight for StreamKey {
    fn key_weight(&self) -> u64 {
        (self.project_id.len() + self.channel.len() + self.runtime_version.len()) as u64 + 64
    }
}

impl KeyWeight for RecordKey {
    fn key_weight(&self) -> u64 {
        (self.project_id.len() + self.record_id.len()) as u64 + 64
    }
}

#[derive(Debug, Clone)]
struct ByBytes;

impl<K: KeyWeight, V: Weight> Weighter<K, V> for ByBytes {
    fn weight(&self, key: &K, value: &V) -> u64 {
        key.key_weight() + value.weight()
    }
}

/// One cache of one kind of value, or nothing when caching is off.
struct Bounded<K, V> {
    entries: Option<Cache<K, V, ByBytes>>,
}

impl<K, V> Bounded<K, V>
where
    K: Eq + Hash + Clone + KeyWeight,
    V: Clone + Weight,
{
    /// Sixteen shards whatever the core count: enough to spread the
    /// readers, and each shard large enough for a stream with hundreds of
    /// updates (the cache refuses an entry heavier than its shard can hold
    /// beside others).
    const SHARDS: usize = 16;

    fn new(max_bytes: u64, typical_entry_bytes: u64) -> Self {
        let entries = (max_bytes > 0).then(|| {
            let items = (max_bytes / typical_entry_bytes).clamp(16, 1 << 20);
            bounded_cache(Self::SHARDS, items as usize, max_bytes, ByBytes)
        });
        Self { entries }
    }
}

/// The serving caches, their epoch, and their hit counts.
pub(crate) struct ServeCache {
    epoch: Arc<dyn ServeEpoch>,
    streams: Bounded<StreamKey, Arc<StreamView>>,
    updates: Bounded<RecordKey, Option<Arc<Update>>>,
    signers: Bounded<RecordKey, Arc<ProjectSigners>>,
    /// Launch bundles by (runtime version, platform, manifest id), and the
    /// ready patches to a bundle: what a patch download looks up.
    patch_bases: Bounded<RecordKey, Option<Arc<str>>>,
    ready_patches: Bounded<RecordKey, Arc<ReadyPatches>>,
    /// Lookups answered from memory, and lookups that read the store.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ServeCache {
    /// At most `max_bytes` in all: three quarters for streams, the rest for
    /// updates by id, signing keys and patch lookups.
    pub(crate) fn new(epoch: Arc<dyn ServeEpoch>, max_bytes: u64) -> Self {
        Self {
            epoch,
            streams: Bounded::new(max_bytes / 4 * 3, 8 * 1024),
            updates: Bounded::new(max_bytes / 5, 2 * 1024),
            signers: Bounded::new(max_bytes / 40, 2 * 1024),
            patch_bases: Bounded::new(max_bytes / 80, 256),
            ready_patches: Bounded::new(max_bytes / 80, 512),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// No cache at all: every request reads the store.
    pub(crate) fn disabled() -> Self {
        Self::new(Arc::new(NeverChanges), 0)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.current()
    }

    pub(crate) async fn stream<F>(
        &self,
        key: StreamRef<'_>,
        load: impl FnOnce() -> F,
    ) -> AppResult<Arc<StreamView>>
    where
        F: Future<Output = AppResult<Arc<StreamView>>>,
    {
        self.get_or_load(&self.streams, &key, StreamRef::to_key, load)
            .await
    }

    pub(crate) async fn update<F>(
        &self,
        key: RecordRef<'_>,
        load: impl FnOnce() -> F,
    ) -> AppResult<Option<Arc<Update>>>
    where
        F: Future<Output = AppResult<Option<Arc<Update>>>>,
    {
        self.get_or_load(&self.updates, &key, RecordRef::to_key, load)
            .await
    }

    pub(crate) async fn signers<F>(
        &self,
        key: RecordRef<'_>,
        load: impl FnOnce() -> F,
    ) -> AppResult<Arc<ProjectSigners>>
    where
        F: Future<Output = AppResult<Arc<ProjectSigners>>>,
    {
        self.get_or_load(&self.signers, &key, RecordRef::to_key, load)
            .await
    }

    pub(crate) async fn patch_base<F>(
        &self,
        key: RecordRef<'_>,
        load: impl FnOnce() -> F,
    ) -> AppResult<Option<Arc<str>>>
    where
        F: Future<Output = AppResult<Option<Arc<str>>>>,
    {
        self.get_or_load(&self.patch_bases, &key, RecordRef::to_key, load)
            .await
    }

    pub(crate) async fn ready_patches<F>(
        &self,
        key: RecordRef<'_>,
        load: impl FnOnce() -> F,
    ) -> AppResult<Arc<ReadyPatches>>
    where
        F: Future<Output = AppResult<Arc<ReadyPatches>>>,
    {
        self.get_or_load(&self.ready_patches, &key, RecordRef::to_key, load)
            .await
    }

    /// The cached value for `key`, or `load`'s, which is then cached.
    /// Concurrent callers with one key share one load; a failed load is not
    /// cached. The load's future is made and boxed only on a miss, so a hit
    /// (every update check but the first) carries none of it.
    async fn get_or_load<K, Q, V, F>(
        &self,
        cache: &Bounded<K, V>,
        key: &Q,
        to_key: fn(Q) -> K,
        load: impl FnOnce() -> F,
    ) -> AppResult<V>
    where
        K: Eq + Hash + Clone + KeyWeight,
        Q: Hash + Equivalent<K> + Copy,
        V: Clone + Weight,
        F: Future<Output = AppResult<V>>,
    {
        let Some(entries) = &cache.entries else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Box::pin(load()).await;
        };
        if let Some(value) = entries.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        Box::pin(self.load_into(entries, to_key(*key), load)).await
    }

    /// [`Self::get_or_load`] on a miss.
    async fn load_into<K, V, F>(
        &self,
        entries: &Cache<K, V, ByBytes>,
        key: K,
        load: impl FnOnce() -> F,
    ) -> AppResult<V>
    where
        K: Eq + Hash + Clone + KeyWeight,
        V: Clone + Weight,
        F: Future<Output = AppResult<V>>,
    {
        let loaded = AtomicBool::new(false);
        let counted_load = async {
            loaded.store(true, Ordering::Relaxed);
            load().await
        };
        let value = entries.get_or_insert_async(&key, counted_load).await;
        let counter = if loaded.load(Ordering::Relaxed) {
            &self.misses
        } else {
            &self.hits
        };
        counter.fetch_add(1, Ordering::Relaxed);
        value
    }

    /// (hits, misses) since start-up.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

struct NeverChanges;

impl ServeEpoch for NeverChanges {
    fn current(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn borrowed_keys_hash_as_owned_ones() {
        let hasher = quick_cache::DefaultHashBuilder::default();
        let stream = StreamRef {
            epoch: 7,
            project_id: "p",
            channel: "main",
            runtime_version: "1.0.0",
            platform: Platform::Ios,
        };
        assert_eq!(hasher.hash_one(stream), hasher.hash_one(stream.to_key()));
        assert!(stream.equivalent(&stream.to_key()));
        let record = RecordRef {
            epoch: 7,
            project_id: "p",
            record_id: "u",
        };
        assert_eq!(hasher.hash_one(record), hasher.hash_one(record.to_key()));
        assert!(record.equivalent(&record.to_key()));
    }
}
