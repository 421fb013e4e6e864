//! LoadingCache: coalesced loads that survive cancellation, refresh-after-write, timeouts,
//! load limits and remembered errors, all in paused tokio time.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::{advance, sleep};
use ttlcache::{
    BuildError, CacheBuilder, LoadError, LoadingCache, TokioClock, TtlCache,
    builder::{Kind, Loading},
};

mod common;

use common::{Calls, drive};

/// The builder's type once configured: plain, or moved to the loading state by a loading
/// setting.
type Configured<L> = CacheBuilder<u64, u64, ttlcache::DefaultHashBuilder, L>;

/// A cache whose loader takes `delay` and answers `key * 10 + the calls before it`, so a
/// reload gives a new value.
fn counting<L: Kind<Next = Loading>>(
    calls: &Calls,
    delay: Duration,
    configure: impl FnOnce(CacheBuilder<u64, u64>) -> Configured<L>,
) -> LoadingCache<u64, u64, String> {
    let calls = calls.clone();
    configure(TtlCache::builder().clock(TokioClock))
        .build_loading(move |key: u64| {
            let calls = calls.clone();
            async move {
                let before = calls.record() as u64;
                sleep(delay).await;
                Ok(key * 10 + before)
            }
        })
        .unwrap()
}

fn plain(builder: CacheBuilder<u64, u64>) -> CacheBuilder<u64, u64> {
    builder
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_gets_cause_one_load() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_millis(100), plain);
    let gets: Vec<_> = (0..200)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&1).await })
        })
        .collect();
    for get in gets {
        assert_eq!(get.await.unwrap(), Ok(10));
    }
    assert_eq!(calls.count(), 1);
    let stats = cache.cache().stats();
    assert_eq!((stats.load_successes, stats.load_failures), (1, 0));
    assert_eq!(stats.total_load_time, Duration::from_millis(100));
    assert_eq!(stats.misses, 200);
}

