//! Single flight for threads: one `init` per missing key, errors shared, panics handed over.

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc, Barrier,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::Duration,
};

use ttlcache::TtlCache;

fn cache() -> TtlCache<u64, u64> {
    TtlCache::builder().build().unwrap()
}

#[test]
fn concurrent_callers_of_one_key_run_init_once_and_share_its_value() {
    let cache = cache();
    let inits = AtomicUsize::new(0);
    let threads = 16;
    let barrier = Barrier::new(threads);
    let values: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    cache.get_or_insert_with(7, || {
                        inits.fetch_add(1, Ordering::SeqCst);
                        // Long enough that the other threads arrive while it runs.
                        thread::sleep(Duration::from_millis(50));
                        49
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert!(values.iter().all(|&value| value == 49));
    assert_eq!(cache.get(&7), Some(49));
}

#[test]
fn callers_of_other_keys_do_not_wait_for_a_running_init() {
    let cache = cache();
    let (release, released) = mpsc::channel::<()>();
    let (started, has_started) = mpsc::channel::<()>();
    let cache = &cache;
    thread::scope(|scope| {
        let slow = scope.spawn(move || {
            cache.get_or_insert_with(1, || {
                started.send(()).unwrap();
                released.recv().unwrap();
                1
            })
        });
        has_started.recv().unwrap();
        // Same shard or not, these complete while key 1's init is blocked.
        for key in 2..200 {
            assert_eq!(cache.get_or_insert_with(key, || key), key);
        }
        release.send(()).unwrap();
        assert_eq!(slow.join().unwrap(), 1);
    });
}

#[test]
fn an_error_reaches_every_waiter_of_that_attempt_and_is_not_cached() {
    let cache = cache();
    let threads = 8;
    let barrier = Barrier::new(threads);
    let inits = AtomicUsize::new(0);
    let errors: Vec<Arc<String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    cache
                        .try_get_or_insert_with(1, || {
                            inits.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(50));
                            Err("backend down".to_string())
                        })
                        .unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Threads that arrived after the failure started attempts of their own, so count the
    // attempts: each error object is shared by exactly the callers of one attempt.
    let attempts = inits.load(Ordering::SeqCst);
    let mut distinct: Vec<*const String> = errors.iter().map(Arc::as_ptr).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), attempts);
    assert!(attempts < threads, "no caller waited for another's attempt");
    assert!(!cache.contains_key(&1));
    assert_eq!(
        cache.try_get_or_insert_with(1, || Ok::<_, String>(5)),
        Ok(5)
    );
}

#[test]
fn when_the_leader_panics_exactly_one_waiter_takes_over() {
    let cache = cache();
    let waiters = 6;
    let (started, has_started) = mpsc::channel::<()>();
    let takeovers = AtomicUsize::new(0);
    thread::scope(|scope| {
        let leader = scope.spawn(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                cache.get_or_insert_with(1, || {
                    started.send(()).unwrap();
                    thread::sleep(Duration::from_millis(100));
                    panic!("the leader's init fails");
                })
            }))
        });
        has_started.recv().unwrap();
        let handles: Vec<_> = (0..waiters)
            .map(|_| {
                scope.spawn(|| {
                    cache.get_or_insert_with(1, || {
                        takeovers.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(20));
                        2
                    })
                })
            })
            .collect();
        assert!(
            leader.join().unwrap().is_err(),
            "the panic reaches the leader's caller"
        );
        for handle in handles {
            assert_eq!(handle.join().unwrap(), 2);
        }
    });
    assert_eq!(takeovers.load(Ordering::SeqCst), 1);
}

#[test]
fn a_recursive_call_for_the_same_key_panics_instead_of_deadlocking() {
    let cache = cache();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        cache.get_or_insert_with(1, || cache.get_or_insert_with(1, || 2))
    }));
    let payload = result.unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(message.contains("wait for itself"), "{message}");
    // The cache recovers: the key loads normally afterwards.
    assert_eq!(cache.get_or_insert_with(1, || 3), 3);
}

#[test]
fn a_recursive_call_for_another_key_works() {
    let cache = cache();
    let value = cache.get_or_insert_with(1, || cache.get_or_insert_with(2, || 20) + 1);
    assert_eq!(value, 21);
    assert_eq!(cache.get(&2), Some(20));
}

#[test]
fn an_insert_during_init_wins_over_inits_value() {
    let cache = cache();
    let returned = cache.get_or_insert_with(1, || {
        cache.insert(1, 100);
        5
    });
    assert_eq!(returned, 5, "the caller gets what its init made");
    assert_eq!(cache.get(&1), Some(100), "but the insert is what stays");
}

#[test]
fn a_remove_during_init_means_inits_value_is_not_stored() {
    let cache = cache();
    assert_eq!(
        cache.get_or_insert_with(1, || {
            cache.remove(&1);
            5
        }),
        5
    );
    assert_eq!(cache.get(&1), None);
}
