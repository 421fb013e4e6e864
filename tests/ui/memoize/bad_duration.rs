#![allow(dead_code)]

use ttlcache::memoize;

#[memoize(time_to_live = "5x")]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
