//! Loom models of the crate's real code, through its sync facade.
//!
//! A module of the crate (`lib.rs` includes it under `--cfg ttlcache_loom`), so the models
//! reach the engine's hand-overs (a refresh started and landed by hand, a lazy's load, its
//! refresher's tick) without a public back door. Run with `RUSTFLAGS="--cfg ttlcache_loom"
//! LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom_models`.

use std::{
    panic::{self, AssertUnwindSafe},
    sync::Mutex,
    task::{Context, Poll, Waker},
    time::Duration,
};

use crate::{
    ManualClock, Op, RemovalCause, TtlCache,
    cache::{KeyLeader, Refresh},
    flight::Found,
    lazy::Wanted,
};
use loom::{sync::Arc, thread};

/// Explores every interleaving of `body`, with at most `LOOM_MAX_PREEMPTIONS` (default 2)
/// preemptions per run.
fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body()
    });
    eprintln!(
        "explored {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

type Log = std::sync::Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A refresh of one key, started while its value stays live.
struct StartedRefresh(KeyLeader<u64, u64, crate::DefaultHashBuilder>);

impl StartedRefresh {
    /// Lands the reloaded value, as the refresh task does.
    fn complete(self, value: u64) {
        let landed = loom::future::block_on(self.0.run(async { Ok::<_, ()>(value) }));
        assert_eq!(landed, Ok(value));
    }
}

/// Starts a refresh of `key`, as a stale read of a `LoadingCache` does; `None` if a load of
/// the key is already running.
fn start_refresh(cache: &TtlCache<u64, u64>, key: u64) -> Option<StartedRefresh> {
    let hash = cache.hash(&key);
    cache
        .start_refresh(hash, key, Refresh::Always)
        .map(StartedRefresh)
}

/// A one-shard cache whose listener logs what leaves.
fn logged_cache(capacity: Option<u64>, clock: Option<ManualClock>) -> (TtlCache<u64, u64>, Log) {
    let log = Log::default();
    let sink = log.clone();
    let mut builder = TtlCache::builder()
        .shards(1)
        .eviction_listener(move |key, value, cause| sink.lock().unwrap().push((key, value, cause)));
    if let Some(capacity) = capacity {
        builder = builder.max_capacity(capacity);
    }
    if let Some(clock) = clock {
        builder = builder.clock(clock).time_to_live(Duration::from_secs(10));
    }
    (builder.build().unwrap(), log)
}

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

#[cfg(feature = "serde")]
#[test]
fn a_restore_racing_an_insert_adds_only_what_is_missing() {
    model(|| {
        let source = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        source.insert(2, 2);
        source.insert(3, 3);
        let snapshot = source.snapshot();

        let (cache, log) = logged_cache(Some(3), None);
        cache.insert(1, 10);
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(2, 20))
        };
        let restored = cache.restore(snapshot);
        writer.join().unwrap();

        // The writer's value stands whatever the order; the restore replaced and evicted
        // nothing. It stored key 2 only if it came first, and then the writer replaced it.
        let entries: Vec<_> = (1..=3).map(|key| cache.get(&key)).collect();
        assert_eq!(entries, [Some(10), Some(20), Some(3)]);
        let reports = log.lock().unwrap().clone();
        match restored {
            1 => assert!(reports.is_empty(), "{reports:?}"),
            2 => assert_eq!(reports, [(2, 2, RemovalCause::Replaced)]),
            _ => panic!("restored {restored}"),
        }
    });
}

#[cfg(feature = "serde")]
#[test]
fn a_snapshot_racing_an_eviction_sees_the_shard_before_or_after_it() {
    model(|| {
        let (cache, _log) = logged_cache(Some(1), None);
        cache.insert(1, 10);
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(2, 20))
        };
        let snapshot = cache.snapshot();
        writer.join().unwrap();
        // One entry, whole: the old one, or whichever the eviction kept.
        assert_eq!(snapshot.len(), 1);
        let restored = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        assert_eq!(restored.restore(snapshot), 1);
        let entries: Vec<_> = restored.iter().collect();
        assert!(entries == [(1, 10)] || entries == [(2, 20)], "{entries:?}");
    });
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

