//! What builders hand over once they have checked their settings, and the checks that the
//! cache and lazy builders share.

use std::{sync::Arc, time::Duration};

use crate::{
    Expiry, cache::Weigher, clock::TimeSource, error::BuildError, removal::Listener,
    sync::parallelism, trace::KeyFormat,
};

/// The most shards a cache may have.
pub(crate) const MAX_SHARDS: usize = 1 << 16;

/// The least capacity the default shard count leaves each shard, so that a small cache does
/// not behave like many tiny ones.
const MIN_SHARD_CAPACITY: u64 = 256;

/// A cache's settings, checked.
pub(crate) struct Settings<K, V, S> {
    pub(crate) shards: usize,
    pub(crate) max_capacity: Option<u64>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) clock: TimeSource,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) expiry: Option<Box<dyn Expiry<K, V>>>,
    pub(crate) hasher: S,
    /// What the cache's metrics and tracing events call it.
    pub(crate) name: Option<Arc<str>>,
    /// How its tracing events show keys, where asked to (`CacheBuilder::trace_keys`).
    pub(crate) key_format: Option<KeyFormat<K>>,
    /// The replicas' coherence the cache takes part in.
    #[cfg(feature = "redis")]
    pub(crate) coherent: Option<crate::cache::Coherent<K>>,
}

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

/// Whether a setting needs the runtime's timer.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    Needed,
    NotNeeded,
}

/// The tokio runtime `setting` runs its work on: the one the builder is called in.
#[cfg(feature = "tokio")]
pub(crate) fn tokio_runtime(
    setting: &'static str,
    timer: Timer,
) -> Result<tokio::runtime::Handle, BuildError> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| BuildError::NoTokioRuntime { setting })?;
    if timer == Timer::Needed && !crate::clock::tokio_timer_enabled() {
        return Err(BuildError::NoTokioTimer { setting });
    }
    Ok(runtime)
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
