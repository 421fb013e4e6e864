//! [`AsyncLazy`]: one value, loaded on first use, kept fresh.
//!
//! A front door to the same single-flight engine as the caches (`flight/`): one pending
//! load instead of a table of them. This file holds the type and its reads; `load.rs` its
//! loads, `builder.rs` its settings, `refresh.rs` the `refresh_every` task, and `coherent.rs`
//! its part in its replicas' coherence (feature `redis`).
//!
//! Rules:
//! 1. The value lives in an [`ArcCell`] with the time it was loaded: a fresh `get` reads it
//!    without a lock. After `build` (a custom clock is read once there, for its epoch), the
//!    clock is read only when `time_to_live` or `refresh_after` is set, on loads and on
//!    reads: a lazy without deadlines never starts the ticker thread.
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
//! 7. A lazy without deadlines also keeps a weak reference to its first value in `first`, a
//!    cell read with one acquire load, once `value` holds it; every later write (store, `set`, `invalidate`),
//!    all under `pending`'s mutex, sets `replaced` before it takes effect. A reader that sees
//!    `replaced` unset and `first` set serves `first`: it read before any later write took
//!    effect, so `first` was the current value. Readers that see `replaced` read `value`.

mod builder;
#[cfg(feature = "redis")]
mod coherent;
mod load;
#[cfg(feature = "tokio")]
pub(crate) mod refresh;

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

pub use builder::AsyncLazyBuilder;
pub(crate) use load::Wanted;

use crate::{
    clock::{Tick, Timeline},
    error::LoadError,
    flight::Flight,
    sync::{self, ArcCell, AtomicBool, Mutex, Ordering, WeakOnce},
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
    inner: Arc<LazyInner<T, E>>,
}

/// What every handle of one lazy shares.
pub(crate) struct LazyInner<T, E> {
    init: Init<T, E>,
    value: ArcCell<Loaded<T>>,
    /// The first value kept, weakly (it does not outlive its replacement), while no other
    /// write has followed it (`replaced` is false): what a lazy without deadlines serves
    /// without arc-swap's bookkeeping (rule 7).
    first: WeakOnce<T>,
    /// Set by every write after the first (and by every invalidation), before it takes
    /// effect: from then on readers read `value`.
    replaced: AtomicBool,
    /// The flight of the one load that may run (rule 2); its mutex is held while a load's
    /// value is stored, and `invalidate` and `set` empty it to detach the load (rule 4).
    pending: Mutex<Option<sync::Arc<Flight<Arc<T>>>>>,
    timeline: Timeline,
    time_to_live: Option<Duration>,
    refresh_after: Option<Duration>,
    /// The last load's failure, cleared by a success; the value is kept (rule 5).
    last_error: Mutex<Option<LoadError<E>>>,
    #[cfg(feature = "tokio")]
    updates: tokio::sync::watch::Sender<Option<Arc<T>>>,
    /// The runtime `refresh_every` was built in, where loads run outside any (`runtime.rs`).
    #[cfg(feature = "tokio")]
    runtime: Option<tokio::runtime::Handle>,
    /// The replicas' coherence this value takes part in (`coherent.rs`).
    #[cfg(feature = "redis")]
    coherent: Option<crate::redis::Link>,
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
    loading: Option<BoxedLoad<'a, T, E>>,
}

/// A load in progress, boxed.
type BoxedLoad<'a, T, E> = Pin<Box<dyn Future<Output = Result<Arc<T>, LoadError<E>>> + Send + 'a>>;

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
                Current::Missing => self.loading.insert(Box::pin(lazy.load(Wanted::Current))),
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
            let mut pending = self.inner.pending.lock();
            *pending = None;
            self.inner.replaced.store(true, Ordering::Release);
            self.inner.value.swap(None)
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
        self.load(Wanted::Reload).await
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
        let loaded_at = self.inner.loaded_now();
        let replaced = {
            let mut pending = self.inner.pending.lock();
            *pending = None;
            self.inner.keep(Arc::new(value), loaded_at)
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
        self.inner.last_error.lock().clone()
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
        self.inner.updates.subscribe()
    }

    /// What a reader finds, by the clock when deadlines are set.
    #[inline]
    fn current(&self) -> Current<T> {
        let inner = &*self.inner;
        #[cfg(feature = "redis")]
        if !inner.may_serve() {
            return Current::Missing;
        }
        if !inner.has_deadlines()
            && !inner.replaced.load(Ordering::Acquire)
            && let Some(first) = inner.first.upgrade()
        {
            return Current::Fresh(first);
        }
        inner.value.read(|loaded| {
            let Some(loaded) = loaded else {
                return Current::Missing;
            };
            if !inner.has_deadlines() {
                return Current::Fresh(Arc::clone(&loaded.value));
            }
            let now = inner.timeline.now();
            let passed = |after: Option<Duration>| {
                after.is_some_and(|after| loaded.loaded_at.after(after).has_passed(now))
            };
            if passed(inner.time_to_live) {
                Current::Missing
            } else if passed(inner.refresh_after) {
                Current::Stale(Arc::clone(&loaded.value))
            } else {
                Current::Fresh(Arc::clone(&loaded.value))
            }
        })
    }
}

impl<T, E> LazyInner<T, E> {
    /// Whether the value can go stale or expire: only then is the clock read (rule 1).
    #[inline]
    fn has_deadlines(&self) -> bool {
        self.time_to_live.is_some() || self.refresh_after.is_some()
    }

    /// The time a value stored now is loaded at; without deadlines, a time never read.
    fn loaded_now(&self) -> Tick {
        if self.has_deadlines() {
            self.timeline.now()
        } else {
            Tick::from_raw(0)
        }
    }
}

impl<T, E> Clone for AsyncLazy<T, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, E> fmt::Debug for AsyncLazy<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loaded = self.inner.value.read(|loaded| loaded.is_some());
        f.debug_struct("AsyncLazy")
            .field("loaded", &loaded)
            .field("time_to_live", &self.inner.time_to_live)
            .field("refresh_after", &self.inner.refresh_after)
            .finish_non_exhaustive()
    }
}
