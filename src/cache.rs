//! [`TtlCache`]: the sharded wrapper that owns the locks around each [`Shard`].
//!
//! Rules:
//! 1. A hit takes one shard's read lock and writes only atomics: the entry's policy mark (once),
//!    its idle deadline (with a time to idle), and this thread's stats stripe. Never a write
//!    lock, never a lock shared by all shards.
//! 2. A write takes one shard's write lock. What it removes is reported and dropped after the
//!    lock is released (`removal.rs`). The weigher runs before the lock for `insert`, and under
//!    it when a loaded value is stored (the leader's key is in the shard by then).
//! 3. The clock is read only when something can expire: on writes with a time to live or to
//!    idle, and on reads of entries that have a deadline.
//! 4. `get_or_*` follow the single-flight rules in `flight.rs`. The synchronous ones block on
//!    the same engine as the asynchronous ones, after a lock-free-of-writes fast path.

use std::{
    borrow::Borrow,
    convert::Infallible,
    fmt,
    future::Future,
    hash::{BuildHasher, Hash, RandomState},
    time::Duration,
};

use crossbeam_utils::CachePadded;

use crate::{
    builder::CacheBuilder,
    climber::Climber,
    clock::{Now, Tick, TimeSource, Timeline},
    flight::{self, Flight, Landing, Outcome},
    removal::{Listener, Removals},
    shard::{LoadStart, Shard},
    stats::{CacheStats, Counters},
    sync::{Arc, Mutex, RwLock, block_on},
};
#[cfg(feature = "serde")]
use crate::{
    shard::Restored,
    snapshot::{self, CacheSnapshot, SnapshotEntry, WallClock},
};

/// How a cache weighs entries against its capacity.
pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;

const RECURSIVE_LOAD: &str = "ttlcache: a `get_or_*` call asked for the key whose `init` is \
     running on this thread; it would wait for itself forever";

/// A thread-safe, sharded map with expiry, a hard capacity bound and single-flight loading.
///
/// A `TtlCache` is a cheap handle: clones share one cache. Values are returned as clones,
/// never as guards that hold a lock; store an `Arc<T>` to share a large value.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ttlcache::TtlCache;
///
/// let cache = TtlCache::new(10_000, Duration::from_secs(60));
/// cache.insert("user:1".to_string(), "Ada");
/// assert_eq!(cache.get("user:1"), Some("Ada"));
///
/// let name = cache.get_or_insert_with("user:2".to_string(), || "Grace");
/// assert_eq!(name, "Grace");
/// ```
pub struct TtlCache<K, V, S = RandomState> {
    inner: Arc<Inner<K, V, S>>,
}

/// A shard behind its lock, on cache lines of its own.
type LockedShard<K, V> = CachePadded<RwLock<Shard<K, V>>>;

struct Inner<K, V, S> {
    shards: Box<[LockedShard<K, V>]>,
    hasher: S,
    timeline: Timeline,
    time_to_live: Option<Duration>,
    max_capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    counters: Counters,
    climber: Mutex<Climber>,
}

/// What the builder hands over once it has checked its settings.
pub(crate) struct Settings<K, V, S> {
    pub(crate) shards: usize,
    pub(crate) max_capacity: Option<u64>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) clock: TimeSource,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) hasher: S,
}

impl<K, V, S> TtlCache<K, V, S> {
    pub(crate) fn from_settings(settings: Settings<K, V, S>) -> Self {
        let count = settings.shards as u64;
        let shards = (0..count)
            .map(|index| {
                // Split the capacity so that the shards' shares add up to it exactly.
                let capacity = settings
                    .max_capacity
                    .map_or(u64::MAX, |max| max / count + u64::from(index < max % count));
                let shard = Shard::new(
                    capacity,
                    settings.weigher.is_some(),
                    settings.time_to_idle,
                    settings.refresh_after,
                );
                CachePadded::new(RwLock::new(shard))
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                hasher: settings.hasher,
                timeline: Timeline::new(settings.clock),
                time_to_live: settings.time_to_live,
                max_capacity: settings.max_capacity,
                weigher: settings.weigher,
                listener: settings.listener,
                counters: Counters::new(),
                climber: Mutex::new(Climber::new()),
            }),
        }
    }
}

