//! [`AsyncLazy`]: one value, loaded on first use, kept fresh.
//!
//! A front door to the same single-flight engine as the caches (`flight.rs`): one pending
//! load instead of a table of them.
//!
//! Rules:
//! 1. The value lives in an [`ArcCell`] with the time it was loaded: a fresh `get` reads it
//!    without a lock, and reads the clock only when `time_to_live` or `refresh_after` is set.
//! 2. At most one load runs at a time. `pending` holds its flight, under a mutex that is also
//!    held while a load's value is stored, so a caller that finds neither a fresh value nor a
//!    pending load under that mutex may start one.
//! 3. Under a tokio runtime a load runs as a task: a cancelled caller neither cancels nor
//!    stalls it. Elsewhere it runs in the first caller, and if that caller is cancelled, one
//!    waiter takes over. A panic in the initializer is caught: every waiter gets
//!    [`LoadError::Panicked`].
//! 4. `invalidate` and `set` detach the pending load: its waiters get its result, the lazy
//!    does not keep it.
//! 5. A failed load keeps the old value (stale-if-error) and records [`AsyncLazy::last_error`];
//!    a success clears it.
//! 6. The `refresh_every` task holds only a weak reference between ticks, so it ends within a
//!    tick of the last handle being dropped; a failure makes it retry sooner, backing off
//!    exponentially up to the period (each delay spread by a quarter either way), and never
//!    ends it.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

#[cfg(any(feature = "tokio", ttlcache_loom))]
use std::sync::Weak;

use crate::{
    clock::{Clock, Tick, TimeSource, Timeline},
    error::{BuildError, LoadError},
    flight::{self, Flight, Landing, Outcome, catch_panic},
    sync::{self, ArcCell, Mutex},
};

type Init<T, E> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send + Sync>;

/// A value loaded once, on first use, shared by every clone of the handle, and kept fresh:
/// reloaded after a time to live, in the background after `refresh_after`, or on a timer.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use ttlcache::AsyncLazy;
///
/// #[derive(Debug)]
/// struct Config {
///     replicas: u32,
/// }
///
/// let config = AsyncLazy::builder(|| async {
///     // Read a file, call a config service, ...
///     Config { replicas: 3 }
/// })
/// .refresh_after(Duration::from_secs(30))
/// .build()
/// .unwrap();
///
/// assert_eq!(config.get().await.replicas, 3);
/// assert!(config.peek().is_some());
/// # }
/// ```
pub struct AsyncLazy<T, E = Infallible> {
    shared: Arc<Shared<T, E>>,
}

pub(crate) struct Shared<T, E> {
    init: Init<T, E>,
    value: ArcCell<Loaded<T>>,
    pending: Mutex<Option<sync::Arc<Flight<Arc<T>>>>>,
    timeline: Timeline,
    time_to_live: Option<Duration>,
    refresh_after: Option<Duration>,
    last_error: Mutex<Option<LoadError<E>>>,
    #[cfg(feature = "tokio")]
    updates: tokio::sync::watch::Sender<Option<Arc<T>>>,
    #[cfg(feature = "tokio")]
    runtime: Option<tokio::runtime::Handle>,
}

/// A loaded value and when it was loaded.
struct Loaded<T> {
    value: Arc<T>,
    loaded_at: Tick,
}

/// What a reader finds.
enum Current<T> {
    Fresh(Arc<T>),
    /// Older than `refresh_after`: serve it, and reload in the background.
    Stale(Arc<T>),
    /// Never loaded, invalidated, or past its time to live.
    Missing,
}

/// The future of [`AsyncLazy::try_get`]: small, so that a fresh value costs no more than the
/// check itself; the load (a larger future) is boxed only when there is none.
struct TryGet<'a, T, E> {
    lazy: &'a AsyncLazy<T, E>,
    loading: Option<Loading<'a, T, E>>,
}

/// A load in progress, boxed.
type Loading<'a, T, E> = Pin<Box<dyn Future<Output = Result<Arc<T>, LoadError<E>>> + Send + 'a>>;