/// Models of batch loading (`loading/batch.rs`): the real gathering, and leaders started and
/// landed as a batch-loaded `LoadingCache` starts and lands them.
mod batch {
    use super::*;
    use crate::loading::{Gathering, Joined};

    type Gathered = (u64, KeyLeader<u64, u64, crate::DefaultHashBuilder>);

    /// How a batch's task ends.
    #[derive(Clone, Copy, PartialEq)]
    enum Task {
        /// It loads the batch (each key's value is ten times the key) and lands each leader.
        Lands,
        /// Its runtime drops it unrun: it takes the batch and drops the leaders.
        IsDropped,
    }

    /// Starts a load of `key` and joins it to the gathering, as a `get` of a missing key
    /// does, spawning the tasks the join asks for.
    fn lead_and_join(
        cache: &TtlCache<u64, u64>,
        gathering: &Arc<Gathering<Gathered>>,
        key: u64,
        task: Task,
    ) -> Vec<thread::JoinHandle<()>> {
        let Found::Lead(leader) = cache.start(cache.hash(&key), &mut Some(key)) else {
            return Vec::new();
        };
        let Joined { full, dispatch } = gathering.join([(key, leader)]);
        assert!(full.is_empty(), "the batch never fills in these models");
        dispatch
            .map(|generation| {
                let gathering = Arc::clone(gathering);
                thread::spawn(move || {
                    let batch = gathering.take(generation);
                    if task == Task::IsDropped {
                        return drop(batch);
                    }
                    for (key, leader) in batch {
                        let landed =
                            loom::future::block_on(leader.run(async { Ok::<_, ()>(key * 10) }));
                        assert_eq!(landed, Ok(key * 10));
                    }
                })
            })
            .into_iter()
            .collect()
    }

    /// Two callers' keys gather into batches while the second caller is cancelled: the first
    /// gets its value, and the cancelled caller's key is loaded and stored all the same.
    #[test]
    fn a_batch_gathering_keys_while_a_caller_is_cancelled_loads_every_key() {
        model(|| {
            let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
            let gathering = Arc::new(Gathering::new(8));
            let cancelled = {
                let (cache, gathering) = (cache.clone(), Arc::clone(&gathering));
                thread::spawn(move || {
                    let tasks = lead_and_join(&cache, &gathering, 2, Task::Lands);
                    // Waits once on its key's load, then is dropped: a cancelled caller.
                    let mut get = Box::pin(cache.get_or_load(2, std::future::pending()));
                    let polled = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                    assert!(polled.is_pending() || polled == Poll::Ready(20));
                    tasks
                })
            };
            let tasks = lead_and_join(&cache, &gathering, 1, Task::Lands);
            let got = loom::future::block_on(cache.get_or_load(1, std::future::pending()));
            assert_eq!(got, 10);
            for task in tasks.into_iter().chain(cancelled.join().unwrap()) {
                task.join().unwrap();
            }
            assert_eq!(
                cache.peek(&2),
                Some(20),
                "the cancelled caller's key was stored"
            );
        });
    }

    /// A batch whose task is dropped unrun abandons its loads: the waiting caller leads the
    /// next attempt itself instead of waiting forever.
    #[test]
    fn a_batch_dropped_unrun_leaves_no_caller_waiting() {
        model(|| {
            let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
            let gathering = Arc::new(Gathering::new(8));
            let tasks = lead_and_join(&cache, &gathering, 1, Task::IsDropped);
            let got = loom::future::block_on(cache.get_or_load(1, async { 11 }));
            assert_eq!(got, 11);
            for task in tasks {
                task.join().unwrap();
            }
        });
    }
}

mod lazy {
    use super::*;
    use crate::AsyncLazy;
    use loom::sync::atomic::{AtomicUsize, Ordering};

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
}
