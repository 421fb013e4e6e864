//! Models of refreshes (rule 3 of `loading/mod.rs`, started and landed by hand as a stale read
//! of a `LoadingCache` does): a landing refresh never overwrites an invalidation, an insert or a
//! compute, and two stale reads start one refresh.

use super::{logged_cache, model};
use crate::{
    Op, RemovalCause, TtlCache,
    cache::{KeyLeader, Refresh},
};
use loom::thread;

/// A refresh of one key, started while its value stays live.
struct StartedRefresh(KeyLeader<u64, u64, crate::DefaultHashBuilder>);

impl StartedRefresh {
    /// Lands the reloaded value, as the refresh task does.
    fn complete(self, value: u64) {
        let landed = loom::future::block_on(self.0.land(Ok::<_, ()>(value)));
        assert_eq!(landed, Ok(value));
    }
}

/// Starts a refresh of `key`, as a stale read of a `LoadingCache` does; `None` if a load of
/// the key is already running.
fn start_refresh(cache: &TtlCache<u64, u64>, key: u64) -> Option<StartedRefresh> {
    let door = cache.task_door();
    let hash = door.hash(&key);
    door.start_refresh(hash, key, Refresh::Always)
        .map(StartedRefresh)
}

#[test]
fn a_refresh_completing_while_its_key_is_invalidated_never_writes() {
    model(|| {
        let (cache, log) = logged_cache(None, None);
        cache.insert(1, 10);
        let refresh = start_refresh(&cache, 1).expect("no load of the key is running");
        let completer = thread::spawn(move || refresh.complete(11));
        cache.remove(&1);
        completer.join().unwrap();
        // Whichever came first, the invalidation wins: the key is gone.
        assert!(!cache.contains_key(&1));
        let reports = log.lock().unwrap().clone();
        assert_eq!(reports.last().map(|r| r.2), Some(RemovalCause::Explicit));
    });
}

#[test]
fn an_insert_racing_a_completing_refresh_is_never_overwritten() {
    model(|| {
        let (cache, _log) = logged_cache(None, None);
        cache.insert(1, 10);
        let refresh = start_refresh(&cache, 1).expect("no load of the key is running");
        let completer = thread::spawn(move || refresh.complete(11));
        cache.insert(1, 20);
        completer.join().unwrap();
        assert_eq!(cache.peek(&1), Some(20));
    });
}

#[test]
fn a_compute_racing_a_landing_refresh_and_an_insert_is_never_undone() {
    model(|| {
        let (cache, _log) = logged_cache(None, None);
        cache.insert(1, 0);
        let refresh = start_refresh(&cache, 1).expect("no load of the key is running");
        let completer = thread::spawn(move || refresh.complete(50));
        let inserter = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(1, 100))
        };
        let after = cache.compute(1, |old| Op::Put(old.copied().unwrap_or(0) + 1));
        completer.join().unwrap();
        inserter.join().unwrap();
        // compute added one to whatever was there, atomically: the first value, the refresh's
        // (if it landed first) or the insert's.
        assert!(matches!(after, Some(1 | 51 | 101)), "{after:?}");
        // Only the insert, if it came after compute, replaced compute's value; the refresh,
        // detached by either write, never lands after them.
        let last = cache.peek(&1).unwrap();
        assert_eq!(last, if after == Some(101) { 101 } else { 100 });
    });
}

#[test]
fn a_compute_racing_a_landing_refresh_is_never_overwritten_by_it() {
    model(|| {
        let (cache, _log) = logged_cache(None, None);
        cache.insert(1, 0);
        let refresh = start_refresh(&cache, 1).expect("no load of the key is running");
        let completer = thread::spawn(move || refresh.complete(50));
        let after = cache.compute(1, |old| Op::Put(old.copied().unwrap_or(0) + 1));
        completer.join().unwrap();
        assert!(matches!(after, Some(1 | 51)), "{after:?}");
        assert_eq!(
            cache.peek(&1),
            after,
            "the refresh never lands after compute"
        );
    });
}

#[test]
fn two_stale_reads_racing_to_refresh_start_one() {
    model(|| {
        let (cache, _log) = logged_cache(None, None);
        cache.insert(1, 10);
        let other = {
            let cache = cache.clone();
            thread::spawn(move || start_refresh(&cache, 1))
        };
        let mine = start_refresh(&cache, 1);
        let theirs = other.join().unwrap();
        assert!(
            mine.is_some() != theirs.is_some(),
            "exactly one refresh starts"
        );
        let refresh = mine.or(theirs).unwrap();
        assert_eq!(
            cache.peek(&1),
            Some(10),
            "the old value stays live meanwhile"
        );
        refresh.complete(11);
        assert_eq!(cache.peek(&1), Some(11));
        assert!(
            start_refresh(&cache, 1).is_some(),
            "the next refresh may start"
        );
    });
}
