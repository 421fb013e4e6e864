//! `Expiry`: values that carry their own lifetime, on every path that stores a value.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::time::advance;
use ttlcache::{Expiry, ManualClock, Op, RemovalCause, TokioClock, TtlCache};

/// A value that says how long it lives, in seconds (`u64::MAX`: a duration too large for any
/// clock); `None` leaves it to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ttl(Option<u64>);

fn lives(ttl: Ttl) -> Option<Duration> {
    ttl.0.map(|secs| match secs {
        u64::MAX => Duration::MAX,
        secs => Duration::from_secs(secs),
    })
}

/// The value's own lifetime on create and update; hits leave deadlines alone.
struct OwnLifetime;

impl Expiry<u64, Ttl> for OwnLifetime {
    fn expire_after_create(&self, _: &u64, value: &Ttl, _: Instant) -> Option<Duration> {
        lives(*value)
    }
}

fn cache_with(
    clock: &ManualClock,
    time_to_live: Option<Duration>,
    expiry: impl Expiry<u64, Ttl>,
) -> TtlCache<u64, Ttl> {
    let mut builder = TtlCache::builder()
        .clock(clock.clone())
        .expire_after(expiry);
    if let Some(time_to_live) = time_to_live {
        builder = builder.time_to_live(time_to_live);
    }
    builder.build().unwrap()
}

/// Whether `key` is live just before `secs` seconds from now and gone at `secs`, moving the
/// clock to `secs`.
fn lives_exactly(cache: &TtlCache<u64, Ttl>, clock: &ManualClock, key: u64, secs: u64) -> bool {
    clock.advance(Duration::from_secs(secs) - Duration::from_nanos(1));
    let before = cache.peek(&key).is_some();
    clock.advance(Duration::from_nanos(1));
    before && cache.peek(&key).is_none()
}

#[test]
fn an_insert_lives_as_long_as_its_value_says_even_past_the_caches_time_to_live() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(60)), OwnLifetime);
    cache.insert(1, Ttl(Some(5)));
    cache.insert(2, Ttl(Some(600)));
    cache.insert(3, Ttl(None));
    assert!(lives_exactly(&cache, &clock, 1, 5));
    assert!(
        lives_exactly(&cache, &clock, 3, 55),
        "None: the cache's 60 s"
    );
    assert!(
        lives_exactly(&cache, &clock, 2, 540),
        "longer than the cache's"
    );
}

#[test]
fn a_duration_too_large_means_never() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(60)), OwnLifetime);
    cache.insert(1, Ttl(Some(u64::MAX)));
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_eq!(cache.get(&1), Some(Ttl(Some(u64::MAX))));
}

#[test]
fn insert_with_ttl_wins_over_the_expiry() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, OwnLifetime);
    cache.insert_with_ttl(1, Ttl(Some(5)), Duration::from_secs(30));
    assert!(lives_exactly(&cache, &clock, 1, 30));
}

#[test]
fn an_update_restarts_from_create_by_default_and_sees_what_remained() {
    /// Records the `remaining` each update sees, and keeps the deadline.
    struct KeepDeadline(Arc<Mutex<Vec<Duration>>>);

    impl Expiry<u64, Ttl> for KeepDeadline {
        fn expire_after_create(&self, _: &u64, value: &Ttl, _: Instant) -> Option<Duration> {
            lives(*value)
        }
        fn expire_after_update(
            &self,
            _: &u64,
            _: &Ttl,
            _: Instant,
            remaining: Duration,
        ) -> Option<Duration> {
            self.0.lock().unwrap().push(remaining);
            Some(remaining)
        }
    }

    let clock = ManualClock::new();
    let restarting = cache_with(&clock, None, OwnLifetime);
    restarting.insert(1, Ttl(Some(10)));
    clock.advance(Duration::from_secs(8));
    restarting.insert(1, Ttl(Some(10)));
    assert!(
        lives_exactly(&restarting, &clock, 1, 10),
        "restarted at 8 s"
    );

    let seen = Arc::new(Mutex::new(Vec::new()));
    let keeping = cache_with(&clock, None, KeepDeadline(Arc::clone(&seen)));
    keeping.insert(1, Ttl(Some(10)));
    clock.advance(Duration::from_secs(8));
    keeping.insert(1, Ttl(Some(10)));
    keeping.insert(2, Ttl(None));
    keeping.insert(2, Ttl(None));
    assert!(
        lives_exactly(&keeping, &clock, 1, 2),
        "kept the first deadline"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [Duration::from_secs(2), Duration::MAX],
        "an update of a live entry only, with never as Duration::MAX"
    );
}

