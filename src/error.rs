//! Errors users can meet: a configuration that cannot work.

use std::fmt;

use crate::builder::MAX_SHARDS;

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
        }
    }
}

impl std::error::Error for BuildError {}
