#![allow(dead_code)]

use ttlcache::memoize;

#[memoize]
fn push_one(items: &mut Vec<u64>) -> usize {
    items.push(1);
    items.len()
}

fn main() {}
