//! Coherent replicas over loopback Redis (feature `redis`):
//!
//! - latency from `invalidate_everywhere` returning to the entry gone on another replica
//!   (p50, p99, max over 5,000 invalidations);
//! - invalidations received per second, from markers pipelined by another client;
//! - `get` hit with and without coherence, side by side (criterion), and of a second plain
//!   cache, for the spread between two caches built alike.
//!
//! `cargo bench --bench coherence --features redis`. It uses `REDIS_URL` if set; otherwise it
//! starts a `redis-server` of its own on a free loopback port.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

#[path = "../examples/support/own_redis.rs"]
mod own_redis;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput};
use own_redis::OwnRedis;
use ttlcache::{TtlCache, redis::Coherence};

const ENTRIES: u64 = 1 << 16;
const BATCH: usize = 1_024;

fn main() {
    let own = std::env::var("REDIS_URL")
        .is_err()
        .then(|| OwnRedis::start().expect("a redis-server of the bench's own"));
    let url = own
        .as_ref()
        .map_or_else(|| std::env::var("REDIS_URL").unwrap(), OwnRedis::url);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = runtime.block_on(async {
        let a = healthy(&url).await;
        let b = healthy(&url).await;
        (a, b)
    });
    runtime.block_on(latency(&a, &b));
    runtime.block_on(received_per_second(&url, &b));
    let _guard = runtime.enter();
    get_hit(&b);
    drop(own);
}

async fn healthy(url: &str) -> Coherence {
    let coherence = Coherence::connect(url, "bench").await.unwrap();
    let started = Instant::now();
    while !coherence.is_healthy() {
        assert!(started.elapsed() < Duration::from_secs(10), "not healthy");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    coherence
}

fn users(coherence: &Coherence) -> TtlCache<u64, u64> {
    TtlCache::builder()
        .coherent(coherence, "users")
        .build()
        .unwrap()
}

async fn latency(a: &Coherence, b: &Coherence) {
    const INVALIDATIONS: u64 = 5_000;
    let (users_a, users_b) = (users(a), users(b));
    let mut latencies = Vec::with_capacity(INVALIDATIONS as usize);
    for key in 0..INVALIDATIONS {
        users_b.insert(key, key);
        users_a.invalidate_everywhere(&key).await.unwrap();
        let returned = Instant::now();
        while users_b.contains_key(&key) {
            std::hint::spin_loop();
        }
        latencies.push(returned.elapsed());
    }
    latencies.sort();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile) as usize];
    println!(
        "coherence/latency: {INVALIDATIONS} invalidations, from invalidate_everywhere returning \
         to the entry gone on another replica: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

async fn received_per_second(url: &str, b: &Coherence) {
    const MARKERS: u64 = 200_000;
    const PIPELINE: u64 = 1_000;
    let _users = users(b);
    let before = b.stats().received;
    let client = redis::Client::open(url).unwrap();
    let mut writer = client.get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    for first in (0..MARKERS).step_by(PIPELINE as usize) {
        let mut pipe = redis::pipe();
        for key in first..first + PIPELINE {
            pipe.set(format!("bench:inv:users:{key}"), 1).ignore();
        }
        pipe.query_async::<()>(&mut writer).await.unwrap();
    }
    let sent = started.elapsed();
    while b.stats().received - before < MARKERS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not all received"
        );
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    let received = started.elapsed();
    println!(
        "coherence/received: {MARKERS} markers pipelined by another client in {sent:?}, all \
         received in {received:?}: {:.0} invalidations/s",
        MARKERS as f64 / received.as_secs_f64()
    );
}

fn get_hit(coherent: &Coherence) {
    let keys: Vec<u64> = (0..BATCH as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ENTRIES)
        .collect();
    let plain = TtlCache::<u64, u64>::builder()
        .time_to_live(Duration::from_secs(600))
        .build()
        .unwrap();
    let with_coherence = TtlCache::<u64, u64>::builder()
        .time_to_live(Duration::from_secs(600))
        .coherent(coherent, "hits")
        .build()
        .unwrap();
    // A second plain cache shows how much two caches built alike differ (their hashers are
    // seeded apart, their memory lies elsewhere): the yardstick for the coherent one.
    let plain_again = TtlCache::<u64, u64>::builder()
        .time_to_live(Duration::from_secs(600))
        .build()
        .unwrap();
    for key in 0..ENTRIES {
        plain.insert(key, key);
        with_coherence.insert(key, key);
        plain_again.insert(key, key);
    }
    assert_eq!(with_coherence.len() as u64, ENTRIES, "stored while healthy");
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("coherence_get_hit");
    group.throughput(Throughput::Elements(BATCH as u64));
    let caches = [
        ("plain", &plain),
        ("coherent", &with_coherence),
        ("plain_again", &plain_again),
    ];
    for (name, cache) in caches {
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                for key in &keys {
                    black_box(cache.get(black_box(key)));
                }
            })
        });
    }
    group.finish();
    criterion.final_summary();
}
