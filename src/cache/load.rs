//! The `get_or_*` front door of [`TtlCache`] to the single-flight engine (`flight/`), and where
//! a load of one of its keys lands: the key's shard.

use std::{
    borrow::Borrow,
    convert::Infallible,
    future::Future,
    hash::{BuildHasher, Hash},
    time::Duration,
};

use super::{Lifetime, TtlCache};
use crate::{
    clock::Now,
    flight::{self, Answer, Began, Flight, Found, Landing, Launched, Outcome},
    removal::Removals,
    shard::{Shard, Write},
    sync::{self, block_on},
    trace::LoadSpan,
};

/// The leader of a load of one of a cache's keys, landing in the key's shard (`door.rs` pairs it
/// with its key as `KeyLeader`).
pub(super) type ShardLeader<K, V, S> = flight::Leader<KeyLanding<K, V, S>, V>;

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The value for `key`; if it has none, runs `init` once to make it, stores it and returns it.
    ///
    /// # Concurrent calls on the same key
    ///
    /// However many threads (or tasks, through [`get_or_load`](Self::get_or_load)) ask for a
    /// missing key at once, one of them runs its `init`; the others wait, without spinning,
    /// and get a clone of the same value. No lock is held while `init` runs, and callers for
    /// other keys never wait on it. An `insert` or `remove` of the key while `init` runs wins:
    /// the waiters still get `init`'s value, but it is not stored.
    ///
    /// # Panics
    ///
    /// If `init` panics, the panic propagates to this caller, and one of the waiting callers
    /// runs its own `init` in its place. Calling any `get_or_*` for the same key from inside
    /// `init` panics with a clear message, instead of waiting for itself forever.
    ///
    /// # Blocking
    ///
    /// A waiting caller blocks its thread. Inside an async runtime, use
    /// [`get_or_load`](Self::get_or_load): on a single-threaded runtime, a blocked thread
    /// would stop the very task whose load it waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, String>::builder().build().unwrap();
    /// let value = cache.get_or_insert_with(7, || "seven".to_string());
    /// assert_eq!(value, "seven");
    /// // Present now: `init` does not run.
    /// let again = cache.get_or_insert_with(7, || unreachable!());
    /// assert_eq!(again, "seven");
    /// ```
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        match self.try_get_or_insert_with(key, || Ok::<V, Infallible>(init())) {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with), for an `init` that can fail.
    ///
    /// # Errors
    ///
    /// The error `init` returned, shared as the same `Arc<E>` with every caller that waited
    /// for that attempt. Errors are not cached: the next call runs `init` again. A waiter
    /// whose error type differs from the failing caller's starts an attempt of its own.
    ///
    /// # Concurrent calls on the same key
    ///
    /// As for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Panics
    ///
    /// As for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<&str, u16>::builder().build().unwrap();
    /// let port = cache.try_get_or_insert_with("port", || "80a".parse::<u16>());
    /// assert!(port.is_err());
    /// let port = cache.try_get_or_insert_with("port", || "8080".parse::<u16>());
    /// assert_eq!(port.unwrap(), 8080);
    /// ```
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, std::sync::Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let hash = self.hash(&key);
        if let Some(value) = self.lookup(hash, &key) {
            return Ok(value);
        }
        block_on(self.load(hash, key, async { init() }))
    }

    /// The value for `key`; if it has none, awaits `init` once to make it, stores it and
    /// returns it.
    ///
    /// # Concurrent calls on the same key
    ///
    /// As for [`get_or_insert_with`](Self::get_or_insert_with): one caller awaits its `init`,
    /// the others wait for its value. Synchronous and asynchronous callers of the same key
    /// share one load.
    ///
    /// # Cancel safety
    ///
    /// Dropping this future is safe at any point. If it was running `init`, `init` is dropped
    /// with it, and one of the waiting callers runs its own `init` in its place: no waiter is
    /// left hanging. If it was waiting, it stops waiting and the load goes on for the others.
    ///
    /// `init` runs inside this future: while it is neither polled nor dropped (kept in a
    /// `select!` branch that is no longer polled, say), the load makes no progress and its
    /// waiters wait with it.
    ///
    /// # Panics
    ///
    /// As for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::<u32, String>::builder().build().unwrap();
    /// let body = cache.get_or_load(1, async { "fetched".to_string() }).await;
    /// assert_eq!(body, "fetched");
    /// # }
    /// ```
    pub async fn get_or_load(&self, key: K, init: impl Future<Output = V>) -> V {
        match self
            .try_get_or_load(key, async { Ok::<V, Infallible>(init.await) })
            .await
        {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// Like [`get_or_load`](Self::get_or_load), for an `init` that can fail.
    ///
    /// # Errors
    ///
    /// As for [`try_get_or_insert_with`](Self::try_get_or_insert_with).
    ///
    /// # Concurrent calls on the same key
    ///
    /// As for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Cancel safety
    ///
    /// As for [`get_or_load`](Self::get_or_load).
    ///
    /// # Panics
    ///
    /// As for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::<u32, String>::builder().build().unwrap();
    /// let body = cache.try_get_or_load(1, async { Err::<String, _>("timeout") }).await;
    /// assert_eq!(*body.unwrap_err(), "timeout");
    /// # }
    /// ```
    pub async fn try_get_or_load<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, std::sync::Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let hash = self.hash(&key);
        if let Some(value) = self.lookup(hash, &key) {
            return Ok(value);
        }
        self.load(hash, key, init).await
    }

    /// The single-flight engine behind every `get_or_*`, after its fast path missed: `init`
    /// runs in this call if it leads.
    async fn load<E, F>(&self, hash: u64, key: K, init: F) -> Result<V, std::sync::Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let span = LoadSpan::new(self.name(), self.shown(&key));
        let mut key = Some(key);
        let mut init = Some(init);
        let answer = flight::join_or_lead(
            || self.start(hash, &mut key),
            |leader, _| {
                // A miss, counted as the load starts.
                self.inner.counters.miss();
                let init = init
                    .take()
                    .expect("a caller leads at most once: it returns then");
                Launched::Here(span.clone().wrap(leader.run(self.timed(init))))
            },
        )
        .await;
        match answer {
            Answer::Found(_) => self.inner.counters.hit(),
            Answer::Joined(_) => self.inner.counters.miss(),
            Answer::Led(_) => {}
        }
        answer.into_result()
    }

    /// Finds the key's live value or the load to join, or starts a load, taking the key, that
    /// the caller now leads. Counts nothing: the caller decides what the lookup was.
    pub(super) fn start(&self, hash: u64, key: &mut Option<K>) -> Found<V, ShardLeader<K, V, S>> {
        let now = Now::lazy(&self.inner.timeline);
        // Declared before the lock: removals are reported after it.
        #[cfg(feature = "redis")]
        let mut removals = self.removals();
        let mut shard = self.shard(hash).write();
        let probe = key
            .as_ref()
            .expect("the key is taken only by a load it leads");
        // A coherent cache that may not serve now (rule 3 of `redis/mod.rs`) withholds what
        // it holds of the key, as the flush to come would drop it: its entry, and a load that
        // began while it could serve. A load that began since stays, for its callers to share.
        let began = self.began();
        #[cfg(feature = "redis")]
        if began == Began::Untrusted
            && let Some((key, value, cause)) = shard.withhold(hash, probe, &now)
        {
            removals.push(key, value, cause);
        }
        match shard.find_load(hash, probe, &now) {
            Found::Value(value) => Found::Value(value),
            Found::Join(flight) => Found::Join(flight),
            Found::Lead(()) => {
                let key = key.take().expect("checked above");
                let flight = shard.start_load(hash, key, began, &self.inner.hasher);
                drop(shard);
                Found::Lead(self.leader(hash, flight))
            }
        }
    }

    /// The value of the key's entry kept past its time to live (`stale_if_error`), counted as
    /// served stale; none while the cache may not serve (rule 3 of `redis/mod.rs`), which is
    /// asked before the clone, so that no clone is dropped (`V`'s `Drop`) under the lock.
    /// `shard` is the key's, locked.
    pub(super) fn serve_kept<Q>(
        &self,
        shard: &Shard<K, V>,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            return None;
        }
        let kept = shard.stale(hash, key, now)?.clone();
        self.inner.counters.stale_served();
        Some(kept)
    }

    /// Whether a load starting now begins while the cache may serve (rule 3 of
    /// `redis/mod.rs`).
    #[inline]
    pub(super) fn began(&self) -> Began {
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            return Began::Untrusted;
        }
        Began::Trusted
    }

    pub(super) fn leader(&self, hash: u64, flight: sync::Arc<Flight<V>>) -> ShardLeader<K, V, S> {
        let landing = KeyLanding {
            cache: self.clone(),
            hash,
        };
        flight::Leader::new(landing, flight)
    }

    /// `load`, with the time it took counted in the stats as a load that succeeded or failed.
    /// The clock is read exactly (`Timeline::precise_now`): the ticker's steps are too coarse.
    pub(super) async fn timed<T, X>(
        &self,
        load: impl Future<Output = Result<T, X>>,
    ) -> Result<T, X> {
        let timeline = &self.inner.timeline;
        let started = timeline.precise_now();
        let result = load.await;
        let took: Duration = timeline.precise_now().since(started);
        self.inner.counters.load(result.is_ok(), took);
        crate::trace::load_finished(result.is_ok(), took);
        result
    }
}

