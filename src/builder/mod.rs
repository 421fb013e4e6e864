//! [`CacheBuilder`]: a cache's settings, checked once at `build`.
//!
//! The builder's type says what it builds: settings that only a [`LoadingCache`] honours
//! (`loading.rs`) move it from the [`Plain`] state, whose `build` makes a [`TtlCache`], to the
//! [`Loading`] state, which has no `build`, only `build_loading` and `build_batch_loading`;
//! the settings of a batch loader move it to the [`BatchLoading`] state, which builds with
//! `build_batch_loading` only. What the builders of caches and lazies check alike is in
//! `checks.rs`.
//!
//! [`LoadingCache`]: crate::LoadingCache

mod checks;
mod loading;

use std::{fmt, sync::Arc, time::Duration};

#[cfg(feature = "redis")]
pub(crate) use checks::check_coherent_name;
pub(crate) use checks::{Durations, check_durations};
pub use loading::{BatchLoading, Kind, Loading};

use crate::{
    DefaultHashBuilder,
    cache::TtlCache,
    clock::{Clock, TimeSource},
    error::BuildError,
    expiry::Expiry,
    removal::{Listener, RemovalCause},
    settings::{CacheSettings, Weigher},
    trace::KeyFormat,
};

/// Settings for a [`TtlCache`], made by [`TtlCache::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ttlcache::TtlCache;
///
/// let cache = TtlCache::builder()
///     .max_capacity(10_000)
///     .time_to_live(Duration::from_secs(300))
///     .time_to_idle(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// cache.insert("token".to_string(), 42);
/// assert_eq!(cache.get("token"), Some(42));
/// ```
#[must_use]
pub struct CacheBuilder<K, V, S = DefaultHashBuilder, L = Plain> {
    max_capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    shards: Option<usize>,
    clock: TimeSource,
    listener: Option<Listener<K, V>>,
    expiry: Option<Box<dyn Expiry<K, V>>>,
    hasher: S,
    kind: L,
    name: Option<Arc<str>>,
    key_format: Option<KeyFormat<K>>,
    #[cfg(feature = "redis")]
    coherent: Option<crate::redis::Coherent<K>>,
}

/// The state of a [`CacheBuilder`] given no setting that only a loading cache honours: it
/// builds a [`TtlCache`] with `build`, or a loading cache with `build_loading` or
/// `build_batch_loading`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Plain;

/// The constructors of a cache: here, beside the builder they start, so that `cache/` needs
/// nothing of the builder's.
impl<K, V> TtlCache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of at most `max_capacity` entries, each living `time_to_live` after its write.
    ///
    /// `Duration::MAX` means entries never expire. For other settings use
    /// [`builder`](Self::builder).
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

impl<K, V> CacheBuilder<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            max_capacity: None,
            weigher: None,
            time_to_live: None,
            time_to_idle: None,
            shards: None,
            clock: TimeSource::default(),
            listener: None,
            expiry: None,
            hasher: DefaultHashBuilder::default(),
            kind: Plain,
            name: None,
            key_format: None,
            #[cfg(feature = "redis")]
            coherent: None,
        }
    }
}