#[test]
fn get_or_insert_with_and_compute_store_with_the_values_lifetime() {
    let clock = ManualClock::new();
    let cache = cache_with(&clock, Some(Duration::from_secs(60)), OwnLifetime);
    cache.get_or_insert_with(1, || Ttl(Some(5)));
    cache.compute(2, |_| Op::Put(Ttl(Some(7))));
    cache.upsert(3, |_| Ttl(Some(9)));
    assert!(lives_exactly(&cache, &clock, 1, 5));
    assert!(lives_exactly(&cache, &clock, 2, 2));
    assert!(lives_exactly(&cache, &clock, 3, 2));
}

#[test]
fn time_to_idle_still_applies_on_top() {
    let clock = ManualClock::new();
    let cache = TtlCache::builder()
        .clock(clock.clone())
        .time_to_idle(Duration::from_secs(10))
        .expire_after(OwnLifetime)
        .build()
        .unwrap();
    cache.insert(1, Ttl(Some(25)));
    cache.insert(2, Ttl(Some(25)));
    clock.advance(Duration::from_secs(9));
    assert!(cache.get(&1).is_some());
    clock.advance(Duration::from_secs(9));
    assert!(cache.get(&1).is_some(), "read at 9 s: idle until 19 s");
    assert!(cache.get(&2).is_none(), "idle since 0 s");
    clock.advance(Duration::from_secs(6));
    assert!(cache.get(&1).is_some(), "read at 18 s: idle until 28 s");
    assert!(
        lives_exactly(&cache, &clock, 1, 1),
        "but its own 25 s end it first"
    );
}

/// A minute from each read, counting the reads it is asked about.
struct Sliding(Arc<AtomicUsize>);

impl Expiry<u64, Ttl> for Sliding {
    fn expire_after_create(&self, _: &u64, value: &Ttl, _: Instant) -> Option<Duration> {
        lives(*value)
    }
    fn expire_after_read(&self, _: &u64, _: &Ttl, _: Instant, _: Duration) -> Option<Duration> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Some(Duration::from_secs(60))
    }
}

#[test]
fn a_read_can_move_the_deadline_once_per_hit() {
    let reads = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, Sliding(Arc::clone(&reads)));
    cache.insert(1, Ttl(Some(10)));
    cache.insert(2, Ttl(None));
    clock.advance(Duration::from_secs(9));
    assert!(cache.get(&1).is_some());
    assert!(cache.get(&2).is_some(), "a forever entry, given a deadline");
    assert!(cache.get(&3).is_none());
    assert_eq!(
        reads.load(Ordering::Relaxed),
        2,
        "one call per hit, none on a miss"
    );
    assert!(cache.peek(&1).is_some(), "a peek is not a hit");
    assert_eq!(reads.load(Ordering::Relaxed), 2);
    assert!(lives_exactly(&cache, &clock, 1, 60));
    assert_eq!(cache.get(&2), None, "it expired as its read said");
    assert_eq!(
        cache.purge_expired(),
        2,
        "both are swept, the one that was forever included"
    );
}

#[test]
fn a_read_moves_the_time_to_live_and_time_to_idle_still_applies() {
    let clock = ManualClock::new();
    let cache = TtlCache::builder()
        .clock(clock.clone())
        .time_to_idle(Duration::from_secs(30))
        .expire_after(Sliding(Arc::default()))
        .build()
        .unwrap();
    cache.insert(1, Ttl(Some(10)));
    clock.advance(Duration::from_secs(5));
    assert!(
        cache.get(&1).is_some(),
        "now lives to 65 s, idles out at 35 s"
    );
    assert!(lives_exactly(&cache, &clock, 1, 30));
}

