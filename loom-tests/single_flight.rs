//! Models of single flight (`flight/mod.rs`): callers racing `get_or_insert_with` on one key,
//! and waiters of a leader that panics or is cancelled (rules 1 to 4).

use std::{
    panic::{self, AssertUnwindSafe},
    task::{Context, Poll, Waker},
};

use super::model;
use crate::TtlCache;
use loom::{sync::Arc, thread};

#[test]
fn two_threads_racing_get_or_insert_with_run_init_once() {
    model(|| {
        let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        let inits = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let racer = {
            let (cache, inits) = (cache.clone(), inits.clone());
            thread::spawn(move || {
                cache.get_or_insert_with(1, || {
                    inits.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
                    10
                })
            })
        };
        let mine = cache.get_or_insert_with(1, || {
            inits.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
            10
        });
        assert_eq!(mine, 10);
        assert_eq!(racer.join().unwrap(), 10);
        assert_eq!(inits.load(loom::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(cache.peek(&1), Some(10));
    });
}

#[test]
fn a_waiter_completes_when_the_leader_panics() {
    model(|| {
        let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        let leader = {
            let cache = cache.clone();
            thread::spawn(move || {
                panic::catch_unwind(AssertUnwindSafe(|| {
                    cache.get_or_insert_with(1, || panic!("init fails"))
                }))
                .is_err()
            })
        };
        // Either this caller waits and takes over, or it leads before the other arrives.
        assert_eq!(cache.get_or_insert_with(1, || 2), 2);
        let leader_panicked = leader.join().unwrap();
        // The other caller either panicked in its own init or found this caller's value.
        assert!(leader_panicked || cache.peek(&1) == Some(2));
        assert_eq!(cache.peek(&1), Some(2));
    });
}

#[test]
fn a_waiter_completes_when_the_leader_is_cancelled() {
    model(|| {
        let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        let cancelled = {
            let cache = cache.clone();
            thread::spawn(move || {
                // Poll once, so it leads (or waits), then drop it: a cancelled caller.
                let mut load = Box::pin(cache.get_or_load(1, std::future::pending()));
                let polled = load.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                assert!(polled.is_pending() || polled == Poll::Ready(3));
            })
        };
        assert_eq!(cache.get_or_insert_with(1, || 3), 3);
        cancelled.join().unwrap();
        assert_eq!(cache.peek(&1), Some(3));
    });
}
