//! AsyncLazy: loaded once, shared, kept fresh; every timing rule in paused tokio time.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Waker},
    time::Duration,
};

use tokio::time::{advance, sleep};
use ttlcache::{AsyncLazy, BuildError, LoadError, TokioClock};

mod common;

use common::{Calls, drive};

/// An initializer that takes `delay` and returns how many calls came before it.
fn counting(
    calls: &Calls,
    delay: Duration,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<usize, String>> + Send>>
+ Send
+ Sync
+ 'static {
    let calls = calls.clone();
    move || {
        let before = calls.record();
        Box::pin(async move {
            sleep(delay).await;
            Ok(before)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_gets_cause_one_load_and_share_its_value() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_new(counting(&calls, Duration::from_millis(100)));
    let gets: Vec<_> = (0..1_000)
        .map(|_| {
            let lazy = lazy.clone();
            tokio::spawn(async move { lazy.try_get().await })
        })
        .collect();
    let first = gets
        .into_iter()
        .map(|get| async { get.await.unwrap().unwrap() });
    let values: Vec<Arc<usize>> = futures_all(first).await;
    assert!(values.iter().all(|value| Arc::ptr_eq(value, &values[0])));
    assert_eq!(calls.count(), 1);
    // Fresh now: no further loads.
    assert_eq!(*lazy.try_get().await.unwrap(), 0);
    assert_eq!(calls.count(), 1);
}

async fn futures_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut outputs = Vec::new();
    for future in futures {
        outputs.push(future.await);
    }
    outputs
}

#[tokio::test(start_paused = true)]
async fn an_error_is_shared_by_its_waiters_and_the_next_get_loads_again() {
    let calls = Calls::default();
    let init_calls = calls.clone();
    let lazy = AsyncLazy::try_new(move || {
        let first = init_calls.record() == 0;
        async move {
            sleep(Duration::from_millis(10)).await;
            if first {
                Err("down".to_string())
            } else {
                Ok(7)
            }
        }
    });
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let lazy = lazy.clone();
            tokio::spawn(async move { lazy.try_get().await })
        })
        .collect();
    let mut errors = Vec::new();
    for waiter in waiters {
        match waiter.await.unwrap() {
            Err(LoadError::Failed(error)) => errors.push(error),
            other => panic!("expected the load's error, got {other:?}"),
        }
    }
    assert!(errors.iter().all(|error| Arc::ptr_eq(error, &errors[0])));
    assert_eq!(*lazy.try_get().await.unwrap(), 7);
    assert_eq!(calls.count(), 2);
    assert_eq!(lazy.last_error(), None, "a success clears the last error");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_initializer_gives_its_waiters_panicked_and_the_next_get_loads_again() {
    let calls = Calls::default();
    let init_calls = calls.clone();
    let lazy = AsyncLazy::try_new(move || {
        let first = init_calls.record() == 0;
        async move {
            sleep(Duration::from_millis(10)).await;
            assert!(!first, "the first load fails");
            Ok::<_, String>(1)
        }
    });
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let lazy = lazy.clone();
            tokio::spawn(async move { lazy.try_get().await })
        })
        .collect();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Err(LoadError::Panicked));
    }
    assert_eq!(*lazy.try_get().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn get_panics_with_a_clear_message_when_its_load_panicked() {
    let lazy: AsyncLazy<u8> = AsyncLazy::new(|| async { panic!("no config file") });
    let outcome = tokio::spawn(async move { lazy.get().await }).await;
    let payload = outcome.unwrap_err().into_panic();
    let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("initializer panicked"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_first_caller_neither_cancels_nor_stalls_the_load() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_new(counting(&calls, Duration::from_millis(100)));
    let gave_up = tokio::time::timeout(Duration::from_millis(10), lazy.try_get()).await;
    assert!(gave_up.is_err());
    let waiter = tokio::spawn({
        let lazy = lazy.clone();
        async move { lazy.try_get().await }
    });
    assert_eq!(*waiter.await.unwrap().unwrap(), 0);
    assert_eq!(
        calls.count(),
        1,
        "the load went on without its first caller"
    );
}

#[tokio::test(start_paused = true)]
async fn an_invalidate_racing_a_load_wins_but_its_waiters_get_the_result() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_new(counting(&calls, Duration::from_millis(100)));
    let waiter = tokio::spawn({
        let lazy = lazy.clone();
        async move { lazy.try_get().await }
    });
    sleep(Duration::from_millis(10)).await;
    lazy.invalidate();
    assert_eq!(*waiter.await.unwrap().unwrap(), 0);
    assert_eq!(
        lazy.peek(),
        None,
        "the invalidated load's value was not kept"
    );
    assert_eq!(*lazy.try_get().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_set_during_a_load_is_not_overwritten_by_it() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_new(counting(&calls, Duration::from_millis(100)));
    let waiter = tokio::spawn({
        let lazy = lazy.clone();
        async move { lazy.try_get().await }
    });
    sleep(Duration::from_millis(10)).await;
    lazy.set(99);
    assert_eq!(*waiter.await.unwrap().unwrap(), 0);
    assert_eq!(*lazy.try_get().await.unwrap(), 99);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_old_value_and_records_the_error() {
    let calls = Calls::default();
    let init_calls = calls.clone();
    let lazy = AsyncLazy::try_new(move || {
        let first = init_calls.record() == 0;
        async move {
            if first {
                Ok(1)
            } else {
                Err("down".to_string())
            }
        }
    });
    assert_eq!(*lazy.try_get().await.unwrap(), 1);
    assert!(lazy.refresh().await.is_err());
    assert_eq!(*lazy.try_get().await.unwrap(), 1, "stale-if-error");
    assert!(matches!(lazy.last_error(), Some(LoadError::Failed(error)) if *error == "down"));
}

#[tokio::test(start_paused = true)]
async fn after_its_time_to_live_get_waits_for_a_fresh_load() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_builder(counting(&calls, Duration::from_millis(100)))
        .time_to_live(Duration::from_secs(10))
        .clock(TokioClock)
        .build()
        .unwrap();
    assert_eq!(*lazy.try_get().await.unwrap(), 0);
    advance(Duration::from_millis(9_999)).await;
    assert_eq!(*lazy.try_get().await.unwrap(), 0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(lazy.peek(), None);
    let start = tokio::time::Instant::now();
    assert_eq!(*lazy.try_get().await.unwrap(), 1);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "the get waited for the load"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_value_is_served_at_once_while_one_reload_runs() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_builder(counting(&calls, Duration::from_millis(100)))
        .time_to_live(Duration::from_secs(60))
        .refresh_after(Duration::from_secs(10))
        .clock(TokioClock)
        .build()
        .unwrap();
    lazy.try_get().await.unwrap();
    advance(Duration::from_secs(11)).await;
    let start = tokio::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(*lazy.try_get().await.unwrap(), 0);
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    sleep(Duration::from_millis(150)).await;
    assert_eq!(calls.count(), 2, "one reload for twenty stale reads");
    assert_eq!(*lazy.try_get().await.unwrap(), 1);
}

/// A value that counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_every_reloads_on_a_timer_and_stops_after_the_last_handle_is_dropped() {
    let calls = Calls::default();
    let drops = Arc::new(AtomicUsize::new(0));
    let (init_calls, init_drops) = (calls.clone(), Arc::clone(&drops));
    let lazy = AsyncLazy::try_builder(move || {
        init_calls.record();
        let drops = Arc::clone(&init_drops);
        async move { Ok::<_, String>(Tracked(drops)) }
    })
    .refresh_every(Duration::from_secs(10))
    .build()
    .unwrap();
    lazy.try_get().await.unwrap();
    for tick in 1..=3 {
        sleep(Duration::from_secs(10)).await;
        tokio::task::yield_now().await;
        assert_eq!(calls.count(), 1 + tick, "tick {tick} reloaded");
    }
    // Each reload replaced (and dropped) the value before it.
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    drop(lazy);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        4,
        "the last handle drops the value"
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.count(), 4, "the refresher stopped");
    assert_eq!(drops.load(Ordering::SeqCst), 4, "and dropped nothing twice");
}

#[tokio::test(start_paused = true)]
async fn refresh_every_retries_a_failure_sooner_and_never_stops() {
    let calls = Calls::default();
    let init_calls = calls.clone();
    let lazy = AsyncLazy::try_builder(move || {
        let call = init_calls.record();
        // Loads 1 to 4 fail; the first and the fifth succeed.
        async move {
            if (1..=4).contains(&call) {
                Err("down".to_string())
            } else {
                Ok(call)
            }
        }
    })
    .refresh_every(Duration::from_secs(64))
    .build()
    .unwrap();
    assert_eq!(*lazy.try_get().await.unwrap(), 0);
    // The tick at 64s fails; retries follow 4, 8 and 16 seconds later (each within a quarter).
    sleep(Duration::from_secs(64)).await;
    tokio::task::yield_now().await;
    assert_eq!(calls.count(), 2);
    assert!(lazy.last_error().is_some());
    sleep(Duration::from_secs(40)).await;
    assert_eq!(
        calls.count(),
        5,
        "three quicker retries, not one more period"
    );
    assert_eq!(
        *lazy.try_get().await.unwrap(),
        0,
        "the old value stayed meanwhile"
    );
    // The fifth load comes 32 seconds (within a quarter) after the fourth, which came at
    // 85 to 99 seconds: by 139 at the latest.
    sleep(Duration::from_secs(40)).await;
    assert_eq!(
        *lazy.try_get().await.unwrap(),
        5,
        "the task went on and recovered"
    );
}

#[test]
fn refresh_every_outside_a_tokio_runtime_is_a_build_error() {
    let error = AsyncLazy::builder(|| async { 1 })
        .refresh_every(Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        BuildError::NoTokioRuntime {
            setting: "refresh_every"
        }
    );
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let build =
        |configure: fn(ttlcache::AsyncLazyBuilder<u8>) -> ttlcache::AsyncLazyBuilder<u8>| {
            configure(AsyncLazy::builder(|| async { 1 }))
                .build()
                .unwrap_err()
        };
    assert_eq!(
        build(|b| b.time_to_live(Duration::ZERO)),
        BuildError::ZeroDuration {
            setting: "time_to_live"
        }
    );
    assert_eq!(
        build(|b| b
            .time_to_live(Duration::from_secs(5))
            .refresh_after(Duration::from_secs(6))),
        BuildError::RefreshNotBeforeExpiry {
            refresh_after: Duration::from_secs(6),
            time_to_live: Duration::from_secs(5)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_sees_each_new_value() {
    let calls = Calls::default();
    let lazy = AsyncLazy::try_new(counting(&calls, Duration::from_millis(10)));
    let mut updates = lazy.subscribe();
    assert_eq!(*updates.borrow(), None);
    lazy.try_get().await.unwrap();
    updates.changed().await.unwrap();
    assert_eq!(updates.borrow_and_update().as_deref(), Some(&0));
    lazy.refresh().await.unwrap();
    updates.changed().await.unwrap();
    assert_eq!(updates.borrow_and_update().as_deref(), Some(&1));
    lazy.set(50);
    updates.changed().await.unwrap();
    assert_eq!(updates.borrow_and_update().as_deref(), Some(&50));
}

#[tokio::test(start_paused = true)]
async fn an_initializer_asking_for_its_own_value_fails_instead_of_waiting_forever() {
    let slot: Arc<std::sync::OnceLock<AsyncLazy<u8, String>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let lazy = AsyncLazy::try_new(move || {
        let inner = Arc::clone(&inner);
        async move {
            let itself = inner.get().unwrap();
            itself
                .try_get()
                .await
                .map(|value| *value)
                .map_err(|_| "recursive".to_string())
        }
    });
    slot.set(lazy.clone()).unwrap();
    assert_eq!(lazy.try_get().await, Err(LoadError::Panicked));
}

#[test]
fn outside_a_runtime_the_first_caller_loads_and_a_cancelled_one_hands_over() {
    let calls = Calls::default();
    let init_calls = calls.clone();
    // The first load never finishes; the next one is immediate.
    let lazy = AsyncLazy::new(move || {
        let first = init_calls.record() == 0;
        async move {
            if first {
                std::future::pending::<()>().await;
            }
            11
        }
    });
    let noop = &mut Context::from_waker(Waker::noop());
    let mut leader = Box::pin(lazy.get());
    assert!(
        leader.as_mut().poll(noop).is_pending(),
        "the first caller runs the load"
    );
    let mut waiter = Box::pin(lazy.get());
    assert!(
        waiter.as_mut().poll(noop).is_pending(),
        "the second waits for it"
    );
    drop(leader);
    // The waiter takes over with a load of its own.
    assert_eq!(*drive(waiter), 11);
    assert_eq!(calls.count(), 2);
    assert_eq!(*drive(lazy.get()), 11);
    assert_eq!(calls.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_woken_subscriber_reads_the_new_value_through_the_lazy_too() {
    let lazy = AsyncLazy::new(|| async { 1 });
    let mut updates = lazy.subscribe();
    lazy.set(2);
    updates.changed().await.unwrap();
    assert_eq!(lazy.peek().as_deref(), Some(&2));
}

/// A value whose `Drop` calls back into the lazy that held it.
struct CallsBack(Arc<std::sync::OnceLock<AsyncLazy<CallsBack>>>);

impl Drop for CallsBack {
    fn drop(&mut self) {
        if let Some(lazy) = self.0.get() {
            lazy.invalidate();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_replaced_value_is_dropped_outside_the_lazys_locks() {
    let slot: Arc<std::sync::OnceLock<AsyncLazy<CallsBack>>> = Arc::default();
    let inner = Arc::clone(&slot);
    let lazy = AsyncLazy::new(move || {
        let inner = Arc::clone(&inner);
        async move { CallsBack(inner) }
    });
    slot.set(lazy.clone()).unwrap();
    lazy.get().await;
    // Replacing the value drops the old one, whose `Drop` invalidates the lazy: this would
    // deadlock if it ran under the lazy's lock.
    lazy.set(CallsBack(Arc::default()));
    lazy.invalidate();
    assert!(lazy.peek().is_none());
}

#[test]
fn refresh_every_in_a_runtime_without_its_timer_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let error = runtime.block_on(async {
        AsyncLazy::builder(|| async { 1 })
            .refresh_every(Duration::from_secs(1))
            .build()
            .unwrap_err()
    });
    assert_eq!(
        error,
        BuildError::NoTokioTimer {
            setting: "refresh_every"
        }
    );
}

/// A clock that counts how often it is read.
#[derive(Clone, Default)]
struct CountingClock(Arc<AtomicUsize>);

impl CountingClock {
    fn reads(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl ttlcache::Clock for CountingClock {
    fn now(&self) -> std::time::Instant {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::time::Instant::now()
    }
}

#[tokio::test]
async fn a_lazy_without_deadlines_never_reads_its_clock() {
    let clock = CountingClock::default();
    let lazy = AsyncLazy::builder(|| async { 1 })
        .clock(clock.clone())
        .build()
        .unwrap();
    let at_build = clock.reads();
    assert_eq!(*lazy.get().await, 1);
    lazy.set(2);
    assert_eq!(*lazy.get().await, 2);
    assert_eq!(*lazy.refresh().await.unwrap(), 1);
    lazy.invalidate();
    assert_eq!(*lazy.get().await, 1);
    assert_eq!(
        clock.reads(),
        at_build,
        "no deadline to check: the default clock's ticker would have started for nothing"
    );

    // With a deadline the same calls read it.
    let timed = AsyncLazy::builder(|| async { 1 })
        .time_to_live(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let at_build = clock.reads();
    timed.get().await;
    timed.set(2);
    assert!(clock.reads() > at_build);
}

#[tokio::test]
async fn an_initializer_that_panics_before_it_returns_its_future_gives_panicked() {
    let calls = Calls::default();
    let init_calls = calls.clone();
    let lazy = AsyncLazy::try_new(move || {
        init_calls.record();
        if true {
            panic!("the initializer panics as it is called");
        }
        async { Ok::<u8, String>(0) }
    });
    let gets = (0..8).map(|_| {
        let lazy = lazy.clone();
        tokio::spawn(async move { lazy.try_get().await })
    });
    for get in gets {
        assert!(matches!(get.await.unwrap(), Err(LoadError::Panicked)));
    }
    assert!(calls.count() <= 8, "{} calls for 8 gets", calls.count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_woken_by_a_new_value_reads_that_value() {
    let lazy = AsyncLazy::new(|| async { 0_u32 });
    let mut updates = lazy.subscribe();
    let setter = {
        let lazy = lazy.clone();
        std::thread::spawn(move || {
            for value in 1..=500 {
                lazy.set(value);
                std::thread::yield_now();
            }
        })
    };
    let mut seen = 0;
    while seen < 500 {
        if updates.changed().await.is_err() {
            break;
        }
        let announced = updates.borrow_and_update().as_deref().copied().unwrap();
        let current = *lazy.peek().unwrap();
        assert!(
            current >= announced,
            "woken for {announced}, the lazy still held {current}"
        );
        seen = announced;
    }
    setter.join().unwrap();
}
