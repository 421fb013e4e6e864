//! Writes: inserts at capacity, and Caffeine's GetPutBenchmark mix of 90% reads and 10% writes.
//!
//! `cargo bench --bench insert`. Every peer holds `u64 -> u64`. In `insert_at_capacity` each
//! measured insert is of a key never seen, into a full cache of 10,000 entries, so every one
//! evicts (dashmap and the `Mutex<HashMap>` have no bound: they only grow, and are left out).
//! In `mixed_90_10` 2^15 scrambled Zipf keys are read and written by 1 and 2 threads over a
//! capacity twice the key set, so no entry is evicted and the policy's bookkeeping is what
//! is measured. `upsert_vs_insert` rewrites 1,024 live keys with `insert` and with `upsert`.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

mod peers;

use std::{
    hint::black_box,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Inserts or operations per measured iteration and thread.
const BATCH: usize = 1_024;
/// Capacity of the caches in `insert_at_capacity`.
const CAPACITY: u64 = 10_000;
/// Keys of the mixed workload.
const MIX_KEYS: u64 = 1 << 15;
/// Length of each thread's key stream in the mixed workload.
const MIX_STREAM: usize = 1 << 16;

fn insert_at_capacity(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_at_capacity");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, peer) in peers::caches(CAPACITY) {
        if matches!(name, "dashmap" | "mutex_hashmap") {
            continue;
        }
        // Fill to capacity first, then every measured insert is of a new key and evicts.
        (0..2 * CAPACITY).for_each(|key| peer.insert(key, key));
        let next = AtomicU64::new(2 * CAPACITY);
        group.bench_function(name, |b| {
            b.iter(|| {
                let first = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                for key in first..first + BATCH as u64 {
                    peer.insert(black_box(key), key);
                }
            })
        });
    }
    group.finish();
}

fn mixed_90_10(c: &mut Criterion) {
    let streams: Vec<Vec<u64>> = (0..2)
        .map(|thread| peers::zipf_keys(0xD1B5_4A32_D192_ED03 ^ thread, MIX_STREAM, MIX_KEYS))
        .collect();
    let mut group = c.benchmark_group("mixed_90_10");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, peer) in peers::caches(2 * MIX_KEYS) {
        (0..MIX_KEYS).for_each(|rank| peer.insert(peers::scramble(rank), rank));
        peer.settle();
        for threads in [1, 2] {
            group.throughput(Throughput::Elements((threads * BATCH) as u64));
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                let cursor = AtomicU64::new(0);
                b.iter_custom(|iterations| {
                    let start = cursor.fetch_add(iterations, Ordering::Relaxed) as usize;
                    peers::timed_on_threads(threads, |thread| {
                        let stream = &streams[thread];
                        for iteration in start..start + iterations as usize {
                            let offset = iteration * BATCH % MIX_STREAM;
                            for (i, &key) in stream[offset..offset + BATCH].iter().enumerate() {
                                if i % 10 == 0 {
                                    peer.insert(black_box(key), key);
                                } else {
                                    black_box(peer.get(black_box(key)));
                                }
                            }
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

/// `upsert` (a read-modify-write under the shard lock) against `insert` of the same live keys:
/// what the atomicity costs.
fn upsert_vs_insert(c: &mut Criterion) {
    let cache = ttlcache::TtlCache::<u64, u64>::builder()
        .max_capacity(2 * CAPACITY)
        .build()
        .unwrap();
    (0..BATCH as u64).for_each(|key| cache.insert(key, key));
    let mut group = c.benchmark_group("upsert_vs_insert");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("insert", |b| {
        b.iter(|| {
            for key in 0..BATCH as u64 {
                cache.insert(black_box(key), key);
            }
        })
    });
    group.bench_function("upsert", |b| {
        b.iter(|| {
            for key in 0..BATCH as u64 {
                cache.upsert(black_box(key), |old| old.copied().unwrap_or(0) + 1);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, insert_at_capacity, mixed_90_10, upsert_vs_insert);
criterion_main!(benches);
