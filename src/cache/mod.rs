//! [`TtlCache`]: the sharded wrapper that owns the locks around each [`Shard`].
//!
//! This file holds the type and the operations on one key; `all.rs` those on every entry
//! (`len`, `clear`, `retain`, `iter`, ...), `load.rs` the `get_or_*` front door to the
//! single-flight engine (`flight/`) and where a load lands, `door.rs` the seam that
//! `LoadingCache` (`loading/`) goes through, and nothing else of `cache/` (feature `tokio`),
//! `compute.rs` `compute` and `upsert`, `coherent.rs` its part in its replicas' coherence
//! (feature `redis`), and `snapshot.rs` snapshots (feature `serde`).
//!
//! Rules:
//! 1. A hit takes one shard's read lock and writes only atomics: the entry's policy mark (once),
//!    its idle deadline (with a time to idle), its deadlines (with an `Expiry` that overrides
//!    `expire_after_read`, asked out of line: `expiry.rs`), and this thread's stats stripe.
//!    Never a write lock, never a lock shared by all shards.
//! 2. A write takes one shard's write lock. What it removes is reported and dropped after the
//!    lock is released (`removal.rs`). The weigher runs before the lock for `insert`, and under
//!    it when a loaded value is stored (the leader's key is in the shard by then) and for
//!    `compute`'s `Put` (its value is decided there).
//! 3. The clock is read only when something can expire: on writes with a time to live or to
//!    idle, and on reads of entries that have a deadline.
//! 4. `get_or_*` follow the single-flight rules in `flight/mod.rs`. The synchronous ones block
//!    on the same engine as the asynchronous ones, after a lock-free-of-writes fast path.

mod all;
#[cfg(feature = "redis")]
mod coherent;
mod compute;
#[cfg(feature = "tokio")]
mod door;
mod load;
#[cfg(feature = "serde")]
mod snapshot;

use std::{
    borrow::Borrow,
    fmt,
    hash::{BuildHasher, Hash},
    time::Duration,
};

use crossbeam_utils::CachePadded;

pub use compute::Op;
#[cfg(feature = "tokio")]
pub(crate) use door::{KeyLeader, Refresh, TaskDoor};
#[cfg(feature = "serde")]
pub use snapshot::CacheSnapshot;

/// Whether a hit is due for a refresh: read through `door.rs` by `loading/`.
pub(crate) use crate::shard::Freshness;

use crate::{
    DefaultHashBuilder,
    clock::{Now, Tick, Timeline},
    expiry::Expiries,
    hash,
    policy::Climber,
    policy::SlotIndex,
    removal::{Listener, Removals},
    settings::{CacheSettings, Weigher},
    shard::{Shard, Timed, Write},
    stats::Counters,
    sync::{self, AtomicU8, Mutex, Ordering, RwLock},
    trace::{KeyFormat, ShownKey},
};

/// Which time to live a write takes ([`TtlCache::store`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// The cache's: its [`Expiry`](crate::Expiry)'s choice if it has one, else the
    /// `time_to_live` the write carries (the cache's setting).
    Cache,
    /// The one the write carries, as given (`insert_with_ttl`).
    Given,
}

/// What became of a write ([`TtlCache::store`]).
#[must_use = "a write handed back is dropped after the lock"]
pub(crate) enum Stored<K, V> {
    Yes,
    /// Refused by the shard (expired as written, or heavier than the shard), which reported
    /// it as removed.
    No,
    /// Not stored by a coherent cache that bypasses: handed back, to be dropped after the
    /// lock.
    // Built only by coherent caches; the variant stays so that `Stored` keeps its types.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    HandedBack(Write<K, V>),
}

impl<K, V> Stored<K, V> {
    pub(crate) fn stored(&self) -> bool {
        matches!(self, Self::Yes)
    }
}

/// A bit of [`CacheInner::slow_hits`]: hits ask the `Expiry`. Set for a cache with one, and
/// cleared once a hit finds its `expire_after_read` to be the default (`expiry.rs`).
const READS_EXPIRE: u8 = 1;

