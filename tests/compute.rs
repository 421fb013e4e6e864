//! `compute` and `upsert`: atomic read-modify-write of one key, and how they meet single
//! flight, the weigher, capacity, expiry and the listener.

use std::{
    sync::{Arc, Barrier, Mutex},
    thread,
    time::Duration,
};

use ttlcache::{ManualClock, Op, RemovalCause, TtlCache};

type Log = Arc<Mutex<Vec<(u32, u64, RemovalCause)>>>;

fn logged() -> (TtlCache<u32, u64>, Log) {
    let log = Log::default();
    let sink = Arc::clone(&log);
    let cache = TtlCache::builder()
        .eviction_listener(move |key, value, cause| sink.lock().unwrap().push((key, value, cause)))
        .build()
        .unwrap();
    (cache, log)
}

#[test]
fn eight_threads_of_ten_thousand_upserts_sum_exactly() {
    const THREADS: u64 = 8;
    const UPSERTS: u64 = 10_000;
    let cache = TtlCache::<u32, u64>::builder().build().unwrap();
    let start = Arc::new(Barrier::new(THREADS as usize));
    thread::scope(|scope| {
        for thread in 0..THREADS {
            let (cache, start) = (&cache, Arc::clone(&start));
            scope.spawn(move || {
                start.wait();
                for i in 0..UPSERTS {
                    let key = ((thread + i) % 4) as u32;
                    cache.upsert(key, |count| count.copied().unwrap_or(0) + 1);
                }
            });
        }
    });
    let total: u64 = (0..4).map(|key| cache.get(&key).unwrap()).sum();
    assert_eq!(total, THREADS * UPSERTS);
}

#[test]
fn keep_put_and_remove_do_what_insert_and_remove_would() {
    let (cache, log) = logged();
    assert_eq!(
        cache.compute(1, |old| {
            assert_eq!(old, None);
            Op::Keep
        }),
        None
    );
    assert!(cache.is_empty(), "Keep of an absent key adds nothing");
    assert_eq!(cache.compute(1, |_| Op::Put(10)), Some(10));
    assert_eq!(cache.compute(1, |old| Op::Put(old.unwrap() + 1)), Some(11));
    assert_eq!(cache.compute(1, |_| Op::Keep), Some(11));
    assert_eq!(cache.compute(1, |_| Op::Remove), None);
    assert_eq!(cache.get(&1), None);
    assert_eq!(
        *log.lock().unwrap(),
        [
            (1, 10, RemovalCause::Replaced),
            (1, 11, RemovalCause::Explicit)
        ]
    );
    assert_eq!(cache.stats().inserts, 2);
}

/// A cache whose entries live ten seconds, on a clock the test moves.
fn living_ten_seconds() -> (TtlCache<u32, u64>, ManualClock) {
    let clock = ManualClock::new();
    let cache = TtlCache::builder()
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    (cache, clock)
}

#[test]
fn f_never_sees_an_expired_value_and_a_put_restarts_the_time_to_live() {
    let (cache, clock) = living_ten_seconds();
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        cache.upsert(1, |old| {
            assert_eq!(old, None);
            2
        }),
        2
    );
    clock.advance(Duration::from_secs(9));
    assert_eq!(cache.get(&1), Some(2), "a fresh time to live from the put");
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn a_put_over_a_live_entry_restarts_its_time_to_live() {
    let (cache, clock) = living_ten_seconds();
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(5));
    assert_eq!(cache.upsert(1, |old| old.unwrap() + 1), 2);
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        cache.get(&1),
        Some(2),
        "ten seconds from the put, not from the insert"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn a_put_goes_through_the_weigher_and_the_capacity() {
    let cache = TtlCache::builder()
        .max_capacity(10)
        .shards(1)
        .weigher(|_key: &u32, value: &Vec<u8>| value.len() as u32)
        .build()
        .unwrap();
    assert_eq!(cache.compute(1, |_| Op::Put(vec![0; 6])), Some(vec![0; 6]));
    assert_eq!(cache.compute(2, |_| Op::Put(vec![0; 6])), Some(vec![0; 6]));
    assert!(cache.weighted_size() <= 10);
    // Heavier than the whole shard: not stored, and `compute` says so; `upsert` still
    // returns what it made.
    assert_eq!(cache.compute(3, |_| Op::Put(vec![0; 11])), None);
    assert_eq!(cache.upsert(3, |_| vec![0; 11]).len(), 11);
    assert!(!cache.contains_key(&3));
}