impl<T, E> Future for TryGet<'_, T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    type Output = Result<Arc<T>, LoadError<E>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lazy = self.lazy;
        let loading = match &mut self.loading {
            Some(loading) => loading,
            None => match lazy.current() {
                Current::Fresh(value) => return Poll::Ready(Ok(value)),
                Current::Stale(value) => {
                    lazy.refresh_in_background();
                    return Poll::Ready(Ok(value));
                }
                Current::Missing => self.loading.insert(Box::pin(lazy.load(false))),
            },
        };
        loading.as_mut().poll(cx)
    }
}

/// The future of [`AsyncLazy::get`]: [`TryGet`], for an initializer that cannot fail.
struct Get<'a, T>(TryGet<'a, T, Infallible>);

impl<T: Send + Sync + 'static> Future for Get<'_, T> {
    type Output = Arc<T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Arc<T>> {
        Pin::new(&mut self.0).poll(cx).map(|loaded| match loaded {
            Ok(value) => value,
            Err(LoadError::Failed(never)) => match *never {},
            Err(_) => panic!("ttlcache: the AsyncLazy initializer panicked"),
        })
    }
}

/// The leader of the lazy's load.
pub(crate) type Leader<T, E> = flight::Leader<Arc<Shared<T, E>>, Arc<T>>;

impl<T> AsyncLazy<T, Infallible>
where
    T: Send + Sync + 'static,
{
    /// A lazy value that `init` makes on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let greeting = ttlcache::AsyncLazy::new(|| async { "hello".to_string() });
    /// assert_eq!(*greeting.get().await, "hello");
    /// # }
    /// ```
    pub fn new<F, Fut>(init: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        Self::builder(init)
            .build()
            .expect("a lazy value without settings always builds")
    }

    /// A builder for a lazy value that `init` makes, with expiry or refresh settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let lazy = ttlcache::AsyncLazy::builder(|| async { 1 })
    ///     .time_to_live(std::time::Duration::from_secs(60))
    ///     .build()
    ///     .unwrap();
    /// # drop(lazy);
    /// ```
    pub fn builder<F, Fut>(init: F) -> AsyncLazyBuilder<T, Infallible>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        AsyncLazyBuilder::new(Box::new(move || {
            let made = init();
            Box::pin(async move { Ok(made.await) })
        }))
    }

    /// The value, loading it if there is none (or its time to live passed).
    ///
    /// A fresh value costs a lock-free load and an `Arc` clone. A value older than
    /// `refresh_after` is returned at once while one reload runs in the background.
    ///
    /// # Panics
    ///
    /// If the initializer panicked in the load this call waited for (the panic itself was
    /// caught and reported where it happened); the next call loads again.
    ///
    /// # Cancel safety
    ///
    /// Dropping this future is safe at any point. Under a tokio runtime the load runs in its
    /// own task and goes on; elsewhere one of the waiting callers takes it over.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let answer = ttlcache::AsyncLazy::new(|| async { 42 });
    /// assert_eq!(*answer.get().await, 42);
    /// # }
    /// ```
    pub fn get(&self) -> impl Future<Output = Arc<T>> + Send + '_ {
        Get(TryGet {
            lazy: self,
            loading: None,
        })
    }
}

