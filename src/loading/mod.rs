//! [`LoadingCache`]: a [`TtlCache`] that loads what it lacks, and refreshes before expiry.
//!
//! It is a front door to the cache's single-flight engine (`flight/`), through the cache's
//! `TaskDoor` (`cache/door.rs`): the same pending loads, the same leaders, only run as tasks.
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
//!
//! This file holds the type and its public methods; `task.rs` the loader and the tasks that
//! run loads (rules 1, 2, 4 and 5), `batch.rs` batch loading, `failures.rs` the memory of
//! failures, and `coherent.rs` its part in its replicas' coherence (feature `redis`). All of
//! `cache/` that this folder uses beyond the public API and `TtlCache::from_settings` is
//! `cache/door.rs`.

mod batch;
#[cfg(feature = "redis")]
mod coherent;
mod failures;
mod task;

/// For the loom models of the gathering.
#[cfg(ttlcache_loom)]
pub(crate) use batch::{Gathering, Joined};
use failures::Failures;
pub(crate) use task::Loader;

use std::{
    borrow::Borrow,
    collections::{HashMap, HashSet},
    fmt,
    hash::{BuildHasher, Hash},
    sync::Arc,
    time::Duration,
};

use tokio::{runtime::Handle, sync::Semaphore};

use crate::{
    DefaultHashBuilder, TtlCache,
    cache::{Freshness, KeyLeader, Refresh},
    error::LoadError,
    flight::{self, Answer, Found, Launched, Run},
    settings::{CacheSettings, LoadSettings},
};

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
    inner: Arc<LoadingInner<K, V, E>>,
}

/// What the clones of a [`LoadingCache`] share beside the cache.
struct LoadingInner<K, V, E> {
    loader: Loader<K, V, E>,
    load_timeout: Option<Duration>,
    /// `max_concurrent_loads` (rule 5).
    permits: Option<Arc<Semaphore>>,
    /// Failures remembered for `error_ttl` (rule 4).
    errors: Option<Failures<K, E>>,
    /// Where loads run when no caller's runtime is at hand (`runtime.rs`).
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
        settings: CacheSettings<K, V, S>,
        options: LoadSettings,
        loader: Loader<K, V, E>,
    ) -> Result<Self, crate::BuildError> {
        let errors = options
            .error_ttl
            .filter(|ttl| !ttl.is_zero())
            .map(|error_ttl| Failures::new(&settings, error_ttl))
            .transpose()?;
        Ok(Self {
            cache: TtlCache::from_settings(settings)?,
            inner: Arc::new(LoadingInner {
                loader,
                load_timeout: options.load_timeout,
                permits: options.max_concurrent_loads.map(|permits| {
                    // Past tokio's limit there is no limit to keep.
                    Arc::new(Semaphore::new(permits.min(Semaphore::MAX_PERMITS)))
                }),
                errors,
                runtime: options.runtime,
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
        let hash = self.door().hash(key);
        if let Some(value) = self.read(hash, key) {
            return Ok(value);
        }
        self.door().record_miss();
        if let Some(answer) = self.remembered(hash, key) {
            return answer;
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
            let hash = self.door().hash(&key);
            if let Some(value) = self.read(hash, &key) {
                found.insert(key, value);
                continue;
            }
            self.door().record_miss();
            match self.remembered(hash, &key) {
                None => missing.push((hash, key)),
                Some(Ok(value)) => drop(found.insert(key, value)),
                Some(Err(LoadError::NotFound)) => {}
                Some(Err(error)) => return Err(error),
            }
        }
        let leaders: Vec<KeyLeader<K, V, S>> = missing
            .iter()
            .filter_map(|(hash, key)| match self.door().start(*hash, key) {
                Found::Lead(leader) => Some(leader),
                Found::Value(_) | Found::Join(_) => None,
            })
            .collect();
        self.launch(leaders);
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
            || self.door().start(hash, &key),
            |leader, run| match run {
                Run::Anywhere => {
                    self.launch(vec![leader]);
                    Launched::Spawned
                }
                Run::Here => Launched::Here(self.run(leader)),
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
        let value = self.read(self.door().hash(key), key);
        if value.is_none() {
            self.door().record_miss();
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
        if let Some(errors) = &self.inner.errors {
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
        if let Some(errors) = &self.inner.errors {
            errors.clear();
        }
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
        self.start_refresh(self.door().hash(key), key.to_owned(), Refresh::Always);
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
        let (value, freshness) = self.door().read(hash, key)?;
        if freshness == Freshness::DueForRefresh
            && !self.door().is_loading(hash, key)
            && self.remembered_error(key).is_none()
        {
            self.start_refresh(hash, key.to_owned(), Refresh::IfStale);
        }
        Some(value)
    }

    /// Starts a background reload (see [`Refresh`]).
    fn start_refresh(&self, hash: u64, key: K, refresh: Refresh) {
        if let Some(leader) = self.door().start_refresh(hash, key, refresh) {
            crate::trace::refresh_started(self.cache.name(), self.door().shown(leader.key()));
            self.launch(vec![leader]);
        }
    }

    /// The answer to a miss of a key whose failure is remembered (rule 4): the value kept
    /// past its time to live (`stale_if_error`), or the failure.
    fn remembered<Q>(&self, hash: u64, key: &Q) -> Option<Result<V, LoadError<E>>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let error = self.remembered_error(key)?;
        Some(self.door().serve_kept(hash, key).ok_or(error))
    }

    fn remembered_error<Q>(&self, key: &Q) -> Option<LoadError<E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.errors.as_ref()?.recalled(key)
    }
}

impl<K, V, E, S> Clone for LoadingCache<K, V, E, S> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, E, S> fmt::Debug for LoadingCache<K, V, E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadingCache")
            .field("cache", &self.cache)
            .field("load_timeout", &self.inner.load_timeout)
            .field("error_ttl", &self.inner.errors.is_some())
            .finish_non_exhaustive()
    }
}