impl<K, V> TtlCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of at most `max_capacity` entries, each living `time_to_live` after its write.
    ///
    /// `Duration::MAX` means entries never expire. For other settings use [`builder`](Self::builder).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = ttlcache::TtlCache::new(1_000, Duration::from_secs(30));
    /// cache.insert(1, "one");
    /// assert_eq!(cache.get(&1), Some("one"));
    /// ```
    #[must_use]
    pub fn new(max_capacity: u64, time_to_live: Duration) -> Self {
        Self::builder()
            .max_capacity(max_capacity)
            .time_to_live(time_to_live)
            .build()
            .expect("the default shard count fits every capacity")
    }

    /// A builder for a cache with other settings: weigher, time to idle, listener, clock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<String, u64>::builder()
    ///     .max_capacity(100)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::new()
    }
}

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The key's hash, as the cache computes it: it picks the shard and the bucket.
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.inner.hasher.hash_one(key)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K, V>> {
        &self.inner.shards[self.shard_index(hash)]
    }

    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        // Mixed, so that a hasher which leaves the high bits empty (an identity hash of small
        // integers) still spreads keys; then bits 32 and up. Within the shard the table
        // places keys by a spread of their short hash (`shard.rs`), not by these bits.
        let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 32) as usize & (self.inner.shards.len() - 1)
    }

    /// Stores an entry in a locked shard, counts the write, and lets the policy adapt.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        shard: &mut Shard<K, V>,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        time_to_live: Option<Duration>,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) {
        shard.insert(hash, key, value, weight, time_to_live, now, removals);
        self.inner.counters.insert();
        self.adapt(shard);
    }

    /// Gives the shard's policy the window share the climber now favours, when it is due.
    fn adapt(&self, shard: &mut Shard<K, V>) {
        if shard.adaptation_due() {
            let (hits, misses) = self.inner.counters.lookups();
            let entries = (shard.len() * self.inner.shards.len()) as u64;
            let share = self.inner.climber.lock().observe(hits, misses, entries);
            shard.set_window(share);
        }
    }

    #[inline]
    fn removals(&self) -> Removals<'_, K, V> {
        Removals::new(self.inner.listener.as_ref(), &self.inner.counters)
    }

    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u32 {
        self.inner
            .weigher
            .as_ref()
            .map_or(1, |weigh| weigh(key, value))
    }

    /// The value for `key` if it is live, as a clone.
    ///
    /// A hit counts for the eviction policy, moves the entry's idle deadline (with a time to
    /// idle) and counts in [`stats`](Self::stats). It takes the shard's read lock only.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<String, u32>::builder().build().unwrap();
    /// cache.insert("a".to_string(), 1);
    /// assert_eq!(cache.get("a"), Some(1));
    /// assert_eq!(cache.get("b"), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let value = self.lookup(hash, key);
        if value.is_none() {
            self.inner.counters.miss();
        }
        value
    }

    /// A hit, counted as one; a miss is left to the caller to count.
    #[inline]
    fn lookup<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(hash, key).map(|(value, _)| value)
    }

    /// A hit, counted as one, and whether the entry is due for a refresh; a miss is left to
    /// the caller to count.
    #[inline]
    pub(crate) fn read<Q>(&self, hash: u64, key: &Q) -> Option<(V, bool)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Now::lazy(&self.inner.timeline);
        let read = self
            .shard(hash)
            .read()
            .get(hash, key, &now)
            .map(|(value, stale)| (value.clone(), stale));
        if read.is_some() {
            self.inner.counters.hit();
        }
        read
    }

    /// The value for `key` if it is live, without counting the read anywhere.
    ///
    /// Unlike [`get`](Self::get) it does not protect the entry from eviction, does not move
    /// its idle deadline and does not count in the stats.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.peek(&1), Some(10));
    /// assert_eq!(cache.stats().hits, 0);
    /// ```
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = Now::lazy(&self.inner.timeline);
        self.shard(hash).read().peek(hash, key, &now).cloned()
    }

    /// Whether `key` has a live entry. Counts nowhere, like [`peek`](Self::peek).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// assert!(cache.contains_key(&1));
    /// assert!(!cache.contains_key(&2));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = Now::lazy(&self.inner.timeline);
        self.shard(hash).read().peek(hash, key, &now).is_some()
    }

    /// Stores `value` for `key` with the cache's time to live, replacing any entry for it.
    ///
    /// A replaced live entry is reported as [`RemovalCause::Replaced`]. If the cache is full,
    /// the policy evicts entries ([`RemovalCause::Size`]) until the new one fits; an entry
    /// heavier than its shard's capacity is not stored and is reported as `Size` itself. A
    /// `get_or_*` load of the key running meanwhile still hands its value to its own callers,
    /// but does not overwrite this one.
    ///
    /// [`RemovalCause::Replaced`]: crate::RemovalCause::Replaced
    /// [`RemovalCause::Size`]: crate::RemovalCause::Size
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, &str>::builder().build().unwrap();
    /// cache.insert(1, "one");
    /// cache.insert(1, "uno");
    /// assert_eq!(cache.get(&1), Some("uno"));
    /// ```
    pub fn insert(&self, key: K, value: V) {
        self.write(key, value, self.inner.time_to_live);
    }

    /// Stores `value` for `key` with its own time to live, instead of the cache's.
    ///
    /// `Duration::MAX` means the entry never expires (a time to idle still applies).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder().clock(clock.clone()).build().unwrap();
    /// cache.insert_with_ttl("otp", 493_817, Duration::from_secs(30));
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(cache.get("otp"), None);
    /// ```
    pub fn insert_with_ttl(&self, key: K, value: V, time_to_live: Duration) {
        self.write(key, value, Some(time_to_live));
    }

    fn write(&self, key: K, value: V, time_to_live: Option<Duration>) {
        let hash = self.hash(&key);
        let weight = self.weigh(&key, &value);
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        let mut shard = self.shard(hash).write();
        self.store(
            &mut shard,
            hash,
            key,
            value,
            weight,
            time_to_live,
            &now,
            &mut removals,
        );
        drop(shard);
    }

    /// Removes the entry for `key`; returns its value if it was live.
    ///
    /// The listener sees a live entry as [`RemovalCause::Explicit`], an expired one as
    /// [`RemovalCause::Expired`]. A `get_or_*` load of the key running meanwhile still hands
    /// its value to its own callers, but does not store it.
    ///
    /// [`RemovalCause::Explicit`]: crate::RemovalCause::Explicit
    /// [`RemovalCause::Expired`]: crate::RemovalCause::Expired
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, &str>::builder().build().unwrap();
    /// cache.insert(1, "one");
    /// assert_eq!(cache.remove(&1), Some("one"));
    /// assert_eq!(cache.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        let (key, value, cause) = self.shard(hash).write().remove(hash, key, &now)?;
        if cause.was_evicted() {
            removals.push(key, value, cause);
            return None;
        }
        if !removals.is_heard() {
            return Some(value);
        }
        // Reported before the copy is made, so a panicking `clone` loses no report.
        Some(removals.push(key, value, cause).clone())
    }

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

    /// The single-flight engine behind every `get_or_*`, after its fast path missed.
    async fn load<E, F>(&self, hash: u64, mut key: K, init: F) -> Result<V, std::sync::Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        loop {
            let flight = match self.start(hash, key) {
                Start::Hit(value) => {
                    self.inner.counters.hit();
                    return Ok(value);
                }
                Start::Lead(leader) => {
                    self.inner.counters.miss();
                    return self.lead(leader, init).await;
                }
                Start::Wait(returned, flight) => {
                    key = returned;
                    flight
                }
            };
            match &*Flight::wait(&flight).await {
                Outcome::Loaded(value) => {
                    self.inner.counters.miss();
                    return Ok(value.clone());
                }
                Outcome::Failed(error) => {
                    if let Ok(error) = std::sync::Arc::clone(error).downcast::<E>() {
                        self.inner.counters.miss();
                        return Err(error);
                    }
                }
                Outcome::Abandoned => {}
            }
            // Abandoned, or failed with an error of another type: start over.
        }
    }

    /// Finds the key's live value, the load to wait for, or starts a load that the caller now
    /// leads (`flight.rs`). Counts nothing: the caller decides what the lookup was.
    ///
    /// # Panics
    ///
    /// If the load to wait for is led by this thread: a recursive load of the same key, from
    /// a `get_or_*` `init` or a `LoadingCache` loader.
    pub(crate) fn start(&self, hash: u64, key: K) -> Start<K, V, S> {
        let now = Now::lazy(&self.inner.timeline);
        let start = self
            .shard(hash)
            .write()
            .start_load(hash, key, &now, &self.inner.hasher);
        match start {
            LoadStart::Hit(value) => Start::Hit(value),
            LoadStart::Wait(key, flight) => {
                assert!(!flight.is_led_by_this_thread(), "{RECURSIVE_LOAD}");
                Start::Wait(key, flight)
            }
            LoadStart::Lead(flight) => Start::Lead(self.leader(hash, flight)),
        }
    }

    /// Starts a reload of `key` that leaves its current value live, unless a load of the key
    /// is already pending, or, with `only_if_stale`, unless its entry is live and due for a
    /// refresh (checked under the lock: a refresh that just landed is not repeated).
    #[cfg(feature = "tokio")]
    pub(crate) fn start_refresh(
        &self,
        hash: u64,
        key: K,
        only_if_stale: bool,
    ) -> Option<Leader<K, V, S>> {
        let now = Now::lazy(&self.inner.timeline);
        let flight = self.shard(hash).write().start_refresh(
            hash,
            key,
            only_if_stale.then_some(&now),
            &self.inner.hasher,
        )?;
        Some(self.leader(hash, flight))
    }

    /// Runs `record` under the key's shard lock if `flight`'s load is still pending there: not
    /// detached by a write. What it records cannot then outlive a write that followed.
    #[cfg(feature = "tokio")]
    pub(crate) fn while_pending(&self, hash: u64, flight: &Arc<Flight<V>>, record: impl FnOnce()) {
        let shard = self.shard(hash).write();
        if shard.is_pending(hash, flight) {
            record();
        }
    }

    fn leader(&self, hash: u64, flight: Arc<Flight<V>>) -> Leader<K, V, S> {
        let landing = KeyLanding {
            cache: self.clone(),
            hash,
        };
        flight::Leader::new(landing, flight)
    }

    /// Runs `init` as the leader of a load, then stores and shares what it made.
    async fn lead<E, F>(&self, leader: Leader<K, V, S>, init: F) -> Result<V, std::sync::Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let started = self.precise_now();
        let made = flight::lead(leader.flight(), init).await;
        self.record_load(made.is_ok(), self.precise_now().since(started));
        match made {
            Ok(value) => {
                leader.land(Outcome::Loaded(value.clone()));
                Ok(value)
            }
            Err(error) => {
                let error = std::sync::Arc::new(error);
                leader.land(Outcome::Failed(error.clone()));
                Err(error)
            }
        }
    }

    /// Whether a load of `key` is pending (under the shard's read lock).
    #[cfg(feature = "tokio")]
    pub(crate) fn is_loading<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(hash).read().is_loading(hash, key)
    }

    /// Counts a miss of a lookup made through [`read`](Self::read) or [`start`](Self::start).
    #[cfg(feature = "tokio")]
    pub(crate) fn record_miss(&self) {
        self.inner.counters.miss();
    }

    /// The cache's clock, read exactly: for timing loads (see `Timeline::precise_now`).
    pub(crate) fn precise_now(&self) -> Tick {
        self.inner.timeline.precise_now()
    }

    /// Counts a load that succeeded or failed, and the time it took.
    pub(crate) fn record_load(&self, succeeded: bool, took: Duration) {
        self.inner.counters.load(succeeded, took);
    }

    /// How many entries the cache holds.
    ///
    /// This may include entries that have expired but that no write has removed yet; call
    /// [`purge_expired`](Self::purge_expired) first for a count of live entries only.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// assert_eq!(cache.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.read().len())
            .sum()
    }

    /// Whether the cache holds no entries (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// assert!(cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner
            .shards
            .iter()
            .all(|shard| shard.read().len() == 0)
    }

    /// The total weight of the entries held (see [`len`](Self::len)); never more than the
    /// capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::builder()
    ///     .weigher(|_key: &u32, value: &Vec<u8>| value.len() as u32)
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, vec![0; 100]);
    /// assert_eq!(cache.weighted_size(), 100);
    /// ```
    pub fn weighted_size(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.read().weighted_size())
            .sum()
    }

    /// Removes every entry, each reported as [`RemovalCause::Explicit`] (or `Expired`).
    ///
    /// Loads running meanwhile still hand their values to their own callers, but do not
    /// store them.
    ///
    /// [`RemovalCause::Explicit`]: crate::RemovalCause::Explicit
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        for shard in self.inner.shards.iter() {
            let cleared = shard.write().clear();
            removals.extend(cleared.into_removals(&now));
        }
    }

    /// Keeps the live entries for which `keep` returns true, and removes the others
    /// ([`RemovalCause::Explicit`]) along with every expired entry.
    ///
    /// `keep` runs with the entry's shard locked: it must not call into this cache.
    ///
    /// [`RemovalCause::Explicit`]: crate::RemovalCause::Explicit
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// for key in 0..10 {
    ///     cache.insert(key, key * key);
    /// }
    /// cache.retain(|_key, square| square % 2 == 0);
    /// assert_eq!(cache.len(), 5);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        for shard in self.inner.shards.iter() {
            shard.write().retain(&mut keep, &now, &mut removals);
        }
    }

    /// The live entries, as clones, one shard at a time.
    ///
    /// Each shard is copied under its read lock when the iterator reaches it, so the
    /// iterator holds no lock between items and sees each shard as of one moment. Reads
    /// through it count nowhere, like [`peek`](Self::peek).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// cache.insert(2, 20);
    /// let mut entries: Vec<_> = cache.iter().collect();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 10), (2, 20)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + '_
    where
        K: Clone,
    {
        self.inner.shards.iter().flat_map(move |shard| {
            let now = Now::lazy(&self.inner.timeline);
            let shard = shard.read();
            shard
                .live_entries(&now)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect::<Vec<_>>()
        })
    }

    /// Removes every expired entry now; returns how many it removed.
    ///
    /// Writes already remove expired entries a few at a time, so memory stays bounded
    /// without this; call it for an exact [`len`](Self::len), or after a burst of writes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(1))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.purge_expired(), 2);
    /// assert!(cache.is_empty());
    /// ```
    pub fn purge_expired(&self) -> usize {
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        self.inner
            .shards
            .iter()
            .map(|shard| shard.write().purge_expired(&now, &mut removals))
            .sum()
    }

    /// The cache's statistics since it was built.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.get_or_insert_with(1, || 1);
    /// cache.get_or_insert_with(1, || 1);
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.load_successes), (1, 1, 1));
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }
}

