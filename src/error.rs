//! Errors users can meet: a configuration that cannot work, and a load that failed.

use std::{fmt, sync::Arc, time::Duration};

use crate::settings::MAX_SHARDS;

/// A builder was given settings that cannot work; the message names the setting and value.
///
/// # Examples
///
/// ```
/// use ttlcache::{BuildError, TtlCache};
///
/// let error = TtlCache::<u32, u32>::builder().shards(12).build().unwrap_err();
/// assert_eq!(error, BuildError::InvalidShards { shards: 12 });
/// assert_eq!(
///     error.to_string(),
///     "`shards` must be a power of two from 1 to 65536, got 12"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `shards` is not a power of two from 1 to 65536.
    InvalidShards {
        /// The value given.
        shards: usize,
    },
    /// `shards` exceeds a nonzero `max_capacity`, so some shard could hold nothing.
    ShardsExceedCapacity {
        /// The shard count given.
        shards: usize,
        /// The capacity given.
        max_capacity: u64,
    },
    /// A duration that must be positive was zero.
    ZeroDuration {
        /// The setting: `refresh_after`, `load_timeout`, `stale_if_error`, `batch_window` or
        /// `refresh_every`.
        setting: &'static str,
    },
    /// `refresh_after` is not shorter than `time_to_live`: entries would expire before any
    /// refresh could start.
    RefreshNotBeforeExpiry {
        /// The `refresh_after` given.
        refresh_after: Duration,
        /// The `time_to_live` given.
        time_to_live: Duration,
    },
    /// `max_concurrent_loads` was zero: no load could ever run.
    ZeroConcurrentLoads,
    /// `max_batch_size` was zero: no batch could hold a key.
    ZeroBatchSize,
    /// A coherent cache's name was empty or held a `:`, which separates it from the key in
    /// marker keys (feature `redis`).
    InvalidCoherentName {
        /// The name given.
        name: String,
    },
    /// Another live cache coherent under this name, in the same coherence, has keys of
    /// another type: the markers of one could not be read as keys of the other (feature
    /// `redis`).
    CoherentNameTaken {
        /// The name given.
        name: String,
    },
    /// Built outside a tokio runtime, where a setting needs one to run loads in the background.
    NoTokioRuntime {
        /// What needs the runtime.
        setting: &'static str,
    },
    /// Built in a tokio runtime without its timer (`enable_time`), where a setting needs it.
    NoTokioTimer {
        /// What needs the timer: `load_timeout` or `refresh_every`.
        setting: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidShards { shards } => write!(
                f,
                "`shards` must be a power of two from 1 to {MAX_SHARDS}, got {shards}"
            ),
            BuildError::ShardsExceedCapacity {
                shards,
                max_capacity,
            } => write!(
                f,
                "`shards` ({shards}) must not exceed `max_capacity` ({max_capacity}): \
                 every shard must be able to hold an entry"
            ),
            BuildError::ZeroDuration { setting } => {
                write!(f, "`{setting}` must be longer than zero")
            }
            BuildError::RefreshNotBeforeExpiry {
                refresh_after,
                time_to_live,
            } => write!(
                f,
                "`refresh_after` ({refresh_after:?}) must be shorter than `time_to_live` \
                 ({time_to_live:?}): entries would expire before a refresh could start"
            ),
            BuildError::ZeroConcurrentLoads => {
                write!(f, "`max_concurrent_loads` must be at least 1, got 0")
            }
            BuildError::ZeroBatchSize => write!(f, "`max_batch_size` must be at least 1, got 0"),
            BuildError::InvalidCoherentName { name } => write!(
                f,
                "a coherent cache's name must be non-empty and hold no `:`, got {name:?}"
            ),
            BuildError::CoherentNameTaken { name } => write!(
                f,
                "a cache with keys of another type is coherent under the name {name:?} already"
            ),
            BuildError::NoTokioRuntime { setting } => write!(
                f,
                "`{setting}` runs loads on a tokio runtime: call it from within one"
            ),
            BuildError::NoTokioTimer { setting } => write!(
                f,
                "`{setting}` needs the tokio runtime's timer: build the runtime with `enable_time()`"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why a load gave no value: what [`LoadingCache::get`] and `AsyncLazy` return.
///
/// It is shared as is by every caller that waited for the same load, so the loader's error
/// is behind an `Arc`.
///
/// [`LoadingCache::get`]: crate::LoadingCache::get
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use ttlcache::LoadError;
///
/// let error: LoadError<std::io::Error> = LoadError::Failed(Arc::new(std::io::Error::other("down")));
/// assert_eq!(error.to_string(), "the load failed: down");
/// assert_eq!(LoadError::<std::io::Error>::TimedOut.to_string(), "the load timed out");
/// ```
#[non_exhaustive]
pub enum LoadError<E> {
    /// The loader returned this error.
    Failed(Arc<E>),
    /// The loader panicked. The panic was caught where the load ran, after the panic hook
    /// reported it as it reports any panic; the callers get this instead of unwinding (but
    /// `AsyncLazy::get`, which has no error to return, panics in turn).
    Panicked,
    /// The loader took longer than `load_timeout`.
    TimedOut,
    /// A batch loader's map had no value for the key
    /// ([`build_batch_loading`](crate::CacheBuilder::build_batch_loading)).
    NotFound,
}

impl<E> Clone for LoadError<E> {
    fn clone(&self) -> Self {
        match self {
            LoadError::Failed(error) => LoadError::Failed(Arc::clone(error)),
            LoadError::Panicked => LoadError::Panicked,
            LoadError::TimedOut => LoadError::TimedOut,
            LoadError::NotFound => LoadError::NotFound,
        }
    }
}

impl<E: PartialEq> PartialEq for LoadError<E> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LoadError::Failed(a), LoadError::Failed(b)) => a == b,
            (LoadError::Panicked, LoadError::Panicked)
            | (LoadError::TimedOut, LoadError::TimedOut)
            | (LoadError::NotFound, LoadError::NotFound) => true,
            _ => false,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
            LoadError::Panicked => f.write_str("Panicked"),
            LoadError::TimedOut => f.write_str("TimedOut"),
            LoadError::NotFound => f.write_str("NotFound"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Failed(error) => write!(f, "the load failed: {error}"),
            LoadError::Panicked => f.write_str("the loader panicked"),
            LoadError::TimedOut => f.write_str("the load timed out"),
            LoadError::NotFound => f.write_str("the batch loader found no value for the key"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Failed(error) => Some(&**error),
            LoadError::Panicked | LoadError::TimedOut | LoadError::NotFound => None,
        }
    }
}
