//! Byte-bounded caches with a fixed shard count, for the serving caches and
//! the hot-file cache.

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};

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