/// What landing a load of one key left: the entries its write removed, reported once the
/// flight has settled, and the value kept past its time to live that answers a failure.
pub(crate) struct Landed<'a, K, V> {
    /// Reported when dropped.
    _removals: Removals<'a, K, V>,
    kept: Option<V>,
}

/// Where a load of one key lands: the key's shard.
pub(crate) struct KeyLanding<K, V, S> {
    cache: TtlCache<K, V, S>,
    hash: u64,
}

impl<K, V, S> Landing<V> for KeyLanding<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Receipt<'a>
        = Landed<'a, K, V>
    where
        Self: 'a;

    fn store<'a>(
        &'a self,
        flight: &sync::Arc<Flight<V>>,
        outcome: &Outcome<V>,
    ) -> Landed<'a, K, V> {
        let cache = &self.cache;
        let now = Now::lazy(&cache.inner.timeline);
        let mut removals = cache.removals();
        let mut shard = cache.shard(self.hash).write();
        let Some(key) = shard.finish_load(self.hash, flight) else {
            return Landed {
                _removals: removals,
                kept: None,
            };
        };
        let mut kept = None;
        match outcome {
            Outcome::Loaded(value) => {
                let write = Write {
                    hash: self.hash,
                    weight: cache.weigh(&key, value),
                    key,
                    value: value.clone(),
                    time_to_live: cache.inner.time_to_live,
                };
                let stored = cache.store(&mut shard, write, Lifetime::Cache, &now, &mut removals);
                drop(shard);
                drop(stored);
            }
            Outcome::Failed(_) => {
                // With `stale_if_error`, an entry that expired less than that long ago
                // answers the failure (rule 7 of `flight/mod.rs`).
                kept = cache.serve_kept(&shard, self.hash, &key, &now);
                // The key is dropped after the lock: its `Drop` is the user's code.
                drop(shard);
                drop(key);
            }
            Outcome::Abandoned => {
                drop(shard);
                drop(key);
            }
        }
        Landed {
            _removals: removals,
            kept,
        }
    }

    fn kept(receipt: &mut Landed<'_, K, V>) -> Option<V> {
        receipt.kept.take()
    }

    fn abandon(&self, flight: &sync::Arc<Flight<V>>) {
        let key = self
            .cache
            .shard(self.hash)
            .write()
            .finish_load(self.hash, flight);
        drop(key);
    }
}