impl<K, V, S, L> CacheBuilder<K, V, S, L> {
    /// The most total weight the cache holds; by default it is unbounded.
    ///
    /// With no [`weigher`](Self::weigher) every entry weighs 1, so this is an entry count. The
    /// bound is hard: after any call returns, `weighted_size() <= max_capacity`. A capacity of
    /// zero makes a cache that stores nothing (but entries a weigher gives a weight of zero).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::builder().max_capacity(2).build().unwrap();
    /// for key in 0..10 {
    ///     cache.insert(key, key);
    /// }
    /// assert_eq!(cache.len(), 2);
    /// ```
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = Some(max_capacity);
        self
    }

    /// How much of the capacity an entry uses; by default 1.
    ///
    /// The cache splits its capacity evenly among its shards, and an entry heavier than its
    /// shard's share is not stored: the listener sees it with [`RemovalCause::Size`].
    /// The weigher is called once per write, sometimes with the shard locked (when a loaded
    /// value is stored, and for `compute`), so it should be cheap and must not call into the
    /// cache.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::builder()
    ///     .max_capacity(10)
    ///     .shards(1)
    ///     .weigher(|_key: &u32, value: &String| value.len() as u32)
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, "four".to_string());
    /// cache.insert(2, "seven!!".to_string());
    /// assert_eq!(cache.weighted_size(), 7);
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// How long an entry lives after it was written; by default, forever.
    ///
    /// An entry written at `t` is returned at every time before `t + time_to_live` and never
    /// from then on. A duration too large to add to an `Instant` (such as `Duration::MAX`)
    /// means never; zero means every entry expires as it is written.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn time_to_live(mut self, time_to_live: Duration) -> Self {
        self.time_to_live = Some(time_to_live);
        self
    }

    /// How long an entry lives after it was last read or written; by default, forever.
    ///
    /// Each [`get`](TtlCache::get) hit at `r` moves the entry's deadline to
    /// `min(write + time_to_live, r + time_to_idle)`. [`peek`](TtlCache::peek) does not.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder()
    ///     .time_to_idle(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// clock.advance(Duration::from_secs(9));
    /// assert_eq!(cache.get(&1), Some(1));
    /// clock.advance(Duration::from_secs(9));
    /// assert_eq!(cache.get(&1), Some(1));
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn time_to_idle(mut self, time_to_idle: Duration) -> Self {
        self.time_to_idle = Some(time_to_idle);
        self
    }

    /// How many independently locked parts the cache has: a power of two from 1 to 65536.
    ///
    /// By default, thirty-two per core the machine has (so that two threads seldom take one
    /// shard's lock), but fewer for small capacities, so that each shard can hold at least 256
    /// entries.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u64, u64>::builder().shards(16).build().unwrap();
    /// # drop(cache);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The clock expiry reads; by default [`SystemClock`](crate::SystemClock).
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ttlcache::ManualClock::new();
    /// let cache = ttlcache::TtlCache::<u64, u64>::builder().clock(clock).build().unwrap();
    /// # drop(cache);
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = TimeSource::of(clock);
        self
    }

    /// Called with each entry that leaves the cache, and why: see [`RemovalCause`].
    ///
    /// It runs on the thread whose call removed the entry, after the cache's locks are
    /// released, so it may call into the cache. Every entry that leaves a live cache is
    /// reported exactly once; dropping the cache reports nothing.
    ///
    /// # Panics
    ///
    /// A panic in the listener does not stop the other removals of that call from being
    /// reported, nor harm the cache: the first panic is resumed once all are reported, in the
    /// call that removed the entries.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let evicted = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&evicted);
    /// let cache = ttlcache::TtlCache::builder()
    ///     .max_capacity(1)
    ///     .eviction_listener(move |_key: u32, _value: u32, cause| {
    ///         if cause.was_evicted() {
    ///             counter.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// assert_eq!(evicted.load(Ordering::Relaxed), 1);
    /// ```
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(K, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Each entry's time to live, chosen from its key and value by `expiry` (see [`Expiry`]):
    /// for writes that would otherwise take [`time_to_live`](Self::time_to_live), which stays
    /// the time to live of entries for which `expiry` answers `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ttlcache::{Expiry, ManualClock, TtlCache};
    ///
    /// /// An HTTP response lives its `max-age`; one without lives the cache's minute.
    /// struct MaxAge;
    ///
    /// impl Expiry<String, (Option<u64>, String)> for MaxAge {
    ///     fn expire_after_create(
    ///         &self,
    ///         _url: &String,
    ///         (max_age, _body): &(Option<u64>, String),
    ///         _now: Instant,
    ///     ) -> Option<Duration> {
    ///         max_age.map(Duration::from_secs)
    ///     }
    /// }
    ///
    /// let clock = ManualClock::new();
    /// let responses = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .expire_after(MaxAge)
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// responses.insert("/a".to_string(), (Some(5), "a".to_string()));
    /// responses.insert("/b".to_string(), (None, "b".to_string()));
    /// clock.advance(Duration::from_secs(5));
    /// assert!(responses.get("/a").is_none());
    /// assert!(responses.get("/b").is_some());
    /// ```
    pub fn expire_after(mut self, expiry: impl Expiry<K, V>) -> Self {
        self.expiry = Some(Box::new(expiry));
        self
    }

    /// The hasher that picks shards and buckets; by default a [`DefaultHashBuilder`], fast
    /// and seeded per cache. Give std's [`RandomState`](std::hash::RandomState) for keys that
    /// an attacker chooses: see [`DefaultHashBuilder`] on hash flooding.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::hash::BuildHasherDefault;
    /// use std::collections::hash_map::DefaultHasher;
    ///
    /// let cache = ttlcache::TtlCache::<u64, u64>::builder()
    ///     .hasher(BuildHasherDefault::<DefaultHasher>::default())
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn hasher<S2>(self, hasher: S2) -> CacheBuilder<K, V, S2, L> {
        self.map(|_, kind| (hasher, kind))
    }

    /// The same settings with another hasher or in another state.
    fn map<S2, L2>(self, f: impl FnOnce(S, L) -> (S2, L2)) -> CacheBuilder<K, V, S2, L2> {
        let (hasher, kind) = f(self.hasher, self.kind);
        CacheBuilder {
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            shards: self.shards,
            clock: self.clock,
            listener: self.listener,
            expiry: self.expiry,
            hasher,
            kind,
            name: self.name,
            key_format: self.key_format,
            #[cfg(feature = "redis")]
            coherent: self.coherent,
        }
    }

    /// What the cache is called where it reports: its metrics (feature `metrics`) carry the
    /// label `cache = "<name>"`, and its tracing events (feature `tracing`) a field `cache`.
    /// A cache without a name reports no metrics. A [`coherent`](Self::coherent) cache given
    /// no name is called by its coherent name.
    ///
    /// # Examples
    ///
    /// ```
    /// let users = ttlcache::TtlCache::<u64, String>::builder()
    ///     .name("users")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(users.name(), Some("users"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Has the cache's tracing events (feature `tracing`) show each key by its `Debug`, in a
    /// field `key`; without this they show `key=_`, as they must for a key type without
    /// `Debug`. Keys are formatted only for an event a subscriber records, never on a hit.
    ///
    /// # Examples
    ///
    /// ```
    /// let users = ttlcache::TtlCache::<u64, String>::builder()
    ///     .name("users")
    ///     .trace_keys()
    ///     .build()
    ///     .unwrap();
    /// # drop(users);
    /// ```
    #[cfg(feature = "tracing")]
    pub fn trace_keys(mut self) -> Self
    where
        K: fmt::Debug,
    {
        self.key_format = Some(<K as fmt::Debug>::fmt);
        self
    }

    /// Keeps this cache coherent with the caches of the same `name` in the other replicas
    /// that share `coherence`'s Redis and namespace: see [`Coherence`](crate::redis::Coherence).
    ///
    /// Keys cross processes through redis-rs's `ToRedisArgs` and `FromRedisValue`: integers,
    /// strings and byte vectors work as they are. While `coherence` is unhealthy (its lease
    /// passed, checked on every read), the cache does what its
    /// [`Unhealthy`](crate::redis::Unhealthy) setting says; with `Bypass`, a hit checks the
    /// lease (about 25 instructions more than without coherence). A loading cache's
    /// remembered failures (`error_ttl`) are invalidated and flushed with its values.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let sessions = TtlCache::<String, u64>::builder()
    ///     .coherent(&coherence, "sessions")
    ///     .build()?;
    /// # drop(sessions);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn coherent(mut self, coherence: &crate::redis::Coherence, name: &str) -> Self
    where
        K: ::redis::FromRedisValue + 'static,
    {
        self.coherent = Some(crate::redis::Coherent::new(coherence, name));
        self
    }

    /// Checks the settings of a cache of either kind.
    fn checked(self) -> Result<(CacheSettings<K, V, S>, L), BuildError> {
        let shards = checks::shard_count(self.shards, self.max_capacity)?;
        #[allow(
            unused_mut,
            reason = "only a coherent cache gets a name it was not given"
        )]
        let mut name = self.name;
        #[cfg(feature = "redis")]
        if let Some(coherent) = &self.coherent {
            checks::check_coherent_name(coherent.name())?;
            name = name.or_else(|| Some(coherent.name().into()));
        }
        let settings = CacheSettings {
            shards,
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            refresh_after: None,
            stale_if_error: None,
            clock: self.clock,
            listener: self.listener,
            expiry: self.expiry,
            hasher: self.hasher,
            name,
            key_format: self.key_format,
            #[cfg(feature = "redis")]
            coherent: self.coherent,
        };
        Ok((settings, self.kind))
    }
}

