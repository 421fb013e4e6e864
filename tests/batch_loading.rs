//! `build_batch_loading` and `get_all`: many keys, one loader call (the DataLoader pattern).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::{advance, sleep};
use ttlcache::{
    BuildError, CacheBuilder, DefaultHashBuilder, LoadError, LoadingCache, TokioClock, TtlCache,
    builder::Kind,
};

/// The keys of each loader call, sorted, in call order.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<Vec<u64>>>>);

impl Calls {
    fn record(&self, keys: &[u64]) {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        self.0.lock().unwrap().push(keys);
    }

    fn taken(&self) -> Vec<Vec<u64>> {
        self.0.lock().unwrap().clone()
    }
}

type Users = LoadingCache<u64, String, String>;

/// A batch loader that finds every key but 0, after `delay`.
fn users<L: Kind>(
    calls: &Calls,
    delay: Duration,
    configure: impl FnOnce(
        CacheBuilder<u64, String>,
    ) -> CacheBuilder<u64, String, DefaultHashBuilder, L>,
) -> Users {
    let calls = calls.clone();
    configure(TtlCache::builder().clock(TokioClock))
        .build_batch_loading(move |ids: Vec<u64>| {
            calls.record(&ids);
            async move {
                sleep(delay).await;
                Ok(ids
                    .into_iter()
                    .filter(|&id| id != 0)
                    .map(|id| (id, format!("user {id}")))
                    .collect::<HashMap<_, _>>())
            }
        })
        .unwrap()
}

/// Spawns a `get` of each key, as concurrent requests do.
fn spawn_gets(
    cache: &Users,
    keys: impl IntoIterator<Item = u64>,
) -> Vec<tokio::task::JoinHandle<Result<String, LoadError<String>>>> {
    keys.into_iter()
        .map(|key| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&key).await })
        })
        .collect()
}

async fn results(
    handles: Vec<tokio::task::JoinHandle<Result<String, LoadError<String>>>>,
) -> Vec<Result<String, LoadError<String>>> {
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

#[tokio::test(start_paused = true)]
async fn concurrent_gets_of_missing_keys_make_one_loader_call() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(10), |b| b);
    // A thousand requests for a hundred users.
    let handles = spawn_gets(&cache, (0..1_000).map(|i| 1 + i % 100));
    for (i, result) in results(handles).await.into_iter().enumerate() {
        assert_eq!(result, Ok(format!("user {}", 1 + i % 100)));
    }
    assert_eq!(calls.taken(), [(1..=100).collect::<Vec<_>>()]);
    assert_eq!(cache.cache().len(), 100);
    assert_eq!(
        cache.cache().stats().load_successes,
        1,
        "a batch is one load"
    );
}

#[tokio::test(start_paused = true)]
async fn batches_hold_at_most_max_batch_size_keys() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(10), |b| b.max_batch_size(100));
    let found = cache.get_all(1..=250).await.unwrap();
    assert_eq!(found.len(), 250);
    let sizes: Vec<usize> = calls.taken().iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 250);
    assert_eq!(sizes.len(), 3, "as few calls as the size allows: {sizes:?}");
    assert!(sizes.iter().all(|&size| size <= 100));
}

#[tokio::test(start_paused = true)]
async fn get_all_returns_hits_and_loads_only_the_misses_in_one_call() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(10), |b| b);
    for id in 1..=90 {
        cache.cache().insert(id, format!("cached {id}"));
    }
    let found = cache.get_all(1..=100).await.unwrap();
    assert_eq!(found.len(), 100);
    assert_eq!(found[&5], "cached 5");
    assert_eq!(found[&95], "user 95");
    assert_eq!(calls.taken(), [(91..=100).collect::<Vec<_>>()]);
}

#[tokio::test(start_paused = true)]
async fn get_all_with_a_single_key_loader_runs_concurrent_single_loads() {
    let loads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&loads);
    let cache = TtlCache::builder()
        .clock(TokioClock)
        .build_loading(move |id: u64| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                sleep(Duration::from_secs(1)).await;
                Ok::<_, String>(id * 2)
            }
        })
        .unwrap();
    cache.cache().insert(1, 100);
    let start = tokio::time::Instant::now();
    let found = cache.get_all([1, 2, 3, 3]).await.unwrap();
    assert_eq!(found, HashMap::from([(1, 100), (2, 4), (3, 6)]));
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(1), "concurrently");
}

