//! The in-memory cache behind update checks and asset requests.
//!
//! What a device is served depends on its project, channel, runtime version
//! and platform (the *stream*), and then on the device itself (rollout
//! buckets, the update it runs, protocol, signing). The cache holds the
//! first part, read from the store once, with every body a device could get
//! already serialised; the second part is decided per request from memory.
//!
//! Entries are keyed by the serve epoch ([`ServeEpoch`]): any change to what
//! is served, in this instance or another sharing the database, moves the
//! epoch, so older entries are never read again and age out. An entry
//! loaded while a change commits is stored under the epoch read before the
//! load began, which is already stale, so it cannot outlive the change.
//!
//! The cache is bounded in bytes; concurrent misses on one key wait for a
//! single load (no stampede on the database after a publish).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use domain::ports::{ManifestSigner, ServeEpoch};
use domain::release::{BranchName, Channel, RolloutCandidate};
use domain::update::{Platform, Update};
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};

use crate::error::{AppError, AppResult};
use crate::insights::UpdateCounters;
use crate::serve::SignedBody;
use crate::signing_keys::ProjectSigners;

/// A JSON body serialised once and signed at most once: a signature depends
/// only on the bytes, so every device asking for it shares it.
///
/// Per key: a project that rotates keys serves the same body signed by its
/// new key and, to devices that ask for it, by its old one. The first key's
/// signature is read without a lock; others (rare) behind a mutex.
#[derive(Debug)]
pub(crate) struct SignedOnce {
    json: Arc<str>,
    /// (signer identity, signature header) of the first key that signed.
    first: OnceLock<(Arc<str>, Arc<str>)>,
    others: Mutex<Vec<(Arc<str>, Arc<str>)>>,
}

/// Signatures kept per body besides the first key's.
const MAX_OTHER_SIGNATURES: usize = 64;

impl SignedOnce {
    pub(crate) fn new(json: String) -> Self {
        Self {
            json: json.into(),
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The body, signed by `signer` when there is one (the device asked
    /// for a signature).
    pub(crate) fn body(&self, signer: Option<&dyn ManifestSigner>) -> AppResult<SignedBody> {
        let signature = match signer {
            Some(signer) => Some(self.signature(signer)?),
            None => None,
        };
        Ok(SignedBody {
            json: Arc::clone(&self.json),
            signature,
        })
    }

    fn signature(&self, signer: &dyn ManifestSigner) -> AppResult<Arc<str>> {
        let identity = signer.identity();
        if let Some((first, signature)) = self.first.get()
            && **first == *identity
        {
            return Ok(Arc::clone(signature));
        }
        let mut others = self
            .others
            .lock()
            .map_err(|_| AppError::Internal("a signature cache lock was poisoned".to_owned()))?;
        if let Some((_, signature)) = others.iter().find(|(id, _)| **id == *identity) {
            return Ok(Arc::clone(signature));
        }
        let signature: Arc<str> = signer.signature_header(self.json.as_bytes())?.into();
        let entry = (Arc::<str>::from(identity), Arc::clone(&signature));
        // Two first requests may both sign; the bytes are equal.
        if let Err(entry) = self.first.set(entry)
            && self.first.get().is_some_and(|(first, _)| *first != entry.0)
        {
            // Bounded: the shared `noUpdateAvailable` body is signed by every
            // project's keys; the oldest signature is dropped (and made
            // again if asked for).
            if others.len() >= MAX_OTHER_SIGNATURES {
                others.remove(0);
            }
            others.push(entry);
        }
        Ok(signature)
    }

    fn weight(&self) -> u64 {
        // The body, its signature once made (~350 B for RSA-2048), overhead.
        self.json.len() as u64 + 512
    }
}

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
    /// Newest first, down to the newest fully rolled-out update.
    pub candidates: Vec<RolloutCandidate>,
    pub updates: HashMap<String, PreparedUpdate>,
    /// When there are no candidates: the 404 message naming the runtime
    /// versions that do have updates.
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
                            .map(|prepared| {
                                // The record is about the size of its body.
                                2 * prepared.body.weight()
                            })
                            .sum::<u64>()
                })
                .sum(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    Stream {
        epoch: u64,
        project_id: String,
        channel: String,
        runtime_version: String,
        platform: Platform,
    },
    Update {
        epoch: u64,
        project_id: String,
        update_id: String,
    },
    /// A project's own signing keys.
    Signers { epoch: u64, project_id: String },
}

impl CacheKey {
    fn weight(&self) -> u64 {
        let strings = match self {
            Self::Stream {
                project_id,
                channel,
                runtime_version,
                ..
            } => project_id.len() + channel.len() + runtime_version.len(),
            Self::Update {
                project_id,
                update_id,
                ..
            } => project_id.len() + update_id.len(),
            Self::Signers { project_id, .. } => project_id.len(),
        };
        strings as u64 + 64
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Stream(Arc<StreamView>),
    /// An update by id, for asset requests; `None` when there is none.
    Update(Option<Arc<Update>>),
    Signers(Arc<ProjectSigners>),
}

#[derive(Debug, Clone)]
struct ByBytes;

impl Weighter<CacheKey, Cached> for ByBytes {
    fn weight(&self, key: &CacheKey, value: &Cached) -> u64 {
        key.weight()
            + match value {
                Cached::Stream(view) => view.weight(),
                // An RSA key pair held by ring, with its precomputed values.
                Cached::Signers(signers) => 64 + 2048 * signers.len() as u64,
                Cached::Update(update) => update.as_ref().map_or(64, |update| {
                    256 + update
                        .assets
                        .iter()
                        .map(|asset| 192 + asset.path.len() as u64 + asset.key.len() as u64)
                        .sum::<u64>()
                }),
            }
    }
}

/// The cache, or nothing when it is configured off (`MANIFEST_CACHE_BYTES=0`,
/// to measure the store's own speed).
pub(crate) struct ServeCache {
    epoch: Arc<dyn ServeEpoch>,
    entries: Option<Cache<CacheKey, Cached, ByBytes>>,
    /// Lookups answered from memory, and lookups that read the store.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ServeCache {
    /// Roughly what one stream entry weighs, to size the hash table.
    const TYPICAL_ENTRY_BYTES: u64 = 8 * 1024;
    const SHARDS: usize = 16;

