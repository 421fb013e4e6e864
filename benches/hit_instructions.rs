//! The hit path in instructions, which do not swing with the machine's load as timings do.
//!
//! Fills a cache of twice 2^`BITS` entries (default 16) with 2^`BITS` `u64` entries, then
//! makes `GETS` pseudo-random hits. Run it under callgrind, counting only the hits (the
//! out-of-line `hits`), and divide by `GETS`; `--cache-sim=yes` adds simulated L1-data misses:
//!
//! ```sh
//! cargo bench --bench hit_instructions --no-run
//! BIN=$(ls -t target/release/deps/hit_instructions-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind --cache-sim=yes --toggle-collect='hit_instructions::hits*' \
//!     --callgrind-out-file=/dev/null $BIN 1000000 default 22
//! ```
//!
//! `MODE`, for ttlcache with std's `DefaultHasher` (SipHash-1-3 with fixed keys, so that every
//! run probes alike): `plain` (no time to live), `ttl` (an hour), `create` (a time to live and
//! an `Expiry` that overrides only `expire_after_create`), `read` (one that also overrides
//! `expire_after_read`). With each crate's default, randomly seeded hasher (counts move by a
//! few instructions between runs): `default` (ttlcache), `quick_cache`, `hashmap` (std's,
//! unsynchronized). `coherent` (feature `redis`) is `ttl` kept coherent through a
//! `redis-server` the bench starts, its lease checked on every hit. `insert` and
//! `quick_cache_insert` count inserts of new keys into a full
//! cache of 2^`BITS` instead (`--toggle-collect='hit_instructions::inserts*'`). Without
//! arguments (as `cargo bench` runs it) it times 10^6 hits of each
//! ttlcache mode with a fixed hasher, roughly.

// A benchmark binary: its items need no docs.
#![allow(missing_docs)]

use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    hash::BuildHasherDefault,
    hint::black_box,
    time::{Duration, Instant},
};

use ttlcache::{Expiry, TtlCache};

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

type Fixed = TtlCache<u64, u64, BuildHasherDefault<DefaultHasher>>;

/// A ttlcache with a fixed hasher, set up as `mode` says, holding `entries` entries.
fn fixed(mode: &str, entries: u64) -> Fixed {
    let builder = TtlCache::builder()
        .max_capacity(2 * entries)
        .hasher(BuildHasherDefault::<DefaultHasher>::default());
    let cache = match mode {
        "plain" => builder.build(),
        "ttl" => builder.time_to_live(HOUR).build(),
        "create" => builder.time_to_live(HOUR).expire_after(OnCreate).build(),
        "read" => builder.time_to_live(HOUR).expire_after(OnRead).build(),
        other => panic!("no mode {other:?}"),
    }
    .expect("valid settings");
    (0..entries).for_each(|key| cache.insert(key, key));
    cache
}

#[cfg(feature = "redis")]
#[path = "../examples/support/own_redis.rs"]
mod own_redis;

/// A coherence handle on `url`, once healthy. `connect` awaits nothing (the handle runs its
/// own runtime), so one poll answers.
#[cfg(feature = "redis")]
fn coherence(url: &str) -> ttlcache::redis::Coherence {
    use std::task::{Context, Poll, Waker};
    let mut connect = std::pin::pin!(
        ttlcache::redis::Coherence::builder(url, "bench")
            .lease(Duration::from_secs(3_600))
            .connect()
    );
    let Poll::Ready(coherence) = connect
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("connect awaits nothing");
    };
    let coherence = coherence.expect("valid settings");
    let started = Instant::now();
    while !coherence.is_healthy() {
        assert!(started.elapsed() < Duration::from_secs(10), "not healthy");
        std::thread::sleep(Duration::from_millis(5));
    }
    coherence
}

/// Makes `gets` pseudo-random hits on keys below `entries`. Kept out of line, so that
/// callgrind can count it alone (`--toggle-collect`).
#[inline(never)]
fn hits(gets: u64, entries: u64, get: impl Fn(u64)) {
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        get(x % entries);
    }
}

/// Inserts `count` keys from `entries` on, each new. Kept out of line, as `hits` is.
#[inline(never)]
fn inserts(count: u64, entries: u64, insert: impl Fn(u64)) {
    (entries..entries + count).for_each(insert);
}

/// Fills the cache `mode` names with `entries` entries, and makes `gets` hits on it; the
/// `insert` modes fill a cache of `entries` and make `gets` inserts of new keys instead, each
/// at capacity.
fn run(mode: &str, gets: u64, entries: u64) {
    let capacity = 2 * entries;
    match mode {
        "insert" => {
            let cache = TtlCache::<u64, u64>::builder()
                .max_capacity(entries)
                .build()
                .expect("valid settings");
            (0..entries).for_each(|key| cache.insert(key, key));
            inserts(gets, entries, |key| cache.insert(key, key));
        }
        "quick_cache_insert" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(entries as usize);
            (0..entries).for_each(|key| cache.insert(key, key));
            inserts(gets, entries, |key| cache.insert(key, key));
        }
        "default" => {
            let cache = TtlCache::<u64, u64>::builder()
                .max_capacity(capacity)
                .build()
                .expect("valid settings");
            (0..entries).for_each(|key| cache.insert(key, key));
            hits(gets, entries, |key| {
                black_box(cache.get(&key));
            });
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(capacity as usize);
            (0..entries).for_each(|key| cache.insert(key, key));
            hits(gets, entries, |key| {
                black_box(cache.get(&key));
            });
        }
        "hashmap" => {
            let map: HashMap<u64, u64> = (0..entries).map(|key| (key, key)).collect();
            hits(gets, entries, |key| {
                black_box(map.get(&key));
            });
        }
        #[cfg(feature = "redis")]
        "coherent" => {
            // `ttl`, kept coherent through a redis-server of the bench's own, and trusted.
            let own = own_redis::OwnRedis::start().expect("a redis-server of the bench's own");
            let coherence = coherence(&own.url());
            let cache: Fixed = TtlCache::builder()
                .max_capacity(capacity)
                .hasher(BuildHasherDefault::<DefaultHasher>::default())
                .time_to_live(HOUR)
                .coherent(&coherence, "bench")
                .build()
                .expect("valid settings");
            (0..entries).for_each(|key| cache.insert(key, key));
            assert!(coherence.is_healthy(), "the hits must be served");
            hits(gets, entries, |key| {
                black_box(cache.get(&key));
            });
            assert!(coherence.is_healthy(), "every hit was served");
        }
        mode => {
            let cache = fixed(mode, entries);
            hits(gets, entries, |key| {
                black_box(cache.get(&key));
            });
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    if let [gets, mode, rest @ ..] = args.as_slice() {
        let gets = gets.parse().expect("GETS is a count");
        let bits: u32 = rest
            .first()
            .map_or(16, |bits| bits.parse().expect("BITS is a number"));
        return run(mode, gets, 1 << bits);
    }
    for mode in ["plain", "ttl", "create", "read"] {
        let cache = fixed(mode, 1 << 16);
        let started = Instant::now();
        hits(1_000_000, 1 << 16, |key| {
            black_box(cache.get(&key));
        });
        let per_hit = started.elapsed().as_nanos() as f64 / 1e6;
        println!("{mode:>6}: {per_hit:.1} ns per hit");
    }
}
