//! Models of `AsyncLazy` (`lazy/mod.rs`): racing first loads, a cancelled first caller, an
//! invalidation racing a load, the first value's reads (rule 7), a refresh, and the
//! `refresh_every` task's tick racing the last handle's drop (`lazy/refresh.rs`).

use std::task::{Context, Waker};

use super::model;
use crate::{AsyncLazy, flight::Found, lazy::Wanted};
use loom::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

#[test]
fn two_callers_racing_the_first_load_load_once_and_both_see_it() {
    model(|| {
        let loads = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&loads);
        let lazy = AsyncLazy::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { 7 }
        });
        let other = {
            let lazy = lazy.clone();
            thread::spawn(move || *loom::future::block_on(lazy.get()))
        };
        assert_eq!(*loom::future::block_on(lazy.get()), 7);
        assert_eq!(other.join().unwrap(), 7);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_waiter_completes_when_the_first_caller_is_cancelled() {
    model(|| {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        // The first load never finishes; the next one is immediate.
        let lazy = AsyncLazy::new(move || {
            let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    std::future::pending::<()>().await;
                }
                11
            }
        });
        let mut leader = Box::pin(lazy.get());
        let noop = &mut Context::from_waker(Waker::noop());
        assert!(leader.as_mut().poll(noop).is_pending(), "this caller leads");
        let waiter = {
            let lazy = lazy.clone();
            thread::spawn(move || *loom::future::block_on(lazy.get()))
        };
        drop(leader);
        assert_eq!(waiter.join().unwrap(), 11);
    });
}

#[test]
fn an_invalidate_racing_a_completing_load_wins() {
    model(|| {
        let lazy = AsyncLazy::new(|| async { 0 });
        let Found::Lead(load) = lazy.find(Wanted::Current) else {
            panic!("no value and no load yet: the caller leads");
        };
        let completer = thread::spawn(move || {
            loom::future::block_on(load.run(async { Ok::<_, ()>(5.into()) })).unwrap()
        });
        lazy.invalidate();
        completer.join().unwrap();
        // Before or after the load landed, the invalidation leaves no value.
        assert_eq!(lazy.peek(), None);
    });
}

/// The first value of a lazy without deadlines is read through `first` (rule 7 of
/// `lazy/mod.rs`) until a write replaces it: a reader racing `set` or `invalidate` sees the
/// first value or what followed, and once the write returned, never the first value.
#[test]
fn a_reader_of_the_first_value_racing_a_set_or_an_invalidate_never_sees_it_after() {
    for replace_by_set in [true, false] {
        model(move || {
            let loads = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&loads);
            let lazy = AsyncLazy::new(move || {
                let load = counter.fetch_add(1, Ordering::SeqCst);
                async move { 10 + load }
            });
            // Held throughout, as a reader keeps its configuration: the first value stays
            // alive after it is replaced.
            let held = loom::future::block_on(lazy.get());
            assert_eq!(*held, 10);
            let writer = {
                let lazy = lazy.clone();
                thread::spawn(move || {
                    if replace_by_set {
                        lazy.set(20);
                    } else {
                        lazy.invalidate();
                    }
                })
            };
            let racing = *loom::future::block_on(lazy.get());
            assert!([10, 11, 20].contains(&racing), "got {racing}");
            writer.join().unwrap();
            let after = *loom::future::block_on(lazy.get());
            assert_ne!(after, 10, "the first value, after it was replaced");
            drop(held);
        });
    }
}

#[test]
fn a_reader_during_a_refresh_sees_the_whole_old_or_the_whole_new_value() {
    model(|| {
        let generation = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&generation);
        let lazy = AsyncLazy::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move { (n, n * 2) }
        });
        assert_eq!(*loom::future::block_on(lazy.get()), (1, 2));
        let refresher = {
            let lazy = lazy.clone();
            thread::spawn(move || *loom::future::block_on(lazy.refresh()).unwrap())
        };
        let seen = *loom::future::block_on(lazy.get());
        assert!(seen == (1, 2) || seen == (2, 4), "{seen:?}");
        assert_eq!(refresher.join().unwrap(), (2, 4));
        assert_eq!(*loom::future::block_on(lazy.get()), (2, 4));
    });
}

#[test]
fn the_last_handle_dropped_while_the_refresher_ticks_drops_each_value_once() {
    use std::sync::atomic::{AtomicUsize as StdAtomic, Ordering as StdOrdering};

    struct Tracked(std::sync::Arc<StdAtomic>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, StdOrdering::SeqCst);
        }
    }

    model(|| {
        let made = std::sync::Arc::new(StdAtomic::new(0));
        let dropped = std::sync::Arc::new(StdAtomic::new(0));
        let (counter, drops) = (
            std::sync::Arc::clone(&made),
            std::sync::Arc::clone(&dropped),
        );
        let lazy = AsyncLazy::new(move || {
            counter.fetch_add(1, StdOrdering::SeqCst);
            let drops = std::sync::Arc::clone(&drops);
            async move { Tracked(drops) }
        });
        loom::future::block_on(lazy.get());
        let refresher = std::sync::Arc::new(lazy.downgrade());
        let tick = |refresher: &std::sync::Weak<_>| {
            loom::future::block_on(crate::lazy::refresh::tick(refresher))
        };
        let ticker = {
            let refresher = std::sync::Arc::clone(&refresher);
            thread::spawn(move || tick(&refresher))
        };
        // The handle's reference count is std's, which loom does not see: a yield lets it
        // run the tick before the drop as well as after.
        thread::yield_now();
        drop(lazy);
        let ticked = ticker.join().unwrap();
        assert!(ticked.is_none() || ticked == Some(true));
        assert_eq!(
            tick(&refresher),
            None,
            "no handle is left: the refresher stops"
        );
        let made = made.load(StdOrdering::SeqCst);
        assert_eq!(made, 1 + usize::from(ticked.is_some()));
        assert_eq!(
            dropped.load(StdOrdering::SeqCst),
            made,
            "each value dropped once"
        );
    });
}
