#![allow(dead_code)]

use ttlcache::memoize;

struct Account {
    id: u64,
}

impl Account {
    #[memoize]
    async fn balance(&self) -> u64 {
        self.id * 100
    }
}

fn main() {}
