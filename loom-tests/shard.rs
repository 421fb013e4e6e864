//! Models of one shard's consistency (`shard/mod.rs`, under the locks of `cache/mod.rs`):
//! insert, remove and get racing, eviction at capacity and expiry racing writes.

use std::time::Duration;

use super::{logged_cache, model};
use crate::{ManualClock, RemovalCause};
use loom::thread;

#[test]
fn insert_remove_and_get_on_one_shard_stay_consistent() {
    model(|| {
        let (cache, log) = logged_cache(None, None);
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(1, 10))
        };
        let remover = {
            let cache = cache.clone();
            thread::spawn(move || cache.remove(&1))
        };
        let seen = cache.get(&1);
        assert!(seen.is_none() || seen == Some(10));
        writer.join().unwrap();
        let removed = remover.join().unwrap();
        // The remove ran after the insert exactly when it returned the value; then the cache
        // is empty and the listener heard of it once.
        let reports = log.lock().unwrap().clone();
        match removed {
            Some(value) => {
                assert_eq!(value, 10);
                assert!(cache.is_empty());
                assert_eq!(reports, [(1, 10, RemovalCause::Explicit)]);
            }
            None => {
                assert_eq!(cache.peek(&1), Some(10));
                assert!(reports.is_empty());
            }
        }
    });
}

#[test]
fn concurrent_inserts_at_capacity_keep_the_bound_and_report_each_eviction_once() {
    model(|| {
        let (cache, log) = logged_cache(Some(1), None);
        let other = {
            let cache = cache.clone();
            thread::spawn(move || {
                cache.insert(1, 10);
                assert!(cache.weighted_size() <= 1);
            })
        };
        cache.insert(2, 20);
        assert!(cache.weighted_size() <= 1);
        other.join().unwrap();
        assert_eq!(cache.len(), 1);
        let reports = log.lock().unwrap().clone();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let (evicted, _, cause) = reports[0];
        assert_eq!(cause, RemovalCause::Size);
        assert!(!cache.contains_key(&evicted));
        assert!(cache.contains_key(&(3 - evicted)));
    });
}

#[test]
fn expiry_racing_an_insert_is_either_before_or_after_it() {
    model(|| {
        let clock = ManualClock::new();
        let (cache, log) = logged_cache(None, Some(clock.clone()));
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(1, 10))
        };
        clock.advance(Duration::from_secs(10));
        let purged = cache.purge_expired();
        writer.join().unwrap();
        // Either the insert read the clock before the advance (and the entry is expired:
        // purged now, or by the purge above), or after it (and it lives ten more seconds).
        let live = cache.get(&1).is_some();
        let purged = purged + cache.purge_expired();
        assert!(live != (purged == 1), "live: {live}, purged: {purged}");
        let expired = log.lock().unwrap().len();
        assert_eq!(expired, purged);
        clock.advance(Duration::from_secs(10));
        assert_eq!(cache.get(&1), None);
    });
}

#[test]
fn eviction_racing_inserts_and_gets_reports_each_entry_once_and_keeps_the_bound() {
    model(|| {
        let (cache, log) = logged_cache(Some(2), None);
        cache.insert(1, 10);
        cache.insert(2, 20);
        let inserter = {
            let cache = cache.clone();
            thread::spawn(move || {
                cache.insert(3, 30);
                assert!(cache.weighted_size() <= 2);
            })
        };
        let reader = {
            let cache = cache.clone();
            thread::spawn(move || {
                // A read racing the eviction sees the entry's own value or nothing.
                let seen = cache.get(&1);
                assert!(seen.is_none() || seen == Some(10));
                cache.insert(4, 40);
            })
        };
        let seen = cache.get(&2);
        assert!(seen.is_none() || seen == Some(20));
        inserter.join().unwrap();
        reader.join().unwrap();

        assert!(cache.weighted_size() <= 2);
        let reports = log.lock().unwrap().clone();
        for key in 1..=4 {
            let reported = reports.iter().filter(|(k, _, _)| *k == key).count();
            let held = usize::from(cache.contains_key(&key));
            assert_eq!(reported + held, 1, "key {key}: {reports:?}");
        }
        for (key, value, cause) in reports {
            assert_eq!((value, cause), (key * 10, RemovalCause::Size));
        }
    });
}