#[tokio::test(start_paused = true)]
async fn an_error_is_shared_by_the_waiters_of_its_load_and_the_next_get_retries() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .build_loading(move |key: u64| {
            let first = loader_calls.record() == 0;
            async move {
                sleep(Duration::from_millis(50)).await;
                if first {
                    Err(format!("backend down for {key}"))
                } else {
                    Ok(key)
                }
            }
        })
        .unwrap();
    let gets: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&7).await })
        })
        .collect();
    let mut errors = Vec::new();
    for get in gets {
        match get.await.unwrap() {
            Err(LoadError::Failed(error)) => errors.push(error),
            other => panic!("expected the load's error, got {other:?}"),
        }
    }
    assert_eq!(*errors[0], "backend down for 7");
    assert!(errors.iter().all(|error| Arc::ptr_eq(error, &errors[0])));
    assert_eq!(cache.get(&7).await, Ok(7));
    assert_eq!(calls.count(), 2);
    assert_eq!(cache.cache().stats().load_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_loader_gives_every_waiter_panicked_and_leaves_the_cache_usable() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .build_loading(move |key: u64| {
            let first = loader_calls.record() == 0;
            async move {
                sleep(Duration::from_millis(10)).await;
                assert!(!first, "the loader fails on its first call");
                Ok::<_, String>(key)
            }
        })
        .unwrap();
    let gets: Vec<_> = (0..5)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&3).await })
        })
        .collect();
    for get in gets {
        assert_eq!(get.await.unwrap(), Err(LoadError::Panicked));
    }
    assert_eq!(cache.get(&3).await, Ok(3));
    assert_eq!(cache.get(&4).await, Ok(4));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_caller_does_not_cancel_the_load_and_its_value_is_cached() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_millis(100), plain);
    let impatient = tokio::time::timeout(Duration::from_millis(10), cache.get(&2)).await;
    assert!(
        impatient.is_err(),
        "the caller gave up before the load finished"
    );
    sleep(Duration::from_millis(200)).await;
    assert_eq!(cache.get_if_present(&2), Some(20));
    assert_eq!(calls.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn fifty_stale_reads_return_at_once_and_start_exactly_one_reload() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_millis(100), |builder| {
        builder
            .time_to_live(Duration::from_secs(10))
            .refresh_after(Duration::from_secs(5))
    });
    assert_eq!(cache.get(&1).await, Ok(10));
    advance(Duration::from_secs(6)).await;
    let start = tokio::time::Instant::now();
    for _ in 0..50 {
        // The old value, without waiting for the reload.
        assert_eq!(cache.get(&1).await, Ok(10));
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    sleep(Duration::from_millis(150)).await;
    assert_eq!(calls.count(), 2, "one reload for fifty stale reads");
    assert_eq!(cache.cache().stats().refreshes, 1);
    assert_eq!(
        cache.get(&1).await,
        Ok(11),
        "the reload's value replaced the old one"
    );
    // The reload restarted the entry's time to live: it outlives the first write's 10s.
    advance(Duration::from_secs(8)).await;
    assert_eq!(cache.get_if_present(&1), Some(11));
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_old_value_until_its_ttl_then_the_failure_shows() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .clock(TokioClock)
        .time_to_live(Duration::from_secs(10))
        .refresh_after(Duration::from_secs(5))
        .build_loading(move |key: u64| {
            let first = loader_calls.record() == 0;
            async move {
                if first {
                    Ok(key)
                } else {
                    Err("backend down".to_string())
                }
            }
        })
        .unwrap();
    assert_eq!(cache.get(&1).await, Ok(1));
    advance(Duration::from_secs(6)).await;
    assert_eq!(cache.get(&1).await, Ok(1), "stale, and a refresh starts");
    tokio::task::yield_now().await;
    assert_eq!(cache.cache().stats().load_failures, 1);
    assert_eq!(
        cache.get(&1).await,
        Ok(1),
        "the old value is kept after the failure"
    );
    advance(Duration::from_secs(4)).await;
    match cache.get(&1).await {
        Err(LoadError::Failed(error)) => assert_eq!(*error, "backend down"),
        other => panic!("expected the failure once the ttl passed, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_invalidation_during_a_refresh_wins() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_secs(1), |builder| {
        builder
            .time_to_live(Duration::from_secs(60))
            .refresh_after(Duration::from_secs(5))
    });
    cache.get(&1).await.unwrap();
    advance(Duration::from_secs(6)).await;
    cache.get(&1).await.unwrap();
    cache.invalidate(&1);
    sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.count(), 2, "the refresh ran");
    assert_eq!(
        cache.get_if_present(&1),
        None,
        "but did not bring the entry back"
    );
}

#[tokio::test(start_paused = true)]
async fn an_insert_during_a_refresh_is_not_overwritten() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_secs(1), |builder| {
        builder.refresh_after(Duration::from_secs(5))
    });
    cache.get(&1).await.unwrap();
    advance(Duration::from_secs(6)).await;
    cache.get(&1).await.unwrap();
    cache.cache().insert(1, 999);
    sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.count(), 2);
    assert_eq!(cache.get(&1).await, Ok(999));
}

#[tokio::test(start_paused = true)]
async fn a_load_past_its_timeout_fails_with_timed_out() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_secs(5), |builder| {
        builder.load_timeout(Duration::from_secs(1))
    });
    let start = tokio::time::Instant::now();
    assert_eq!(cache.get(&1).await, Err(LoadError::TimedOut));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(cache.cache().stats().load_failures, 1);
    assert_eq!(cache.get_if_present(&1), None);
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_is_reached_and_never_exceeded() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (loader_running, loader_most) = (Arc::clone(&running), Arc::clone(&most));
    let cache = TtlCache::builder()
        .max_concurrent_loads(3)
        .build_loading(move |key: u64| {
            let (running, most) = (Arc::clone(&loader_running), Arc::clone(&loader_most));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(key)
            }
        })
        .unwrap();
    let start = tokio::time::Instant::now();
    let gets: Vec<_> = (0..20)
        .map(|key| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&key).await })
        })
        .collect();
    for (key, get) in gets.into_iter().enumerate() {
        assert_eq!(get.await.unwrap(), Ok(key as u64));
    }
    assert_eq!(most.load(Ordering::SeqCst), 3);
    // Twenty loads, three at a time, 100ms each: seven rounds.
    assert_eq!(start.elapsed(), Duration::from_millis(700));
}

