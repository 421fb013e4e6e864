//! The memory of failures (`error_ttl`, rule 4 of `loading/mod.rs`): a second cache of recent
//! failures, whose entries count only once their load has landed undetached. A coherent
//! cache's memory is coherent too, under the same name: failures are part of the cache.

use std::{
    borrow::Borrow,
    hash::{BuildHasher, Hash, RandomState},
    sync::Arc,
    time::Duration,
};

use crate::{
    TtlCache,
    cache::TaskDoor,
    error::{BuildError, LoadError},
    flight::Flight,
    settings::CacheSettings,
    sync::{self, AtomicBool, Ordering},
};

/// Failures remembered for `error_ttl`, by key.
pub(super) struct Failures<K, E>(TtlCache<K, Arc<Remembered<E>>, RandomState>);

impl<K, E> Failures<K, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A memory as large as the cache `settings` describe, whose failures last `error_ttl`.
    pub(super) fn new<V, S>(
        settings: &CacheSettings<K, V, S>,
        error_ttl: Duration,
    ) -> Result<Self, BuildError> {
        TtlCache::from_settings(CacheSettings {
            shards: settings.shards,
            max_capacity: settings.max_capacity,
            weigher: None,
            time_to_live: Some(error_ttl),
            time_to_idle: None,
            refresh_after: None,
            stale_if_error: None,
            clock: settings.clock.clone(),
            listener: None,
            expiry: None,
            // SipHash, whatever the cache's hasher: keys that failed (a `NotFound` an
            // attacker can ask for at will) need not be fast to find.
            hasher: RandomState::new(),
            // Unnamed: its counts are not the cache's, and would be read as them.
            name: None,
            key_format: None,
            // Registered with the cache's coherence under the cache's name: a remote
            // invalidation of a key, or a flush, drops its failure as it drops its value.
            #[cfg(feature = "redis")]
            coherent: settings.coherent.clone(),
        })
        .map(Self)
    }

    /// The key's remembered failure, if its load landed undetached.
    pub(super) fn recalled<Q>(&self, key: &Q) -> Option<LoadError<E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let remembered = self.0.peek(key)?;
        remembered.is_confirmed().then(|| remembered.error.clone())
    }

    pub(super) fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.remove(key);
    }

    pub(super) fn clear(&self) {
        self.0.clear();
    }

    /// Forgets the key's failure after a success; remembers a failure of a load of `cache`
    /// that no write detached. Put in the memory while no lock of `cache` is held, then
    /// confirmed (an atomic store) under the key's shard lock if the load is still pending,
    /// so before the load lands and becomes visible as gone.
    pub(super) fn record<V, S>(
        &self,
        cache: &TaskDoor<'_, K, V, S>,
        key: K,
        result: &Result<V, LoadError<E>>,
        hash: u64,
        flight: &sync::Arc<Flight<V>>,
    ) where
        K: Clone,
        V: Clone + Send + Sync + 'static,
        S: BuildHasher,
    {
        let error = match result {
            Ok(_) => return self.forget(&key),
            Err(error) => error,
        };
        // A load an invalidation already detached has nothing to remember, and must not
        // replace what a newer load remembered.
        if !cache.is_pending(hash, flight) {
            return;
        }
        let failure = Arc::new(Remembered::unconfirmed(error.clone()));
        self.0.insert(key, Arc::clone(&failure));
        cache.while_pending(hash, flight, || failure.confirm());
    }
}

/// A failure remembered for `error_ttl`: honoured once its load has landed undetached.
struct Remembered<E> {
    error: LoadError<E>,
    confirmed: AtomicBool,
}

impl<E> Remembered<E> {
    fn unconfirmed(error: LoadError<E>) -> Self {
        Self {
            error,
            confirmed: AtomicBool::new(false),
        }
    }

    fn confirm(&self) {
        self.confirmed.store(true, Ordering::Release);
    }

    fn is_confirmed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire)
    }
}
