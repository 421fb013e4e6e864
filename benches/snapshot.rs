//! Size and time of a snapshot of a million u64 → u64 entries with a time to live, through
//! serde_json and postcard: `cargo bench --bench snapshot --features serde`.
//!
//! A benchmark binary, not criterion: each step runs a handful of times on a million entries,
//! and the median is printed.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use ttlcache::{CacheSnapshot, TtlCache};

const ENTRIES: u64 = 1_000_000;
const RUNS: usize = 5;

type Snapshot = CacheSnapshot<u64, u64>;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too, so a quick
    // pass is made there.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let entries = if quick { 1_000 } else { ENTRIES };
    let cache = full_cache(entries);
    println!("{entries} u64 -> u64 entries with a time to live, median of {RUNS} runs");

    let snapshot = report("snapshot()", "", || (), |()| cache.snapshot());
    assert_eq!(snapshot.len() as u64, entries);

    let json = report(
        "serde_json::to_vec",
        "",
        || (),
        |()| serde_json::to_vec(&snapshot).unwrap(),
    );
    let note = size(json.len(), entries);
    report(
        "serde_json::from_slice",
        &note,
        || (),
        |()| serde_json::from_slice::<Snapshot>(&json).unwrap(),
    );
    let binary = report(
        "postcard::to_allocvec",
        "",
        || (),
        |()| postcard::to_allocvec(&snapshot).unwrap(),
    );
    let note = size(binary.len(), entries);
    report(
        "postcard::from_bytes",
        &note,
        || (),
        |()| postcard::from_bytes::<Snapshot>(&binary).unwrap(),
    );

    let (_, restored) = report(
        "restore() into an empty cache",
        "",
        || (empty_cache(entries), snapshot.clone()),
        |(fresh, snapshot)| {
            let restored = fresh.restore(snapshot);
            (fresh, restored)
        },
    );
    println!("restored {restored} of {entries}");

    let pairs: Vec<(u64, u64)> = cache.iter().collect();
    report(
        "insert() of each, for comparison",
        "",
        || (empty_cache(entries), pairs.clone()),
        |(fresh, pairs)| {
            for (key, value) in pairs {
                fresh.insert(key, value);
            }
            fresh
        },
    );
}

/// A cache of twice `entries`: each shard has room for twice its average share, so the
/// entries fit however unevenly they spread.
fn empty_cache(entries: u64) -> TtlCache<u64, u64> {
    TtlCache::builder()
        .max_capacity(entries * 2)
        .time_to_live(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn full_cache(entries: u64) -> TtlCache<u64, u64> {
    let cache = empty_cache(entries);
    for key in 0..entries {
        cache.insert(key.wrapping_mul(0x9E37_79B9_7F4A_7C15), key);
    }
    cache
}

/// Runs `step` on what `setup` makes, [`RUNS`] times; prints the median time of `step`, and
/// returns its last result.
fn report<I, T>(
    name: &str,
    note: &str,
    mut setup: impl FnMut() -> I,
    mut step: impl FnMut(I) -> T,
) -> T {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        drop(last.take());
        let input = setup();
        let started = Instant::now();
        let result = black_box(step(input));
        times.push(started.elapsed());
        last = Some(result);
    }
    times.sort();
    println!(
        "{name:<32} {:>9.1} ms  {note}",
        times[RUNS / 2].as_secs_f64() * 1e3
    );
    last.expect("RUNS > 0")
}

fn size(bytes: usize, entries: u64) -> String {
    let per_entry = bytes as f64 / entries as f64;
    format!(
        "{:.1} MB, {per_entry:.1} bytes an entry",
        bytes as f64 / 1e6
    )
}