#[tokio::test(start_paused = true)]
async fn a_remembered_failure_answers_without_calling_the_loader_until_error_ttl_passes() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .clock(TokioClock)
        .error_ttl(Duration::from_secs(5))
        .build_loading(move |_key: u64| {
            loader_calls.record();
            async move { Err::<u64, _>("backend down".to_string()) }
        })
        .unwrap();
    let first = cache.get(&1).await.unwrap_err();
    advance(Duration::from_secs(4)).await;
    assert_eq!(cache.get(&1).await.unwrap_err(), first);
    assert_eq!(calls.count(), 1, "the failure was answered from memory");
    advance(Duration::from_secs(1)).await;
    assert!(cache.get(&1).await.is_err());
    assert_eq!(calls.count(), 2, "after error_ttl the loader runs again");
    cache.invalidate(&1);
    assert!(cache.get(&1).await.is_err());
    assert_eq!(calls.count(), 3, "invalidate forgets a remembered failure");
}

#[tokio::test(start_paused = true)]
async fn refresh_reloads_now_while_readers_keep_the_old_value() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_millis(100), plain);
    assert_eq!(cache.get(&4).await, Ok(40));
    cache.refresh(&4);
    assert_eq!(cache.get(&4).await, Ok(40));
    sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get(&4).await, Ok(41));
}

#[tokio::test]
async fn refresh_after_not_before_the_ttl_is_refused_naming_both() {
    let error = TtlCache::<u64, u64>::builder()
        .time_to_live(Duration::from_secs(5))
        .refresh_after(Duration::from_secs(5))
        .build_loading(|key: u64| async move { Ok::<_, String>(key) })
        .unwrap_err();
    assert_eq!(
        error,
        BuildError::RefreshNotBeforeExpiry {
            refresh_after: Duration::from_secs(5),
            time_to_live: Duration::from_secs(5),
        }
    );
    let message = error.to_string();
    assert!(message.contains("`refresh_after` (5s)"), "{message}");
    assert!(message.contains("`time_to_live` (5s)"), "{message}");
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    fn refused<L: Kind<Next = Loading>>(builder: Configured<L>) -> BuildError {
        let loader = |key: u64| async move { Ok::<_, String>(key) };
        builder.build_loading(loader).unwrap_err()
    }
    assert_eq!(
        refused(TtlCache::builder().refresh_after(Duration::ZERO)),
        BuildError::ZeroDuration {
            setting: "refresh_after"
        }
    );
    assert_eq!(
        refused(TtlCache::builder().load_timeout(Duration::ZERO)),
        BuildError::ZeroDuration {
            setting: "load_timeout"
        }
    );
    assert_eq!(
        refused(TtlCache::builder().max_concurrent_loads(0)),
        BuildError::ZeroConcurrentLoads
    );
    // A loading setting given to a plain cache is a compile error now: see the
    // `compile_fail` example of `CacheBuilder::build`.
}

#[test]
fn building_outside_a_tokio_runtime_is_an_error_not_a_later_panic() {
    let error = TtlCache::<u64, u64>::builder()
        .build_loading(|key: u64| async move { Ok::<_, String>(key) })
        .unwrap_err();
    assert_eq!(
        error,
        BuildError::NoTokioRuntime {
            setting: "build_loading"
        }
    );
}

