//! [`CoherenceBuilder`]: a [`Coherence`]'s settings, checked once at `connect`.

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use redis::IntoConnectionInfo;

use super::{
    Coherence, CoherenceError, Faults, Shared, Trust, Unhealthy, UnhealthyTime, marker, redact,
    supervisor,
};
use crate::sync::{Arc, AtomicU64, Mutex};

/// Settings for a [`Coherence`], made by [`Coherence::builder`].
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ttlcache::redis::CoherenceError> {
/// use std::time::Duration;
/// use ttlcache::redis::{Coherence, Unhealthy};
///
/// let coherence = Coherence::builder("redis://127.0.0.1:6379/", "myapp")
///     .ping_every(Duration::from_millis(250))
///     .lease(Duration::from_secs(1))
///     .when_unhealthy(Unhealthy::ServeLocal)
///     .connect()
///     .await?;
/// # drop(coherence);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct CoherenceBuilder {
    pub(super) url: String,
    pub(super) namespace: String,
    pub(super) settings: Settings,
}

/// The settings the supervisor runs by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) ping_every: Duration,
    pub(crate) lease: Duration,
    pub(crate) when_unhealthy: Unhealthy,
    pub(crate) max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_millis(500),
            lease: Duration::from_secs(2),
            when_unhealthy: Unhealthy::Bypass,
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl CoherenceBuilder {
    /// How often the tracking connection is pinged; by default every 500 ms. It must be below
    /// the [`lease`](Self::lease). A zero is taken as a millisecond.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "app")
    ///     .ping_every(std::time::Duration::from_millis(100));
    /// # drop(builder);
    /// ```
    pub fn ping_every(mut self, ping_every: Duration) -> Self {
        self.settings.ping_every = ping_every.max(Duration::from_millis(1));
        self
    }

    /// How long the handle trusts its members after the last credited ping (counted from when
    /// it was sent; a ping is credited once every push received before its answer has been
    /// applied); by default 2 s. Past it, members stop serving at once, where values are read,
    /// and the supervisor flushes them and reconnects: no replica serves a value invalidated
    /// elsewhere for longer, whatever the network, the runtime or a slow listener does. A
    /// zero is taken as a millisecond; a lease too long for an instant is "never expires".
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "app")
    ///     .lease(std::time::Duration::from_secs(1));
    /// # drop(builder);
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// What members do while the handle is unhealthy; by default [`Unhealthy::Bypass`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::redis::{Coherence, Unhealthy};
    ///
    /// let builder = Coherence::builder("redis://127.0.0.1/", "app")
    ///     .when_unhealthy(Unhealthy::ServeLocal);
    /// # drop(builder);
    /// ```
    pub fn when_unhealthy(mut self, when_unhealthy: Unhealthy) -> Self {
        self.settings.when_unhealthy = when_unhealthy;
        self
    }

    /// The longest wait between two reconnection attempts; by default 5 s. Waits start at
    /// 50 ms and double, each spread by up to a quarter either way.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "app")
    ///     .max_backoff(std::time::Duration::from_secs(1));
    /// # drop(builder);
    /// ```
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.settings.max_backoff = max_backoff.max(Duration::from_millis(1));
        self
    }

    /// Checks the URL, namespace and settings, and starts the supervisor on a thread and tokio
    /// runtime of the handle's own; returns at once, connected or not. It needs no runtime of
    /// the caller's.
    ///
    /// # Errors
    ///
    /// As [`Coherence::connect`].
    ///
    /// # Cancel safety
    ///
    /// As [`Coherence::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ttlcache::redis::{Coherence, CoherenceError};
    ///
    /// let error = Coherence::builder("mysql://db/", "app").connect().await.unwrap_err();
    /// assert!(matches!(error, CoherenceError::InvalidUrl { .. }));
    /// # }
    /// ```
    pub async fn connect(self) -> Result<Coherence, CoherenceError> {
        self.start()
    }

    /// What [`connect`](Self::connect) does: it awaits nothing.
    fn start(self) -> Result<Coherence, CoherenceError> {
        if self.namespace.is_empty() || self.namespace.contains(':') {
            return Err(CoherenceError::InvalidNamespace {
                namespace: self.namespace,
            });
        }
        let Settings {
            ping_every, lease, ..
        } = self.settings;
        if ping_every >= lease {
            return Err(CoherenceError::PingNotBelowLease { ping_every, lease });
        }
        let info = self.url.as_str().into_connection_info().map_err(|error| {
            CoherenceError::InvalidUrl {
                reason: format!("{:?}", error.kind()),
            }
        })?;
        let no_thread = |error: std::io::Error| CoherenceError::NoBackgroundThread {
            reason: error.to_string(),
        };
        let runtime = OwnRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(no_thread)?,
        ));
        static HANDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let shared = Arc::new(Shared {
            prefix: marker::prefix(&self.namespace),
            namespace: self.namespace,
            settings: self.settings,
            trust: Trust::revoked(),
            info: info.clone(),
            faults: Mutex::new(Faults::default()),
            id: HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            runtime: runtime.get().handle().clone(),
            members: Mutex::new(HashMap::new()),
            registrations: AtomicU64::new(0),
            connection: Mutex::new(None),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            unhealthy: Mutex::new(UnhealthyTime {
                before: Duration::ZERO,
                since: Some(Instant::now()),
            }),
            supervisor: Mutex::new(None),
        });
        let task = runtime
            .get()
            .spawn(supervisor::run(Arc::downgrade(&shared), info));
        *shared.supervisor.lock() = Some(task.abort_handle());
        // The thread lives as long as the supervisor: dropping the last handle aborts it, and
        // the runtime (the connection's own task with it) goes when the thread ends.
        std::thread::Builder::new()
            .name(format!("ttlcache-coherence-{}", shared.namespace))
            .spawn({
                let subscriber = crate::trace::Inherited::here();
                move || subscriber.run(|| drop(runtime.get().block_on(task)))
            })
            .map_err(no_thread)?;
        let coherence = Coherence { shared };
        #[cfg(feature = "metrics")]
        coherence.report_metrics();
        Ok(coherence)
    }
}

/// A handle's runtime. Shut down without waiting when dropped, so that one dropped where it
/// was made (in `connect`, should its thread not start), inside the caller's runtime, does not
/// panic there.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("taken only when dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for CoherenceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoherenceBuilder")
            .field("url", &redact::url(&self.url))
            .field("namespace", &self.namespace)
            .field("settings", &self.settings)
            .finish()
    }
}
