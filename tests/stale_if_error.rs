//! `stale_if_error`: a failed load of a key whose entry expired at most that long ago answers
//! with the kept value, on a `ManualClock` (SPEC "Stale if error").

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use ttlcache::{BuildError, LoadError, LoadingCache, ManualClock, TtlCache};

/// Counts loader calls; clones share the count.
type Calls = Arc<AtomicUsize>;

const TTL: Duration = Duration::from_secs(10);
const KEPT: Duration = Duration::from_secs(60);

/// What the backend does with the next load.
#[derive(Clone, Default)]
struct Backend(Arc<AtomicU8>);

impl Backend {
    const UP: u8 = 0;
    const FAILING: u8 = 1;
    const PANICKING: u8 = 2;
    const HANGING: u8 = 3;

    fn set(&self, mode: u8) {
        self.0.store(mode, Ordering::SeqCst);
    }

    /// The value of `key` (its loads so far, times 100, plus the key), or the failure asked for.
    async fn load(&self, key: u64, calls: &Calls) -> Result<u64, String> {
        let before = calls.fetch_add(1, Ordering::SeqCst) as u64;
        match self.0.load(Ordering::SeqCst) {
            Self::FAILING => Err("backend down".to_string()),
            Self::PANICKING => panic!("the loader panicked"),
            Self::HANGING => std::future::pending().await,
            _ => Ok(before * 100 + key),
        }
    }
}

/// A loading cache over `backend` with a time to live of [`TTL`] and `stale_if_error`
/// [`KEPT`], on `clock`; `error_ttl` if given.
fn cache(
    backend: &Backend,
    calls: &Calls,
    clock: &ManualClock,
    error_ttl: Option<Duration>,
) -> LoadingCache<u64, u64, String> {
    let (backend, calls) = (backend.clone(), Arc::clone(calls));
    let builder = TtlCache::builder()
        .clock(clock.clone())
        .time_to_live(TTL)
        .stale_if_error(KEPT)
        .load_timeout(Duration::from_secs(1));
    let builder = match error_ttl {
        Some(error_ttl) => builder.error_ttl(error_ttl),
        None => builder,
    };
    builder
        .build_loading(move |key: u64| {
            let (backend, calls) = (backend.clone(), Arc::clone(&calls));
            async move { backend.load(key, &calls).await }
        })
        .unwrap()
}

#[tokio::test]
async fn a_failed_load_within_the_window_answers_the_kept_value_and_past_it_the_error() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, None);
    assert_eq!(cache.get(&7).await, Ok(7));
    clock.advance(TTL + Duration::from_secs(5));
    assert_eq!(cache.cache().get(&7), None, "reads never see a kept entry");
    assert_eq!(cache.get_if_present(&7), None);

    backend.set(Backend::FAILING);
    assert_eq!(
        cache.get(&7).await,
        Ok(7),
        "the failure is answered with the kept value"
    );
    assert_eq!(
        cache.get(&7).await,
        Ok(7),
        "not stored anew: the next get loads again"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = cache.stats();
    assert_eq!((stats.stale_served, stats.load_failures), (2, 2));

    clock.advance(KEPT);
    let past = cache.get(&7).await;
    assert!(
        matches!(&past, Err(LoadError::Failed(error)) if error.as_str() == "backend down"),
        "past the window the error reaches the caller: {past:?}"
    );
    assert_eq!(cache.stats().stale_served, 2);

    backend.set(Backend::UP);
    assert_eq!(
        cache.get(&7).await,
        Ok(407),
        "a success replaces it as before"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_or_panicking_load_answers_the_kept_value_too() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, None);
    assert_eq!(cache.get(&1).await, Ok(1));
    clock.advance(TTL);
    backend.set(Backend::PANICKING);
    assert_eq!(cache.get(&1).await, Ok(1));
    backend.set(Backend::HANGING);
    assert_eq!(
        cache.get(&1).await,
        Ok(1),
        "load_timeout is a failure like any other"
    );
    assert_eq!(cache.stats().stale_served, 2);
}

#[tokio::test]
async fn every_waiter_of_a_failed_load_gets_the_kept_value_from_one_loader_call() {
    let release = Arc::new(Notify::new());
    let calls = Calls::default();
    let failing = Arc::new(AtomicU8::new(0));
    let clock = ManualClock::new();
    let cache = {
        let (release, calls, failing) = (
            Arc::clone(&release),
            Arc::clone(&calls),
            Arc::clone(&failing),
        );
        TtlCache::builder()
            .clock(clock.clone())
            .time_to_live(TTL)
            .stale_if_error(KEPT)
            .build_loading(move |key: u64| {
                let (release, calls, failing) = (
                    Arc::clone(&release),
                    Arc::clone(&calls),
                    Arc::clone(&failing),
                );
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if failing.load(Ordering::SeqCst) == 0 {
                        return Ok(key);
                    }
                    release.notified().await;
                    Err("backend down".to_string())
                }
            })
            .unwrap()
    };
    assert_eq!(cache.get(&5).await, Ok(5));
    clock.advance(TTL);
    failing.store(1, Ordering::SeqCst);
    let gets: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&5).await })
        })
        .collect();
    while calls.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    release.notify_one();
    for get in gets {
        assert_eq!(get.await.unwrap(), Ok(5));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one load for the ten callers"
    );
    assert_eq!(
        cache.stats().stale_served,
        1,
        "one failed load answered stale"
    );
}

