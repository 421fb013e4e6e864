//! Replicas that stay coherent (feature `redis`): invalidation across processes over the Redis
//! a service already runs, through Redis's own server-assisted tracking.
//!
//! A [`Coherence`] holds one dedicated RESP3 connection with `CLIENT TRACKING ON BCAST PREFIX
//! <namespace>:`. [`invalidate_everywhere`](crate::TtlCache::invalidate_everywhere) removes a
//! key locally, then writes its marker (`marker.rs`) under that prefix; Redis pushes the
//! invalidation to every replica's tracking connection, and each removes the key. A writer in
//! another language takes part by writing the same marker key.
//!
//! - `mod.rs` (this file): the public types, and what caches and lazies register;
//! - `supervisor.rs`: the task that keeps the connection and its health (the state machine);
//! - `marker.rs`: marker keys, written and parsed.
//!
//! Rules:
//! 1. A load or refresh that began before an invalidation of its key, local or remote, or
//!    before a flush, is never stored: an invalidation is a `remove` and a flush a `clear` of
//!    the cache, and both detach the pending loads they cover (rule 5 of `flight/mod.rs`).
//! 2. Whatever may have lost invalidations (the connection closed, a ping unanswered for the
//!    lease, a server restart, FLUSHALL's null invalidation, `tracking-redir-broken`, a key
//!    that does not decode) flushes every member and makes the handle unhealthy until tracking
//!    is on again; then it flushes again, and only then turns healthy.
//! 3. While unhealthy, a [`Unhealthy::Bypass`] member stores nothing: the flush emptied it,
//!    so every read misses and loads (still single-flighted) answer their callers only. The
//!    check is on the write path, under the shard lock; reads are untouched. A
//!    [`Unhealthy::ServeLocal`] member keeps serving and storing, its time to live the only
//!    bound on staleness.
//! 4. Redis unreachable at start is not an error: the handle starts unhealthy and the
//!    supervisor connects in the background. Nothing here blocks a `get`.

mod marker;
mod supervisor;

pub(crate) use marker::decode;

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use redis::{IntoConnectionInfo, ToRedisArgs, aio::MultiplexedConnection};

use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering};

/// What a coherent cache does while its [`Coherence`] is unhealthy (invalidations may have
/// been lost).
///
/// # Examples
///
/// ```
/// use ttlcache::redis::Unhealthy;
///
/// assert_eq!(Unhealthy::default(), Unhealthy::Bypass);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unhealthy {
    /// Every read misses: nothing is stored, loads answer their callers only. The default:
    /// never a stale value, at the cost of the backend's load.
    #[default]
    Bypass,
    /// Keep serving and storing; the local time to live is the only bound on staleness.
    ServeLocal,
}

/// Counts of a [`Coherence`] since it was made.
///
/// # Examples
///
/// ```
/// let stats = ttlcache::redis::CoherenceStats::default();
/// assert_eq!(stats.sent, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CoherenceStats {
    /// Invalidations written to Redis (`invalidate_everywhere`, `invalidate_all_everywhere`).
    pub sent: u64,
    /// Invalidated keys received from Redis, each counted once.
    pub received: u64,
    /// Times every member was flushed because invalidations may have been lost.
    pub flushes: u64,
    /// Times the tracking connection was re-established after the first.
    pub reconnects: u64,
    /// Total time spent unhealthy, the current stretch included.
    pub time_unhealthy: Duration,
}

/// What went wrong with coherence.
///
/// # Examples
///
/// ```
/// use ttlcache::redis::CoherenceError;
///
/// let error = CoherenceError::Unavailable;
/// assert_eq!(error.to_string(), "Redis is unreachable now: the invalidation was not sent");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoherenceError {
    /// The URL is not a Redis URL redis-rs accepts (its text, which may hold a password, is
    /// left out).
    InvalidUrl {
        /// What redis-rs found wrong.
        reason: String,
    },
    /// A namespace must be non-empty and hold no `:` (it would take in other namespaces'
    /// markers: `app` would track `app:v2:...`).
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
    },
    /// Made outside a tokio runtime: the supervisor needs one to run on.
    NoTokioRuntime,
    /// No tracking connection is up here: the invalidation was made locally but not sent.
    /// Other replicas may still be connected and serving the old value until their time to
    /// live: retry once this handle is healthy again (or accept the time to live as the
    /// bound).
    Unavailable,
    /// Redis refused or failed the write.
    Redis {
        /// Redis's or redis-rs's message.
        message: String,
    },
    /// The key is written as more or fewer than one Redis argument, so it has no marker.
    KeyNotOneArgument,
    /// The cache was not built with `coherent`.
    NotCoherent,
}

