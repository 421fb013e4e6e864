//! x
use std::hint::black_box;
const N: u64 = 1 << 16;
fn main() {
    let gets: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let which = std::env::args().nth(2).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    match which.as_str() {
        "tt" => {
            let c = ttlcache::TtlCache::<u64, u64>::builder()
                .max_capacity(2 * N)
                .build()
                .unwrap();
            for k in 0..N {
                c.insert(k, k);
            }
            for _ in 0..gets {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(c.get(&(x % N)));
            }
        }
        "ttfold" => {
            let c = ttlcache::TtlCache::<u64, u64>::builder()
                .max_capacity(2 * N)
                .hasher(foldhash::fast::RandomState::default())
                .build()
                .unwrap();
            for k in 0..N {
                c.insert(k, k);
            }
            for _ in 0..gets {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(c.get(&(x % N)));
            }
        }
        "qc" => {
            let c = quick_cache::sync::Cache::<u64, u64>::new(2 * N as usize);
            for k in 0..N {
                c.insert(k, k);
            }
            for _ in 0..gets {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(c.get(&(x % N)));
            }
        }
        "hm" => {
            let mut c = std::collections::HashMap::new();
            for k in 0..N {
                c.insert(k, k);
            }
            for _ in 0..gets {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(c.get(&(x % N)));
            }
        }
        _ => {}
    }
}