impl<T, E> AsyncLazy<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// A lazy value that `init` makes on first use, and that can fail.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let port = ttlcache::AsyncLazy::try_new(|| async { "8080".parse::<u16>() });
    /// assert_eq!(*port.try_get().await.unwrap(), 8080);
    /// # }
    /// ```
    pub fn try_new<F, Fut>(init: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Self::try_builder(init)
            .build()
            .expect("a lazy value without settings always builds")
    }

    /// A builder for a lazy value that `init` makes and that can fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let lazy = ttlcache::AsyncLazy::try_builder(|| async { Ok::<_, std::io::Error>(1) })
    ///     .refresh_after(std::time::Duration::from_secs(10))
    ///     .build()
    ///     .unwrap();
    /// # drop(lazy);
    /// ```
    pub fn try_builder<F, Fut>(init: F) -> AsyncLazyBuilder<T, E>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        AsyncLazyBuilder::new(Box::new(move || Box::pin(init())))
    }

    /// The value, loading it if there is none (or its time to live passed).
    ///
    /// # Errors
    ///
    /// [`LoadError::Failed`] with the initializer's error, or [`LoadError::Panicked`]. Every
    /// caller that waited for the same load gets the same error. Errors are not cached: the
    /// next call loads again. A value loaded before stays (see [`last_error`](Self::last_error)),
    /// but it is not returned once past its time to live.
    ///
    /// # Cancel safety
    ///
    /// As for [`get`](AsyncLazy::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::try_new(|| async { Err::<u8, _>("no config") });
    /// assert!(lazy.try_get().await.is_err());
    /// # }
    /// ```
    pub fn try_get(&self) -> impl Future<Output = Result<Arc<T>, LoadError<E>>> + Send + '_ {
        TryGet {
            lazy: self,
            loading: None,
        }
    }

    /// The value if one is loaded and within its time to live; never loads.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::new(|| async { 7 });
    /// assert_eq!(lazy.peek(), None);
    /// lazy.get().await;
    /// assert_eq!(lazy.peek().as_deref(), Some(&7));
    /// # }
    /// ```
    pub fn peek(&self) -> Option<Arc<T>> {
        match self.current() {
            Current::Fresh(value) | Current::Stale(value) => Some(value),
            Current::Missing => None,
        }
    }

    /// Forgets the value: the next `get` loads afresh. A load running meanwhile still answers
    /// its callers, but its value is not kept.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::new(|| async { 7 });
    /// lazy.get().await;
    /// lazy.invalidate();
    /// assert_eq!(lazy.peek(), None);
    /// # }
    /// ```
    pub fn invalidate(&self) {
        let old = {
            let mut pending = self.shared.pending.lock();
            *pending = None;
            self.shared.value.swap(None)
        };
        // Dropped unlocked: the value's `Drop` may call into this lazy.
        drop(old);
    }

    /// Reloads now and returns the new value; readers keep the current value meanwhile. If a
    /// load is already running, waits for it instead of starting another.
    ///
    /// # Errors
    ///
    /// As for [`try_get`](Self::try_get); the current value stays, and the error is recorded
    /// in [`last_error`](Self::last_error).
    ///
    /// # Cancel safety
    ///
    /// As for [`get`](AsyncLazy::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// static LOADS: AtomicU32 = AtomicU32::new(0);
    /// let lazy = ttlcache::AsyncLazy::try_new(|| async {
    ///     Ok::<_, String>(LOADS.fetch_add(1, Ordering::Relaxed))
    /// });
    /// assert_eq!(*lazy.try_get().await.unwrap(), 0);
    /// assert_eq!(*lazy.refresh().await.unwrap(), 1);
    /// # }
    /// ```
    pub async fn refresh(&self) -> Result<Arc<T>, LoadError<E>> {
        self.load(true).await
    }

    /// Replaces the value, as if it had just been loaded (which also clears
    /// [`last_error`](Self::last_error)). A load running meanwhile still answers its callers,
    /// but its value is not kept.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::new(|| async { 1 });
    /// lazy.set(2);
    /// assert_eq!(*lazy.get().await, 2);
    /// # }
    /// ```
    pub fn set(&self, value: T) {
        let loaded_at = self.shared.timeline.now();
        let replaced = {
            let mut pending = self.shared.pending.lock();
            *pending = None;
            self.shared.keep(Arc::new(value), loaded_at)
        };
        drop(replaced);
    }

    /// The error of the last load, if it failed; a successful load clears it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::try_new(|| async { Err::<u8, _>("down") });
    /// let _ = lazy.try_get().await;
    /// assert!(lazy.last_error().is_some());
    /// # }
    /// ```
    pub fn last_error(&self) -> Option<LoadError<E>> {
        self.shared.last_error.lock().clone()
    }

    /// A receiver that sees each new value: loaded, refreshed or set.
    ///
    /// It starts with the current value, or `None` if none was loaded yet. Invalidation sends
    /// nothing: receivers keep the last value until a new one arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::new(|| async { 1 });
    /// let mut updates = lazy.subscribe();
    /// lazy.set(5);
    /// updates.changed().await.unwrap();
    /// assert_eq!(updates.borrow().as_deref(), Some(&5));
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Arc<T>>> {
        self.shared.updates.subscribe()
    }

    /// What a reader finds, by the clock when deadlines are set.
    #[inline]
    fn current(&self) -> Current<T> {
        let shared = &*self.shared;
        shared.value.read(|loaded| {
            let Some(loaded) = loaded else {
                return Current::Missing;
            };
            if shared.time_to_live.is_none() && shared.refresh_after.is_none() {
                return Current::Fresh(Arc::clone(&loaded.value));
            }
            let now = shared.timeline.now();
            let passed = |after: Option<Duration>| {
                after.is_some_and(|after| loaded.loaded_at.after(after).has_passed(now))
            };
            if passed(shared.time_to_live) {
                Current::Missing
            } else if passed(shared.refresh_after) {
                Current::Stale(Arc::clone(&loaded.value))
            } else {
                Current::Fresh(Arc::clone(&loaded.value))
            }
        })
    }

    /// Waits for the pending load, or starts one. With `reload`, a current value does not
    /// count: a new load is wanted (`refresh`).
    async fn load(&self, reload: bool) -> Result<Arc<T>, LoadError<E>> {
        // Set once a load this call spawned was abandoned: its runtime is gone (rule 3).
        let mut run_here = false;
        loop {
            let (flight, leader) = {
                let mut pending = self.shared.pending.lock();
                if !reload {
                    if let Current::Fresh(value) | Current::Stale(value) = self.current() {
                        return Ok(value);
                    }
                }
                match &*pending {
                    Some(flight) => (sync::Arc::clone(flight), None),
                    None => {
                        let leader = self.begin_load(&mut pending);
                        (sync::Arc::clone(leader.flight()), Some(leader))
                    }
                }
            };
            let spawned = match leader {
                Some(leader) if run_here => return self.run(leader).await,
                Some(leader) => match self.spawn(leader) {
                    Ok(()) => true,
                    Err(leader) => return self.run(leader).await,
                },
                None => {
                    assert!(
                        !flight.is_led_by_this_thread(),
                        "ttlcache: an AsyncLazy initializer asked for its own value; it would \
                         wait for itself forever"
                    );
                    false
                }
            };
            match &*Flight::wait(&flight).await {
                Outcome::Loaded(value) => return Ok(Arc::clone(value)),
                Outcome::Failed(error) => {
                    if let Some(error) = error.downcast_ref::<LoadError<E>>() {
                        return Err(error.clone());
                    }
                }
                Outcome::Abandoned => run_here |= spawned,
            }
        }
    }

    /// Starts a reload in the background, unless one is running, or there is no runtime to
    /// run it on.
    fn refresh_in_background(&self) {
        #[cfg(feature = "tokio")]
        {
            if self.shared.runtime().is_none() {
                return;
            }
            let leader = {
                let mut pending = self.shared.pending.lock();
                // Still stale once locked: a refresh may just have landed.
                if pending.is_some() || !matches!(self.current(), Current::Stale(_)) {
                    return;
                }
                self.begin_load(&mut pending)
            };
            // A runtime was found above; should it shut down meanwhile, the leader is dropped
            // and the load abandoned, which the next read notices.
            drop(self.spawn(leader));
        }
    }

    /// Registers a new pending load, under the `pending` lock the caller holds (rule 2).
    fn begin_load(&self, pending: &mut Option<sync::Arc<Flight<Arc<T>>>>) -> Leader<T, E> {
        let flight = Flight::new();
        *pending = Some(sync::Arc::clone(&flight));
        Leader::new(Arc::clone(&self.shared), flight)
    }

    /// Starts a load unless one is pending; the caller lands it (for the loom models).
    #[cfg(ttlcache_loom)]
    pub(crate) fn start_load(&self) -> Option<Leader<T, E>> {
        let mut pending = self.shared.pending.lock();
        if pending.is_some() {
            return None;
        }
        Some(self.begin_load(&mut pending))
    }

    /// A weak reference to the shared state, as the `refresh_every` task holds (for the loom
    /// models).
    #[cfg(ttlcache_loom)]
    pub(crate) fn downgrade(&self) -> Weak<Shared<T, E>> {
        Arc::downgrade(&self.shared)
    }

    /// Runs the load as a task on a tokio runtime, or hands the leader back if there is none.
    fn spawn(&self, leader: Leader<T, E>) -> Result<(), Leader<T, E>> {
        #[cfg(feature = "tokio")]
        if let Some(runtime) = self.shared.runtime() {
            let this = self.clone();
            drop(runtime.spawn(async move {
                // The outcome reaches the callers through the flight.
                let _ = this.run(leader).await;
            }));
            return Ok(());
        }
        Err(leader)
    }

    /// Runs the initializer as the leader of the load, then keeps and shares its outcome.
    async fn run(&self, leader: Leader<T, E>) -> Result<Arc<T>, LoadError<E>> {
        let init = flight::lead(leader.flight(), async { (self.shared.init)().await });
        let result = match catch_panic(init).await {
            Ok(Ok(value)) => Ok(Arc::new(value)),
            Ok(Err(error)) => Err(LoadError::Failed(Arc::new(error))),
            Err(()) => Err(LoadError::Panicked),
        };
        leader.land(match &result {
            Ok(value) => Outcome::Loaded(Arc::clone(value)),
            Err(error) => Outcome::Failed(Arc::new(error.clone())),
        });
        result
    }
}