#[test]
fn loads_run_on_the_callers_runtime_and_outside_one_on_the_runtime_built_in() {
    let built_in = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let cache = built_in.block_on(async move {
        TtlCache::builder()
            .build_loading(move |key: u64| {
                let record = Arc::clone(&record);
                async move {
                    let runtime = tokio::runtime::Handle::current().id();
                    record.lock().unwrap().push(runtime);
                    Ok::<_, String>(key)
                }
            })
            .unwrap()
    });
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(other.block_on(cache.get(&1)), Ok(1));
    // Outside any runtime: a thread that drives the future itself.
    assert_eq!(drive(cache.get(&2)), Ok(2));
    assert_eq!(
        *seen.lock().unwrap(),
        [other.handle().id(), built_in.handle().id()]
    );
}

#[test]
fn a_load_timeout_in_a_runtime_without_its_timer_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = runtime.block_on(async {
        TtlCache::<u64, u64>::builder()
            .load_timeout(Duration::from_secs(1))
            .build_loading(|key: u64| async move { Ok::<_, String>(key) })
            .unwrap_err()
    });
    assert_eq!(
        error,
        BuildError::NoTokioTimer {
            setting: "load_timeout"
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_loader_asking_for_its_own_key_fails_instead_of_waiting_forever() {
    let slot: Arc<std::sync::OnceLock<LoadingCache<u64, u64, String>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let cache = TtlCache::builder()
        .build_loading(move |key: u64| {
            let inner = Arc::clone(&inner);
            async move {
                let itself = inner.get().unwrap();
                itself.get(&key).await.map_err(|error| error.to_string())
            }
        })
        .unwrap();
    slot.set(cache.clone()).unwrap();
    assert_eq!(cache.get(&1).await, Err(LoadError::Panicked));
}

#[tokio::test(start_paused = true)]
async fn a_failure_of_a_load_that_an_invalidate_detached_is_not_remembered() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .error_ttl(Duration::from_secs(60))
        .build_loading(move |_key: u64| {
            loader_calls.record();
            async move {
                sleep(Duration::from_millis(100)).await;
                Err::<u64, _>("down".to_string())
            }
        })
        .unwrap();
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&1).await }
    });
    sleep(Duration::from_millis(10)).await;
    cache.invalidate(&1);
    assert!(
        waiter.await.unwrap().is_err(),
        "the load's own callers get its error"
    );
    assert!(cache.get(&1).await.is_err());
    assert_eq!(
        calls.count(),
        2,
        "the detached failure was not remembered: the loader ran again"
    );
}

#[tokio::test(start_paused = true)]
async fn each_get_counts_once_in_the_stats() {
    let calls = Calls::default();
    let cache = counting(&calls, Duration::from_millis(10), plain);
    cache.get(&1).await.unwrap();
    cache.get(&1).await.unwrap();
    let stats = cache.cache().stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
}

/// A loader error whose `Drop` reads the cache it was remembered in.
struct ReadsTheCacheWhenDropped(Arc<std::sync::OnceLock<TtlCache<u64, u64>>>);

impl std::fmt::Debug for ReadsTheCacheWhenDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadsTheCacheWhenDropped")
    }
}

impl Drop for ReadsTheCacheWhenDropped {
    fn drop(&mut self) {
        if let Some(cache) = self.0.get() {
            cache.get(&0);
        }
    }
}

#[test]
fn an_evicted_remembered_failure_is_dropped_outside_the_caches_locks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let slot = Arc::new(std::sync::OnceLock::new());
    let failure_slot = Arc::clone(&slot);
    let finished = runtime.block_on(async move {
        // One shard holding one entry: the second failure evicts the first from the memory of
        // failures, and that first failure's last reference goes with it.
        let cache = TtlCache::builder()
            .shards(1)
            .max_capacity(1)
            .error_ttl(Duration::from_secs(60))
            .build_loading(move |_key: u64| {
                let failure = ReadsTheCacheWhenDropped(Arc::clone(&failure_slot));
                async move { Err::<u64, _>(failure) }
            })
            .unwrap();
        slot.set(cache.cache().clone()).unwrap();
        let both = async {
            assert!(cache.get(&1).await.is_err());
            assert!(cache.get(&2).await.is_err());
        };
        tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .is_ok()
    });
    if !finished {
        // A worker is stuck on a lock its own thread holds: the runtime could not shut down.
        std::mem::forget(runtime);
        panic!("dropping an evicted failure deadlocked on the cache's shard lock");
    }
}

