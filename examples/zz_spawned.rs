//! x
use std::{hint::black_box, time::Instant};
const N: u64 = 1 << 16;
fn run_tt(cache: &ttlcache::TtlCache<u64, u64>, gets: u64) -> f64 {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let t = Instant::now();
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        black_box(cache.get(&(x % N)));
    }
    t.elapsed().as_nanos() as f64 / gets as f64
}
fn run_qc(cache: &quick_cache::sync::Cache<u64, u64>, gets: u64) -> f64 {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let t = Instant::now();
    for _ in 0..gets {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        black_box(cache.get(&(x % N)));
    }
    t.elapsed().as_nanos() as f64 / gets as f64
}
fn main() {
    let gets: u64 = std::env::args()
        .nth(1)
        .map_or(5_000_000, |a| a.parse().unwrap());
    let where_: String = std::env::args().nth(2).unwrap_or("both".into());
    let tt = ttlcache::TtlCache::<u64, u64>::builder()
        .max_capacity(2 * N)
        .build()
        .unwrap();
    let qc = quick_cache::sync::Cache::<u64, u64>::new(2 * N as usize);
    for k in 0..N {
        tt.insert(k, k);
        qc.insert(k, k);
    }
    for round in 0..3 {
        if where_ != "spawned" {
            println!(
                "round {round} main:    ttlcache {:.1} ns, quick_cache {:.1} ns",
                run_tt(&tt, gets),
                run_qc(&qc, gets)
            );
        }
        if where_ != "main" {
            std::thread::scope(|s| {
                s.spawn(|| {
                    println!(
                        "round {round} spawned: ttlcache {:.1} ns, quick_cache {:.1} ns",
                        run_tt(&tt, gets),
                        run_qc(&qc, gets)
                    )
                });
            });
        }
    }
}
