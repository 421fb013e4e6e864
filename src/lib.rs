//! A thread-safe in-process cache: a sharded map with expiry checked on every read, a hard
//! capacity bound and single-flight loading.
//!
//! [`TtlCache`] keeps hot data in memory with a time to live (sessions, tokens, lookups), and
//! memoizes expensive computations so that a thousand concurrent requests for one missing key
//! cause one computation, not a thousand. [`LoadingCache`] binds the loader at build time,
//! runs loads as tasks and refreshes entries in the background before they expire.
//! [`AsyncLazy`] holds one value (configuration, keys), loaded on first use and kept fresh.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | yes | [`LoadingCache`]; background loads, `refresh_every` and `subscribe` of [`AsyncLazy`]; [`TokioClock`], so `tokio::time::pause` drives expiry in tests |
//! | `serde` | no | `CacheSnapshot`: a cache's live entries saved and restored across a restart, expiry kept as wall-clock time |
//! | `redis` | no | [`redis::Coherence`]: caches and lazies kept coherent across replicas through Redis's server-assisted invalidation |
//! | `redis-tls` | no | `rediss://` URLs for `redis`, through redis-rs's rustls support |
//! | `macros` | yes | [`memoize`]: an `async fn` or `fn` cached by its arguments, with an accessor `<name>_cache()` |
//! | `metrics` | no | named caches and coherence handles report through the `metrics` facade ([`metrics`](mod@metrics)) |
//! | `tracing` | no | `tracing` events for loads, refreshes, timeouts, failures, panics and flushes |
//!
//! # What users rely on
//!
//! - **Expiry is exact, to the clock's step.** An entry written at `t` with a time to live `d`
//!   is returned at every time before `t + d` and never from then on, whether or not anything
//!   removed it yet. With a time to idle `i`, a read at `r` moves its deadline to
//!   `min(t + d, r + i)`. Times are the clock's: the default [`SystemClock`] is read in steps
//!   of about a millisecond (see its docs), so an entry lives its time to live give or take
//!   that much; a clock of your own is read exactly.
//! - **Expired entries do not pile up**: each write does a little expiry work on its shard, so
//!   no background thread is needed to remove them.
//! - **Capacity is a hard bound**: after any call returns, `weighted_size() <= max_capacity`.
//! - **Single flight**: `get_or_*` on a missing key runs `init` once however many threads or
//!   tasks ask; the others wait for its value. A panicking or cancelled leader hands over to one
//!   waiter; a recursive call for the same key panics instead of deadlocking.
//! - **Loads survive their callers** ([`LoadingCache`]): a cancelled caller neither cancels nor
//!   stalls a load, a panicking loader leaves the cache usable, and a refresh never overwrites
//!   what was invalidated or replaced meanwhile.
//! - **Hits are cheap**: a hit takes one shard's read lock, never a write lock or a global one.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use ttlcache::TtlCache;
//!
//! let cache = TtlCache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(60))
//!     .build()
//!     .unwrap();
//!
//! cache.insert("session:42".to_string(), "ada".to_string());
//! assert_eq!(cache.get("session:42").as_deref(), Some("ada"));
//!
//! // One computation, however many threads ask at once.
//! let answer = cache.get_or_insert_with("answer".to_string(), || "42".to_string());
//! assert_eq!(answer, "42");
//! ```

#![forbid(unsafe_code)]

pub mod builder;
mod cache;
mod clock;
mod error;
mod expiry;
mod flight;
mod hash;
#[cfg(feature = "tokio")]
mod jitter;
mod lazy;
#[cfg(feature = "tokio")]
mod loading;
#[cfg(feature = "metrics")]
pub mod metrics;
mod policy;
#[cfg(feature = "redis")]
pub mod redis;
mod removal;
#[cfg(feature = "tokio")]
mod runtime;
mod settings;
mod shard;
mod stats;
mod sync;
mod trace;

pub use builder::CacheBuilder;
#[cfg(feature = "serde")]
pub use cache::CacheSnapshot;
pub use cache::{Op, TtlCache};
#[cfg(feature = "tokio")]
pub use clock::TokioClock;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BuildError, LoadError};
pub use expiry::Expiry;
pub use hash::{DefaultHashBuilder, FastHasher};
pub use lazy::{AsyncLazy, AsyncLazyBuilder};
#[cfg(feature = "tokio")]
pub use loading::LoadingCache;
pub use removal::RemovalCause;
pub use stats::CacheStats;
/// Caches a function's results by its arguments, with expiry and single-flight calls.
#[cfg(feature = "macros")]
pub use ttlcache_macros::memoize;

/// The loom models (`loom-tests/`): compiled into the crate, so that they reach the engine's
/// hand-overs without a public back door.
#[cfg(all(test, ttlcache_loom, feature = "tokio"))]
#[path = "../loom-tests/mod.rs"]
mod loom_models;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
