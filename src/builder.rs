//! [`CacheBuilder`]: a cache's settings, checked once at `build`.

use std::{fmt, hash::RandomState, time::Duration};

use crate::{
    cache::{Settings, TtlCache, Weigher},
    clock::{Clock, TimeSource},
    error::BuildError,
    removal::{Listener, RemovalCause},
    sync::parallelism,
};

/// The most shards a cache may have.
pub(crate) const MAX_SHARDS: usize = 1 << 16;

/// The least capacity the default shard count leaves each shard, so that a small cache does
/// not behave like many tiny ones.
const MIN_SHARD_CAPACITY: u64 = 256;

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
pub struct CacheBuilder<K, V, S = RandomState> {
    max_capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    shards: Option<usize>,
    clock: TimeSource,
    listener: Option<Listener<K, V>>,
    hasher: S,
    loading: LoadingOptions,
}

/// The settings only a [`LoadingCache`](crate::LoadingCache) uses.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LoadingOptions {
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) load_timeout: Option<Duration>,
    pub(crate) max_concurrent_loads: Option<usize>,
    pub(crate) error_ttl: Option<Duration>,
}

impl LoadingOptions {
    /// The first setting given, by name: a plain cache refuses them.
    fn first_set(&self) -> Option<&'static str> {
        [
            (self.refresh_after.is_some(), "refresh_after"),
            (self.load_timeout.is_some(), "load_timeout"),
            (self.max_concurrent_loads.is_some(), "max_concurrent_loads"),
            (self.error_ttl.is_some(), "error_ttl"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
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
            hasher: RandomState::new(),
            loading: LoadingOptions::default(),
        }
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
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
    /// value is stored), so it should be cheap and must not call into the cache.
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
    /// By default, four per core the machine has, but fewer for small capacities so that each
    /// shard can hold at least 256 entries.
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

    /// The hasher that picks shards and buckets; by default [`RandomState`].
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
    pub fn hasher<S2>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            shards: self.shards,
            clock: self.clock,
            listener: self.listener,
            hasher,
            loading: self.loading,
        }
    }

    /// For a [`LoadingCache`](crate::LoadingCache): an entry older than this (since its write)
    /// is reloaded in the background when it is read, while readers keep getting the current
    /// value. The reloaded value gets the cache's `time_to_live` afresh. Must be shorter than
    /// `time_to_live`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let prices = ttlcache::TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .refresh_after(Duration::from_secs(30))
    ///     .build_loading(|sku: u32| async move { Ok::<_, std::io::Error>(sku * 100) })
    ///     .unwrap();
    /// assert_eq!(prices.get(&7).await.unwrap(), 700);
    /// # }
    /// ```
    pub fn refresh_after(mut self, refresh_after: Duration) -> Self {
        self.loading.refresh_after = Some(refresh_after);
        self
    }

    /// For a [`LoadingCache`](crate::LoadingCache): a load that runs longer fails with
    /// [`LoadError::TimedOut`](crate::LoadError::TimedOut), and its loader future is dropped.
    /// Time spent queued for [`max_concurrent_loads`](Self::max_concurrent_loads) does not count.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::TtlCache::<u32, u32>::builder()
    ///     .load_timeout(std::time::Duration::from_secs(2));
    /// # drop(builder);
    /// ```
    pub fn load_timeout(mut self, load_timeout: Duration) -> Self {
        self.loading.load_timeout = Some(load_timeout);
        self
    }

    /// For a [`LoadingCache`](crate::LoadingCache): at most this many loader futures run at
    /// once; further loads wait their turn, first come first served.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::TtlCache::<u32, u32>::builder().max_concurrent_loads(8);
    /// # drop(builder);
    /// ```
    pub fn max_concurrent_loads(mut self, max_concurrent_loads: usize) -> Self {
        self.loading.max_concurrent_loads = Some(max_concurrent_loads);
        self
    }

    /// For a [`LoadingCache`](crate::LoadingCache): a failed load is remembered for this long,
    /// and `get` of its key returns the same error without calling the loader, so a failing
    /// backend is not hammered. By default, and with zero, failures are not remembered.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::TtlCache::<u32, u32>::builder()
    ///     .error_ttl(std::time::Duration::from_secs(5));
    /// # drop(builder);
    /// ```
    pub fn error_ttl(mut self, error_ttl: Duration) -> Self {
        self.loading.error_ttl = Some(error_ttl);
        self
    }

    /// Checks the settings and builds the cache. Starts no thread.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidShards`] if `shards` is not a power of two from 1 to 65536,
    /// [`BuildError::ShardsExceedCapacity`] if it exceeds a nonzero `max_capacity`, and
    /// [`BuildError::LoadingOnly`] if a setting of a loading cache (`refresh_after`,
    /// `load_timeout`, `max_concurrent_loads`, `error_ttl`) was given.
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
    pub fn build(self) -> Result<TtlCache<K, V, S>, BuildError> {
        if let Some(setting) = self.loading.first_set() {
            return Err(BuildError::LoadingOnly { setting });
        }
        let (settings, _) = self.checked()?;
        Ok(TtlCache::from_settings(settings))
    }

    /// Checks the settings for a cache of either kind.
    fn checked(self) -> Result<(Settings<K, V, S>, LoadingOptions), BuildError> {
        let shards = match self.shards {
            Some(shards) if !shards.is_power_of_two() || shards > MAX_SHARDS => {
                return Err(BuildError::InvalidShards { shards });
            }
            Some(shards) => match self.max_capacity {
                Some(max_capacity) if max_capacity > 0 && shards as u64 > max_capacity => {
                    return Err(BuildError::ShardsExceedCapacity {
                        shards,
                        max_capacity,
                    });
                }
                _ => shards,
            },
            None => default_shards(self.max_capacity),
        };
        let loading = self.loading;
        if loading.refresh_after == Some(Duration::ZERO) {
            return Err(BuildError::ZeroDuration {
                setting: "refresh_after",
            });
        }
        if let (Some(refresh_after), Some(time_to_live)) =
            (loading.refresh_after, self.time_to_live)
        {
            if refresh_after >= time_to_live {
                return Err(BuildError::RefreshNotBeforeExpiry {
                    refresh_after,
                    time_to_live,
                });
            }
        }
        if loading.load_timeout == Some(Duration::ZERO) {
            return Err(BuildError::ZeroDuration {
                setting: "load_timeout",
            });
        }
        if loading.max_concurrent_loads == Some(0) {
            return Err(BuildError::ZeroConcurrentLoads);
        }
        let settings = Settings {
            shards,
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            refresh_after: loading.refresh_after,
            clock: self.clock,
            listener: self.listener,
            hasher: self.hasher,
        };
        Ok((settings, loading))
    }
}