/// What a caller of the single-flight engine finds: see [`TtlCache::start`].
pub(crate) enum Start<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// A live value.
    Hit(V),
    /// A load to wait for, and the caller's key back, to retry with if it is abandoned.
    Wait(K, Arc<Flight<V>>),
    /// A load the caller now leads.
    Lead(Leader<K, V, S>),
}

/// The leader of a load of one of the cache's keys.
pub(crate) type Leader<K, V, S> = flight::Leader<KeyLanding<K, V, S>, V>;

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
        = Removals<'a, K, V>
    where
        Self: 'a;

    fn store<'a>(&'a self, flight: &Arc<Flight<V>>, outcome: &Outcome<V>) -> Removals<'a, K, V> {
        let cache = &self.cache;
        let now = Now::lazy(&cache.inner.timeline);
        let mut removals = cache.removals();
        let unstored_key = {
            let mut shard = cache.shard(self.hash).write();
            match (shard.finish_load(self.hash, flight), outcome) {
                (Some(key), Outcome::Loaded(value)) => {
                    let weight = cache.weigh(&key, value);
                    let ttl = cache.inner.time_to_live;
                    let value = value.clone();
                    cache.store(
                        &mut shard,
                        self.hash,
                        key,
                        value,
                        weight,
                        ttl,
                        &now,
                        &mut removals,
                    );
                    None
                }
                (key, _) => key,
            }
        };
        drop(unstored_key);
        removals
    }

    fn abandon(&self, flight: &Arc<Flight<V>>) {
        let key = self
            .cache
            .shard(self.hash)
            .write()
            .finish_load(self.hash, flight);
        drop(key);
    }
}

