//! [`LoadingCache`]: a [`TtlCache`] that loads what it lacks, and refreshes before expiry.
//!
//! It is a front door to the cache's single-flight engine (`flight/`, `cache/load.rs`): the
//! same pending loads, the same leaders, only run as tasks.
//!
//! Rules:
//! 1. Every load runs as a task, on the caller's tokio runtime (outside one, on the runtime the
//!    cache was built in), owning the load's leader. Callers only wait on its flight, so a
//!    cancelled caller neither cancels nor stalls the load, and the value is stored for the
//!    next caller.
//! 2. The task settles the flight whatever the loader does: its value, its error, `Panicked`
//!    (a panic in the loader is caught, as is a loader asking for its own key) or `TimedOut`.
//!    Only a task its runtime drops (it shut down) abandons the flight; the caller that spawned
//!    it then runs the load itself.
//! 3. A read of a live entry older than `refresh_after` returns it at once and starts one
//!    refresh: a load registered for the key while its value stays live. A write to the key
//!    (an insert, an invalidation) detaches the refresh, so what replaced or removed the entry
//!    is never overwritten by it. A failed refresh leaves the old value until its time to live.
//! 4. With `error_ttl`, a failure is remembered in a second cache for that long, before its
//!    flight settles and only if no write detached the load; meanwhile `get` of the key
//!    returns it without a load, and no refresh starts. The leader puts it in that cache
//!    unconfirmed, holding no lock of the main cache, then confirms it (an atomic store)
//!    under the key's shard lock if the load is still pending there. A read honours only
//!    confirmed failures, and `invalidate` removes the failure after the value, so a failure
//!    is either confirmed before an invalidation detaches its load, and then removed by it,
//!    or never confirmed. The two caches' locks are never held together (`failures.rs`).
//! 5. At most `max_concurrent_loads` loader futures run at once: a load task takes a permit of
//!    a fair (first come, first served) semaphore before it calls the loader. (A loader that
//!    awaits another load of the same cache while all permits are taken waits forever.)
//! 6. A batch loader's leaders gather into batches instead of calling a loader each:
//!    `batch.rs`.

mod batch;
mod failures;

use batch::Batcher;
/// For the loom models of the gathering.
#[cfg(ttlcache_loom)]
pub(crate) use batch::{Gathering, Joined};
use failures::Failures;

