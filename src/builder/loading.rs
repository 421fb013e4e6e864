//! The settings only a [`LoadingCache`](crate::LoadingCache) honours, and the builder states
//! they move a [`CacheBuilder`] into: [`Loading`], and [`BatchLoading`] for the settings of a
//! batch loader.

use std::time::Duration;

use super::{CacheBuilder, Plain};
#[cfg(feature = "tokio")]
use super::{Durations, check_durations};
#[cfg(feature = "tokio")]
use crate::{
    error::BuildError,
    loading::Loader,
    runtime::{self, Timer},
    settings::{CacheSettings, LoadSettings},
};

/// The state of a [`CacheBuilder`] given a setting that only a
/// [`LoadingCache`](crate::LoadingCache) honours (`refresh_after`, `load_timeout`,
/// `max_concurrent_loads`, `error_ttl`): it has no `build`, only `build_loading` and
/// `build_batch_loading`, so such a setting cannot be given to a plain cache by mistake.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use ttlcache::{CacheBuilder, TtlCache, builder::Loading};
///
/// let builder: CacheBuilder<u32, u32, _, Loading> =
///     TtlCache::builder().refresh_after(Duration::from_secs(30));
/// let cache = builder
///     .build_loading(|n: u32| async move { Ok::<_, String>(n) })
///     .unwrap();
/// assert_eq!(cache.get(&3).await, Ok(3));
/// # }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Loading {
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) load_timeout: Option<Duration>,
    pub(crate) max_concurrent_loads: Option<usize>,
    pub(crate) error_ttl: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) batch_window: Option<Duration>,
    pub(crate) max_batch_size: Option<usize>,
}

/// A loading cache's settings, checked: its cache's, its own, and those of a batch loader.
#[cfg(feature = "tokio")]
struct CheckedLoading<K, V, S> {
    settings: CacheSettings<K, V, S>,
    load: LoadSettings,
    loading: Loading,
}

/// The most keys a batch loader gets in one call, unless `max_batch_size` says otherwise.
#[cfg(feature = "tokio")]
const DEFAULT_MAX_BATCH_SIZE: usize = 1_000;

/// The state of a [`CacheBuilder`] given a setting of a batch loader (`batch_window`,
/// `max_batch_size`): it builds with `build_batch_loading` only, so such a setting cannot be
/// given to a loader of one key at a time by mistake.
///
/// # Examples
///
/// ```
/// use ttlcache::{CacheBuilder, TtlCache, builder::BatchLoading};
///
/// let builder: CacheBuilder<u64, String, _, BatchLoading> =
///     TtlCache::builder().max_batch_size(500);
/// # drop(builder);
/// ```
///
/// ```compile_fail,E0599
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = ttlcache::TtlCache::<u64, u64>::builder()
///     .max_batch_size(500)
///     .build_loading(|id: u64| async move { Ok::<_, String>(id) });
/// # }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchLoading(Loading);

/// The states of a [`CacheBuilder`]: [`Plain`], [`Loading`] and [`BatchLoading`]. Sealed.
pub trait Kind: sealed::Sealed {
    /// The state a loading setting moves the builder into: [`BatchLoading`] stays, the
    /// others become [`Loading`].
    type Next: Kind;

    /// The loading settings given so far.
    #[doc(hidden)]
    fn into_loading(self) -> Loading;

    /// The state after a loading setting, holding `loading`.
    #[doc(hidden)]
    fn with_loading(loading: Loading) -> Self::Next;
}

impl Kind for Plain {
    type Next = Loading;

    fn into_loading(self) -> Loading {
        Loading::default()
    }

    fn with_loading(loading: Loading) -> Loading {
        loading
    }
}

impl Kind for Loading {
    type Next = Loading;

    fn into_loading(self) -> Loading {
        self
    }

    fn with_loading(loading: Loading) -> Loading {
        loading
    }
}

