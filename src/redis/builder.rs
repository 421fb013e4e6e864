//! [`CoherenceBuilder`]: a [`Coherence`]'s settings, checked once at `connect`.

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use redis::IntoConnectionInfo;

use super::{Coherence, CoherenceError, Shared, Unhealthy, UnhealthyTime, supervisor};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex};

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
    /// How often the tracking connection is pinged; by default every 500 ms. A zero is taken
    /// as a millisecond.
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

    /// How long since the last answered ping (counted from when it was sent) the handle trusts
    /// the connection; by default 2 s. Past it, it flushes and turns unhealthy: no replica
    /// serves a value invalidated elsewhere for longer, whatever the network does. A zero is
    /// taken as a millisecond.
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

    /// Checks the URL and namespace, and starts the supervisor on the current tokio runtime;
    /// returns at once, connected or not.
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
        if self.namespace.is_empty() || self.namespace.contains(':') {
            return Err(CoherenceError::InvalidNamespace {
                namespace: self.namespace,
            });
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| CoherenceError::NoTokioRuntime)?;
        let info = self.url.as_str().into_connection_info().map_err(|error| {
            CoherenceError::InvalidUrl {
                reason: format!("{:?}", error.kind()),
            }
        })?;
        let shared = Arc::new(Shared {
            prefix: format!("{}:", self.namespace),
            settings: self.settings,
            healthy: AtomicBool::new(false),
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
        let task = runtime.spawn(supervisor::run(Arc::downgrade(&shared), info));
        *shared.supervisor.lock() = Some(task.abort_handle());
        let coherence = Coherence { shared };
        #[cfg(feature = "metrics")]
        coherence.report_metrics();
        Ok(coherence)
    }
}

impl fmt::Debug for CoherenceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoherenceBuilder")
            .field("url", &redacted(&self.url))
            .field("namespace", &self.namespace)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The URL with any password replaced and its query left out (redis-rs reads `pass=` there),
/// for `Debug`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    // The authority ends at the last `@`: a password may hold one, unencoded.
    match rest.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{rest}"),
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_debug() {
        assert_eq!(
            redacted("redis://app:hunter2@db:6379/0"),
            "redis://app:***@db:6379/0"
        );
        assert_eq!(redacted("rediss://:hunter2@db/"), "rediss://:***@db/");
        assert_eq!(redacted("redis://db/"), "redis://db/");
        assert_eq!(
            redacted("redis+unix:///run/redis.sock?user=app&pass=hunter2"),
            "redis+unix:///run/redis.sock"
        );
        assert_eq!(redacted("redis://app:p@ss@db/"), "redis://app:***@db/");
        let builder = Coherence::builder("redis://app:hunter2@db/", "ns");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }
}