/// A bit of [`CacheInner::slow_hits`]: hits check that the cache may serve now. Set for a
/// coherent cache that bypasses while unhealthy ([`Unhealthy::Bypass`]).
///
/// [`Unhealthy::Bypass`]: crate::redis::Unhealthy::Bypass
#[cfg(feature = "redis")]
const READS_NEED_TRUST: u8 = 2;

/// The bits of [`CacheInner::slow_hits`] a cache built with `settings` starts with.
fn slow_hits<K, V, S>(settings: &CacheSettings<K, V, S>) -> u8 {
    let expire = if settings.expiry.is_some() {
        READS_EXPIRE
    } else {
        0
    };
    #[cfg(feature = "redis")]
    let trust = if settings
        .coherent
        .as_ref()
        .is_some_and(|coherent| !coherent.serves_local())
    {
        READS_NEED_TRUST
    } else {
        0
    };
    #[cfg(not(feature = "redis"))]
    let trust = 0;
    expire | trust
}

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
pub struct TtlCache<K, V, S = DefaultHashBuilder> {
    inner: sync::Arc<CacheInner<K, V, S>>,
}

/// A shard behind its lock, on cache lines of its own.
type LockedShard<K, V> = CachePadded<RwLock<Shard<K, V>>>;

struct CacheInner<K, V, S> {
    shards: Box<[LockedShard<K, V>]>,
    hasher: S,
    timeline: Timeline,
    time_to_live: Option<Duration>,
    max_capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    expiry: Option<Expiries<K, V>>,
    /// What hits must do beyond finding the entry, in bits ([`READS_EXPIRE`],
    /// `READS_NEED_TRUST`): one load on the hit path, zero for a cache that needs neither,
    /// whose hits run exactly the code they would without the `Expiry` and `redis` features.
    slow_hits: AtomicU8,
    counters: Counters,
    climber: Mutex<Climber>,
    /// What its metrics and tracing events call it ([`CacheBuilder::name`]).
    name: Option<std::sync::Arc<str>>,
    /// How its tracing events show keys ([`CacheBuilder::trace_keys`], feature `tracing`).
    key_format: Option<KeyFormat<K>>,
    /// The replicas' coherence this cache takes part in (`coherent.rs`).
    #[cfg(feature = "redis")]
    coherence: Option<crate::redis::Coherent<K>>,
}

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// The cache the settings describe, registered with its coherence if it has one.
    ///
    /// # Errors
    ///
    /// [`BuildError::CoherentNameTaken`](crate::BuildError::CoherentNameTaken), from
    /// [`join_coherence`](Self::join_coherence).
    pub(crate) fn from_settings(
        settings: CacheSettings<K, V, S>,
    ) -> Result<Self, crate::BuildError> {
        let count = settings.shards as u64;
        let counts = match settings.expiry {
            Some(_) => Timed::All,
            None => Timed::Finite,
        };
        let shards = (0..count)
            .map(|index| {
                // Split the capacity so that the shards' shares add up to it exactly.
                let capacity = settings
                    .max_capacity
                    .map_or(u64::MAX, |max| max / count + u64::from(index < max % count));
                let mut shard = Shard::new(
                    capacity,
                    settings.weigher.is_some(),
                    settings.time_to_idle,
                    settings.refresh_after,
                    counts,
                );
                if let Some(stale_for) = settings.stale_if_error {
                    shard.keep_stale_for(stale_for);
                }
                CachePadded::new(RwLock::new(shard))
            })
            .collect();
        let slow = slow_hits(&settings);
        let cache = Self {
            inner: sync::Arc::new(CacheInner {
                shards,
                hasher: settings.hasher,
                timeline: Timeline::new(settings.clock),
                time_to_live: settings.time_to_live,
                max_capacity: settings.max_capacity,
                weigher: settings.weigher,
                listener: settings.listener,
                slow_hits: AtomicU8::new(slow),
                expiry: settings.expiry.map(Expiries::new),
                counters: Counters::new(),
                climber: Mutex::new(Climber::new()),
                name: settings.name,
                key_format: settings.key_format,
                #[cfg(feature = "redis")]
                coherence: settings.coherent,
            }),
        };
        #[cfg(feature = "redis")]
        cache.join_coherence()?;
        #[cfg(feature = "metrics")]
        cache.report_metrics();
        Ok(cache)
    }

    /// Has the process's metrics reporter report this cache, if it is named, for as long as
    /// it lives (`metrics.rs`).
    #[cfg(feature = "metrics")]
    fn report_metrics(&self) {
        let Some(name) = self.inner.name.clone() else {
            return;
        };
        crate::metrics::report_while_alive(&crate::metrics::CACHE, &self.inner, move |inner| {
            let cache = Self { inner };
            let entries = cache.len();
            crate::metrics::cache(&name, &cache.stats(), entries, cache.weighted_size());
        });
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

    /// The index of the key's shard: bits 32 and up of its mixed hash. Within the shard the
    /// table places keys by their short hash (`shard/slots.rs`), not by these bits.
    #[inline]
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        (hash::mix(hash) >> 32) as usize & (self.inner.shards.len() - 1)
    }

    /// The shards, each behind its lock, in index order.
    #[cfg(feature = "serde")]
    pub(crate) fn shards(&self) -> impl ExactSizeIterator<Item = &RwLock<Shard<K, V>>> {
        self.inner.shards.iter().map(|shard| &**shard)
    }

    /// The cache's clock.
    #[cfg(feature = "serde")]
    pub(crate) fn timeline(&self) -> &Timeline {
        &self.inner.timeline
    }

    /// Stores an entry in a locked shard, counts the write, and lets the policy adapt. With
    /// [`Lifetime::Cache`], the cache's [`Expiry`](crate::Expiry) (if any) chooses its time
    /// to live here, under the lock, where the entry it may replace is known.
    ///
    /// A coherent cache that may not store now (its replicas' coherence is unhealthy and it
    /// bypasses, rule 3 of `redis/mod.rs`) removes the key's entry instead and hands the
    /// write back, for the caller to drop once the lock is released.
    fn store(
        &self,
        shard: &mut Shard<K, V>,
        mut write: Write<K, V>,
        lifetime: Lifetime,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> Stored<K, V> {
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            if let Some((key, value, cause)) = shard.remove(write.hash, &write.key, now) {
                removals.push(key, value, cause);
            }
            return Stored::HandedBack(write);
        }
        if let (Lifetime::Cache, Some(expiry)) = (lifetime, &self.inner.expiry) {
            let remaining = shard
                .written_deadline_of(write.hash, &write.key, now)
                .map(|deadline| remaining(deadline, now.get()));
            let instant = self.inner.timeline.instant(now.get());
            if let Some(chosen) = expiry.on_write(&write.key, &write.value, instant, remaining) {
                write.time_to_live = Some(chosen);
            }
        }
        let stored = shard.insert(write, now, removals);
        self.inner.counters.insert();
        self.adapt(shard);
        if stored { Stored::Yes } else { Stored::No }
    }

    /// Gives the shard's policy the window share the climber now favours, when it is due.
    pub(crate) fn adapt(&self, shard: &mut Shard<K, V>) {
        if shard.adaptation_due() {
            let (hits, misses) = self.inner.counters.lookups();
            let entries = (shard.len() * self.inner.shards.len()) as u64;
            let share = self.inner.climber.lock().observe(hits, misses, entries);
            shard.set_window(share);
        }
    }

    #[inline]
    pub(crate) fn removals(&self) -> Removals<'_, K, V> {
        Removals::new(
            self.inner.listener.as_ref(),
            &self.inner.counters,
            self.inner.name.as_deref(),
        )
    }

    #[inline]
    pub(crate) fn weigh(&self, key: &K, value: &V) -> u32 {
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
    pub(super) fn read<Q>(&self, hash: u64, key: &Q) -> Option<(V, Freshness)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Now::lazy(&self.inner.timeline);
        let shard = self.shard(hash).read();
        let index = shard.live(hash, key, &now)?;
        let (value, freshness) = shard.hit(index, &now);
        let slow = self.inner.slow_hits.load(Ordering::Relaxed);
        if slow != 0 {
            #[cfg(feature = "redis")]
            if slow & READS_NEED_TRUST != 0 && !self.is_trusted() {
                return None;
            }
            if slow & READS_EXPIRE != 0 {
                self.reexpire(&shard, index);
            }
        }
        let read = (value.clone(), freshness);
        drop(shard);
        self.inner.counters.hit();
        Some(read)
    }

    /// Asks the cache's [`Expiry`](crate::Expiry) for a new time to live for the entry a
    /// hit just read: out of line, so that the hit path of other caches stays short.
    #[cold]
    #[inline(never)]
    fn reexpire(&self, shard: &Shard<K, V>, index: SlotIndex) {
        // Read afresh rather than passed in, so that the hit path need not keep its own.
        let now = &Now::lazy(&self.inner.timeline);
        let expiry = self
            .inner
            .expiry
            .as_ref()
            .expect("only a cache with an Expiry");
        shard.reexpire(index, now, |key, value, deadline| {
            let instant = self.inner.timeline.instant(now.get());
            let remaining = remaining(deadline, now.get());
            expiry.on_read(
                key,
                value,
                instant,
                remaining,
                &self.inner.slow_hits,
                READS_EXPIRE,
            )
        });
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
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            return None;
        }
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
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            return false;
        }
        let hash = self.hash(key);
        let now = Now::lazy(&self.inner.timeline);
        self.shard(hash).read().peek(hash, key, &now).is_some()
    }

    /// Stores `value` for `key` with the cache's time to live (or the one its
    /// [`Expiry`](crate::Expiry) chooses), replacing any entry for it.
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
        self.write(key, value, self.inner.time_to_live, Lifetime::Cache);
    }

    /// Stores `value` for `key` with its own time to live, instead of the cache's (and
    /// instead of what its [`Expiry`](crate::Expiry) would choose).
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
        self.write(key, value, Some(time_to_live), Lifetime::Given);
    }

    fn write(&self, key: K, value: V, time_to_live: Option<Duration>, lifetime: Lifetime) {
        let hash = self.hash(&key);
        let write = Write {
            hash,
            weight: self.weigh(&key, &value),
            key,
            value,
            time_to_live,
        };
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        let mut shard = self.shard(hash).write();
        let stored = self.store(&mut shard, write, lifetime, &now, &mut removals);
        drop(shard);
        drop(stored);
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
        let mut shard = self.shard(hash).write();
        // A coherent cache that may not serve now (rule 3 of `redis/mod.rs`) removes, and
        // shows nothing of what it removed: asked under the lock, as the write path asks.
        #[cfg(feature = "redis")]
        let serving = self.may_serve();
        let removed = shard.remove(hash, key, &now);
        drop(shard);
        let (key, value, cause) = removed?;
        #[cfg(feature = "redis")]
        if !serving {
            removals.push(key, value, cause);
            return None;
        }
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
}

/// The time from `now` to `deadline`: `Duration::MAX` for never.
fn remaining(deadline: Tick, now: Tick) -> Duration {
    if deadline.is_never() {
        Duration::MAX
    } else {
        deadline.since(now)
    }
}

impl<K, V, S> TtlCache<K, V, S> {
    /// `key` as the cache's tracing events show it.
    pub(crate) fn shown<'a>(&self, key: &'a K) -> ShownKey<'a, K> {
        ShownKey(key, self.inner.key_format)
    }
}

impl<K, V, S> Clone for TtlCache<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: sync::Arc::clone(&self.inner),
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
