//! The hit path: `get` of a present key, side by side with the peers, on 1 to 8 threads.
//!
//! `cargo bench --bench get`. Every peer holds `u64 -> u64`, 2^16 entries, read in a
//! pseudo-random order, each with its own default hasher. Every group reads on spawned
//! threads, never the bench's main thread, since that is where a service reads its cache
//! (tokio workers, thread pools). `get_hit` runs one thread; `get_hit_threads` runs 1, 2, 4
//! and 8 threads on one shared cache, each thread reading its own key order: on 2 cores, 4
//! and 8 oversubscribe and show how each peer behaves when a lock holder is descheduled.
//! `get_hit_sizes` sweeps the size from 2^10 to 2^22 entries (half-full caches), where a hit
//! pays for every cache line it touches once the cache outgrows the CPU's caches. The
//! unsynchronized `HashMap` is the limit: it is only read, so it needs no lock at all.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

mod peers;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Entries every peer holds.
const ENTRIES: u64 = 1 << 16;
/// Lookups per measured iteration and thread.
const BATCH: usize = 1_024;
/// Thread counts of `get_hit_threads`.
const THREADS: [usize; 4] = [1, 2, 4, 8];
/// Sizes of `get_hit_sizes`, as powers of two.
const SIZES: [u32; 5] = [10, 13, 16, 20, 22];
/// The peers `get_hit_sizes` sweeps: the fastest, and the limit.
const SWEPT: [&str; 3] = ["ttlcache", "quick_cache", "hashmap"];
/// Lookups per iteration of `get_hit_sizes`, uniformly random (with repeats): enough that, in
/// a large cache, most miss the CPU's caches left by the iteration before.
const SWEEP_KEYS: usize = 1 << 16;

/// Reads every key of `keys` from `get` `iterations` times on a spawned thread, and returns
/// the time the reads took there.
fn on_a_spawned_thread(iterations: u64, keys: &[u64], get: impl Fn(u64) + Sync) -> Duration {
    peers::timed_on_threads(1, |_| {
        for _ in 0..iterations {
            for &key in keys {
                get(black_box(key));
            }
        }
    })
}

/// Benches hits of each of `caches`, filled with `ENTRIES` keys, as the group `group`.
fn filled_hits(c: &mut Criterion, group: &str, caches: Vec<(&str, ttlcache::TtlCache<u64, u64>)>) {
    let keys = peers::uniform_keys(0x2545_F491_4F6C_DD1D, BATCH, ENTRIES);
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, cache) in caches {
        for key in 0..ENTRIES {
            cache.insert(key, key);
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                on_a_spawned_thread(iterations, &keys, |key| {
                    black_box(cache.get(&key));
                })
            })
        });
    }
    group.finish();
}

fn filled_peers() -> Vec<(&'static str, Box<dyn peers::Peer>)> {
    let mut all = peers::all(2 * ENTRIES);
    for (name, peer) in &mut all {
        peers::fill(name, peer, ENTRIES);
    }
    all
}

fn get_hit(c: &mut Criterion) {
    let keys = peers::uniform_keys(0x2545_F491_4F6C_DD1D, BATCH, ENTRIES);
    let mut group = c.benchmark_group("get_hit");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, peer) in filled_peers() {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                on_a_spawned_thread(iterations, &keys, |key| {
                    black_box(peer.get(key));
                })
            })
        });
    }
    group.finish();
}

fn get_hit_sizes(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_hit_sizes");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(SWEEP_KEYS as u64));
    for bits in SIZES {
        let entries = 1u64 << bits;
        let keys = peers::uniform_keys(0x2545_F491_4F6C_DD1D, SWEEP_KEYS, entries);
        for (name, mut peer) in peers::all(2 * entries) {
            if !SWEPT.contains(&name) {
                continue;
            }
            peers::fill(name, &mut peer, entries);
            group.bench_function(BenchmarkId::new(name, format!("2^{bits}")), |b| {
                b.iter_custom(|iterations| {
                    on_a_spawned_thread(iterations, &keys, |key| {
                        black_box(peer.get(key));
                    })
                })
            });
        }
    }
    group.finish();
}

fn get_hit_threads(c: &mut Criterion) {
    let keys: Vec<Vec<u64>> = (0..THREADS[THREADS.len() - 1] as u64)
        .map(|thread| peers::uniform_keys(0x9E37_79B9_7F4A_7C15 ^ thread, BATCH, ENTRIES))
        .collect();
    let mut group = c.benchmark_group("get_hit_threads");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, peer) in filled_peers() {
        for threads in THREADS {
            group.throughput(Throughput::Elements((threads * BATCH) as u64));
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iterations| {
                    peers::timed_on_threads(threads, |thread| {
                        for _ in 0..iterations {
                            for &key in &keys[thread] {
                                black_box(peer.get(black_box(key)));
                            }
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

/// An `Expiry` that overrides creation only, as most do.
struct OnCreate;

impl ttlcache::Expiry<u64, u64> for OnCreate {
    fn expire_after_create(&self, _: &u64, value: &u64, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(3600 + value % 60))
    }
}

/// An `Expiry` whose hits move the deadline too (a sliding lifetime).
struct OnRead;

impl ttlcache::Expiry<u64, u64> for OnRead {
    fn expire_after_create(&self, _: &u64, _: &u64, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
    fn expire_after_read(&self, _: &u64, _: &u64, _: Instant, _: Duration) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

/// What an `Expiry` costs a hit: none, one that does not override `expire_after_read` (the
/// target: no slower than none), and one that does (one call per hit). Every cache has a
/// time to live, so that each hit reads the clock alike.
fn get_hit_expiry(c: &mut Criterion) {
    let builder = || {
        ttlcache::TtlCache::<u64, u64>::builder()
            .max_capacity(2 * ENTRIES)
            .time_to_live(Duration::from_secs(3600))
    };
    let caches = vec![
        ("no_expiry", builder().build().unwrap()),
        (
            "expiry_create_only",
            builder().expire_after(OnCreate).build().unwrap(),
        ),
        (
            "expiry_on_read",
            builder().expire_after(OnRead).build().unwrap(),
        ),
    ];
    filled_hits(c, "get_hit_expiry", caches);
}

/// What feature `metrics` costs a hit: an unnamed cache beside a named one that the reporter
/// thread reads every second into an installed Prometheus recorder. Built without the feature,
/// only the unnamed cache runs: compare the two builds' `unnamed` too (BENCHMARKS.md).
fn get_hit_metrics(c: &mut Criterion) {
    let builder = || {
        ttlcache::TtlCache::<u64, u64>::builder()
            .max_capacity(2 * ENTRIES)
            .time_to_live(Duration::from_secs(3600))
    };
    #[allow(unused_mut, reason = "the named cache exists only with the feature")]
    let mut caches = vec![("unnamed", builder().build().unwrap())];
    #[cfg(feature = "metrics")]
    {
        let exporter = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .unwrap();
        caches.push(("named_reported", builder().name("bench").build().unwrap()));
        // The reporter must be reporting into the recorder while the hits run.
        let (_, cache) = &caches[1];
        cache.insert(0, 0);
        ttlcache::metrics::report();
        assert!(
            exporter
                .render()
                .contains(r#"ttlcache_entries{cache="bench"} 1"#)
        );
    }
    filled_hits(c, "get_hit_metrics", caches);
}

criterion_group!(
    benches,
    get_hit,
    get_hit_threads,
    get_hit_expiry,
    get_hit_sizes,
    get_hit_metrics
);
criterion_main!(benches);
