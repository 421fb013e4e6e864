//! Single flight for tasks: one load per missing key, cancellation handed over, no hang.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::oneshot, time::Instant};
use ttlcache::TtlCache;

fn cache() -> TtlCache<u64, u64> {
    TtlCache::builder().build().unwrap()
}

/// Spawns `tasks` callers of `get_or_load(1)` whose load takes `load_time` and yields 1;
/// each task returns its value and how long after the spawn it got it.
fn stampede(
    cache: &TtlCache<u64, u64>,
    tasks: usize,
    load_time: Duration,
    loads: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<(u64, Duration)>> {
    let start = Instant::now();
    (0..tasks)
        .map(|_| {
            let cache = cache.clone();
            let loads = Arc::clone(loads);
            tokio::spawn(async move {
                let value = cache
                    .get_or_load(1, async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(load_time).await;
                        1
                    })
                    .await;
                (value, start.elapsed())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_tasks_cause_one_load() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    for task in stampede(&cache, 1_000, Duration::from_millis(20), &loads) {
        assert_eq!(task.await.unwrap().0, 1);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stampede_finishes_when_the_one_load_does() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    for task in stampede(&cache, 1_000, Duration::from_millis(10), &loads) {
        // Paused time moves only when every task is idle: all finish at the load's end.
        assert_eq!(task.await.unwrap(), (1, Duration::from_millis(10)));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn when_the_leader_is_cancelled_one_waiter_takes_over() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(1, async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    1
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let cache = cache.clone();
            let loads = Arc::clone(&loads);
            tokio::spawn(async move {
                cache
                    .get_or_load(1, async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        2
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), 2);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_does_not_disturb_the_load() {
    let cache = cache();
    let (release, released) = oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(1, async {
                    released.await.unwrap();
                    7
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let timed_out =
        tokio::time::timeout(Duration::from_millis(5), cache.get_or_load(1, async { 0 })).await;
    assert!(timed_out.is_err());
    release.send(()).unwrap();
    assert_eq!(leader.await.unwrap(), 7);
    assert_eq!(cache.get(&1), Some(7));
}

#[tokio::test]
async fn a_panicking_load_reaches_its_caller_and_the_next_call_loads_again() {
    let cache = cache();
    let panicked = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(1, async { panic!("the loader fails") })
                .await
        })
        .await
    };
    assert!(panicked.unwrap_err().is_panic());
    assert_eq!(cache.get_or_load(1, async { 3 }).await, 3);
}

#[tokio::test]
async fn errors_are_shared_as_one_arc_and_not_cached() {
    let cache = cache();
    let error = cache
        .try_get_or_load(1, async { Err::<u64, _>(std::io::Error::other("down")) })
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "down");
    let value = cache
        .try_get_or_load(1, async { Ok::<_, std::io::Error>(4) })
        .await;
    assert_eq!(value.unwrap(), 4);
}

#[tokio::test]
async fn a_recursive_load_of_the_same_key_panics() {
    let cache = cache();
    let inner = cache.clone();
    let result =
        futures_catch(cache.get_or_load(1, async { inner.get_or_load(1, async { 2 }).await }))
            .await;
    assert!(result.is_err());
    assert_eq!(cache.get_or_load(1, async { 5 }).await, 5);
}

/// Runs a future, turning a panic into an `Err`.
async fn futures_catch<F: std::future::Future>(future: F) -> Result<F::Output, ()> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_async_callers_share_one_load() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let (started, has_started) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        let loads = Arc::clone(&loads);
        tokio::spawn(async move {
            cache
                .get_or_load(1, async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    started.send(()).unwrap();
                    released.await.unwrap();
                    8
                })
                .await
        })
    };
    has_started.await.unwrap();
    let sync_caller = {
        let cache = cache.clone();
        let loads = Arc::clone(&loads);
        std::thread::spawn(move || {
            cache.get_or_insert_with(1, || {
                loads.fetch_add(1, Ordering::SeqCst);
                9
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    release.send(()).unwrap();
    assert_eq!(leader.await.unwrap(), 8);
    assert_eq!(sync_caller.join().unwrap(), 8);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}
