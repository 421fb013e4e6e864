//! What the cache builder hands over once it has checked its settings, and the limits on
//! them: the one module that both the builder (`builder/`) and what it builds (`cache/`,
//! `loading/`) import, so that neither side imports the other's.

use std::{sync::Arc, time::Duration};

use crate::{Expiry, clock::TimeSource, removal::Listener, trace::KeyFormat};

/// The most shards a cache may have.
pub(crate) const MAX_SHARDS: usize = 1 << 16;

/// The least capacity the default shard count leaves each shard, so that a small cache does
/// not behave like many tiny ones.
pub(crate) const MIN_SHARD_CAPACITY: u64 = 256;

/// How a cache weighs entries against its capacity.
pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// A cache's settings, checked.
pub(crate) struct CacheSettings<K, V, S> {
    pub(crate) shards: usize,
    pub(crate) max_capacity: Option<u64>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) refresh_after: Option<Duration>,
    /// How long an expired entry is kept for a failed load to answer with (a loading cache's
    /// `stale_if_error`).
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) clock: TimeSource,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) expiry: Option<Box<dyn Expiry<K, V>>>,
    pub(crate) hasher: S,
    /// What the cache's metrics and tracing events call it.
    pub(crate) name: Option<Arc<str>>,
    /// How its tracing events show keys, where asked to (`CacheBuilder::trace_keys`).
    pub(crate) key_format: Option<KeyFormat<K>>,
    /// The replicas' coherence the cache takes part in.
    #[cfg(feature = "redis")]
    pub(crate) coherent: Option<crate::redis::Coherent<K>>,
}

/// A loading cache's settings beyond its cache's, checked, and the runtime it was built in.
#[cfg(feature = "tokio")]
pub(crate) struct LoadSettings {
    pub(crate) load_timeout: Option<Duration>,
    pub(crate) max_concurrent_loads: Option<usize>,
    /// How long a failure is remembered; `None` (or zero): not at all.
    pub(crate) error_ttl: Option<Duration>,
    /// Where loads run when no caller's runtime is at hand (`runtime.rs`).
    pub(crate) runtime: tokio::runtime::Handle,
}