impl fmt::Display for CoherenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { reason } => write!(f, "not a Redis URL: {reason}"),
            Self::InvalidNamespace { namespace } => write!(
                f,
                "a coherence namespace must be non-empty and hold no `:`, got {namespace:?}"
            ),
            Self::NoTokioRuntime => {
                f.write_str("a coherence is made in a tokio runtime, for its background task")
            }
            Self::Unavailable => {
                f.write_str("Redis is unreachable now: the invalidation was not sent")
            }
            Self::Redis { message } => write!(f, "Redis failed the invalidation: {message}"),
            Self::KeyNotOneArgument => {
                f.write_str("the key is not one Redis argument, so it has no marker key")
            }
            Self::NotCoherent => f.write_str("the cache was not built with `coherent`"),
        }
    }
}

impl std::error::Error for CoherenceError {}

/// A handle on one Redis connection that keeps the caches and lazies built `coherent` with it
/// coherent with the other replicas. Clones share the connection.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ttlcache::{TtlCache, redis::Coherence};
///
/// let coherence = Coherence::connect("redis://127.0.0.1:6379/", "myapp").await?;
/// let users = TtlCache::builder()
///     .time_to_live(Duration::from_secs(300))
///     .coherent(&coherence, "users")
///     .build()?;
/// users.insert(7_u64, "Ada".to_string());
/// // After the database write commits:
/// users.invalidate_everywhere(&7).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Coherence {
    shared: Arc<Shared>,
}

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
    url: String,
    namespace: String,
    settings: Settings,
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

impl Coherence {
    /// Connects with the default settings; see [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// [`CoherenceError::InvalidUrl`], [`CoherenceError::InvalidNamespace`] and
    /// [`CoherenceError::NoTokioRuntime`] only: Redis being unreachable is not an error (the
    /// handle starts unhealthy and connects in the background).
    ///
    /// # Cancel safety
    ///
    /// It awaits nothing that Redis answers; dropping it early leaves nothing behind.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let coherence = ttlcache::redis::Coherence::connect("redis://127.0.0.1/", "myapp")
    ///     .await
    ///     .unwrap();
    /// # drop(coherence);
    /// # }
    /// ```
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, CoherenceError> {
        Self::builder(url, namespace).connect().await
    }

    /// A builder for a handle with other settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "myapp");
    /// # drop(builder);
    /// ```
    pub fn builder(url: &str, namespace: &str) -> CoherenceBuilder {
        CoherenceBuilder {
            url: url.to_owned(),
            namespace: namespace.to_owned(),
            settings: Settings::default(),
        }
    }

    /// Whether tracking is on and every member was flushed since it came on: invalidations
    /// reach the members. False from the first sign of a loss until then.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let coherence = ttlcache::redis::Coherence::connect("redis://127.0.0.1/", "myapp")
    ///     .await
    ///     .unwrap();
    /// println!("healthy: {}", coherence.is_healthy());
    /// # }
    /// ```
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// The handle's counts since it was made.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let coherence = ttlcache::redis::Coherence::connect("redis://127.0.0.1/", "myapp")
    ///     .await
    ///     .unwrap();
    /// assert_eq!(coherence.stats().sent, 0);
    /// # }
    /// ```
    pub fn stats(&self) -> CoherenceStats {
        let shared = &self.shared;
        let unhealthy = *shared.unhealthy.lock();
        let current = unhealthy
            .since
            .map_or(Duration::ZERO, |since| since.elapsed());
        CoherenceStats {
            sent: shared.sent.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            flushes: shared.flushes.load(Ordering::Relaxed),
            reconnects: shared.reconnects.load(Ordering::Relaxed),
            time_unhealthy: unhealthy.before + current,
        }
    }

