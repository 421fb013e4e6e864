#![allow(dead_code)]

use ttlcache::memoize;

#[memoize(time_to_live = "5m", refresh_after = "1m")]
fn rate(currency: String) -> u64 {
    currency.len() as u64
}

fn main() {}
