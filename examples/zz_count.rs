//! x
use std::hint::black_box;
fn main() {
    let gets: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let which = std::env::args().nth(2).unwrap();
    let n: u64 = 1 << std::env::var("BITS").map_or(16, |b| b.parse::<u32>().unwrap());
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    match which.as_str() {
        "tt" => { let c = ttlcache::TtlCache::<u64, u64>::builder().max_capacity(2 * n).build().unwrap(); for k in 0..n { c.insert(k, k); }
            let run = || { let mut x = x; for _ in 0..gets { x ^= x << 13; x ^= x >> 7; x ^= x << 17; black_box(c.get(&(x % n))); } };
            if std::env::var("SPAWN").is_ok() { std::thread::scope(|s| { s.spawn(run); }); } else { run() } }
        "ttl" => { let c = ttlcache::TtlCache::<u64, u64>::builder().max_capacity(2 * n).time_to_live(std::time::Duration::from_secs(3600)).build().unwrap(); for k in 0..n { c.insert(k, k); }
            for _ in 0..gets { x ^= x << 13; x ^= x >> 7; x ^= x << 17; black_box(c.get(&(x % n))); } }
        "qc" => { let c = quick_cache::sync::Cache::<u64, u64>::new(2 * n as usize); for k in 0..n { c.insert(k, k); }
            for _ in 0..gets { x ^= x << 13; x ^= x >> 7; x ^= x << 17; black_box(c.get(&(x % n))); } }
        "hm" => { let mut c = std::collections::HashMap::new(); for k in 0..n { c.insert(k, k); }
            for _ in 0..gets { x ^= x << 13; x ^= x >> 7; x ^= x << 17; black_box(c.get(&(x % n))); } }
        _ => {}
    }
}
