//! Replicas that stay coherent (feature `redis`): invalidation across processes over the Redis
//! a service already runs, through Redis's own server-assisted tracking.
//!
//! A [`Coherence`] holds one dedicated RESP3 connection with `CLIENT TRACKING ON BCAST PREFIX
//! <namespace>:inv:`. [`invalidate_everywhere`](crate::TtlCache::invalidate_everywhere) removes
//! a key locally, then writes its marker (`marker.rs`) under that prefix; Redis pushes the
//! invalidation to every replica's tracking connection, and each removes the key. A writer in
//! another language takes part by writing the same marker key.
//!
//! - `mod.rs` (this file): the public types, and what caches and lazies register;
//! - `builder.rs`: the settings, checked, and the handle's own thread and runtime;
//! - `supervisor.rs`: the task that keeps the connection and its health (the state machine);
//!   `fault.rs` the faults it tells apart, `queue.rs` the push queue it reads, `backoff.rs`
//!   its waits between reconnections;
//! - `trust.rs`: until when members may serve, checked where values are read;
//! - `member.rs`: what caches and lazies keep of a coherence, and it of them;
//! - `marker.rs`: marker keys, written and parsed;
//! - `redact.rs`: passwords kept out of every message;
//! - `metrics.rs`: a handle's report to the `metrics` facade (feature `metrics`);
//! - `error.rs`: [`CoherenceError`].
//!
//! Rules:
//! 1. A load or refresh that began before an invalidation of its key, local or remote, or
//!    before a flush, is never stored: an invalidation is a `remove` and a flush a `clear` of
//!    the cache, and both detach the pending loads they cover (rule 5 of `flight/mod.rs`).
//! 2. Whatever may have lost invalidations flushes every member and makes the handle
//!    unhealthy. Where the connection is in doubt (it closed, no ping credited for the lease,
//!    a server restart, a push dropped for want of room), that lasts until tracking is on
//!    again and its probe heard; then it flushes again, and only then trusts. Where nothing
//!    was lost on the connection (FLUSHALL's null invalidation, `tracking-redir-broken`, a
//!    key that does not decode), the burst is taken in and one flush on the same connection
//!    covers it (`supervisor.rs`).
//! 3. While not trusted (`trust.rs`), a [`Unhealthy::Bypass`] member serves and stores nothing:
//!    every read misses, a load's door (`get_or_*`, `LoadingCache::get`) drops the key's entry and
//!    any load of it that began while trusted (`Began` in `flight/loads.rs`), `compute` drops the
//!    entry rather than show it, loads (still single-flighted) answer their callers only,
//!    `remove` answers `None`, `retain` keeps nothing, and a snapshot is empty. The check is on the
//!    read path (coherent `Bypass` caches only: about 25 instructions a hit) and on the write path,
//!    under the shard lock. A [`Unhealthy::ServeLocal`] member keeps serving and storing, its time
//!    to live the only bound on staleness.
//! 4. Redis unreachable at start is not an error: the handle starts unhealthy and the
//!    supervisor connects in the background, on the handle's own thread and tokio runtime,
//!    so that neither the application's runtime (starved, blocked, without a timer or IO
//!    driver, or none at all) nor a `get` waits on it. A process that forks after using a
//!    coherence has neither that thread nor the ticker's in the child: build coherences in
//!    the child.

mod backoff;
mod builder;
mod error;
mod fault;
mod marker;
mod member;
#[cfg(feature = "metrics")]
mod metrics;
mod queue;
mod redact;
mod supervisor;
mod trust;

pub use builder::CoherenceBuilder;
pub(crate) use builder::CoherenceSettings;
pub use error::CoherenceError;
pub(crate) use member::{Coherent, Link, Member, Undecodable};

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use redis::{ToRedisArgs, aio::MultiplexedConnection};

use crate::sync::{self, AtomicU64, Mutex, Ordering};
use trust::Trust;

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

/// Whether a [`Coherence`] is healthy, and why not: what [`Coherence::health`] returns.
///
/// # Examples
///
/// ```
/// let health = ttlcache::redis::Health::default();
/// assert!(!health.healthy);
/// assert_eq!(health.last_fault, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// As [`Coherence::is_healthy`].
    pub healthy: bool,
    /// The last sign that invalidations may have been lost, or the reason tracking could not
    /// start (the probe's push never came, say); `None` before the first.
    pub last_fault: Option<String>,
    /// The last error Redis or the connection gave (refused, authentication, ACL, TLS), with
    /// any password cut out; `None` before the first.
    pub last_error: Option<String>,
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
    inner: sync::Arc<CoherenceInner>,
}