use std::{
    borrow::Borrow,
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    hash::{BuildHasher, Hash},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use tokio::{
    runtime::Handle,
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::{
    DefaultHashBuilder, TtlCache,
    builder::{Loading, Settings},
    cache::{KeyLeader, Refresh},
    error::LoadError,
    flight::{self, Answer, Found, Led, Run, catch_panic},
    shard::Freshness,
    trace::LoadSpan,
};

/// A boxed loader future.
type LoadFuture<V, E> = Pin<Box<dyn Future<Output = Result<V, E>> + Send>>;

/// A load this cache leads, with its key's hash and the key.
type Lead<K, V, S> = (KeyLeader<K, V, S>, u64, K);

/// How the cache loads: a key at a time, or in batches (`batch.rs`).
pub(crate) enum Loader<K, V, E> {
    Single(Box<dyn Fn(K) -> LoadFuture<V, E> + Send + Sync>),
    Batch(Batcher<K, V, E>),
}

impl<K, V, E> Loader<K, V, E> {
    /// A loader of one key at a time.
    pub(crate) fn single<F, Fut>(loader: F) -> Self
    where
        F: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        Self::Single(Box::new(move |key| Box::pin(loader(key))))
    }

    /// A loader of batches of at most `max_batch_size` keys, gathered for `window` (`None`:
    /// one yield to the runtime).
    pub(crate) fn batch<F, Fut>(loader: F, window: Option<Duration>, max_batch_size: usize) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send + 'static,
    {
        Self::Batch(Batcher::new(loader, window, max_batch_size))
    }
}

/// A cache that loads missing values with a loader bound at build time, coalescing concurrent
/// loads of a key into one, and refreshing entries in the background before they expire.
///
/// Built by [`CacheBuilder::build_loading`](crate::CacheBuilder::build_loading). A cheap
/// handle: clones share one cache.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use ttlcache::TtlCache;
///
/// let profiles = TtlCache::builder()
///     .max_capacity(10_000)
///     .time_to_live(Duration::from_secs(300))
///     .refresh_after(Duration::from_secs(240))
///     .build_loading(|user: u64| async move {
///         // An HTTP call or a query, in a real service.
///         Ok::<_, std::io::Error>(format!("profile of {user}"))
///     })
///     .unwrap();
///
/// assert_eq!(profiles.get(&42).await.unwrap(), "profile of 42");
/// assert_eq!(profiles.get_if_present(&42).as_deref(), Some("profile of 42"));
/// assert_eq!(profiles.cache().stats().load_successes, 1);
/// # }
/// ```
pub struct LoadingCache<K, V, E, S = DefaultHashBuilder> {
    cache: TtlCache<K, V, S>,
    shared: Arc<Shared<K, V, E>>,
}

struct Shared<K, V, E> {
    loader: Loader<K, V, E>,
    load_timeout: Option<Duration>,
    permits: Option<Arc<Semaphore>>,
    /// Failures remembered for `error_ttl` (rule 4).
    errors: Option<Failures<K, E>>,
    runtime: Handle,
}

impl<K, V, E, S> LoadingCache<K, V, E, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    pub(crate) fn new(
        settings: Settings<K, V, S>,
        options: Loading,
        runtime: Handle,
        loader: Loader<K, V, E>,
    ) -> Result<Self, crate::BuildError> {
        let errors = options
            .error_ttl
            .filter(|ttl| !ttl.is_zero())
            .map(|error_ttl| Failures::new(&settings, error_ttl))
            .transpose()?;
        Ok(Self {
            cache: TtlCache::from_settings(settings)?,
            shared: Arc::new(Shared {
                loader,
                load_timeout: options.load_timeout,
                permits: options.max_concurrent_loads.map(|permits| {
                    // Past tokio's limit there is no limit to keep.
                    Arc::new(Semaphore::new(permits.min(Semaphore::MAX_PERMITS)))
                }),
                errors,
                runtime,
            }),
        })
    }

    /// The value for `key`, loading it if the cache has none.
    ///
    /// A live value is returned at once; if it is older than `refresh_after`, a background
    /// reload starts (one per key, however many reads see it stale). A missing key is loaded
    /// by the loader in a task of its own; with `error_ttl`, a recent failure of the key is
    /// returned instead, without calling the loader.
    ///
    /// # Errors
    ///
    /// [`LoadError::Failed`] with the loader's error, [`LoadError::Panicked`] if the loader
    /// panicked, [`LoadError::TimedOut`] if it ran past `load_timeout`, and, with a batch
    /// loader, [`LoadError::NotFound`] if its map had no value for the key. Every caller that
    /// waited for the same load gets the same error; errors are not cached unless `error_ttl`
    /// says so.
    ///
    /// # Concurrent calls on the same key
    ///
    /// However many callers ask for a missing key at once, the loader runs once and they all
    /// get its value (or its error).
    ///
    /// # Cancel safety
    ///
    /// Dropping this future at any point is safe: the load runs in its own task, goes on for
    /// the other callers, and its value is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let squares = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n * n) })
    ///     .unwrap();
    /// assert_eq!(squares.get(&12).await, Ok(144));
    /// # }
    /// ```
    pub async fn get<Q>(&self, key: &Q) -> Result<V, LoadError<E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let hash = self.cache.hash(key);
        if let Some(value) = self.read(hash, key) {
            return Ok(value);
        }
        self.cache.record_miss();
        if let Some(error) = self.remembered_error(key) {
            return Err(error);
        }
        self.load(hash, key.to_owned()).await
    }

    /// The values of `keys`: the cache's live ones, and loads of the others, started
    /// together so that a batch loader gets them in as few calls as `max_batch_size` allows
    /// (otherwise they run as concurrent single loads).
    ///
    /// A key the batch loader's map leaves out ([`LoadError::NotFound`]) is left out of the
    /// returned map, as Caffeine's `getAll` does. Each key is single-flighted with every other
    /// `get` and `get_all` of it; hits and refreshes are as for [`get`](Self::get).
    ///
    /// # Errors
    ///
    /// The first error of a key's load other than `NotFound`, as [`get`](Self::get) returns
    /// it, or a failure remembered for a key (with `error_ttl`), which is returned before any
    /// load starts. Loads this call started go on and are stored.
    ///
    /// # Concurrent calls on the same key
    ///
    /// A key that another `get`, `get_all` or refresh is loading is not loaded again: this
    /// call waits for that load, however many callers ask.
    ///
    /// # Cancel safety
    ///
    /// As [`get`](Self::get): every load runs in a task of its own (or of its batch).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::collections::HashMap;
    ///
    /// let users = ttlcache::TtlCache::builder()
    ///     .build_batch_loading(|ids: Vec<u64>| async move {
    ///         // One `SELECT ... WHERE id = ANY($1)`, in a real service; id 0 does not exist.
    ///         Ok::<_, String>(
    ///             ids.into_iter().filter(|&id| id != 0).map(|id| (id, format!("user {id}"))).collect(),
    ///         )
    ///     })
    ///     .unwrap();
    /// users.cache().insert(1, "Ada".to_string());
    /// let found: HashMap<u64, String> = users.get_all([0, 1, 2]).await.unwrap();
    /// assert_eq!(found.len(), 2);
    /// assert_eq!(found[&1], "Ada");
    /// assert_eq!(found[&2], "user 2");
    /// # }
    /// ```
    pub async fn get_all(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<K, V>, LoadError<E>> {
        let keys: HashSet<K> = keys.into_iter().collect();
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            let hash = self.cache.hash(&key);
            if let Some(value) = self.read(hash, &key) {
                found.insert(key, value);
                continue;
            }
            self.cache.record_miss();
            match self.remembered_error(&key) {
                None => missing.push((hash, key)),
                Some(LoadError::NotFound) => {}
                Some(error) => return Err(error),
            }
        }
        let leads: Vec<Lead<K, V, S>> = missing
            .iter()
            .filter_map(
                |(hash, key)| match self.cache.start(*hash, &mut Some(key.clone())) {
                    Found::Lead(leader) => Some((leader, *hash, key.clone())),
                    Found::Value(_) | Found::Join(_) => None,
                },
            )
            .collect();
        self.launch(leads);
        // Every load runs already: waiting for them one by one takes as long as the slowest.
        for (hash, key) in missing {
            match self.load(hash, key.clone()).await {
                Ok(value) => drop(found.insert(key, value)),
                Err(LoadError::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(found)
    }

    /// The value of a missing key: joins its load, or leads one.
    async fn load(&self, hash: u64, key: K) -> Result<V, LoadError<E>> {
        let answer = flight::join_or_lead(
            || self.cache.start(hash, &mut Some(key.clone())),
            |leader, run| match run {
                Run::Anywhere => {
                    self.launch(vec![(leader, hash, key.clone())]);
                    Led::Spawned
                }
                Run::Here => Led::Here(self.run(leader, hash, key.clone())),
            },
        )
        .await;
        // A value found now, after the miss counted, is another caller's fresh load.
        if let Answer::Found(value) = answer {
            return Ok(value);
        }
        answer.into_result().map_err(|error| (*error).clone())
    }

    /// The value for `key` if the cache holds it live; never loads.
    ///
    /// Like [`get`](Self::get), it starts a background refresh of a value older than
    /// `refresh_after`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n + 1) })
    ///     .unwrap();
    /// assert_eq!(cache.get_if_present(&1), None);
    /// cache.get(&1).await.unwrap();
    /// assert_eq!(cache.get_if_present(&1), Some(2));
    /// # }
    /// ```
    pub fn get_if_present<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let value = self.read(self.cache.hash(key), key);
        if value.is_none() {
            self.cache.record_miss();
        }
        value
    }

    /// Removes the key's value and any failure remembered for it. A load or refresh of the
    /// key running meanwhile still answers its callers, but is not stored.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n) })
    ///     .unwrap();
    /// cache.get(&1).await.unwrap();
    /// cache.invalidate(&1);
    /// assert_eq!(cache.get_if_present(&1), None);
    /// # }
    /// ```
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache.remove(key);
        if let Some(errors) = &self.shared.errors {
            errors.forget(key);
        }
    }

    /// Removes every value and every remembered failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n) })
    ///     .unwrap();
    /// cache.get(&1).await.unwrap();
    /// cache.invalidate_all();
    /// assert!(cache.cache().is_empty());
    /// # }
    /// ```
    pub fn invalidate_all(&self) {
        self.cache.clear();
        if let Some(errors) = &self.shared.errors {
            errors.clear();
        }
    }

    /// Removes the key's value and remembered failure here, then tells every replica to
    /// remove both: see [`TtlCache::invalidate_everywhere`].
    ///
    /// # Errors
    ///
    /// As [`TtlCache::invalidate_everywhere`].
    ///
    /// # Cancel safety
    ///
    /// As [`TtlCache::invalidate_everywhere`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let users = TtlCache::builder()
    ///     .coherent(&coherence, "users")
    ///     .build_loading(|id: u64| async move { Ok::<_, std::io::Error>(format!("user {id}")) })?;
    /// users.invalidate_everywhere(&7).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub async fn invalidate_everywhere(&self, key: &K) -> Result<(), crate::redis::CoherenceError>
    where
        K: ::redis::ToRedisArgs,
    {
        self.cache.coherent()?;
        self.invalidate(key);
        self.cache.send_invalidation(key).await
    }

    /// Removes every value and remembered failure here, then tells every replica to remove
    /// theirs: see [`TtlCache::invalidate_all_everywhere`].
    ///
    /// # Errors
    ///
    /// As [`TtlCache::invalidate_all_everywhere`].
    ///
    /// # Cancel safety
    ///
    /// As [`TtlCache::invalidate_everywhere`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let rates = TtlCache::builder()
    ///     .coherent(&coherence, "rates")
    ///     .build_loading(|code: String| async move { Ok::<_, std::io::Error>(code.len()) })?;
    /// rates.invalidate_all_everywhere().await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub async fn invalidate_all_everywhere(&self) -> Result<(), crate::redis::CoherenceError> {
        self.cache.coherent()?;
        self.invalidate_all();
        self.cache.send_invalidation_of_all().await
    }

    /// Starts a background reload of `key` now, whatever its age; readers keep the current
    /// value meanwhile. Does nothing if a load of the key is already running.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n) })
    ///     .unwrap();
    /// cache.refresh(&5);
    /// assert_eq!(cache.get(&5).await, Ok(5));
    /// # }
    /// ```
    pub fn refresh<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.start_refresh(self.cache.hash(key), key.to_owned(), Refresh::Always);
    }

    /// The cache underneath, for its other methods: `insert`, `len`, `stats`, `iter`, ...
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n) })
    ///     .unwrap();
    /// cache.cache().insert(1, 100);
    /// assert_eq!(cache.get(&1).await, Ok(100));
    /// # }
    /// ```
    pub fn cache(&self) -> &TtlCache<K, V, S> {
        &self.cache
    }

    /// The statistics of the cache underneath ([`TtlCache::stats`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let squares = ttlcache::TtlCache::builder()
    ///     .build_loading(|n: u64| async move { Ok::<_, String>(n * n) })
    ///     .unwrap();
    /// assert_eq!(squares.get(&3).await, Ok(9));
    /// assert_eq!(squares.stats().load_successes, 1);
    /// # }
    /// ```
    pub fn stats(&self) -> crate::CacheStats {
        self.cache.stats()
    }

    /// A live value (a hit), starting a refresh if it is stale.
    fn read<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let (value, freshness) = self.cache.read(hash, key)?;
        if freshness == Freshness::DueForRefresh
            && !self.cache.is_loading(hash, key)
            && self.remembered_error(key).is_none()
        {
            self.start_refresh(hash, key.to_owned(), Refresh::IfStale);
        }
        Some(value)
    }

    /// Starts a background reload (see [`Refresh`]).
    fn start_refresh(&self, hash: u64, key: K, refresh: Refresh) {
        if let Some(leader) = self.cache.start_refresh(hash, key.clone(), refresh) {
            crate::trace::refresh_started(self.cache.name(), self.cache.shown(&key));
            self.launch(vec![(leader, hash, key)]);
        }
    }

    fn remembered_error<Q>(&self, key: &Q) -> Option<LoadError<E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shared.errors.as_ref()?.recalled(key)
    }

    /// Runs loads this cache leads in the background: each as a task, or, with a batch
    /// loader, in the batches they join (`batch.rs`).
    fn launch(&self, leads: Vec<Lead<K, V, S>>) {
        match &self.shared.loader {
            Loader::Batch(batcher) => self.launch_batched(batcher, leads),
            Loader::Single(_) => {
                for (leader, hash, key) in leads {
                    let this = self.clone();
                    self.spawn(async move {
                        // The outcome reaches the callers through the flight.
                        let _ = this.run(leader, hash, key).await;
                    });
                }
            }
        }
    }

    /// Spawns `task` on the caller's runtime, or outside one, on the runtime the cache was
    /// built in.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let runtime = Handle::try_current().unwrap_or_else(|_| self.shared.runtime.clone());
        drop(runtime.spawn(task));
    }

    /// Runs one load in the call: with a batch loader, as a batch of one key.
    async fn run(
        &self,
        leader: KeyLeader<K, V, S>,
        hash: u64,
        key: K,
    ) -> Result<V, std::sync::Arc<LoadError<E>>> {
        let loader = match &self.shared.loader {
            Loader::Single(loader) => loader,
            Loader::Batch(batcher) => {
                let batch = vec![self.gathered(leader, hash, key)];
                let mut results = self.run_batch(batcher, batch).await;
                return results.pop().expect("a batch of one key has one result");
            }
        };
        let span = LoadSpan::new(self.cache.name(), self.cache.shown(&key));
        let _permit = self.permit().await;
        let flight = crate::sync::Arc::clone(leader.flight());
        let load = async {
            let remembered_as = self.shared.errors.as_ref().map(|_| key.clone());
            let result = self
                .cache
                .timed(self.guarded(async move { loader(key).await }))
                .await;
            self.remember_outcome(remembered_as, &result, hash, &flight);
            result
        };
        span.wrap(leader.run(load)).await
    }

    /// A permit of `max_concurrent_loads`, once one is free (rule 5).
    pub(super) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        let permits = self.shared.permits.as_ref()?;
        let permit = Arc::clone(permits).acquire_owned().await;
        Some(permit.expect("the load semaphore is never closed"))
    }

    /// With `error_ttl` (rule 4): forgets the key's remembered failure after a success,
    /// remembers a failure.
    pub(super) fn remember_outcome(
        &self,
        key: Option<K>,
        result: &Result<V, LoadError<E>>,
        hash: u64,
        flight: &crate::sync::Arc<crate::flight::Flight<V>>,
    ) {
        if let (Some(errors), Some(key)) = (&self.shared.errors, key) {
            errors.record(&self.cache, key, result, hash, flight);
        }
    }

    /// Runs `load` (a loader's call and its future) within `load_timeout`, turning a panic
    /// into [`LoadError::Panicked`], whether it comes from the loader's call or its future.
    pub(super) async fn guarded<T>(
        &self,
        load: impl Future<Output = Result<T, E>>,
    ) -> Result<T, LoadError<E>> {
        let limited = async {
            match self.shared.load_timeout {
                Some(limit) => tokio::time::timeout(limit, load).await.ok(),
                None => Some(load.await),
            }
        };
        match catch_panic(limited).await {
            Ok(Some(Ok(value))) => Ok(value),
            Ok(Some(Err(error))) => Err(LoadError::Failed(Arc::new(error))),
            Ok(None) => {
                if let Some(limit) = self.shared.load_timeout {
                    crate::trace::load_timed_out(limit);
                }
                Err(LoadError::TimedOut)
            }
            Err(()) => {
                crate::trace::loader_panicked();
                Err(LoadError::Panicked)
            }
        }
    }
}

impl<K, V, E, S> Clone for LoadingCache<K, V, E, S> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, V, E, S> fmt::Debug for LoadingCache<K, V, E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadingCache")
            .field("cache", &self.cache)
            .field("load_timeout", &self.shared.load_timeout)
            .field("error_ttl", &self.shared.errors.is_some())
            .finish_non_exhaustive()
    }
}
