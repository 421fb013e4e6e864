//! Stress: many threads on a small cache; values never cross keys and the bound always holds.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
};

use ttlcache::{RemovalCause, TtlCache};

/// A value that names its key, so a value found under the wrong key is caught.
#[derive(Clone, Debug, PartialEq)]
struct Tagged {
    key: u64,
    version: u64,
}

/// A small xorshift generator: deterministic per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn eight_threads_of_mixed_operations_keep_every_invariant() {
    const CAPACITY: u64 = 64;
    static REPORTED: AtomicU64 = AtomicU64::new(0);
    let cache = TtlCache::builder()
        .max_capacity(CAPACITY)
        .shards(4)
        .eviction_listener(|key, value: Tagged, _cause: RemovalCause| {
            assert_eq!(key, value.key, "the listener got a value of another key");
            REPORTED.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let done = AtomicBool::new(false);
    let stored = AtomicU64::new(0);

    thread::scope(|scope| {
        // A watcher that checks the bound while the workers run.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                assert!(cache.weighted_size() <= CAPACITY);
                assert!(cache.len() as u64 <= CAPACITY);
            }
        });
        let workers: Vec<_> = (0..8u64)
            .map(|thread| {
                let (cache, stored) = (&cache, &stored);
                scope.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (thread + 1));
                    for version in 0..30_000 {
                        let key = rng.below(200);
                        let value = Tagged { key, version };
                        match rng.below(4) {
                            0 => {
                                if let Some(found) = cache.get(&key) {
                                    assert_eq!(found.key, key);
                                }
                            }
                            1 => {
                                cache.insert(key, value);
                                stored.fetch_add(1, Ordering::Relaxed);
                            }
                            2 => {
                                if let Some(removed) = cache.remove(&key) {
                                    assert_eq!(removed.key, key);
                                }
                            }
                            _ => {
                                let mut ran = false;
                                let found = cache.get_or_insert_with(key, || {
                                    ran = true;
                                    value
                                });
                                assert_eq!(found.key, key);
                                if ran {
                                    stored.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        assert!(cache.weighted_size() <= CAPACITY);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });

    // Every stored entry is either still held or was reported once when it left. A load whose
    // value was not stored (an insert or remove won the race) was never held, so the stored
    // count is an upper bound.
    let held = cache.len() as u64;
    cache.clear();
    let reported = REPORTED.load(Ordering::Relaxed);
    assert!(reported <= stored.load(Ordering::Relaxed));
    assert!(reported >= held);
    assert!(cache.is_empty());
}
