#![allow(dead_code)]

use ttlcache::memoize;

#[memoize]
fn first<T: Clone>(items: Vec<T>) -> T {
    items[0].clone()
}

fn main() {}