impl Kind for BatchLoading {
    type Next = BatchLoading;

    fn into_loading(self) -> Loading {
        self.0
    }

    fn with_loading(loading: Loading) -> BatchLoading {
        BatchLoading(loading)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Plain {}
    impl Sealed for super::Loading {}
    impl Sealed for super::BatchLoading {}
}

impl<K, V, S, L: Kind> CacheBuilder<K, V, S, L> {
    /// For a [`LoadingCache`](crate::LoadingCache): an entry older than this (since its write)
    /// is reloaded in the background when it is read, while readers keep getting the current
    /// value. The reloaded value gets the cache's `time_to_live` afresh (or what its
    /// [`Expiry`](crate::Expiry) chooses). Must be shorter than `time_to_live`.
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
    pub fn refresh_after(self, refresh_after: Duration) -> CacheBuilder<K, V, S, L::Next> {
        self.loading(|loading| loading.refresh_after = Some(refresh_after))
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
    pub fn load_timeout(self, load_timeout: Duration) -> CacheBuilder<K, V, S, L::Next> {
        self.loading(|loading| loading.load_timeout = Some(load_timeout))
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
    pub fn max_concurrent_loads(
        self,
        max_concurrent_loads: usize,
    ) -> CacheBuilder<K, V, S, L::Next> {
        self.loading(|loading| loading.max_concurrent_loads = Some(max_concurrent_loads))
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
    pub fn error_ttl(self, error_ttl: Duration) -> CacheBuilder<K, V, S, L::Next> {
        self.loading(|loading| loading.error_ttl = Some(error_ttl))
    }

    /// For a [`LoadingCache`](crate::LoadingCache): an entry past its time to live is kept
    /// for up to `stale_if_error` more, for a failed load of its key to answer with. Reads
    /// never see it (`get` loads the key as for any miss, and [`TtlCache::get`](crate::TtlCache::get)
    /// misses), but when the load fails (an error, `load_timeout` or a panic; not a batch
    /// loader's `NotFound`, which removes the entry), every caller waiting for it gets the kept
    /// value, `Ok`, instead of the error. The kept value is not stored anew: the next `get`
    /// tries a load again, unless [`error_ttl`](Self::error_ttl) remembers the failure, and
    /// then `get` answers with the kept value without calling the loader until it passes.
    /// Past `stale_if_error`, the entry is removed and the error reaches the callers.
    /// [`CacheStats::stale_served`](crate::CacheStats::stale_served) counts the answers. The
    /// cache's own `get_or_*` loads ([`LoadingCache::cache`](crate::LoadingCache::cache)) are
    /// answered the same way. [`retain`](crate::TtlCache::retain) and
    /// [`clear`](crate::TtlCache::clear) remove kept entries at once; the eviction policy
    /// treats them as any other entry.
    ///
    /// This is the fail-safe of .NET's FusionCache and RFC 5861's `stale-if-error`: a backend
    /// outage degrades to old data rather than to errors. Kept entries count against the
    /// capacity until they are removed, as expired entries not yet removed do, and
    /// [`TtlCache::purge_expired`](crate::TtlCache::purge_expired) leaves them.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let rates = ttlcache::TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .stale_if_error(Duration::from_secs(600))
    ///     .build_loading(|currency: String| async move {
    ///         Ok::<_, std::io::Error>(currency.len() as f64)
    ///     })
    ///     .unwrap();
    /// assert_eq!(rates.get("EUR").await.unwrap(), 3.0);
    /// # }
    /// ```
    pub fn stale_if_error(self, stale_if_error: Duration) -> CacheBuilder<K, V, S, L::Next> {
        self.loading(|loading| loading.stale_if_error = Some(stale_if_error))
    }

    /// For a batch loader ([`build_batch_loading`](Self::build_batch_loading)): how long a
    /// batch gathers keys after its first, before its loader call. By default a batch gathers
    /// until the next tick of the runtime, as DataLoader does: the keys asked for by the tasks
    /// that are ready to run when the first key joins. On a multi-threaded runtime, whose
    /// other workers go on meanwhile, a window of a millisecond or two gathers more.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::TtlCache::<u32, u32>::builder()
    ///     .batch_window(std::time::Duration::from_millis(2));
    /// # drop(builder);
    /// ```
    pub fn batch_window(self, batch_window: Duration) -> CacheBuilder<K, V, S, BatchLoading> {
        self.batch_loading(|loading| loading.batch_window = Some(batch_window))
    }

    /// For a batch loader ([`build_batch_loading`](Self::build_batch_loading)): the most keys
    /// one loader call gets; a batch that reaches it is loaded at once. Default 1,000.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::TtlCache::<u32, u32>::builder().max_batch_size(100);
    /// # drop(builder);
    /// ```
    pub fn max_batch_size(self, max_batch_size: usize) -> CacheBuilder<K, V, S, BatchLoading> {
        self.batch_loading(|loading| loading.max_batch_size = Some(max_batch_size))
    }

    /// The same settings in the state after a loading setting, with `set` applied to its
    /// loading settings.
    fn loading(self, set: impl FnOnce(&mut Loading)) -> CacheBuilder<K, V, S, L::Next> {
        self.map(|hasher, kind| {
            let mut loading = kind.into_loading();
            set(&mut loading);
            (hasher, L::with_loading(loading))
        })
    }

    /// The same settings in the batch loading state, with `set` applied to its loading
    /// settings.
    fn batch_loading(self, set: impl FnOnce(&mut Loading)) -> CacheBuilder<K, V, S, BatchLoading> {
        self.map(|hasher, kind| {
            let mut loading = kind.into_loading();
            set(&mut loading);
            (hasher, BatchLoading(loading))
        })
    }
}

#[cfg(feature = "tokio")]
impl<K, V, S, L: Kind<Next = Loading>> CacheBuilder<K, V, S, L>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher + Send + Sync + 'static,
{
    /// Builds a [`LoadingCache`](crate::LoadingCache) that calls `loader` for keys it lacks.
    ///
    /// Loads run as tasks on the tokio runtime this is called in. A builder given a setting of
    /// a batch loader (`batch_window`, `max_batch_size`) has no `build_loading`: it is in the
    /// [`BatchLoading`] state, which builds with `build_batch_loading` only.
    ///
    /// # Errors
    ///
    /// As [`build`](CacheBuilder::build), and [`BuildError::ZeroDuration`] for
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
        let CheckedLoading { settings, load, .. } = self.checked_loading("build_loading")?;
        crate::LoadingCache::new(settings, load, Loader::single(loader))
    }
}

#[cfg(feature = "tokio")]
impl<K, V, S, L: Kind> CacheBuilder<K, V, S, L>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher + Send + Sync + 'static,
{
    /// Builds a [`LoadingCache`](crate::LoadingCache) whose `loader` takes many keys at once
    /// (a SQL `WHERE id = ANY($1)`, a multi-get), the DataLoader pattern: concurrent `get`s of
    /// missing keys, [`get_all`](crate::LoadingCache::get_all)s and refreshes are gathered
    /// for [`batch_window`](Self::batch_window) into calls of at most
    /// [`max_batch_size`](Self::max_batch_size) keys.
    ///
    /// Each key stays single-flighted against every other `get`, `get_all` and refresh of
    /// it, and a batch runs in a task of its own, so no caller's cancellation cancels or
    /// stalls a batch that others wait on. A key the loader's map leaves out is
    /// [`LoadError::NotFound`](crate::LoadError::NotFound) for its callers (not cached, unless
    /// `error_ttl`); a failed batch fails each of its keys with the same `Arc<E>`.
    /// `load_timeout` limits each loader call, `max_concurrent_loads` counts batches, and
    /// stats count each batch as one load. (A loader that asks the cache for a key of its own
    /// batch waits for itself, until `load_timeout`.)
    ///
    /// # Errors
    ///
    /// As [`build_loading`](Self::build_loading), and [`BuildError::ZeroBatchSize`], and
    /// [`BuildError::ZeroDuration`] for a zero `batch_window`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::collections::HashMap;
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    ///
    /// let queries = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&queries);
    /// let users = ttlcache::TtlCache::builder()
    ///     .build_batch_loading(move |ids: Vec<u64>| {
    ///         counted.fetch_add(1, Ordering::Relaxed);
    ///         async move {
    ///             // `SELECT id, name FROM users WHERE id = ANY($1)`, in a real service.
    ///             let rows = ids.into_iter().map(|id| (id, format!("user {id}")));
    ///             Ok::<_, String>(rows.collect::<HashMap<_, _>>())
    ///         }
    ///     })
    ///     .unwrap();
    /// // Ten concurrent requests, one query.
    /// let requests: Vec<_> = (0..10u64)
    ///     .map(|id| {
    ///         let users = users.clone();
    ///         tokio::spawn(async move { users.get(&id).await })
    ///     })
    ///     .collect();
    /// for (id, request) in requests.into_iter().enumerate() {
    ///     assert_eq!(request.await.unwrap(), Ok(format!("user {id}")));
    /// }
    /// assert_eq!(queries.load(Ordering::Relaxed), 1);
    /// # }
    /// ```
    pub fn build_batch_loading<E, F, Fut>(
        self,
        loader: F,
    ) -> Result<crate::LoadingCache<K, V, E, S>, BuildError>
    where
        E: Send + Sync + 'static,
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<std::collections::HashMap<K, V>, E>>
            + Send
            + 'static,
    {
        let CheckedLoading {
            settings,
            load,
            loading,
        } = self.checked_loading("build_batch_loading")?;
        check_durations(Durations {
            nonzero: &[("batch_window", loading.batch_window)],
            refresh_after: None,
            time_to_live: None,
        })?;
        let max_batch_size = loading.max_batch_size.unwrap_or(DEFAULT_MAX_BATCH_SIZE);
        if max_batch_size == 0 {
            return Err(BuildError::ZeroBatchSize);
        }
        if loading.batch_window.is_some() {
            runtime::built_in("batch_window", Timer::Needed)?;
        }
        let loader = Loader::batch(loader, loading.batch_window, max_batch_size);
        crate::LoadingCache::new(settings, load, loader)
    }

    /// Checks the settings every loading cache has; `build` names the builder method.
    fn checked_loading(self, build: &'static str) -> Result<CheckedLoading<K, V, S>, BuildError> {
        let runtime = runtime::built_in(build, Timer::NotNeeded)?;
        let time_to_live = self.time_to_live;
        let (mut settings, kind) = self.checked()?;
        let loading = kind.into_loading();
        check_durations(Durations {
            nonzero: &[("refresh_after", loading.refresh_after)],
            refresh_after: loading.refresh_after,
            time_to_live,
        })?;
        check_durations(Durations {
            nonzero: &[
                ("load_timeout", loading.load_timeout),
                ("stale_if_error", loading.stale_if_error),
            ],
            refresh_after: None,
            time_to_live: None,
        })?;
        if loading.max_concurrent_loads == Some(0) {
            return Err(BuildError::ZeroConcurrentLoads);
        }
        if loading.load_timeout.is_some() {
            runtime::built_in("load_timeout", Timer::Needed)?;
        }
        settings.refresh_after = loading.refresh_after;
        settings.stale_if_error = loading.stale_if_error;
        Ok(CheckedLoading {
            settings,
            load: LoadSettings {
                load_timeout: loading.load_timeout,
                max_concurrent_loads: loading.max_concurrent_loads,
                error_ttl: loading.error_ttl,
                runtime,
            },
            loading,
        })
    }
}