/// What keeping a new value replaced, to be dropped once `pending` is unlocked: user `Drop`
/// code must not run under the lock.
type Replaced<T, E> = (
    Option<Arc<Loaded<T>>>,
    Option<Option<Arc<T>>>,
    Option<LoadError<E>>,
);

impl<T, E> Shared<T, E> {
    /// Keeps `value`, loaded at `loaded_at`, as the current one, then tells subscribers (in
    /// that order, so a woken subscriber reads the new value). The caller holds `pending`,
    /// which keeps the notifications in the order of the stores.
    fn keep(&self, value: Arc<T>, loaded_at: Tick) -> Replaced<T, E> {
        #[cfg(feature = "tokio")]
        let announced = Some(Arc::clone(&value));
        let old = self.value.swap(Some(Arc::new(Loaded { value, loaded_at })));
        #[cfg(feature = "tokio")]
        let old_announced = Some(self.updates.send_replace(announced));
        #[cfg(not(feature = "tokio"))]
        let old_announced = None;
        let old_error = self.last_error.lock().take();
        (old, old_announced, old_error)
    }

    /// The runtime loads run on: the caller's, or outside one, the one `refresh_every` was
    /// built in.
    #[cfg(feature = "tokio")]
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
    }
}

impl<T, E> Landing<Arc<T>> for Arc<Shared<T, E>>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    type Receipt<'a>
        = ()
    where
        Self: 'a;

    fn store(&self, flight: &sync::Arc<Flight<Arc<T>>>, outcome: &Outcome<Arc<T>>) {
        let loaded_at = self.timeline.now();
        let replaced = {
            let mut pending = self.pending.lock();
            let current = pending
                .as_ref()
                .is_some_and(|pending| sync::Arc::ptr_eq(pending, flight));
            if !current {
                // Detached by `invalidate` or `set` (rule 4).
                return;
            }
            *pending = None;
            match outcome {
                Outcome::Loaded(value) => self.keep(Arc::clone(value), loaded_at),
                Outcome::Failed(error) => {
                    let error = error.downcast_ref::<LoadError<E>>().cloned();
                    let old_error = std::mem::replace(&mut *self.last_error.lock(), error);
                    (None, None, old_error)
                }
                Outcome::Abandoned => (None, None, None),
            }
        };
        drop(replaced);
    }

    fn abandon(&self, flight: &sync::Arc<Flight<Arc<T>>>) {
        let mut pending = self.pending.lock();
        if pending
            .as_ref()
            .is_some_and(|pending| sync::Arc::ptr_eq(pending, flight))
        {
            *pending = None;
        }
    }
}