#[tokio::test(start_paused = true)]
async fn each_key_is_single_flighted_across_get_get_all_and_batches() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(100), |b| b);
    let first = spawn_gets(&cache, [1, 2]);
    // Let the first batch start loading, then ask for its keys again, and one more.
    sleep(Duration::from_millis(50)).await;
    let again = cache.get_all([1, 2, 3]).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(results(first).await.iter().all(Result::is_ok));
    assert_eq!(
        calls.taken(),
        [vec![1, 2], vec![3]],
        "keys 1 and 2 joined the running batch"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_caller_neither_cancels_nor_stalls_the_batch() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(100), |b| b);
    let cancelled = spawn_gets(&cache, [1]);
    let waiting = spawn_gets(&cache, [1, 2]);
    sleep(Duration::from_millis(10)).await;
    cancelled[0].abort();
    // A caller dropped once it joined a batch, before the batch was even taken.
    let mut dropped = Box::pin(cache.get(&3));
    let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(dropped.as_mut().poll(cx))).await;
    assert!(polled.is_pending());
    drop(dropped);
    let also_dropped = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&4).await })
    };
    tokio::task::yield_now().await;
    also_dropped.abort();
    assert!(results(waiting).await.iter().all(Result::is_ok));
    sleep(Duration::from_millis(200)).await;
    assert_eq!(
        cache.get_if_present(&1).as_deref(),
        Some("user 1"),
        "the cancelled caller's key was stored"
    );
    assert_eq!(cache.get_if_present(&3).as_deref(), Some("user 3"));
    assert_eq!(cache.get_if_present(&4).as_deref(), Some("user 4"));
    assert_eq!(calls.taken(), [vec![1, 2], vec![3, 4]]);
}

#[tokio::test(start_paused = true)]
async fn a_key_the_loader_leaves_out_is_not_found_and_not_cached() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::ZERO, |b| b);
    assert_eq!(cache.get(&0).await, Err(LoadError::NotFound));
    assert_eq!(cache.get(&0).await, Err(LoadError::NotFound));
    assert_eq!(calls.taken().len(), 2, "not cached: loaded again");
    let found = cache.get_all([0, 1]).await.unwrap();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        [&1],
        "left out of get_all"
    );
}

#[tokio::test(start_paused = true)]
async fn with_error_ttl_not_found_is_remembered() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::ZERO, |b| {
        b.error_ttl(Duration::from_secs(5))
    });
    assert_eq!(cache.get(&0).await, Err(LoadError::NotFound));
    assert_eq!(cache.get(&0).await, Err(LoadError::NotFound));
    assert!(cache.get_all([0]).await.unwrap().is_empty());
    assert_eq!(calls.taken().len(), 1, "remembered for error_ttl");
    advance(Duration::from_secs(5)).await;
    assert_eq!(cache.get(&0).await, Err(LoadError::NotFound));
    assert_eq!(calls.taken().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_fails_each_key_with_the_same_error() {
    let cache: LoadingCache<u64, u64, String> = TtlCache::builder()
        .build_batch_loading(|_ids: Vec<u64>| async { Err("database down".to_string()) })
        .unwrap();
    let handles: Vec<_> = (1..=3)
        .map(|key| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&key).await })
        })
        .collect();
    let mut errors = Vec::new();
    for handle in handles {
        match handle.await.unwrap() {
            Err(LoadError::Failed(error)) => errors.push(error),
            other => panic!("expected the batch's failure, got {other:?}"),
        }
    }
    assert_eq!(*errors[0], "database down");
    assert!(errors.iter().all(|error| Arc::ptr_eq(error, &errors[0])));
    match cache.get_all([1, 2]).await {
        Err(LoadError::Failed(error)) => assert_eq!(*error, "database down"),
        other => panic!("expected the batch's failure from get_all, got {other:?}"),
    }
    assert!(cache.cache().is_empty());
}

#[tokio::test(start_paused = true)]
async fn load_timeout_limits_each_batch() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_secs(10), |b| {
        b.load_timeout(Duration::from_secs(1))
    });
    let results = results(spawn_gets(&cache, [1, 2])).await;
    assert_eq!(
        results,
        [Err(LoadError::TimedOut), Err(LoadError::TimedOut)]
    );
    assert_eq!(calls.taken(), [vec![1, 2]]);
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_loads_counts_batches() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (running_in, most_in) = (Arc::clone(&running), Arc::clone(&most));
    let cache = TtlCache::builder()
        .max_batch_size(2)
        .max_concurrent_loads(1)
        .build_batch_loading(move |ids: Vec<u64>| {
            let (running, most) = (Arc::clone(&running_in), Arc::clone(&most_in));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(
                    ids.into_iter()
                        .map(|id| (id, id))
                        .collect::<HashMap<_, _>>(),
                )
            }
        })
        .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(cache.get_all(1..=6).await.unwrap().len(), 6);
    assert_eq!(most.load(Ordering::SeqCst), 1, "one batch at a time");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(30),
        "three batches in turn"
    );
}

