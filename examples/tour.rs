//! A tour of what `ttlcache` does, printing what happens and the stats at the end.
//!
//! `cargo run --release --example tour`

use std::{
    sync::{
        Arc, Barrier,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use ttlcache::{ManualClock, RemovalCause, TtlCache};

fn main() {
    expiry();
    capacity();
    single_flight();
    async_loads();
}

/// Entries vanish exactly at their deadline; reads with a time to idle keep them alive.
fn expiry() {
    println!("== expiry: exact, on the cache's clock");
    let clock = ManualClock::new();
    let sessions = TtlCache::builder()
        .time_to_live(Duration::from_secs(30 * 60))
        .time_to_idle(Duration::from_secs(5 * 60))
        .clock(clock.clone())
        .build()
        .unwrap();
    sessions.insert("session:ada".to_string(), "user 1");
    sessions.insert_with_ttl("otp:ada".to_string(), "493817", Duration::from_secs(30));

    clock.advance(Duration::from_secs(29));
    println!(
        "  29s: otp {:?}, session {:?}",
        sessions.get("otp:ada"),
        sessions.get("session:ada")
    );
    clock.advance(Duration::from_secs(1));
    println!(
        "  30s: otp {:?} (its own 30s TTL ended)",
        sessions.get("otp:ada")
    );
    clock.advance(Duration::from_secs(4 * 60 + 58));
    println!(
        "  5m28s: session {:?} (idle 4m59s since the read at 29s: the read keeps it)",
        sessions.get("session:ada")
    );
    clock.advance(Duration::from_secs(5 * 60));
    println!(
        "  10m28s: session {:?} (idle for 5m: gone)",
        sessions.get("session:ada")
    );
    println!("  stats: {:?}\n", sessions.stats());
}

/// A hard capacity bound, a policy that keeps what was read, and a listener that hears why.
fn capacity() {
    println!("== capacity: a hard bound, and a listener that hears every removal");
    let removed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&removed);
    let cache = TtlCache::builder()
        .max_capacity(3)
        .eviction_listener(move |key: u32, _value: String, cause: RemovalCause| {
            log.lock().unwrap().push((key, cause));
        })
        .build()
        .unwrap();
    for key in 1..=3 {
        cache.insert(key, format!("page {key}"));
    }
    cache.get(&1); // read: the policy gives it a second chance
    cache.insert(4, "page 4".to_string());
    cache.insert(2, "page 2, back".to_string());
    cache.remove(&1);
    println!("  held: {:?}", sorted_keys(&cache));
    println!("  removed: {:?}", removed.lock().unwrap());
    println!(
        "  weighted_size {} <= max_capacity 3\n",
        cache.weighted_size()
    );
}

fn sorted_keys(cache: &TtlCache<u32, String>) -> Vec<u32> {
    let mut keys: Vec<u32> = cache.iter().map(|(key, _)| key).collect();
    keys.sort_unstable();
    keys
}

/// A thousand threads asking for one missing key cause one computation.
fn single_flight() {
    println!("== single flight: 64 threads, one missing key, one computation");
    let cache = TtlCache::new(1_000, Duration::from_secs(60));
    let computations = AtomicUsize::new(0);
    let barrier = Barrier::new(64);
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| {
                barrier.wait();
                cache.get_or_insert_with("report", || {
                    computations.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(50)); // an expensive query
                    "42 rows".to_string()
                })
            });
        }
    });
    println!(
        "  computations: {}, all 64 answered in {:?}",
        computations.load(Ordering::Relaxed),
        started.elapsed()
    );
    let result = cache.try_get_or_insert_with("flaky", || Err::<String, _>("backend down"));
    println!("  an error is returned, not cached: {result:?}");
    println!("  stats: {:?}\n", cache.stats());
}

/// The same engine for tasks: a cancelled caller hands its load over.
fn async_loads() {
    println!("== async: get_or_load, with a cancelled leader");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache: TtlCache<u32, String> = TtlCache::new(100, Duration::from_secs(60));
        let impatient = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get_or_load(7, async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "never".to_string()
            }),
        )
        .await;
        println!("  the first caller gave up: {}", impatient.is_err());
        let value = cache
            .get_or_load(7, async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                "loaded by the next caller".to_string()
            })
            .await;
        println!("  the next caller loads it itself: {value:?}");
        println!("  stats: {:?}", cache.stats());
    });
}