    /// Registers a member under `name`, for the supervisor to invalidate and flush; members
    /// whose cache is gone leave as another registers.
    pub(crate) fn register(&self, name: &str, member: Arc<dyn Member>) {
        let mut members = self.shared.members.lock();
        for list in members.values_mut() {
            list.retain(|member| member.is_alive());
        }
        members.entry(name.to_owned()).or_default().push(member);
        self.shared.registrations.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a member may store now (rule 3).
    #[inline]
    pub(crate) fn may_store(&self) -> bool {
        self.shared.settings.when_unhealthy == Unhealthy::ServeLocal || self.is_healthy()
    }

    /// Writes the marker of `key` in cache `name`: every replica removes the key.
    pub(crate) async fn send_key<K: ToRedisArgs>(
        &self,
        name: &str,
        key: &K,
    ) -> Result<(), CoherenceError> {
        let marker = marker::of_key(&self.shared.prefix, name, key)
            .ok_or(CoherenceError::KeyNotOneArgument)?;
        self.send(marker).await
    }

    /// Writes the marker of all of cache `name`: every replica empties it.
    pub(crate) async fn send_all(&self, name: &str) -> Result<(), CoherenceError> {
        self.send(marker::of_all(&self.shared.prefix, name)).await
    }

    /// Writes `marker` and deletes it in one transaction: both writes invalidate, and no key
    /// is left behind in Redis.
    async fn send(&self, marker: Vec<u8>) -> Result<(), CoherenceError> {
        let mut connection = self
            .shared
            .connection
            .lock()
            .clone()
            .ok_or(CoherenceError::Unavailable)?;
        redis::pipe()
            .atomic()
            .set(&marker, 1)
            .ignore()
            .del(&marker)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
            .map_err(|error| CoherenceError::Redis {
                message: error.to_string(),
            })?;
        self.shared.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
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
        Ok(Coherence { shared })
    }
}

/// What every handle of one [`Coherence`] shares. The supervisor holds it weakly: when the
/// last handle (and the last member's link) is dropped, it is dropped, and the supervisor
/// with it.
pub(crate) struct Shared {
    /// `<namespace>:`, the tracked prefix.
    prefix: String,
    settings: Settings,
    healthy: AtomicBool,
    /// The members by name: caches and lazies built `coherent` with this handle.
    members: Mutex<HashMap<String, Vec<Arc<dyn Member>>>>,
    /// Members registered so far, for a flush to tell whether one came meanwhile.
    registrations: AtomicU64,
    /// The tracking connection while tracking is on; markers are written through it too.
    connection: Mutex<Option<MultiplexedConnection>>,
    sent: AtomicU64,
    received: AtomicU64,
    flushes: AtomicU64,
    reconnects: AtomicU64,
    unhealthy: Mutex<UnhealthyTime>,
    supervisor: Mutex<Option<tokio::task::AbortHandle>>,
}

#[derive(Debug, Clone, Copy)]
struct UnhealthyTime {
    /// Unhealthy time in stretches that ended.
    before: Duration,
    /// When the current stretch began, while unhealthy.
    since: Option<Instant>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self.supervisor.get_mut().take() {
            task.abort();
        }
    }
}

/// A cache or lazy that a [`Coherence`] keeps coherent.
pub(crate) trait Member: Send + Sync {
    /// Removes the entry of the key whose marker bytes are `key`; `Err` if they encode no key
    /// of this member's type.
    fn invalidate(&self, key: &[u8]) -> Result<(), Undecodable>;
    /// Removes every entry.
    fn flush(&self);
    /// Whether the cache or lazy is still there.
    fn is_alive(&self) -> bool;
}

/// Marker bytes that encode no key of the member's type.
#[derive(Debug)]
pub(crate) struct Undecodable;

/// What a coherent cache keeps: its handle and name.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) coherence: Coherence,
    pub(crate) name: String,
}

impl fmt::Debug for Coherence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coherence")
            .field("namespace", &self.shared.prefix.trim_end_matches(':'))
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
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

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("name", &self.name).finish()
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
