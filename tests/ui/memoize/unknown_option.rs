#![allow(dead_code)]

use ttlcache::memoize;

#[memoize(ttl = "5m")]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