#[cfg(feature = "tokio")]
impl<K, V, S> CacheBuilder<K, V, S>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher + Send + Sync + 'static,
{
    /// Builds a [`LoadingCache`](crate::LoadingCache) that calls `loader` for keys it lacks.
    ///
    /// Loads run as tasks on the tokio runtime this is called in.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build) (but for `LoadingOnly`), and [`BuildError::ZeroDuration`] for
    /// a zero `refresh_after` or `load_timeout`, [`BuildError::RefreshNotBeforeExpiry`] if
    /// `refresh_after >= time_to_live`, [`BuildError::ZeroConcurrentLoads`],
    /// [`BuildError::NoTokioRuntime`] outside a tokio runtime, and [`BuildError::NoTokioTimer`]
    /// for `load_timeout` in a runtime without its timer.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let users = ttlcache::TtlCache::builder()
    ///     .max_capacity(10_000)
    ///     .time_to_live(Duration::from_secs(300))
    ///     .build_loading(|id: u64| async move { Ok::<_, std::io::Error>(format!("user {id}")) })
    ///     .unwrap();
    /// assert_eq!(users.get(&7).await.unwrap(), "user 7");
    /// # }
    /// ```
    pub fn build_loading<E, F, Fut>(
        self,
        loader: F,
    ) -> Result<crate::LoadingCache<K, V, E, S>, BuildError>
    where
        E: Send + Sync + 'static,
        F: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<V, E>> + Send + 'static,
    {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoTokioRuntime {
                setting: "build_loading",
            })?;
        let (settings, loading) = self.checked()?;
        if loading.load_timeout.is_some() && !crate::clock::tokio_timer_enabled() {
            return Err(BuildError::NoTokioTimer {
                setting: "load_timeout",
            });
        }
        Ok(crate::LoadingCache::new(settings, loading, runtime, loader))
    }
}

/// Thirty-two shards per core, so that two threads rarely take the same shard's lock (each
/// read lock writes the lock's cache line), but no fewer than [`MIN_SHARD_CAPACITY`] entries
/// per shard.
fn default_shards(max_capacity: Option<u64>) -> usize {
    let by_parallelism = parallelism()
        .saturating_mul(32)
        .next_power_of_two()
        .min(MAX_SHARDS);
    let Some(capacity) = max_capacity else {
        return by_parallelism;
    };
    let most = (capacity / MIN_SHARD_CAPACITY).clamp(1, MAX_SHARDS as u64);
    // The largest power of two that is at most `most`.
    by_parallelism.min(1 << most.ilog2())
}

impl<K, V, S: fmt::Debug> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("time_to_live", &self.time_to_live)
            .field("time_to_idle", &self.time_to_idle)
            .field("shards", &self.shards)
            .field("clock", &self.clock)
            .field("eviction_listener", &self.listener.is_some())
            .field("hasher", &self.hasher)
            .field("loading", &self.loading)
            .finish()
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn small_caches_get_few_shards() {
        assert_eq!(default_shards(Some(0)), 1);
        assert_eq!(default_shards(Some(511)), 1);
        assert_eq!(default_shards(Some(512)), 2.min(default_shards(None)));
        assert!(default_shards(Some(u64::MAX)) == default_shards(None));
        assert!(default_shards(None).is_power_of_two());
    }
}
