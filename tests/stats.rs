//! Statistics: every counter moves when, and only when, its event happens.

use std::time::Duration;

use ttlcache::{CacheStats, ManualClock, TtlCache};

#[test]
fn lookups_writes_and_removals_are_counted() {
    let clock = ManualClock::new();
    let cache = TtlCache::builder()
        .max_capacity(2)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    cache.insert(1, 1);
    cache.insert(2, 2);
    cache.insert(3, 3); // evicts one
    assert!(cache.get(&3).is_some());
    assert!(cache.get(&4).is_none());
    assert!(cache.peek(&3).is_some()); // counts nowhere
    clock.advance(Duration::from_secs(10));
    assert!(cache.get(&3).is_none()); // expired: a miss
    assert_eq!(cache.purge_expired(), 2);
    cache.remove(&3); // already gone: nothing
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            misses: 2,
            inserts: 3,
            evictions: 1,
            expirations: 2,
            ..CacheStats::default()
        }
    );
    assert_eq!(cache.stats().hit_rate(), 1.0 / 3.0);
}

#[test]
fn loads_count_successes_failures_and_their_time_by_the_cache_clock() {
    let clock = ManualClock::new();
    let cache = TtlCache::builder().clock(clock.clone()).build().unwrap();
    cache.get_or_insert_with(1, || {
        clock.advance(Duration::from_millis(30));
        1
    });
    let failed = cache.try_get_or_insert_with(2, || {
        clock.advance(Duration::from_millis(12));
        Err("no")
    });
    assert!(failed.is_err());
    cache.get_or_insert_with(1, || unreachable!());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 2));
    assert_eq!((stats.load_successes, stats.load_failures), (1, 1));
    assert_eq!(stats.inserts, 1);
    assert_eq!(stats.total_load_time, Duration::from_millis(42));
}

#[test]
fn counts_from_many_threads_add_up_exactly() {
    let cache = TtlCache::builder().build().unwrap();
    cache.insert(0u64, 0u64);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..10_000 {
                    assert!(cache.get(&0).is_some());
                    assert!(cache.get(&1).is_none());
                }
            });
        }
    });
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (80_000, 80_000));
}

#[test]
fn hit_rate_is_zero_before_any_lookup() {
    let cache = TtlCache::<u8, u8>::builder().build().unwrap();
    cache.insert(1, 1);
    assert_eq!(cache.stats().hit_rate(), 0.0);
}