impl<K, V, S> CacheBuilder<K, V, S, Plain>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher + Send + Sync + 'static,
{
    /// Checks the settings and builds the cache.
    ///
    /// It starts no thread. (With the default [`SystemClock`](crate::SystemClock), the
    /// cache's first read of the time starts the process's ticker thread, which stops again
    /// when no cache reads the time.) A builder given a setting that only a
    /// [`LoadingCache`](crate::LoadingCache) honours has no `build`: its type is
    /// [`CacheBuilder<_, _, _, Loading>`](Loading), which builds with
    /// [`build_loading`](Self::build_loading) or
    /// [`build_batch_loading`](Self::build_batch_loading), or, given a setting of a batch
    /// loader, [`CacheBuilder<_, _, _, BatchLoading>`](BatchLoading), which builds with
    /// `build_batch_loading` only.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidShards`] if `shards` is not a power of two from 1 to 65536,
    /// [`BuildError::ShardsExceedCapacity`] if it exceeds a nonzero `max_capacity`; with
    /// `coherent` (feature `redis`), [`BuildError::InvalidCoherentName`] for a name that is
    /// empty or holds a `:`, and [`BuildError::CoherentNameTaken`] if a live cache of the same
    /// coherence holds the name with keys of another type.
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::{BuildError, TtlCache};
    ///
    /// let error = TtlCache::<u32, u32>::builder().max_capacity(4).shards(8).build();
    /// assert_eq!(
    ///     error.unwrap_err(),
    ///     BuildError::ShardsExceedCapacity { shards: 8, max_capacity: 4 }
    /// );
    /// ```
    ///
    /// A setting of a loading cache leaves no `build` to call:
    ///
    /// ```compile_fail
    /// let cache = ttlcache::TtlCache::<u64, u64>::builder()
    ///     .refresh_after(std::time::Duration::from_secs(1))
    ///     .build();
    /// ```
    pub fn build(self) -> Result<TtlCache<K, V, S>, BuildError> {
        let (settings, Plain) = self.checked()?;
        TtlCache::from_settings(settings)
    }
}

impl<K, V, S: fmt::Debug, L: fmt::Debug> fmt::Debug for CacheBuilder<K, V, S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("time_to_live", &self.time_to_live)
            .field("time_to_idle", &self.time_to_idle)
            .field("shards", &self.shards)
            .field("clock", &self.clock)
            .field("eviction_listener", &self.listener.is_some())
            .field("expire_after", &self.expiry.is_some())
            .field("hasher", &self.hasher)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}