#[test]
fn entries_expired_by_their_own_lifetime_are_reported_and_purged() {
    let expired = Arc::new(AtomicUsize::new(0));
    let heard = Arc::clone(&expired);
    let clock = ManualClock::new();
    let cache = TtlCache::builder()
        .clock(clock.clone())
        .expire_after(OwnLifetime)
        .eviction_listener(move |_, _, cause| {
            if cause == RemovalCause::Expired {
                heard.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    for key in 0..100 {
        cache.insert(key, Ttl(if key % 2 == 0 { Some(1) } else { None }));
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.purge_expired(), 50);
    assert_eq!(expired.load(Ordering::Relaxed), 50);
    assert_eq!(cache.len(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_loading_caches_loads_and_refreshes_live_as_long_as_their_values_say() {
    struct Loaded;

    impl Expiry<u64, (u64, u64)> for Loaded {
        fn expire_after_create(&self, _: &u64, value: &(u64, u64), _: Instant) -> Option<Duration> {
            Some(Duration::from_secs(value.1))
        }
    }

    let loads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&loads);
    let cache = TtlCache::builder()
        .clock(TokioClock)
        .time_to_live(Duration::from_secs(600))
        .refresh_after(Duration::from_secs(5))
        .expire_after(Loaded)
        .build_loading(move |_key: u64| {
            // The first load lives 8 s, its refresh 20 s.
            let load = counted.fetch_add(1, Ordering::SeqCst) as u64;
            async move { Ok::<_, String>((load, if load == 0 { 8 } else { 20 })) }
        })
        .unwrap();
    assert_eq!(cache.get(&1).await, Ok((0, 8)));
    advance(Duration::from_secs(6)).await;
    assert_eq!(cache.get(&1).await, Ok((0, 8)), "stale: a refresh starts");
    tokio::task::yield_now().await;
    assert_eq!(cache.get_if_present(&1), Some((1, 20)), "refreshed at 6 s");
    advance(Duration::from_secs(19)).await;
    assert_eq!(
        cache.cache().peek(&1),
        Some((1, 20)),
        "lives to 26 s, not 8 s"
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(cache.cache().peek(&1), None, "and no further");
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_expiry_changes_nothing_and_leaves_the_cache_usable() {
    struct Panics;

    impl Expiry<u64, Ttl> for Panics {
        fn expire_after_create(&self, key: &u64, value: &Ttl, _: Instant) -> Option<Duration> {
            assert!(*key != 13, "unlucky");
            lives(*value)
        }
    }

    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, Panics);
    cache.insert(1, Ttl(Some(5)));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.insert(13, Ttl(Some(5)));
    }));
    assert!(panicked.is_err());
    assert_eq!(cache.get(&13), None);
    assert_eq!(cache.get(&1), Some(Ttl(Some(5))));
    cache.insert(2, Ttl(Some(5)));
    assert_eq!(cache.len(), 2);
}

#[test]
fn an_override_that_consults_a_default_read_is_still_asked() {
    /// Sliding expiry built from two parts, one of which keeps the default read.
    struct Both(OwnLifetime, Sliding);

    impl Expiry<u64, Ttl> for Both {
        fn expire_after_create(&self, key: &u64, value: &Ttl, now: Instant) -> Option<Duration> {
            self.0.expire_after_create(key, value, now)
        }
        fn expire_after_read(
            &self,
            key: &u64,
            value: &Ttl,
            now: Instant,
            remaining: Duration,
        ) -> Option<Duration> {
            let first = self.0.expire_after_read(key, value, now, remaining);
            first.or(self.1.expire_after_read(key, value, now, remaining))
        }
    }

    let reads = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new();
    let cache = cache_with(&clock, None, Both(OwnLifetime, Sliding(Arc::clone(&reads))));
    cache.insert(1, Ttl(Some(60)));
    for _ in 0..3 {
        clock.advance(Duration::from_secs(50));
        assert!(
            cache.get(&1).is_some(),
            "each hit moved the deadline a minute on"
        );
    }
    assert_eq!(reads.load(Ordering::Relaxed), 3);
}

#[test]
fn an_override_that_reads_another_cache_is_not_mistaken_for_the_default() {
    /// Answers `None` (leaves deadlines alone), after a hit on a cache whose `Expiry` keeps
    /// the default read.
    struct Consults(TtlCache<u64, Ttl>, Arc<AtomicUsize>);

    impl Expiry<u64, Ttl> for Consults {
        fn expire_after_create(&self, _: &u64, value: &Ttl, _: Instant) -> Option<Duration> {
            lives(*value)
        }
        fn expire_after_read(
            &self,
            key: &u64,
            _: &Ttl,
            _: Instant,
            _: Duration,
        ) -> Option<Duration> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.get(key);
            None
        }
    }

    let clock = ManualClock::new();
    let other = cache_with(&clock, None, OwnLifetime);
    other.insert(1, Ttl(None));
    let reads = Arc::new(AtomicUsize::new(0));
    let cache = cache_with(&clock, None, Consults(other, Arc::clone(&reads)));
    cache.insert(1, Ttl(None));
    for _ in 0..3 {
        cache.get(&1);
    }
    assert_eq!(reads.load(Ordering::Relaxed), 3);
}