/// Snapshots for warm restarts (`snapshot.rs`).
#[cfg(feature = "serde")]
impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The live entries, as clones, with each entry's expiry as wall-clock time: save it
    /// (it is `Serialize`) and [`restore`](Self::restore) it into the cache of the next run.
    ///
    /// It does not stop the world: one shard at a time is copied, under its read lock, so
    /// reads and writes of the other shards go on meanwhile, and each shard is seen as of its
    /// own moment. (While a shard is copied, a write to it waits, and so do reads of it that
    /// come after that write.) Reading the entries counts nowhere, like
    /// [`peek`](Self::peek). Deadlines are kept to the millisecond, rounded down: the end of
    /// each entry's time to live, and with a time to idle, when it would idle out.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.snapshot().len(), 1);
    /// ```
    pub fn snapshot(&self) -> CacheSnapshot<K, V> {
        let timeline = &self.inner.timeline;
        let wall = WallClock::at(timeline.precise_now(), timeline.wall_now());
        let shards = self
            .inner
            .shards
            .iter()
            .map(|shard| {
                let now = Now::lazy(timeline);
                let shard = shard.read();
                shard
                    .ranked_entries(&now)
                    .map(|(key, value, deadline, idle_deadline)| SnapshotEntry {
                        key: key.clone(),
                        value: value.clone(),
                        expires_at: wall.to_wall(deadline),
                        idle_until: idle_deadline.and_then(|idle| wall.to_wall(idle)),
                    })
                    .collect()
            })
            .collect();
        CacheSnapshot::new(wall, snapshot::interleave(shards))
    }

    /// Puts a snapshot's entries back; returns how many it stored.
    ///
    /// An entry whose time to live ended since the snapshot was taken, or that idled out, is
    /// skipped. The others keep the time to live they had left, whatever this cache's own
    /// time to live, as if written with [`insert_with_ttl`](Self::insert_with_ttl); entries
    /// without one stay without one. With a time to idle, an entry's idle time starts at the
    /// restore.
    ///
    /// A restore only adds to what the cache holds:
    /// - it skips a key that has a live entry or a pending load, which are newer than the
    ///   snapshot, so it is safe to restore while traffic is already being served;
    /// - it evicts nothing: it stores an entry only where its shard has room for it
    ///   (weighed by this cache's weigher), and skips it otherwise. The snapshot lists the
    ///   entries the policy valued most first, so a smaller cache keeps those, and they are
    ///   the last the policy would evict afterwards.
    ///
    /// Each shard's entries are stored under one hold of its write lock. Restored entries
    /// count nowhere in [`stats`](Self::stats) and are not reported to the eviction listener;
    /// expired entries removed to make room are, as `Expired`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// cache.insert("config", 1);
    /// clock.advance(Duration::from_secs(45));
    /// let snapshot = cache.snapshot();
    ///
    /// let restarted = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(restarted.restore(snapshot), 1);
    /// // It keeps the 15 seconds it had left, not a fresh minute.
    /// clock.advance(Duration::from_secs(15));
    /// assert_eq!(restarted.get("config"), None);
    /// ```
    pub fn restore(&self, snapshot: CacheSnapshot<K, V>) -> usize {
        let timeline = &self.inner.timeline;
        let wall = WallClock::at(timeline.precise_now(), timeline.wall_now());
        let mut by_shard: Vec<Vec<Restored<K, V>>> =
            self.inner.shards.iter().map(|_| Vec::new()).collect();
        for entry in snapshot.into_entries() {
            let idled_out = entry
                .idle_until
                .is_some_and(|idle| wall.to_tick(Some(idle)).is_none());
            let Some(deadline) = wall.to_tick(entry.expires_at).filter(|_| !idled_out) else {
                continue;
            };
            let hash = self.hash(&entry.key);
            let weight = self.weigh(&entry.key, &entry.value);
            by_shard[self.shard_index(hash)].push(Restored {
                hash,
                key: entry.key,
                value: entry.value,
                weight,
                deadline,
            });
        }
        let mut restored = 0;
        for (shard, entries) in self.inner.shards.iter().zip(by_shard) {
            let now = Now::lazy(timeline);
            let mut removals = self.removals();
            let mut shard = shard.write();
            restored += shard.restore(entries, &now, &mut removals);
            self.adapt(&mut shard);
            drop(shard);
        }
        restored
    }
}

impl<K, V, S> Clone for TtlCache<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> fmt::Debug for TtlCache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shards = &self.inner.shards;
        f.debug_struct("TtlCache")
            .field("len", &shards.iter().map(|s| s.read().len()).sum::<usize>())
            .field("max_capacity", &self.inner.max_capacity)
            .field("time_to_live", &self.inner.time_to_live)
            .field("shards", &shards.len())
            .finish_non_exhaustive()
    }
}