/// Settings for an [`AsyncLazy`], made by [`AsyncLazy::builder`] or [`AsyncLazy::try_builder`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// let keys = ttlcache::AsyncLazy::try_builder(|| async { Ok::<_, std::io::Error>(vec!["k1"]) })
///     .time_to_live(Duration::from_secs(3600))
///     .refresh_every(Duration::from_secs(300))
///     .build()
///     .unwrap();
/// assert_eq!(keys.try_get().await.unwrap().len(), 1);
/// # }
/// ```
#[must_use]
pub struct AsyncLazyBuilder<T, E = Infallible> {
    init: Init<T, E>,
    time_to_live: Option<Duration>,
    refresh_after: Option<Duration>,
    refresh_every: Option<Duration>,
    clock: TimeSource,
}

impl<T, E> AsyncLazyBuilder<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn new(init: Init<T, E>) -> Self {
        Self {
            init,
            time_to_live: None,
            refresh_after: None,
            refresh_every: None,
            clock: TimeSource::default(),
        }
    }

    /// Hard expiry: a value older than this (since its load) is not returned; `get` waits for
    /// a fresh load.
    ///
    /// # Examples
    ///
    /// ```
    /// let lazy = ttlcache::AsyncLazy::builder(|| async { 1 })
    ///     .time_to_live(std::time::Duration::from_secs(60))
    ///     .build()
    ///     .unwrap();
    /// # drop(lazy);
    /// ```
    pub fn time_to_live(mut self, time_to_live: Duration) -> Self {
        self.time_to_live = Some(time_to_live);
        self
    }

    /// Soft expiry: a `get` of a value older than this returns it at once and starts one
    /// reload in the background (under a tokio runtime). Must be shorter than `time_to_live`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lazy = ttlcache::AsyncLazy::builder(|| async { 1 })
    ///     .refresh_after(std::time::Duration::from_secs(30))
    ///     .build()
    ///     .unwrap();
    /// # drop(lazy);
    /// ```
    pub fn refresh_after(mut self, refresh_after: Duration) -> Self {
        self.refresh_after = Some(refresh_after);
        self
    }

    /// Reload on a timer, in a background task on the runtime `build` is called in, whether
    /// or not anyone reads. Failures make it retry sooner, backing off exponentially up to
    /// this period (each delay spread by up to a quarter); the task ends within a period of
    /// the last handle's drop.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lazy = ttlcache::AsyncLazy::builder(|| async { 1 })
    ///     .refresh_every(std::time::Duration::from_secs(60))
    ///     .build()
    ///     .unwrap();
    /// # drop(lazy);
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn refresh_every(mut self, refresh_every: Duration) -> Self {
        self.refresh_every = Some(refresh_every);
        self
    }

    /// The clock expiry reads; by default [`SystemClock`](crate::SystemClock).
    ///
    /// # Examples
    ///
    /// ```
    /// let lazy = ttlcache::AsyncLazy::builder(|| async { 1 })
    ///     .clock(ttlcache::ManualClock::new())
    ///     .build()
    ///     .unwrap();
    /// # drop(lazy);
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = TimeSource::of(clock);
        self
    }

    /// Checks the settings and builds the lazy value; loads nothing yet.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroDuration`] for a zero `time_to_live`, `refresh_after` or
    /// `refresh_every`; [`BuildError::RefreshNotBeforeExpiry`] if `refresh_after` is not
    /// shorter than `time_to_live`; [`BuildError::NoTokioRuntime`] for `refresh_every`
    /// outside a tokio runtime, and [`BuildError::NoTokioTimer`] in one without its timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let error = ttlcache::AsyncLazy::builder(|| async { 1 })
    ///     .refresh_after(Duration::ZERO)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.to_string(), "`refresh_after` must be longer than zero");
    /// ```
    pub fn build(self) -> Result<AsyncLazy<T, E>, BuildError> {
        for (setting, duration) in [
            ("time_to_live", self.time_to_live),
            ("refresh_after", self.refresh_after),
            ("refresh_every", self.refresh_every),
        ] {
            if duration == Some(Duration::ZERO) {
                return Err(BuildError::ZeroDuration { setting });
            }
        }
        if let (Some(refresh_after), Some(time_to_live)) = (self.refresh_after, self.time_to_live) {
            if refresh_after >= time_to_live {
                return Err(BuildError::RefreshNotBeforeExpiry {
                    refresh_after,
                    time_to_live,
                });
            }
        }
        #[cfg(feature = "tokio")]
        let runtime = match self.refresh_every {
            Some(_) => {
                let setting = "refresh_every";
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| BuildError::NoTokioRuntime { setting })?;
                if !crate::clock::tokio_timer_enabled() {
                    return Err(BuildError::NoTokioTimer { setting });
                }
                Some(runtime)
            }
            None => None,
        };
        let lazy = AsyncLazy {
            shared: Arc::new(Shared {
                init: self.init,
                value: ArcCell::empty(),
                pending: Mutex::new(None),
                timeline: Timeline::new(self.clock),
                time_to_live: self.time_to_live,
                refresh_after: self.refresh_after,
                last_error: Mutex::new(None),
                #[cfg(feature = "tokio")]
                updates: tokio::sync::watch::Sender::new(None),
                #[cfg(feature = "tokio")]
                runtime,
            }),
        };
        #[cfg(feature = "tokio")]
        if let (Some(period), Some(runtime)) = (self.refresh_every, &lazy.shared.runtime) {
            drop(runtime.spawn(refresh_periodically(Arc::downgrade(&lazy.shared), period)));
        }
        Ok(lazy)
    }
}