#[tokio::test(start_paused = true)]
async fn refreshes_of_a_batch_loaded_cache_are_batched() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(10), |b| {
        b.time_to_live(Duration::from_secs(60))
            .refresh_after(Duration::from_secs(5))
    });
    cache.get_all([1, 2, 3]).await.unwrap();
    advance(Duration::from_secs(6)).await;
    for key in [1, 2, 3] {
        assert!(cache.get(&key).await.is_ok(), "stale values at once");
    }
    sleep(Duration::from_millis(50)).await;
    assert_eq!(calls.taken(), [vec![1, 2, 3], vec![1, 2, 3]]);
}

#[tokio::test(start_paused = true)]
async fn a_batch_window_gathers_keys_asked_for_within_it() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::ZERO, |b| {
        b.batch_window(Duration::from_millis(10))
    });
    let early = spawn_gets(&cache, [1]);
    sleep(Duration::from_millis(5)).await;
    let late = spawn_gets(&cache, [2]);
    sleep(Duration::from_millis(20)).await;
    let after = spawn_gets(&cache, [3]);
    for handles in [early, late, after] {
        assert!(results(handles).await.iter().all(Result::is_ok));
    }
    assert_eq!(calls.taken(), [vec![1, 2], vec![3]]);
}

#[tokio::test]
async fn batch_settings_are_checked() {
    let batch = |ids: Vec<u64>| async move {
        Ok::<_, String>(
            ids.into_iter()
                .map(|id| (id, id))
                .collect::<HashMap<_, _>>(),
        )
    };
    let error = TtlCache::<u64, u64>::builder()
        .max_batch_size(0)
        .build_batch_loading(batch)
        .unwrap_err();
    assert_eq!(error, BuildError::ZeroBatchSize);
    assert_eq!(
        error.to_string(),
        "`max_batch_size` must be at least 1, got 0"
    );
    assert_eq!(
        TtlCache::<u64, u64>::builder()
            .batch_window(Duration::ZERO)
            .build_batch_loading(batch)
            .unwrap_err(),
        BuildError::ZeroDuration {
            setting: "batch_window"
        }
    );
    // The other loading settings keep a batch-loading builder in its state, in either order,
    // and so does a hasher.
    let either_order = TtlCache::<u64, u64>::builder()
        .refresh_after(Duration::from_secs(1))
        .batch_window(Duration::from_millis(1))
        .hasher(std::hash::RandomState::new())
        .build_batch_loading(batch)
        .unwrap();
    assert_eq!(either_order.get(&3).await, Ok(3));
    let cache = TtlCache::<u64, u64>::builder()
        .max_batch_size(10)
        .refresh_after(Duration::from_secs(1))
        .error_ttl(Duration::from_secs(1))
        .build_batch_loading(batch)
        .unwrap();
    assert_eq!(cache.get_all([1, 2]).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_many_threads_every_key_is_loaded_once_in_some_batch() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(5), |b| b.max_batch_size(16));
    let results = results(spawn_gets(&cache, (0..2_000).map(|i| 1 + i % 200))).await;
    assert!(results.iter().all(Result::is_ok));
    let mut loaded: Vec<u64> = calls.taken().into_iter().flatten().collect();
    assert!(calls.taken().iter().all(|batch| batch.len() <= 16));
    loaded.sort_unstable();
    assert_eq!(loaded, (1..=200).collect::<Vec<_>>(), "each key once");
}

