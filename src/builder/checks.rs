//! The checks that the cache and lazy builders share.

use std::time::Duration;

use crate::{
    error::BuildError,
    settings::{MAX_SHARDS, MIN_SHARD_CAPACITY},
    sync::parallelism,
};

/// The durations a builder was given, as [`check_durations`] checks them.
pub(crate) struct Durations<'a> {
    /// Settings for which zero makes no sense.
    pub(crate) nonzero: &'a [(&'static str, Option<Duration>)],
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) time_to_live: Option<Duration>,
}

/// Refuses a zero where zero makes no sense, and a `refresh_after` that would come no sooner
/// than the expiry it is meant to precede.
pub(crate) fn check_durations(durations: Durations<'_>) -> Result<(), BuildError> {
    if let Some(&(setting, _)) = durations
        .nonzero
        .iter()
        .find(|(_, duration)| *duration == Some(Duration::ZERO))
    {
        return Err(BuildError::ZeroDuration { setting });
    }
    match (durations.refresh_after, durations.time_to_live) {
        (Some(refresh_after), Some(time_to_live)) if refresh_after >= time_to_live => {
            Err(BuildError::RefreshNotBeforeExpiry {
                refresh_after,
                time_to_live,
            })
        }
        _ => Ok(()),
    }
}

/// Refuses a coherent cache's name that could not be told apart in a marker key: empty, or
/// holding a `:` (the marker's separator).
#[cfg(feature = "redis")]
pub(crate) fn check_coherent_name(name: &str) -> Result<(), BuildError> {
    if name.is_empty() || name.contains(':') {
        return Err(BuildError::InvalidCoherentName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The shard count given, checked against the capacity, or the default for it.
pub(crate) fn shard_count(
    shards: Option<usize>,
    max_capacity: Option<u64>,
) -> Result<usize, BuildError> {
    match (shards, max_capacity) {
        (Some(shards), _) if !shards.is_power_of_two() || shards > MAX_SHARDS => {
            Err(BuildError::InvalidShards { shards })
        }
        (Some(shards), Some(max_capacity)) if max_capacity > 0 && shards as u64 > max_capacity => {
            Err(BuildError::ShardsExceedCapacity {
                shards,
                max_capacity,
            })
        }
        (Some(shards), _) => Ok(shards),
        (None, _) => Ok(default_shards(max_capacity)),
    }
}

/// Thirty-two shards per core, so that two threads rarely take the same shard's lock (each
/// read lock writes the lock's cache line), but no fewer than [`MIN_SHARD_CAPACITY`] entries
/// per shard.
fn default_shards(max_capacity: Option<u64>) -> usize {
    let by_parallelism = parallelism()
        .saturating_mul(32)
        .next_power_of_two()
        .min(MAX_SHARDS);
    let Some(capacity) = max_capacity else {
        return by_parallelism;
    };
    let most = (capacity / MIN_SHARD_CAPACITY).clamp(1, MAX_SHARDS as u64);
    // The largest power of two that is at most `most`.
    by_parallelism.min(1 << most.ilog2())
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn small_caches_get_few_shards() {
        assert_eq!(default_shards(Some(0)), 1);
        assert_eq!(default_shards(Some(511)), 1);
        assert_eq!(default_shards(Some(512)), 2.min(default_shards(None)));
        assert!(default_shards(Some(u64::MAX)) == default_shards(None));
        assert!(default_shards(None).is_power_of_two());
    }

    #[test]
    fn zero_where_it_makes_no_sense_is_named() {
        let durations = Durations {
            nonzero: &[("load_timeout", Some(Duration::ZERO))],
            refresh_after: None,
            time_to_live: None,
        };
        assert_eq!(
            check_durations(durations),
            Err(BuildError::ZeroDuration {
                setting: "load_timeout"
            })
        );
    }
}
