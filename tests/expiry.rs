//! Expiry: exact deadlines for time to live and time to idle, and no pile-up of expired entries.

use std::time::Duration;

use ttlcache::{ManualClock, TokioClock, TtlCache};

fn cache_with(
    clock: &ManualClock,
    ttl: Option<Duration>,
    tti: Option<Duration>,
) -> TtlCache<u64, u64> {
    let mut builder = TtlCache::builder().clock(clock.clone());
    if let Some(ttl) = ttl {
        builder = builder.time_to_live(ttl);
    }
    if let Some(tti) = tti {
        builder = builder.time_to_idle(tti);
    }
    builder.build().unwrap()
}

#[test]
fn an_entry_lives_until_the_nanosecond_before_its_deadline() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(10)), None);
    cache.insert(1, 100);
    clock.advance(Duration::from_nanos(9_999_999_999));
    assert_eq!(cache.get(&1), Some(100));
    assert_eq!(cache.peek(&1), Some(100));
    assert!(cache.contains_key(&1));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.peek(&1), None);
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.iter().count(), 0);
}

#[test]
fn an_insert_restarts_the_time_to_live() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(10)), None);
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(8));
    cache.insert(1, 2);
    clock.advance(Duration::from_secs(8));
    assert_eq!(cache.get(&1), Some(2));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn reads_do_not_extend_a_time_to_live() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(10)), None);
    cache.insert(1, 1);
    for _ in 0..9 {
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get(&1), Some(1));
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn a_per_entry_ttl_overrides_the_cache_ttl_both_ways() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(10)), None);
    cache.insert_with_ttl(1, 1, Duration::from_secs(2));
    cache.insert_with_ttl(2, 2, Duration::from_secs(60));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.get(&1), None);
    clock.advance(Duration::from_secs(50));
    assert_eq!(cache.get(&2), Some(2));
}

#[test]
fn duration_max_means_never_and_does_not_panic() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::MAX), Some(Duration::MAX));
    cache.insert(1, 1);
    cache.insert_with_ttl(2, 2, Duration::MAX);
    clock.advance(Duration::from_secs(3_000_000_000));
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.get(&2), Some(2));
    clock.advance(Duration::MAX);
    assert_eq!(cache.get(&1), Some(1));
}

#[test]
fn a_zero_ttl_stores_nothing_visible() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::ZERO), None);
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get_or_insert_with(2, || 2), 2);
    assert_eq!(cache.get(&2), None);
}

#[test]
fn a_read_extends_the_idle_deadline_but_never_past_the_ttl() {
    let clock = ManualClock::new();
    let cache = cache_with(
        &clock,
        Some(Duration::from_secs(30)),
        Some(Duration::from_secs(10)),
    );
    cache.insert(1, 1);
    // Reads at 9s, 18s, 27s keep it alive; the time to live ends it at 30s regardless.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(9));
        assert_eq!(cache.get(&1), Some(1));
    }
    clock.advance(Duration::from_nanos(2_999_999_999));
    assert_eq!(cache.get(&1), Some(1));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn an_unread_entry_expires_after_its_idle_time() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, Some(Duration::from_secs(10)));
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(5));
    assert_eq!(cache.get(&1), Some(1));
    // The read at 5s moved the deadline to 15s.
    clock.advance(Duration::from_nanos(9_999_999_999));
    assert_eq!(cache.peek(&1), Some(1));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.peek(&1), None);
}

#[test]
fn peek_and_contains_key_do_not_extend_the_idle_deadline() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, Some(Duration::from_secs(10)));
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(9));
    assert_eq!(cache.peek(&1), Some(1));
    assert!(cache.contains_key(&1));
    assert_eq!(cache.iter().count(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn never_read_keys_with_a_short_ttl_do_not_pile_up() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_millis(50)), None);
    // 400,000 writes, 200 per millisecond: 10,000 keys are live at any moment.
    for key in 0..400_000 {
        cache.insert(key, key);
        if key % 200 == 199 {
            clock.advance(Duration::from_millis(1));
        }
    }
    let held = cache.len();
    assert!(held < 20_000, "{held} entries held for 10,000 live");
    assert_eq!(cache.purge_expired(), held - cache.len());
    assert!(cache.len() <= 10_000);
}

#[test]
fn purge_expired_removes_exactly_the_expired_entries() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, None);
    for key in 0..100 {
        cache.insert_with_ttl(key, key, Duration::from_secs(key + 1));
    }
    clock.advance(Duration::from_secs(40));
    assert_eq!(cache.purge_expired(), 40);
    assert_eq!(cache.len(), 60);
    assert_eq!(cache.purge_expired(), 0);
    let mut keys: Vec<u64> = cache.iter().map(|(key, _)| key).collect();
    keys.sort_unstable();
    assert_eq!(keys, (40..100).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn tokio_clock_follows_paused_time() {
    let cache = TtlCache::builder()
        .time_to_live(Duration::from_secs(5))
        .clock(TokioClock)
        .build()
        .unwrap();
    cache.insert("k", 1);
    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert_eq!(cache.get("k"), Some(1));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(cache.get("k"), None);
}
