//! [`AsyncLazyBuilder`]: a lazy value's settings, checked once at `build`.

use std::{convert::Infallible, fmt, sync::Arc, time::Duration};

#[cfg(feature = "tokio")]
use super::refresh;
use super::{AsyncLazy, Init, LazyInner};
#[cfg(feature = "tokio")]
use crate::runtime::{self, Timer};
use crate::{
    builder::{Durations, check_durations},
    clock::{Clock, TimeSource, Timeline},
    error::BuildError,
    sync::{ArcCell, AtomicBool, Mutex, WeakOnce},
};

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
    #[cfg(feature = "redis")]
    coherent: Option<crate::redis::Link>,
}

impl<T, E> AsyncLazyBuilder<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    pub(super) fn new(init: Init<T, E>) -> Self {
        Self {
            init,
            time_to_live: None,
            refresh_after: None,
            refresh_every: None,
            clock: TimeSource::default(),
            #[cfg(feature = "redis")]
            coherent: None,
        }
    }

    /// Keeps this value coherent with the lazies of the same `name` in the other replicas
    /// that share `coherence`: when one of them (or an operator, writing the marker key
    /// `<namespace>:inv:<name>`) calls [`invalidate_everywhere`](AsyncLazy::invalidate_everywhere),
    /// every replica's next `get` loads afresh. See [`Coherence`](crate::redis::Coherence).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use ttlcache::{AsyncLazy, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let config = AsyncLazy::try_builder(|| async { Ok::<_, std::io::Error>("config") })
    ///     .coherent(&coherence, "config")
    ///     .refresh_every(Duration::from_secs(60))
    ///     .build()?;
    /// config.invalidate_everywhere().await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn coherent(mut self, coherence: &crate::redis::Coherence, name: &str) -> Self {
        self.coherent = Some(crate::redis::Link {
            coherence: coherence.clone(),
            name: name.to_owned(),
        });
        self
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
        check_durations(Durations {
            nonzero: &[
                ("time_to_live", self.time_to_live),
                ("refresh_after", self.refresh_after),
                ("refresh_every", self.refresh_every),
            ],
            refresh_after: self.refresh_after,
            time_to_live: self.time_to_live,
        })?;
        #[cfg(feature = "tokio")]
        let runtime = match self.refresh_every {
            Some(_) => Some(runtime::built_in("refresh_every", Timer::Needed)?),
            None => None,
        };
        #[cfg(feature = "redis")]
        if let Some(link) = &self.coherent {
            crate::builder::check_coherent_name(&link.name)?;
        }
        let lazy = AsyncLazy {
            inner: Arc::new(LazyInner {
                init: self.init,
                value: ArcCell::empty(),
                first: WeakOnce::new(),
                replaced: AtomicBool::new(false),
                pending: Mutex::new(None),
                timeline: Timeline::new(self.clock),
                time_to_live: self.time_to_live,
                refresh_after: self.refresh_after,
                last_error: Mutex::new(None),
                #[cfg(feature = "tokio")]
                updates: tokio::sync::watch::Sender::new(None),
                #[cfg(feature = "tokio")]
                runtime,
                #[cfg(feature = "redis")]
                coherent: self.coherent,
            }),
        };
        #[cfg(feature = "redis")]
        lazy.join_coherence();
        #[cfg(feature = "tokio")]
        if let (Some(period), Some(runtime)) = (self.refresh_every, &lazy.inner.runtime) {
            drop(runtime.spawn(refresh::refresh_periodically(lazy.downgrade(), period)));
        }
        Ok(lazy)
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