#[test]
fn a_panicking_f_leaves_the_entry_as_it_was_and_the_cache_usable() {
    let (cache, log) = logged();
    cache.insert(1, 1);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.compute(1, |_| -> Op<u64> { panic!("f fails") })
    }));
    assert!(unwound.is_err());
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.upsert(1, |old| old.unwrap() + 1), 2);
    assert_eq!(*log.lock().unwrap(), [(1, 1, RemovalCause::Replaced)]);
}

/// A `get_or_load` of key 1 in flight, held until the sender is used; it answers 100.
async fn pending_load(
    cache: &TtlCache<u32, u64>,
) -> (
    tokio::task::JoinHandle<u64>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let load = tokio::spawn({
        let cache = cache.clone();
        async move {
            cache
                .get_or_load(1, async {
                    released.await.unwrap();
                    100
                })
                .await
        }
    });
    while cache.stats().misses == 0 {
        tokio::task::yield_now().await;
    }
    (load, release)
}

#[tokio::test]
async fn a_put_detaches_a_pending_load_which_still_answers_its_caller() {
    let cache = TtlCache::<u32, u64>::builder().build().unwrap();
    let (load, release) = pending_load(&cache).await;
    assert_eq!(
        cache.compute(1, |old| {
            assert_eq!(old, None);
            Op::Put(7)
        }),
        Some(7)
    );
    release.send(()).unwrap();
    assert_eq!(load.await.unwrap(), 100, "the load answers its caller");
    assert_eq!(
        cache.get(&1),
        Some(7),
        "but never overwrites what compute did"
    );
}

#[tokio::test]
async fn a_keep_leaves_a_pending_load_alone() {
    let cache = TtlCache::<u32, u64>::builder().build().unwrap();
    let (load, release) = pending_load(&cache).await;
    assert_eq!(cache.compute(1, |_| Op::Keep), None);
    release.send(()).unwrap();
    assert_eq!(load.await.unwrap(), 100);
    assert_eq!(cache.get(&1), Some(100), "the load was stored");
}

#[tokio::test]
async fn a_remove_detaches_a_pending_load() {
    let cache = TtlCache::<u32, u64>::builder().build().unwrap();
    let (load, release) = pending_load(&cache).await;
    assert_eq!(cache.compute(1, |_| Op::Remove), None);
    release.send(()).unwrap();
    assert_eq!(load.await.unwrap(), 100);
    assert_eq!(cache.get(&1), None, "the detached load was not stored");
}

/// A value whose `Drop` reads the cache it was in: dropped under the shard lock, it would
/// deadlock.
struct ReadsTheCacheWhenDropped(Arc<std::sync::OnceLock<TtlCache<u32, ReadsTheCacheWhenDropped>>>);

impl Clone for ReadsTheCacheWhenDropped {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl Drop for ReadsTheCacheWhenDropped {
    fn drop(&mut self) {
        if let Some(cache) = self.0.get() {
            cache.peek(&0);
        }
    }
}

#[test]
fn replaced_and_removed_values_are_dropped_after_the_lock() {
    let slot = Arc::new(std::sync::OnceLock::new());
    let cache = TtlCache::builder().shards(1).build().unwrap();
    slot.set(cache.clone()).ok().unwrap();
    let value = || ReadsTheCacheWhenDropped(Arc::clone(&slot));
    cache.compute(1, |_| Op::Put(value()));
    cache.compute(1, |_| Op::Put(value()));
    cache.upsert(1, |_| value());
    cache.compute(1, |_| Op::Remove);
    assert!(cache.is_empty());
}