#[tokio::test]
async fn with_error_ttl_the_kept_value_answers_without_a_load_until_it_passes() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, Some(Duration::from_secs(20)));
    assert_eq!(cache.get(&2).await, Ok(2));
    clock.advance(TTL);
    backend.set(Backend::FAILING);
    assert_eq!(cache.get(&2).await, Ok(2));
    assert_eq!(
        cache.get(&2).await,
        Ok(2),
        "the remembered failure answers stale"
    );
    assert_eq!(
        cache.get_all([2]).await,
        Ok(HashMap::from([(2, 2)])),
        "get_all too"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "no loader call while the failure is remembered"
    );
    assert_eq!(cache.stats().stale_served, 3);
    clock.advance(Duration::from_secs(20));
    assert_eq!(cache.get(&2).await, Ok(2), "retried once error_ttl passed");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_invalidated_key_has_nothing_kept() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, None);
    assert_eq!(cache.get(&3).await, Ok(3));
    clock.advance(TTL);
    cache.invalidate(&3);
    backend.set(Backend::FAILING);
    assert!(cache.get(&3).await.is_err());
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn a_batch_loaders_not_found_removes_the_kept_value_and_a_failed_batch_is_answered_stale() {
    let clock = ManualClock::new();
    let failing = Arc::new(AtomicU8::new(0));
    let cache = {
        let failing = Arc::clone(&failing);
        TtlCache::builder()
            .clock(clock.clone())
            .time_to_live(TTL)
            .stale_if_error(KEPT)
            .build_batch_loading(move |keys: Vec<u64>| {
                let mode = failing.load(Ordering::SeqCst);
                async move {
                    match mode {
                        0 => Ok(keys.into_iter().map(|key| (key, key)).collect()),
                        1 => Ok(HashMap::new()),
                        _ => Err("backend down".to_string()),
                    }
                }
            })
            .unwrap()
    };
    assert_eq!(cache.get_all([1, 2]).await.unwrap().len(), 2);
    clock.advance(TTL);
    failing.store(2, Ordering::SeqCst);
    assert_eq!(
        cache.get_all([1, 2]).await,
        Ok(HashMap::from([(1, 1), (2, 2)])),
        "a failed batch answers each key's kept value"
    );
    failing.store(1, Ordering::SeqCst);
    assert_eq!(cache.get(&1).await, Err(LoadError::NotFound));
    failing.store(2, Ordering::SeqCst);
    assert!(
        cache.get(&1).await.is_err(),
        "NotFound took the kept value with it"
    );
    assert_eq!(cache.get(&2).await, Ok(2));
}

#[tokio::test]
async fn a_kept_entry_outlives_expiry_work_only_for_its_window() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, None);
    assert_eq!(cache.get(&4).await, Ok(4));
    clock.advance(TTL);
    assert_eq!(cache.cache().purge_expired(), 0, "kept for a failed load");
    assert_eq!(cache.cache().len(), 1);
    clock.advance(KEPT);
    assert_eq!(
        cache.cache().purge_expired(),
        1,
        "gone once its window passed"
    );
    assert!(cache.cache().is_empty());
}

#[tokio::test]
async fn a_zero_window_is_refused_by_name() {
    let built = TtlCache::<u64, u64>::builder()
        .stale_if_error(Duration::ZERO)
        .build_loading(|key: u64| async move { Ok::<_, String>(key) });
    assert_eq!(
        built.err(),
        Some(BuildError::ZeroDuration {
            setting: "stale_if_error"
        })
    );
}

#[tokio::test]
async fn a_write_over_a_kept_entry_is_what_a_failed_load_answers_and_retain_removes_it() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, None);
    assert_eq!(cache.get(&8).await, Ok(8));
    clock.advance(TTL);
    cache.cache().insert(8, 80);
    clock.advance(TTL);
    backend.set(Backend::FAILING);
    assert_eq!(
        cache.get(&8).await,
        Ok(80),
        "the newer write is the kept value"
    );

    let mut seen = Vec::new();
    cache.cache().retain(|key, value| {
        seen.push((*key, *value));
        true
    });
    assert!(seen.is_empty(), "retain shows live entries only");
    assert!(
        cache.cache().is_empty(),
        "and removes every expired one, kept or not"
    );
    assert!(cache.get(&8).await.is_err(), "nothing kept after it");
}

#[tokio::test]
async fn a_failed_refresh_of_a_live_entry_is_no_stale_answer() {
    let (backend, calls, clock) = (Backend::default(), Calls::default(), ManualClock::new());
    let cache = cache(&backend, &calls, &clock, None);
    assert_eq!(cache.get(&9).await, Ok(9));
    backend.set(Backend::FAILING);
    cache.refresh(&9);
    while calls.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.get(&9).await, Ok(9), "the live value stays");
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn compute_sees_a_kept_entry_as_absent_and_the_listener_hears_it_expire_once() {
    let clock = ManualClock::new();
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    let cache = TtlCache::builder()
        .clock(clock.clone())
        .time_to_live(TTL)
        .stale_if_error(KEPT)
        .eviction_listener(move |key: u64, value: u64, cause| {
            log.lock().unwrap().push((key, value, cause));
        })
        .build_loading(|key: u64| async move { Ok::<_, String>(key) })
        .unwrap();
    assert_eq!(cache.get(&6).await, Ok(6));
    clock.advance(TTL);
    let mut shown = None;
    cache.cache().compute(6, |current| {
        shown = Some(current.copied());
        ttlcache::Op::Put(60)
    });
    assert_eq!(shown, Some(None), "compute is shown nothing");
    assert_eq!(
        *heard.lock().unwrap(),
        vec![(6, 6, ttlcache::RemovalCause::Expired)],
        "the kept entry is heard once, as expired"
    );
    assert_eq!(cache.get(&6).await, Ok(60));
}