/// The `refresh_every` task: reloads every `period`, sooner after a failure (rule 6).
#[cfg(feature = "tokio")]
async fn refresh_periodically<T, E>(shared: Weak<Shared<T, E>>, period: Duration)
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    let mut jitter = Jitter::seeded();
    let mut failures = 0u32;
    loop {
        let delay = match failures {
            0 => period,
            failures => jitter.spread(retry_delay(period, failures)),
        };
        tokio::time::sleep(delay).await;
        failures = match tick(&shared).await {
            None => return,
            Some(true) => 0,
            Some(false) => failures.saturating_add(1),
        };
    }
}

/// One tick of the `refresh_every` task: reloads, if any handle is left. Returns whether the
/// reload succeeded, or `None` if the lazy is gone. The strong reference it takes lives only
/// as long as the reload.
#[cfg(any(feature = "tokio", ttlcache_loom))]
pub(crate) async fn tick<T, E>(shared: &Weak<Shared<T, E>>) -> Option<bool>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    let lazy = AsyncLazy {
        shared: shared.upgrade()?,
    };
    Some(lazy.refresh().await.is_ok())
}

/// How long to wait after `failures` failures in a row: a sixteenth of the period, doubled
/// with each further failure, up to the period.
#[cfg(feature = "tokio")]
fn retry_delay(period: Duration, failures: u32) -> Duration {
    let first = (period / 16).max(Duration::from_millis(1));
    first
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(period)
}

