//! Memory: bytes per entry beyond the key and the value, for 1M `u64 -> u64` entries.
//!
//! `cargo bench --bench memory`. A counting global allocator measures what each cache holds
//! on the heap after a million distinct inserts into a cache of that capacity, with a time to
//! live where the peer has one (quick_cache, dashmap and `HashMap` have none). The bytes are
//! divided by the entries the peer still holds, and the 16 bytes of key and value taken off.

use std::{alloc::System, cell::RefCell, collections::HashMap, hint::black_box, time::Duration};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use ttlcache::TtlCache;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ENTRIES: u64 = 1_000_000;
const TTL: Duration = Duration::from_secs(3_600);
const KEY_AND_VALUE: f64 = 16.0;

/// Builds a peer, fills it, and reports its heap bytes per entry held.
fn measure<C>(
    name: &str,
    build: impl FnOnce() -> C,
    fill: impl Fn(&C, u64),
    len: impl Fn(&C) -> u64,
) {
    let region = Region::new(ALLOCATOR);
    let cache = build();
    (0..ENTRIES).for_each(|key| fill(&cache, key));
    let change = region.change();
    let held = change.bytes_allocated as f64 - change.bytes_deallocated as f64;
    let entries = len(&cache);
    let per_entry = held / entries as f64 - KEY_AND_VALUE;
    println!(
        "{name:<14} {entries:>9} entries {per_entry:>7.1} bytes per entry beyond key and value"
    );
    black_box(cache);
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to choose.
    println!("memory: {ENTRIES} inserts of distinct u64 keys, capacity {ENTRIES}");
    measure(
        "ttlcache_ttl",
        || {
            TtlCache::builder()
                .max_capacity(ENTRIES)
                .time_to_live(TTL)
                .build()
                .unwrap()
        },
        |cache, key| cache.insert(key, key),
        |cache| cache.len() as u64,
    );
    measure(
        "ttlcache",
        || TtlCache::builder().max_capacity(ENTRIES).build().unwrap(),
        |cache, key| cache.insert(key, key),
        |cache| cache.len() as u64,
    );
    measure(
        "quick_cache",
        || quick_cache::sync::Cache::new(ENTRIES as usize),
        |cache, key| cache.insert(key, key),
        |cache| cache.len() as u64,
    );
    measure(
        "moka_ttl",
        || {
            moka::sync::Cache::builder()
                .max_capacity(ENTRIES)
                .time_to_live(TTL)
                .build()
        },
        |cache, key| cache.insert(key, key),
        |cache| {
            cache.run_pending_tasks();
            cache.entry_count()
        },
    );
    measure(
        "mini_moka_ttl",
        || {
            mini_moka::sync::Cache::builder()
                .max_capacity(ENTRIES)
                .time_to_live(TTL)
                .build()
        },
        |cache, key| cache.insert(key, key),
        |cache| cache.entry_count(),
    );
    measure(
        "dashmap",
        dashmap::DashMap::new,
        |cache, key| {
            cache.insert(key, key);
        },
        |cache| cache.len() as u64,
    );
    measure(
        "hashmap",
        || RefCell::new(HashMap::new()),
        |map, key| {
            map.borrow_mut().insert(key, key);
        },
        |map| map.borrow().len() as u64,
    );
}
