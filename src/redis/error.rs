//! [`CoherenceError`]: what can go wrong with coherence.

use std::{fmt, time::Duration};

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
    /// markers: `app` would track `app:v2:...`) and no control character.
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
    },
    /// `ping_every` is more than half the `lease`: a ping answered a little late would renew
    /// trust only after it had ended, and every period would flush.
    PingEveryTooLong {
        /// The `ping_every` given.
        ping_every: Duration,
        /// The `lease` given.
        lease: Duration,
    },
    /// The TLS certificates given do not parse, or were given for a URL that is not
    /// `rediss://` (feature `redis-tls`).
    InvalidTls {
        /// What was wrong.
        reason: String,
    },
    /// The handle's background thread, which runs its supervisor on a tokio runtime of its
    /// own, could not be started.
    NoBackgroundThread {
        /// What the system said.
        reason: String,
    },
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
                "a coherence namespace must be non-empty and hold no `:` or control character, \
                 got {namespace:?}"
            ),
            Self::PingEveryTooLong { ping_every, lease } => write!(
                f,
                "ping_every ({ping_every:?}) must be at most half the lease ({lease:?}): a lease \
                 would end before a ping answered late could renew it"
            ),
            Self::InvalidTls { reason } => write!(f, "the TLS settings do not work: {reason}"),
            Self::NoBackgroundThread { reason } => {
                write!(
                    f,
                    "the coherence's background thread could not start: {reason}"
                )
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
