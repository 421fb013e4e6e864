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

mod builder;
mod error;
mod marker;
mod supervisor;

pub use builder::CoherenceBuilder;
pub(crate) use builder::Settings;
pub use error::CoherenceError;

pub(crate) use marker::decode;

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use redis::{ToRedisArgs, aio::MultiplexedConnection};

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

    /// Has the process's metrics reporter report this handle for as long as one lives
    /// (`metrics.rs`), labelled with its namespace.
    #[cfg(feature = "metrics")]
    pub(crate) fn report_metrics(&self) {
        let namespace = self.shared.namespace().to_owned();
        let shared = Arc::downgrade(&self.shared);
        crate::metrics::register(Box::new(move || {
            let Some(shared) = shared.upgrade() else {
                return false;
            };
            let coherence = Coherence { shared };
            crate::metrics::coherence(&namespace, &coherence.stats(), coherence.is_healthy());
            true
        }));
    }

    /// Registers a member under `name`, for the supervisor to invalidate and flush; members
    /// whose cache is gone leave as another registers. Refused (false) for a cache whose keys
    /// (`key_type`) are of another type than a live cache's of the same name: markers of one
    /// would not decode as keys of the other. Checked and registered under one lock.
    pub(crate) fn register(
        &self,
        name: &str,
        key_type: Option<std::any::TypeId>,
        member: Arc<dyn Member>,
    ) -> bool {
        let mut members = self.shared.members.lock();
        for list in members.values_mut() {
            list.retain(|member| member.is_alive());
        }
        let list = members.entry(name.to_owned()).or_default();
        let clash = |other: &Arc<dyn Member>| matches!((key_type, other.key_type()), (Some(mine), Some(theirs)) if mine != theirs);
        if list.iter().any(clash) {
            return false;
        }
        list.push(member);
        self.shared.registrations.fetch_add(1, Ordering::AcqRel);
        true
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

impl Shared {
    /// The namespace, as metrics and tracing events name the handle.
    pub(crate) fn namespace(&self) -> &str {
        self.prefix.strip_suffix(':').unwrap_or(&self.prefix)
    }
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
    /// The type of a cache's keys; `None` for a lazy, which takes any marker of its name.
    fn key_type(&self) -> Option<std::any::TypeId>;
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

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("name", &self.name).finish()
    }
}