#[test]
fn a_batch_whose_runtime_shuts_down_before_it_runs_leaves_no_caller_waiting() {
    let home = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = Calls::default();
    let cache = home.block_on(async { users(&calls, Duration::ZERO, |b| b) });
    // A caller on a runtime that shuts down with the batch's task queued, unrun.
    let doomed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut abandoned = Box::pin(cache.get(&1));
    doomed.block_on(std::future::poll_fn(|cx| {
        assert!(
            abandoned.as_mut().poll(cx).is_pending(),
            "it waits on its batch"
        );
        std::task::Poll::Ready(())
    }));
    drop(doomed);
    drop(abandoned);
    let next =
        home.block_on(async { tokio::time::timeout(Duration::from_secs(5), cache.get(&1)).await });
    assert_eq!(
        next.expect("the next caller is not left waiting on the dropped batch"),
        Ok("user 1".to_string())
    );
    assert_eq!(
        calls.taken(),
        [vec![1]],
        "the dropped batch never called the loader"
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_loader_asking_for_a_key_of_its_own_batch_fails_instead_of_waiting() {
    let cache: Arc<Mutex<Option<LoadingCache<u64, u64, String>>>> = Arc::default();
    let inner = Arc::clone(&cache);
    let built = TtlCache::builder()
        .build_batch_loading(move |ids: Vec<u64>| {
            let cache = inner.lock().unwrap().clone().expect("set below");
            async move {
                // Asks for the first key of its own batch.
                let first = cache
                    .get(&ids[0])
                    .await
                    .map_err(|error| error.to_string())?;
                Ok(ids
                    .into_iter()
                    .map(|id| (id, first))
                    .collect::<HashMap<_, _>>())
            }
        })
        .unwrap();
    *cache.lock().unwrap() = Some(built.clone());
    let answer = tokio::time::timeout(Duration::from_secs(5), built.get(&1)).await;
    assert_eq!(
        answer,
        Ok(Err(LoadError::Panicked)),
        "a clear failure, not a hang"
    );
    cache.lock().unwrap().take();
}

#[tokio::test(start_paused = true)]
async fn an_invalidation_during_a_batch_wins_and_its_callers_still_get_the_value() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::from_millis(100), |b| b);
    let waiting = spawn_gets(&cache, [1, 2]);
    sleep(Duration::from_millis(50)).await;
    cache.invalidate(&1);
    cache.cache().insert(2, "written meanwhile".to_string());
    let answers = results(waiting).await;
    assert_eq!(
        answers,
        [Ok("user 1".to_string()), Ok("user 2".to_string())]
    );
    assert_eq!(
        cache.get_if_present(&1),
        None,
        "the detached load was not stored"
    );
    assert_eq!(
        cache.get_if_present(&2).as_deref(),
        Some("written meanwhile"),
        "nor did it overwrite the newer write"
    );
}

#[tokio::test(start_paused = true)]
async fn values_for_keys_not_asked_for_are_ignored() {
    let cache: LoadingCache<u64, u64, String> = TtlCache::builder()
        .build_batch_loading(|ids: Vec<u64>| async move {
            let mut found: HashMap<u64, u64> = ids.iter().map(|&id| (id, id)).collect();
            found.insert(999, 999);
            Ok(found)
        })
        .unwrap();
    assert_eq!(cache.get(&1).await, Ok(1));
    assert_eq!(cache.cache().peek(&999), None);
    assert_eq!(cache.cache().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_max_batch_size_of_one_loads_each_key_alone() {
    let calls = Calls::default();
    let cache = users(&calls, Duration::ZERO, |b| b.max_batch_size(1));
    assert_eq!(cache.get_all([1, 2, 3]).await.unwrap().len(), 3);
    let mut taken = calls.taken();
    taken.sort();
    assert_eq!(taken, [vec![1], vec![2], vec![3]]);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_finds_the_key_gone_removes_its_old_value() {
    let deleted = Arc::new(Mutex::new(Vec::<u64>::new()));
    let gone = Arc::clone(&deleted);
    let removed = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&removed);
    let cache: LoadingCache<u64, u64, String> = TtlCache::builder()
        .clock(TokioClock)
        .time_to_live(Duration::from_secs(60))
        .refresh_after(Duration::from_secs(5))
        .eviction_listener(move |key, _value, cause| heard.lock().unwrap().push((key, cause)))
        .build_batch_loading(move |ids: Vec<u64>| {
            let gone = gone.lock().unwrap().clone();
            async move {
                let rows = ids.into_iter().filter(|id| !gone.contains(id));
                Ok(rows.map(|id| (id, id)).collect::<HashMap<_, _>>())
            }
        })
        .unwrap();
    assert_eq!(cache.get_all([1, 2]).await.unwrap().len(), 2);
    deleted.lock().unwrap().push(1);
    advance(Duration::from_secs(6)).await;
    assert_eq!(
        cache.get(&1).await,
        Ok(1),
        "stale: served, and a refresh starts"
    );
    assert_eq!(cache.get(&2).await, Ok(2));
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        cache.get_if_present(&1),
        None,
        "the row is gone, and so is its value"
    );
    assert_eq!(cache.get_if_present(&2), Some(2));
    assert_eq!(
        *removed.lock().unwrap(),
        [
            (1, ttlcache::RemovalCause::Explicit),
            (2, ttlcache::RemovalCause::Replaced)
        ]
    );
}
