//! The hit path in instructions, which do not swing with the machine's load as timings do.
//!
//! Fills a cache of 2^16 `u64` entries (with a fixed `DefaultHasher`, so that every run
//! probes alike), then makes `GETS` pseudo-random hits. Run it under cachegrind twice, with
//! `GETS` hits and with none, and divide the difference by `GETS`:
//!
//! ```sh
//! cargo bench --bench hit_instructions --no-run
//! BIN=$(ls target/release/deps/hit_instructions-* | grep -v '\.d$')
//! for gets in 0 1000000; do
//!     valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null $BIN $gets ttl
//! done
//! ```
//!
//! `MODE` is one of `plain` (no time to live), `ttl` (an hour), `create` (a time to live and
//! an `Expiry` that overrides only `expire_after_create`) and `read` (one that also
//! overrides `expire_after_read`). Without arguments (as `cargo bench` runs it) it times
//! 10^6 hits of each mode, roughly.

// A benchmark binary: its items need no docs.
#![allow(missing_docs)]

use std::{
    collections::hash_map::DefaultHasher,
    hash::BuildHasherDefault,
    hint::black_box,
    time::{Duration, Instant},
};

use ttlcache::{Expiry, TtlCache};

const ENTRIES: u64 = 1 << 16;
const HOUR: Duration = Duration::from_secs(3600);

struct OnCreate;

impl Expiry<u64, u64> for OnCreate {
    fn expire_after_create(&self, _: &u64, _: &u64, _: Instant) -> Option<Duration> {
        Some(HOUR)
    }
}

struct OnRead;

impl Expiry<u64, u64> for OnRead {
    fn expire_after_create(&self, _: &u64, _: &u64, _: Instant) -> Option<Duration> {
        Some(HOUR)
    }
    fn expire_after_read(&self, _: &u64, _: &u64, _: Instant, _: Duration) -> Option<Duration> {
        Some(HOUR)
    }
}

type Cache = TtlCache<u64, u64, BuildHasherDefault<DefaultHasher>>;

fn filled(mode: &str) -> Cache {
    let builder = TtlCache::builder()
        .max_capacity(2 * ENTRIES)
        .hasher(BuildHasherDefault::<DefaultHasher>::default());
    let cache = match mode {
        "plain" => builder.build(),
        "ttl" => builder.time_to_live(HOUR).build(),
        "create" => builder.time_to_live(HOUR).expire_after(OnCreate).build(),
        "read" => builder.time_to_live(HOUR).expire_after(OnRead).build(),
        other => panic!("no mode {other:?}: plain, ttl, create or read"),
    }
    .expect("valid settings");
    for key in 0..ENTRIES {
        cache.insert(key, key);
    }
    cache
}

fn hits(cache: &Cache, gets: u64) {
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        black_box(cache.get(&(x % ENTRIES)));
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    if let [gets, mode] = args.as_slice() {
        let gets = gets.parse().expect("GETS is a count");
        return hits(&filled(mode), gets);
    }
    for mode in ["plain", "ttl", "create", "read"] {
        let cache = filled(mode);
        let started = Instant::now();
        hits(&cache, 1_000_000);
        println!(
            "{mode:>6}: {:.1} ns per hit",
            started.elapsed().as_nanos() as f64 / 1e6
        );
    }
}
