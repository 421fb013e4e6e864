//! The hit path and inserts at capacity, side by side with the peers, in one run.
//!
//! `cargo bench --bench cache`. Every cache holds `u64 -> u64`. The baselines show the
//! distance to the limit: an unsynchronized `HashMap` and a `Mutex<HashMap>`.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    hint::black_box,
    sync::Mutex,
    time::Duration,
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ttlcache::TtlCache;

/// Entries held by every cache in the hit benchmarks.
const ENTRIES: u64 = 100_000;
/// Lookups or inserts per measured iteration.
const BATCH: usize = 1_024;
/// Capacity of the caches in the insert benchmarks.
const CAPACITY: u64 = 10_000;

/// Keys spread over `0..ENTRIES` in a fixed pseudo-random order.
fn keys() -> Vec<u64> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    (0..BATCH)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % ENTRIES
        })
        .collect()
}

fn filled<S: BuildHasher>(cache: TtlCache<u64, u64, S>) -> TtlCache<u64, u64, S> {
    for key in 0..ENTRIES {
        cache.insert(key, key);
    }
    cache
}

fn get_hit(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("get_hit");
    group.throughput(Throughput::Elements(BATCH as u64));

    let mut lookups = |name: &str, get: &dyn Fn(u64) -> Option<u64>| {
        group.bench_function(name, |b| {
            b.iter(|| {
                for &key in &keys {
                    black_box(get(black_box(key)));
                }
            })
        });
    };

    let plain = filled(
        TtlCache::builder()
            .max_capacity(2 * ENTRIES)
            .build()
            .unwrap(),
    );
    lookups("ttlcache", &|key| plain.get(&key));
    let timed = filled(
        TtlCache::builder()
            .max_capacity(2 * ENTRIES)
            .time_to_live(Duration::from_secs(3_600))
            .build()
            .unwrap(),
    );
    lookups("ttlcache_ttl", &|key| timed.get(&key));
    let folded = filled(
        TtlCache::builder()
            .max_capacity(2 * ENTRIES)
            .hasher(foldhash::quality::RandomState::default())
            .build()
            .unwrap(),
    );
    lookups("ttlcache_foldhash", &|key| folded.get(&key));

    let quick = quick_cache::sync::Cache::new(2 * ENTRIES as usize);
    (0..ENTRIES).for_each(|key| quick.insert(key, key));
    lookups("quick_cache", &|key| quick.get(&key));

    let moka = moka::sync::Cache::new(2 * ENTRIES);
    (0..ENTRIES).for_each(|key| moka.insert(key, key));
    moka.run_pending_tasks();
    lookups("moka", &|key| moka.get(&key));

    let map: HashMap<u64, u64, RandomState> = (0..ENTRIES).map(|key| (key, key)).collect();
    lookups("hashmap", &|key| map.get(&key).copied());
    let locked = Mutex::new(map.clone());
    lookups("mutex_hashmap", &|key| {
        locked.lock().unwrap().get(&key).copied()
    });
    group.finish();
}

fn insert_at_capacity(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_at_capacity");
    group.throughput(Throughput::Elements(BATCH as u64));

    let mut inserts = |name: &str, insert: &dyn Fn(u64)| {
        // Fill to capacity first, then every measured insert is of a new key and evicts.
        (0..2 * CAPACITY).for_each(insert);
        let mut next = 2 * CAPACITY;
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    insert(black_box(next));
                    next += 1;
                }
            })
        });
    };

    let plain = TtlCache::builder().max_capacity(CAPACITY).build().unwrap();
    inserts("ttlcache", &|key| plain.insert(key, key));
    let timed = TtlCache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(Duration::from_secs(3_600))
        .build()
        .unwrap();
    inserts("ttlcache_ttl", &|key| timed.insert(key, key));
    let folded = TtlCache::builder()
        .max_capacity(CAPACITY)
        .hasher(foldhash::quality::RandomState::default())
        .build()
        .unwrap();
    inserts("ttlcache_foldhash", &|key| folded.insert(key, key));

    let quick = quick_cache::sync::Cache::new(CAPACITY as usize);
    inserts("quick_cache", &|key| quick.insert(key, key));
    let moka = moka::sync::Cache::new(CAPACITY);
    inserts("moka", &|key| moka.insert(key, key));
    group.finish();
}

criterion_group!(benches, get_hit, insert_at_capacity);
criterion_main!(benches);