/// Spreads delays by up to a quarter either way, so that many lazies failing together do not
/// retry together.
#[cfg(feature = "tokio")]
struct Jitter(u64);

#[cfg(feature = "tokio")]
impl Jitter {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        Self(u64::from(nanos) | 1)
    }

    fn spread(&mut self, delay: Duration) -> Duration {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // A factor from 0.75 to 1.25; a delay too long to spread stays as it is.
        let factor = 0.75 + (self.0 % 1_000) as f64 / 2_000.0;
        Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(delay)
    }
}

impl<T, E> Clone for AsyncLazy<T, E> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T, E> fmt::Debug for AsyncLazy<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loaded = self.shared.value.read(|loaded| loaded.is_some());
        f.debug_struct("AsyncLazy")
            .field("loaded", &loaded)
            .field("time_to_live", &self.shared.time_to_live)
            .field("refresh_after", &self.shared.refresh_after)
            .finish_non_exhaustive()
    }
}

impl<T, E> fmt::Debug for AsyncLazyBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncLazyBuilder")
            .field("time_to_live", &self.time_to_live)
            .field("refresh_after", &self.refresh_after)
            .field("refresh_every", &self.refresh_every)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "tokio", not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_sixteenth_of_the_period_up_to_the_period() {
        let period = Duration::from_secs(64);
        let delays: Vec<u64> = (1..=7).map(|n| retry_delay(period, n).as_secs()).collect();
        assert_eq!(delays, [4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(retry_delay(period, u32::MAX), period);
    }

    #[test]
    fn jitter_of_the_longest_delay_does_not_overflow() {
        let mut jitter = Jitter(7);
        for _ in 0..1_000 {
            let spread = jitter.spread(Duration::MAX);
            assert!(spread >= Duration::MAX.mul_f64(0.74));
        }
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let mut jitter = Jitter(7);
        for _ in 0..1_000 {
            let spread = jitter.spread(Duration::from_secs(100)).as_secs_f64();
            assert!((75.0..=125.0).contains(&spread), "{spread}");
        }
    }
}
