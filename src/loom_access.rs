//! What the loom models reach that is not public API: the refresh hand-over of the
//! single-flight engine. Compiled only under `--cfg ttlcache_loom`.

use std::hash::{BuildHasher, Hash};

use crate::{TtlCache, cache::Leader, flight::Outcome};

/// A refresh of one key, started while its value stays live.
#[allow(missing_debug_implementations)]
pub struct Refresh<K, V, S>(Leader<K, V, S>)
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher;

/// Starts a refresh of `key`, as a stale read of a `LoadingCache` does; `None` if a load of
/// the key is already running.
pub fn start_refresh<K, V, S>(cache: &TtlCache<K, V, S>, key: K) -> Option<Refresh<K, V, S>>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    let hash = cache.hash_of(&key);
    cache.start_refresh(hash, key).map(Refresh)
}

impl<K, V, S> Refresh<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Lands the reloaded value, as the refresh task does.
    pub fn complete(self, value: V) {
        self.0.land(Outcome::Loaded(value));
    }
}
