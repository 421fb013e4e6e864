//! The caches every benchmark compares, behind one shape, and the key streams they read.
//!
//! Each peer holds `u64 -> u64` and is built the way its README shows: default hasher,
//! default shard count. `ttlcache_siphash` uses std's `RandomState` (SipHash) instead of the
//! default `DefaultHashBuilder` (foldhash's fast hasher, seeded per cache), as ttlcache did
//! before issue 15 and as a cache of keys an attacker chooses should. `ttlcache_ttl` has a time
//! to live that never passes during a run, so its hits pay for checking a deadline that is
//! there.

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    hash::RandomState,
    sync::{Barrier, Mutex},
    time::{Duration, Instant},
};

use ttlcache::TtlCache;

/// A cache as the benchmarks see it. `Sync`, so threads share one.
pub(crate) trait Peer: Sync {
    fn get(&self, key: u64) -> Option<u64>;
    fn insert(&self, key: u64, value: u64);
    /// Finishes work the peer defers, so that what is measured next does not pay for it.
    fn settle(&self) {}
}

/// A peer that only reads: an unsynchronized `HashMap`, filled before the readers start.
pub(crate) struct ReadOnly(pub(crate) HashMap<u64, u64, RandomState>);

impl<S: std::hash::BuildHasher + Sync + Send + Clone + 'static> Peer for TtlCache<u64, u64, S> {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        TtlCache::get(self, &key)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        TtlCache::insert(self, key, value);
    }
}

impl Peer for quick_cache::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &key)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        quick_cache::sync::Cache::insert(self, key, value);
    }
}

impl Peer for moka::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        moka::sync::Cache::get(self, &key)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        moka::sync::Cache::insert(self, key, value);
    }
    fn settle(&self) {
        self.run_pending_tasks();
    }
}

impl Peer for mini_moka::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        mini_moka::sync::Cache::get(self, &key)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        mini_moka::sync::Cache::insert(self, key, value);
    }
}

impl Peer for dashmap::DashMap<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        dashmap::DashMap::get(self, &key).map(|value| *value)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        dashmap::DashMap::insert(self, key, value);
    }
}

impl Peer for Mutex<HashMap<u64, u64, RandomState>> {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.lock().unwrap().get(&key).copied()
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.lock().unwrap().insert(key, value);
    }
}

impl Peer for ReadOnly {
    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key).copied()
    }
    fn insert(&self, _: u64, _: u64) {
        unreachable!("the unsynchronized map is only read")
    }
}

/// A time to live that no benchmark outlasts.
pub(crate) const LONG_TTL: Duration = Duration::from_secs(3_600);

/// Every peer, empty, sized for `capacity` entries.
pub(crate) fn all(capacity: u64) -> Vec<(&'static str, Box<dyn Peer>)> {
    let mut peers = caches(capacity);
    peers.push(("hashmap", Box::new(ReadOnly(HashMap::default()))));
    peers
}

/// The peers that take writes: every one but the unsynchronized `HashMap`.
pub(crate) fn caches(capacity: u64) -> Vec<(&'static str, Box<dyn Peer>)> {
    let ttlcache = TtlCache::builder().max_capacity(capacity).build().unwrap();
    let ttlcache_ttl = TtlCache::builder()
        .max_capacity(capacity)
        .time_to_live(LONG_TTL)
        .build()
        .unwrap();
    let ttlcache_siphash = TtlCache::builder()
        .max_capacity(capacity)
        .hasher(RandomState::new())
        .build()
        .unwrap();
    vec![
        ("ttlcache", Box::new(ttlcache) as Box<dyn Peer>),
        ("ttlcache_ttl", Box::new(ttlcache_ttl)),
        ("ttlcache_siphash", Box::new(ttlcache_siphash)),
        (
            "quick_cache",
            Box::new(quick_cache::sync::Cache::new(capacity as usize)),
        ),
        ("moka", Box::new(moka::sync::Cache::new(capacity))),
        ("mini_moka", Box::new(mini_moka::sync::Cache::new(capacity))),
        ("dashmap", Box::new(dashmap::DashMap::new())),
        ("mutex_hashmap", Box::new(Mutex::new(HashMap::default()))),
    ]
}

/// `peer` holding every key in `0..entries` (the unsynchronized map is filled in place).
pub(crate) fn fill(name: &str, peer: &mut Box<dyn Peer>, entries: u64) {
    if name == "hashmap" {
        *peer = Box::new(ReadOnly((0..entries).map(|key| (key, key)).collect()));
        return;
    }
    (0..entries).for_each(|key| peer.insert(key, key));
    peer.settle();
}

/// `count` keys spread over `0..range` in a pseudo-random order fixed by `seed`.
pub(crate) fn uniform_keys(seed: u64, count: usize, range: u64) -> Vec<u64> {
    let mut state = seed | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % range
        })
        .collect()
}

/// `count` keys drawn from a Zipf distribution (exponent 1) over `range` keys, scrambled so
/// that popular keys are not neighbours: the key stream of Caffeine's GetPutBenchmark.
pub(crate) fn zipf_keys(seed: u64, count: usize, range: u64) -> Vec<u64> {
    let weights: Vec<f64> = (1..=range).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut sum = 0.0;
    for weight in weights {
        sum += weight / total;
        cumulative.push(sum);
    }
    uniform_keys(seed, count, u64::MAX)
        .into_iter()
        .map(|draw| {
            let point = draw as f64 / u64::MAX as f64;
            let rank = cumulative.partition_point(|&c| c < point) as u64;
            scramble(rank.min(range - 1))
        })
        .collect()
}

/// A bijection on `u64` (the murmur3 finalizer), so scrambled keys stay distinct.
pub(crate) fn scramble(mut key: u64) -> u64 {
    key ^= key >> 33;
    key = key.wrapping_mul(0xff51_afd7_ed55_8ccd);
    key ^= key >> 33;
    key = key.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    key ^ (key >> 33)
}

/// Runs `work(thread)` on `threads` threads at once and returns the time from their common
/// start to the last one's end: only the measured loops are timed, not spawning.
pub(crate) fn timed_on_threads(threads: usize, work: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || {
                    barrier.wait();
                    work(thread);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().unwrap();
        }
        start.elapsed()
    })
}
