//! What the loom models reach that is not public API: the refresh hand-over of the
//! single-flight engine, and an `AsyncLazy`'s load and refresher tick. Compiled only under
//! `--cfg ttlcache_loom`.

use std::{
    hash::{BuildHasher, Hash},
    sync::{Arc, Weak},
};

use crate::{AsyncLazy, TtlCache, cache::Leader, flight::Outcome, lazy};

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
    let hash = cache.hash(&key);
    cache.start_refresh(hash, key, false).map(Refresh)
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

/// A load of an `AsyncLazy`, started by hand.
#[allow(missing_debug_implementations)]
pub struct LazyLoad<T: Send + Sync + 'static, E: Send + Sync + 'static>(lazy::Leader<T, E>);

/// Starts a load of `lazy`, as its first reader does; `None` if one is running.
pub fn start_lazy_load<T, E>(lazy: &AsyncLazy<T, E>) -> Option<LazyLoad<T, E>>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    lazy.start_load().map(LazyLoad)
}

impl<T: Send + Sync + 'static, E: Send + Sync + 'static> LazyLoad<T, E> {
    /// Lands the loaded value, as the load does.
    pub fn complete(self, value: T) {
        self.0.land(Outcome::Loaded(Arc::new(value)));
    }
}

/// What the `refresh_every` task holds: a weak reference.
#[allow(missing_debug_implementations)]
pub struct Refresher<T, E>(Weak<lazy::Shared<T, E>>);

/// The refresher of `lazy`, as its `refresh_every` task would hold it.
pub fn refresher<T, E>(lazy: &AsyncLazy<T, E>) -> Refresher<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    Refresher(lazy.downgrade())
}

impl<T: Send + Sync + 'static, E: Send + Sync + 'static> Refresher<T, E> {
    /// One tick: reloads if a handle is left; `None` if the lazy is gone.
    pub fn tick(&self) -> Option<bool> {
        loom::future::block_on(lazy::tick(&self.0))
    }
}