#[tokio::test]
async fn a_loader_that_panics_before_it_returns_its_future_gives_every_waiter_panicked() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .build_loading(move |_key: u64| {
            loader_calls.record();
            if true {
                panic!("the loader panics as it is called");
            }
            async { Ok::<u64, String>(0) }
        })
        .unwrap();
    let gets = (0..8).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&1).await })
    });
    for get in gets {
        assert_eq!(get.await.unwrap(), Err(LoadError::Panicked));
    }
    assert!(calls.count() <= 8, "{} calls for 8 gets", calls.count());
    assert_eq!(cache.get(&1).await, Err(LoadError::Panicked));
}

#[tokio::test(start_paused = true)]
async fn a_detached_failure_never_replaces_a_newer_remembered_one() {
    let calls = Calls::default();
    let loader_calls = calls.clone();
    let cache = TtlCache::builder()
        .error_ttl(Duration::from_secs(60))
        .build_loading(move |_key: u64| {
            let first = loader_calls.record() == 0;
            async move {
                if first {
                    sleep(Duration::from_millis(200)).await;
                    return Err::<u64, _>("the first, slow failure".to_string());
                }
                Err("the newer failure".to_string())
            }
        })
        .unwrap();
    let slow = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&1).await }
    });
    sleep(Duration::from_millis(10)).await;
    cache.invalidate(&1);
    let newer = cache.get(&1).await.unwrap_err();
    assert_eq!(newer.to_string(), "the load failed: the newer failure");
    assert!(slow.await.unwrap().is_err());
    // The newer failure is still what is remembered: no loader call until error_ttl.
    assert_eq!(cache.get(&1).await.unwrap_err(), newer);
    assert_eq!(calls.count(), 2);
}

/// A key whose `Clone` reads the cache it is a key of: cloned under the key's shard lock, it
/// would deadlock.
#[derive(Debug)]
struct PeeksWhenCloned {
    id: u64,
    cache: Arc<std::sync::OnceLock<TtlCache<PeeksWhenCloned, u64>>>,
}

impl Clone for PeeksWhenCloned {
    fn clone(&self) -> Self {
        if let Some(cache) = self.cache.get() {
            cache.peek(&self.id);
        }
        Self {
            id: self.id,
            cache: Arc::clone(&self.cache),
        }
    }
}

impl PartialEq for PeeksWhenCloned {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for PeeksWhenCloned {}

impl std::hash::Hash for PeeksWhenCloned {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::borrow::Borrow<u64> for PeeksWhenCloned {
    fn borrow(&self) -> &u64 {
        &self.id
    }
}

#[test]
fn a_refresh_clones_its_key_outside_the_caches_locks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let slot = Arc::new(std::sync::OnceLock::new());
    let cache = runtime.block_on(async {
        TtlCache::builder()
            .shards(1)
            .build_loading(|key: PeeksWhenCloned| async move { Ok::<_, String>(key.id * 2) })
            .unwrap()
    });
    slot.set(cache.cache().clone()).unwrap();
    let key = PeeksWhenCloned {
        id: 7,
        cache: Arc::clone(&slot),
    };
    assert_eq!(runtime.block_on(cache.get(&key)), Ok(14));
    // Outside the runtime, on a thread of its own: a deadlock there is seen, not suffered.
    let (done, finished) = std::sync::mpsc::channel();
    let refresher = cache.clone();
    std::thread::spawn(move || {
        refresher.refresh(&key);
        done.send(()).unwrap();
    });
    if finished.recv_timeout(Duration::from_secs(10)).is_err() {
        // The refreshing thread is stuck on a lock it holds itself, and holds the cache.
        std::mem::forget(cache);
        std::mem::forget(runtime);
        panic!("a refresh cloned its key under the shard lock, and the clone deadlocked");
    }
}
