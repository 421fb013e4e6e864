//! Builder errors: a setting that cannot work is refused with a message naming it.

use std::time::Duration;

use ttlcache::{BuildError, TtlCache};

fn shards(count: usize) -> Result<TtlCache<u64, u64>, BuildError> {
    TtlCache::builder().shards(count).build()
}

#[test]
fn shards_must_be_a_power_of_two() {
    for bad in [0, 3, 12, 1000] {
        let error = shards(bad).unwrap_err();
        assert_eq!(error, BuildError::InvalidShards { shards: bad });
        assert!(error.to_string().contains("`shards`"));
        assert!(error.to_string().contains(&bad.to_string()));
    }
    for good in [1, 2, 64, 65_536] {
        assert!(shards(good).is_ok());
    }
}

#[test]
fn shards_have_an_upper_bound() {
    assert_eq!(
        shards(1 << 17).unwrap_err(),
        BuildError::InvalidShards { shards: 1 << 17 }
    );
}

#[test]
fn shards_must_not_exceed_a_nonzero_capacity() {
    let error = TtlCache::<u64, u64>::builder()
        .max_capacity(10)
        .shards(16)
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "`shards` (16) must not exceed `max_capacity` (10): every shard must be able to hold an entry"
    );
    // A zero capacity is a cache that stores nothing, whatever its shards.
    assert!(
        TtlCache::<u64, u64>::builder()
            .max_capacity(0)
            .shards(16)
            .build()
            .is_ok()
    );
}

#[test]
fn build_errors_are_std_errors() {
    let error: Box<dyn std::error::Error + Send + Sync> = Box::new(shards(3).unwrap_err());
    assert!(error.to_string().contains("power of two"));
}

#[test]
fn extreme_durations_are_accepted() {
    for duration in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
        let cache = TtlCache::<u64, u64>::builder()
            .time_to_live(duration)
            .time_to_idle(duration)
            .build()
            .unwrap();
        cache.insert(1, 1);
        cache.insert_with_ttl(2, 2, duration);
    }
}

#[test]
fn debug_output_shows_the_settings() {
    let builder = TtlCache::<u64, u64>::builder().max_capacity(5);
    assert!(format!("{builder:?}").contains("max_capacity: Some(5)"));
    let cache = builder.build().unwrap();
    cache.insert(1, 1);
    let shown = format!("{cache:?}");
    assert!(shown.contains("len: 1"), "{shown}");
}