    pub(crate) fn new(epoch: Arc<dyn ServeEpoch>, max_bytes: u64) -> Self {
        let entries = (max_bytes > 0).then(|| {
            let items = (max_bytes / Self::TYPICAL_ENTRY_BYTES).clamp(16, 1 << 20);
            // Sixteen shards whatever the core count: enough to spread the
            // readers, and each shard large enough for a stream with
            // hundreds of updates (the cache refuses an entry heavier than
            // its shard can hold beside others).
            bounded_cache(Self::SHARDS, items as usize, max_bytes, ByBytes)
        });
        Self {
            epoch,
            entries,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// No cache at all: every request reads the store.
    pub(crate) fn disabled() -> Self {
        Self {
            epoch: Arc::new(NeverChanges),
            entries: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.current()
    }

    /// The cached value for `key`, or `load`'s, which is then cached.
    /// Concurrent callers with one key share one load; a failed load is not
    /// cached.
    pub(crate) async fn get_or_load<F>(&self, key: CacheKey, load: F) -> AppResult<Cached>
    where
        F: Future<Output = AppResult<Cached>>,
    {
        let loaded = AtomicBool::new(false);
        let counted_load = async {
            loaded.store(true, Ordering::Relaxed);
            load.await
        };
        let value = match &self.entries {
            Some(entries) => entries.get_or_insert_async(&key, counted_load).await,
            None => counted_load.await,
        };
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

/// A cache of at most `max_bytes` (by `weighter`) in exactly `shards`
/// shards: quick_cache otherwise picks four per core, and refuses an entry
/// heavier than its shard can hold beside others, so a many-core machine
/// would silently stop caching large entries.
pub(crate) fn bounded_cache<K, V, W>(
    shards: usize,
    estimated_items: usize,
    max_bytes: u64,
    weighter: W,
) -> Cache<K, V, W>
where
    K: Eq + std::hash::Hash,
    V: Clone,
    W: Weighter<K, V> + Clone,
{
    let options = OptionsBuilder::new()
        .shards(shards)
        .estimated_items_capacity(estimated_items)
        .weight_capacity(max_bytes)
        .build();
    match options {
        Ok(options) => Cache::with_options(
            options,
            weighter,
            DefaultHashBuilder::default(),
            DefaultLifecycle::default(),
        ),
        Err(_) => Cache::with_weighter(estimated_items, max_bytes, weighter),
    }
}

struct NeverChanges;

impl ServeEpoch for NeverChanges {
    fn current(&self) -> u64 {
        0
    }
}