impl Coherence {
    /// Connects with the default settings; see [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// [`CoherenceError::InvalidUrl`], [`CoherenceError::InvalidNamespace`],
    /// [`CoherenceError::PingEveryTooLong`], [`CoherenceError::InvalidTls`] and
    /// [`CoherenceError::NoBackgroundThread`] only:
    /// Redis being unreachable is not an error (the handle starts unhealthy and connects in
    /// the background). It needs no tokio runtime: the handle runs its own.
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
            settings: CoherenceSettings::default(),
            #[cfg(feature = "redis-tls")]
            tls: builder::Tls::default(),
        }
    }

    /// Whether members are trusted now: tracking is on, its probe's push was heard, every
    /// member was flushed since, and the lease has not passed since `CLIENT TRACKING` was sent
    /// or since the last credited ping was sent (a ping is credited once every push received
    /// before its answer has been applied). False from the first sign of a loss until then,
    /// and as soon as the lease passes, whatever any task is doing.
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
        self.inner.trust.holds()
    }

    /// Whether the handle is healthy, and if it is not, why: the last fault and the last
    /// error from Redis or the connection, passwords cut out.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let coherence = ttlcache::redis::Coherence::connect("redis://127.0.0.1/", "myapp")
    ///     .await
    ///     .unwrap();
    /// let health = coherence.health();
    /// if !health.healthy {
    ///     eprintln!("not coherent: {:?} ({:?})", health.last_fault, health.last_error);
    /// }
    /// # }
    /// ```
    pub fn health(&self) -> Health {
        let faults = self.inner.faults.lock().clone();
        Health {
            healthy: self.is_healthy(),
            last_fault: faults.fault,
            last_error: faults.error,
        }
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
        let inner = &self.inner;
        let unhealthy = *inner.unhealthy.lock();
        let current = unhealthy
            .since
            .map_or(Duration::ZERO, |since| since.elapsed());
        CoherenceStats {
            sent: inner.sent.load(Ordering::Relaxed),
            received: inner.received.load(Ordering::Relaxed),
            flushes: inner.flushes.load(Ordering::Relaxed),
            reconnects: inner.reconnects.load(Ordering::Relaxed),
            time_unhealthy: unhealthy.before + current,
        }
    }

    /// Registers a member under `name`, for the supervisor to invalidate and flush; members
    /// whose cache is gone leave as another registers. Refused (false) for a cache whose keys
    /// (`key_type`) are of another type than a live cache's of the same name: markers of one
    /// would not decode as keys of the other. Checked and registered under one lock.
    pub(crate) fn register(
        &self,
        name: &str,
        key_type: Option<std::any::TypeId>,
        member: sync::Arc<dyn Member>,
    ) -> bool {
        let mut members = self.inner.members.lock();
        // A name whose members are all gone leaves the map with them.
        members.retain(|_, list| {
            list.retain(|member| member.is_alive());
            !list.is_empty()
        });
        let list = members.entry(name.to_owned()).or_default();
        let clash = |other: &sync::Arc<dyn Member>| {
            matches!(
                (key_type, other.key_type()),
                (Some(mine), Some(theirs)) if mine != theirs
            )
        };
        if list.iter().any(clash) {
            return false;
        }
        list.push(member);
        self.inner.registrations.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Whether trust holds now (`trust.rs`).
    #[inline]
    pub(crate) fn is_trusted(&self) -> bool {
        self.inner.trust.holds()
    }

    /// Whether members serve what they hold while unhealthy (rule 3).
    pub(crate) fn serves_local(&self) -> bool {
        self.inner.settings.when_unhealthy == Unhealthy::ServeLocal
    }

    /// Whether a member may serve what it holds, and store, now (rule 3).
    #[inline]
    pub(crate) fn may_serve(&self) -> bool {
        self.inner.settings.when_unhealthy == Unhealthy::ServeLocal || self.inner.trust.holds()
    }

    /// Writes the marker of `key` in cache `name`: every replica removes the key.
    pub(crate) async fn send_key<K: ToRedisArgs>(
        &self,
        name: &str,
        key: &K,
    ) -> Result<(), CoherenceError> {
        let marker = marker::of_key(&self.inner.prefix, name, key)
            .ok_or(CoherenceError::KeyNotOneArgument)?;
        self.send(marker).await
    }

    /// Writes the marker of all of cache `name`: every replica empties it.
    pub(crate) async fn send_all(&self, name: &str) -> Result<(), CoherenceError> {
        self.send(marker::of_all(&self.inner.prefix, name)).await
    }

    /// Writes `marker` (and deletes it: `supervisor::write_marker`) on the handle's own
    /// runtime, so that it can be awaited from any executor, or none of tokio's.
    async fn send(&self, marker: Vec<u8>) -> Result<(), CoherenceError> {
        let mut connection = self
            .inner
            .connection
            .lock()
            .clone()
            .ok_or(CoherenceError::Unavailable)?;
        let written = self
            .inner
            .runtime
            .spawn(async move { supervisor::write_marker(&mut connection, &marker).await });
        written
            .await
            .map_err(|_| CoherenceError::Unavailable)?
            .map_err(|error| CoherenceError::Redis {
                message: self.inner.scrubbed(&error.to_string()),
            })?;
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What every handle of one [`Coherence`] shares. The supervisor holds it weakly: when the
/// last handle (and the last member's link) is dropped, it is dropped, and the supervisor
/// with it.
pub(crate) struct CoherenceInner {
    namespace: String,
    /// `<namespace>:inv:`, the tracked prefix every marker starts with (`marker.rs`).
    prefix: String,
    settings: CoherenceSettings,
    /// Until when members may serve (`trust.rs`): the lease, enforced where values are read.
    /// It holds only while the supervisor is in Tracking (`supervisor.rs`, rule 1).
    trust: Trust,
    /// The connection as parsed, for cutting its password out of messages.
    info: redis::ConnectionInfo,
    /// The last fault and error, for [`Coherence::health`].
    faults: Mutex<Faults>,
    /// This handle among the process's, for its metrics series.
    #[cfg(feature = "metrics")]
    id: u64,
    /// The handle's own runtime (its thread drives it): the supervisor and marker writes
    /// run there.
    runtime: tokio::runtime::Handle,
    /// The members by name: caches and lazies built `coherent` with this handle.
    members: Mutex<HashMap<String, Vec<sync::Arc<dyn Member>>>>,
    /// Members registered so far, for a flush to tell whether one came meanwhile.
    registrations: AtomicU64,
    /// The tracking connection while tracking is on; markers are written through it too.
    connection: Mutex<Option<MultiplexedConnection>>,
    sent: AtomicU64,
    received: AtomicU64,
    flushes: AtomicU64,
    reconnects: AtomicU64,
    unhealthy: Mutex<UnhealthyTime>,
    /// Told when the last handle goes: the supervisor stops (`supervisor::keep`).
    stop: sync::Arc<tokio::sync::Notify>,
}

/// The last fault and error seen, as [`Health`] shows them.
#[derive(Debug, Clone, Default)]
struct Faults {
    fault: Option<String>,
    error: Option<String>,
    /// Healthy since they were recorded: the same fault again is news, and is traced.
    healed: bool,
}

#[derive(Debug, Clone, Copy)]
struct UnhealthyTime {
    /// Unhealthy time in stretches that ended.
    before: Duration,
    /// When the current stretch began, while unhealthy.
    since: Option<Instant>,
}

impl CoherenceInner {
    /// The namespace, as metrics and tracing events name the handle.
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `message` with the connection's password cut out.
    fn scrubbed(&self, message: &str) -> String {
        redact::scrubbed(message, &self.info)
    }

    /// Records a fault for [`Coherence::health`] and tracing, with its error, scrubbed.
    fn fault(&self, trouble: &fault::Trouble) {
        let fault = trouble.fault.to_string();
        let error = trouble
            .error
            .as_ref()
            .map(|error| self.scrubbed(&error.to_string()));
        let mut faults = self.faults.lock();
        // A fault that repeats with no healthy stretch between (Redis down, retried every
        // few seconds) is traced once.
        let news = faults.healed
            || faults.fault.as_deref() != Some(fault.as_str())
            || (error.is_some() && faults.error != error);
        faults.healed = false;
        faults.fault = Some(fault.clone());
        if error.is_some() {
            faults.error.clone_from(&error);
        }
        // Traced unlocked: a subscriber may ask for the handle's health.
        drop(faults);
        if news {
            crate::trace::coherence_fault(self.namespace(), &fault, error.as_deref());
        }
    }
}

impl Drop for CoherenceInner {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

impl fmt::Debug for Coherence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coherence")
            .field("namespace", &self.inner.namespace)
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}
