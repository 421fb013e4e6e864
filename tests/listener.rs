//! The eviction listener: every entry that leaves is reported once, with its cause, outside
//! the cache's locks; a panicking listener harms nothing.

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use ttlcache::{ManualClock, RemovalCause, TtlCache};

type Log = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

fn logged(capacity: u64, clock: &ManualClock) -> (TtlCache<u64, u64>, Log) {
    let log = Log::default();
    let sink = Arc::clone(&log);
    let cache = TtlCache::builder()
        .max_capacity(capacity)
        .clock(clock.clone())
        .eviction_listener(move |key, value, cause| sink.lock().unwrap().push((key, value, cause)))
        .build()
        .unwrap();
    (cache, log)
}

fn take(log: &Log) -> Vec<(u64, u64, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn each_cause_is_reported() {
    let clock = ManualClock::new();
    let (cache, log) = logged(2, &clock);
    cache.insert(1, 10);
    cache.insert(1, 11);
    assert_eq!(take(&log), [(1, 10, RemovalCause::Replaced)]);
    assert_eq!(cache.remove(&1), Some(11));
    assert_eq!(take(&log), [(1, 11, RemovalCause::Explicit)]);
    cache.insert_with_ttl(2, 20, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.purge_expired(), 1);
    assert_eq!(take(&log), [(2, 20, RemovalCause::Expired)]);
    cache.insert(3, 30);
    cache.insert(4, 40);
    cache.insert(5, 50);
    // One of 3 and 4 left for capacity (which one is the policy's choice); 5 was just written.
    let evicted = take(&log);
    assert_eq!(evicted.len(), 1);
    let (key, value, cause) = evicted[0];
    assert!(key == 3 || key == 4);
    assert_eq!((value, cause), (key * 10, RemovalCause::Size));
    cache.retain(|&key, _| key == 5);
    let kept_before = 7 - key;
    assert_eq!(
        take(&log),
        [(kept_before, kept_before * 10, RemovalCause::Explicit)]
    );
    cache.clear();
    assert_eq!(take(&log), [(5, 50, RemovalCause::Explicit)]);
}

#[test]
fn removing_an_expired_entry_returns_none_and_reports_it_expired() {
    let clock = ManualClock::new();
    let (cache, log) = logged(10, &clock);
    cache.insert_with_ttl(1, 10, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.remove(&1), None);
    assert_eq!(take(&log), [(1, 10, RemovalCause::Expired)]);
}

#[test]
fn every_entry_that_leaves_is_reported_exactly_once() {
    let clock = ManualClock::new();
    let (cache, log) = logged(64, &clock);
    let mut inserted = 0u64;
    for round in 0..20_000u64 {
        let key = round * 7 % 300;
        match round % 5 {
            0 => {
                cache.remove(&key);
            }
            1 => cache.insert_with_ttl(key, round, Duration::from_millis(round % 50)),
            _ => cache.insert(key, round),
        }
        if round % 5 != 0 {
            inserted += 1;
        }
        if round % 100 == 0 {
            clock.advance(Duration::from_millis(7));
        }
    }
    cache.clear();
    // Every inserted value leaves exactly once: values are unique per insert.
    let mut values: Vec<u64> = take(&log).into_iter().map(|(_, value, _)| value).collect();
    values.sort_unstable();
    let before = values.len();
    values.dedup();
    assert_eq!(values.len(), before, "a value was reported twice");
    assert_eq!(before as u64, inserted);
}

#[test]
fn the_listener_may_call_into_the_cache() {
    let cache: Arc<OnceLock<TtlCache<u64, u64>>> = Arc::default();
    let handle = Arc::clone(&cache);
    let built = TtlCache::builder()
        .max_capacity(1)
        .shards(1)
        .eviction_listener(move |key, value, cause| {
            let cache = handle.get().unwrap();
            // Reads and writes of the same shard, from inside the listener.
            let _ = cache.get(&key);
            if cause == RemovalCause::Size && key < 1000 {
                cache.insert(key + 1000, value);
            }
        })
        .build()
        .unwrap();
    cache.set(built).unwrap();
    let cache = cache.get().unwrap();
    cache.insert(1, 1);
    cache.insert(2, 2);
    // 1 was evicted for 2; the listener re-inserted it as 1001, evicting 2 (whose own
    // report re-inserted it as 1002, evicting 1001).
    assert_eq!(cache.get(&1002), Some(2));
    cache.insert(1001, 1);
    assert_eq!(cache.get(&1001), Some(1));
}

#[test]
fn a_panicking_listener_loses_no_report_and_leaves_the_cache_usable() {
    let log = Log::default();
    let sink = Arc::clone(&log);
    let cache = TtlCache::builder()
        .eviction_listener(move |key, value, cause| {
            sink.lock().unwrap().push((key, value, cause));
            assert!(key % 2 == 0, "the listener refuses odd keys");
        })
        .build()
        .unwrap();
    for key in 0..10 {
        cache.insert(key, key);
    }
    let cleared = panic::catch_unwind(AssertUnwindSafe(|| cache.clear()));
    assert!(cleared.is_err(), "the listener's panic reaches the caller");
    assert_eq!(take(&log).len(), 10, "every removal was still reported");
    assert!(cache.is_empty());
    cache.insert(2, 2);
    assert_eq!(cache.get(&2), Some(2));
    assert!(panic::catch_unwind(AssertUnwindSafe(|| cache.insert(2, 3))).is_ok());
}

#[test]
fn dropping_the_cache_reports_nothing() {
    let clock = ManualClock::new();
    let (cache, log) = logged(10, &clock);
    cache.insert(1, 1);
    let clone = cache.clone();
    drop(cache);
    drop(clone);
    assert!(take(&log).is_empty());
}

#[test]
fn a_panicking_retain_predicate_still_reports_what_it_removed() {
    let clock = ManualClock::new();
    let (cache, log) = logged(100, &clock);
    for key in 0..20 {
        cache.insert(key, key);
    }
    let mut calls = 0;
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        cache.retain(|_, _| {
            calls += 1;
            assert!(calls <= 5, "predicate panics");
            false
        })
    }));
    assert!(result.is_err());
    assert_eq!(take(&log).len(), 5);
    assert_eq!(cache.len(), 15);
}

/// A key whose equality ignores its spelling, as a case-insensitive name is.
#[derive(Clone, Debug)]
struct Name(&'static str);

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_ascii_lowercase().hash(state);
    }
}

#[test]
fn a_replaced_entry_reports_its_old_key_and_keeps_the_new_one() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let cache = TtlCache::builder()
        .max_capacity(10)
        .eviction_listener(move |key: Name, value: u32, cause| {
            sink.lock().unwrap().push((key.0, value, cause));
        })
        .build()
        .unwrap();
    cache.insert(Name("alice"), 1);
    cache.insert(Name("ALICE"), 2);
    assert_eq!(
        *log.lock().unwrap(),
        vec![("alice", 1, RemovalCause::Replaced)]
    );
    let held: Vec<_> = cache.iter().map(|(key, value)| (key.0, value)).collect();
    assert_eq!(held, vec![("ALICE", 2)]);
}
