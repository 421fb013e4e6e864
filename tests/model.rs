//! A model test: random operations on an unbounded cache agree with a `HashMap` of deadlines.

use std::{collections::HashMap, time::Duration};

use proptest::prelude::*;
use ttlcache::{ManualClock, TtlCache};

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u32),
    InsertWithTtl(u8, u32, u64),
    Get(u8),
    Peek(u8),
    Remove(u8),
    GetOrInsert(u8, u32),
    Advance(u64),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        (any::<u8>(), any::<u32>(), 0..50u64).prop_map(|(k, v, t)| Op::InsertWithTtl(k, v, t)),
        any::<u8>().prop_map(Op::Get),
        any::<u8>().prop_map(Op::Peek),
        any::<u8>().prop_map(Op::Remove),
        (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        (0..30u64).prop_map(Op::Advance),
        Just(Op::Purge),
    ]
}

/// The reference: each key's value and the millisecond its entry expires, if ever.
#[derive(Default)]
struct Model {
    now: u64,
    entries: HashMap<u8, (u32, Option<u64>)>,
}

impl Model {
    fn live(&self, key: u8) -> Option<u32> {
        match self.entries.get(&key) {
            Some(&(value, deadline)) if deadline.is_none_or(|d| self.now < d) => Some(value),
            _ => None,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_cache_agrees_with_a_map_of_deadlines(
        default_ttl in proptest::option::of(1..40u64),
        shards in prop_oneof![Just(1usize), Just(4), Just(16)],
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let clock = ManualClock::new();
        let mut builder = TtlCache::builder().shards(shards).clock(clock.clone());
        if let Some(ttl) = default_ttl {
            builder = builder.time_to_live(Duration::from_millis(ttl));
        }
        let cache = builder.build().unwrap();
        let mut model = Model::default();
        let deadline = |now: u64, ttl: Option<u64>| ttl.map(|ttl| now + ttl);

        for op in ops {
            match op {
                Op::Insert(key, value) => {
                    cache.insert(key, value);
                    model.entries.insert(key, (value, deadline(model.now, default_ttl)));
                }
                Op::InsertWithTtl(key, value, ttl) => {
                    cache.insert_with_ttl(key, value, Duration::from_millis(ttl));
                    model.entries.insert(key, (value, deadline(model.now, Some(ttl))));
                }
                Op::Get(key) => prop_assert_eq!(cache.get(&key), model.live(key)),
                Op::Peek(key) => {
                    prop_assert_eq!(cache.peek(&key), model.live(key));
                    prop_assert_eq!(cache.contains_key(&key), model.live(key).is_some());
                }
                Op::Remove(key) => {
                    prop_assert_eq!(cache.remove(&key), model.live(key));
                    model.entries.remove(&key);
                }
                Op::GetOrInsert(key, value) => {
                    let expected = model.live(key).unwrap_or(value);
                    prop_assert_eq!(cache.get_or_insert_with(key, || value), expected);
                    if model.live(key).is_none() {
                        model.entries.insert(key, (value, deadline(model.now, default_ttl)));
                    }
                }
                Op::Advance(millis) => {
                    clock.advance(Duration::from_millis(millis));
                    model.now += millis;
                }
                Op::Purge => {
                    cache.purge_expired();
                    let now = model.now;
                    model.entries.retain(|_, (_, d)| d.is_none_or(|d| now < d));
                    prop_assert_eq!(cache.len(), model.entries.len());
                }
            }
        }
        let mut live: Vec<(u8, u32)> = cache.iter().collect();
        live.sort_unstable();
        let mut expected: Vec<(u8, u32)> = model
            .entries
            .keys()
            .filter_map(|&key| model.live(key).map(|value| (key, value)))
            .collect();
        expected.sort_unstable();
        prop_assert_eq!(live, expected);
    }
}
