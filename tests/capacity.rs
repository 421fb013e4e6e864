//! Capacity: a hard bound on the total weight, with weighers and many shards.

use std::sync::{Arc, Mutex};

use ttlcache::{RemovalCause, TtlCache};

#[test]
fn the_entry_count_never_exceeds_the_capacity() {
    let cache = TtlCache::builder().max_capacity(1_000).build().unwrap();
    for key in 0..50_000u64 {
        cache.insert(key, key);
        assert!(cache.weighted_size() <= 1_000);
    }
    assert!(cache.len() <= 1_000);
    // The cache does fill up: every shard holds its share.
    assert!(cache.len() >= 990, "only {} entries held", cache.len());
}

#[test]
fn weights_count_against_the_capacity_across_shards() {
    let cache = TtlCache::builder()
        .max_capacity(10_000)
        .shards(8)
        .weigher(|_key: &u64, value: &Vec<u8>| value.len() as u32)
        .build()
        .unwrap();
    let mut size = 7u64;
    for key in 0..20_000u64 {
        size = size.wrapping_mul(6_364_136_223_846_793_005) % 1_000_003;
        cache.insert(key, vec![0; (size % 400) as usize]);
        assert!(cache.weighted_size() <= 10_000);
    }
    let counted: u64 = cache.iter().map(|(_, value)| value.len() as u64).sum();
    assert_eq!(counted, cache.weighted_size());
}

#[test]
fn an_entry_heavier_than_its_shard_is_refused_as_size() {
    let refused = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&refused);
    let cache = TtlCache::builder()
        .max_capacity(100)
        .shards(4)
        .weigher(|_key: &&str, value: &u32| *value)
        .eviction_listener(move |key, value, cause| log.lock().unwrap().push((key, value, cause)))
        .build()
        .unwrap();
    // Each shard holds 25.
    cache.insert("small", 25);
    cache.insert("large", 26);
    assert_eq!(cache.get("small"), Some(25));
    assert_eq!(cache.get("large"), None);
    assert_eq!(
        *refused.lock().unwrap(),
        [("large", 26, RemovalCause::Size)]
    );
}

#[test]
fn a_zero_capacity_cache_stores_nothing() {
    let cache = TtlCache::new(0, std::time::Duration::MAX);
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get_or_insert_with(1, || 2), 2);
    assert_eq!(cache.len(), 0);
}

#[test]
fn a_capacity_that_does_not_divide_evenly_is_used_in_full() {
    let cache = TtlCache::builder()
        .max_capacity(10)
        .shards(4)
        .build()
        .unwrap();
    for key in 0..10_000u64 {
        cache.insert(key, ());
    }
    assert_eq!(cache.weighted_size(), 10);
}

#[test]
fn a_hit_protects_an_entry_from_the_next_eviction() {
    let cache = TtlCache::builder().max_capacity(3).build().unwrap();
    for key in 0..3 {
        cache.insert(key, key);
    }
    assert_eq!(cache.get(&0), Some(0));
    cache.insert(3, 3);
    assert_eq!(cache.peek(&0), Some(0));
    assert_eq!(
        cache.peek(&3),
        Some(3),
        "what was just written can be read back"
    );
    assert_eq!(cache.len(), 3);
}

#[test]
fn a_write_can_be_read_back_however_heavy() {
    let cache = TtlCache::builder()
        .max_capacity(100)
        .shards(1)
        .weigher(|_key: &u64, value: &u32| *value)
        .build()
        .unwrap();
    for key in 0..1_000 {
        let weight = (key % 7 + 1) as u32 * 10;
        cache.insert(key, weight);
        assert_eq!(cache.get(&key), Some(weight));
        assert!(cache.weighted_size() <= 100);
    }
}

#[test]
fn a_scan_of_new_keys_does_not_flush_frequently_read_ones() {
    let cache = TtlCache::builder().max_capacity(500).build().unwrap();
    for _ in 0..10 {
        for key in 0..400u64 {
            if cache.get(&key).is_none() {
                cache.insert(key, key);
            }
        }
    }
    for key in 1_000..100_000u64 {
        cache.insert(key, key);
    }
    let kept = (0..400u64).filter(|key| cache.contains_key(key)).count();
    assert!(
        kept >= 390,
        "a one-time scan evicted {} of 400 hot keys",
        400 - kept
    );
}

#[test]
fn string_keys_are_found_by_str() {
    let cache = TtlCache::builder().max_capacity(10).build().unwrap();
    cache.insert("alpha".to_string(), 1);
    assert_eq!(cache.get("alpha"), Some(1));
    assert_eq!(cache.peek("alpha"), Some(1));
    assert!(cache.contains_key("alpha"));
    assert_eq!(cache.remove("alpha"), Some(1));
    assert!(!cache.contains_key("alpha"));
}

#[test]
fn weightless_entries_in_a_zero_capacity_cache_do_not_break_it() {
    let cache = TtlCache::builder()
        .max_capacity(0)
        .shards(1)
        .weigher(|_key: &u64, _value: &u64| 0)
        .build()
        .unwrap();
    // Enough writes for the policy to adapt its window several times.
    for key in 0..1_000 {
        cache.insert(key, key);
    }
    assert_eq!(cache.weighted_size(), 0);
    assert_eq!(cache.get(&999), Some(999));
}

#[test]
fn a_capacity_near_u64_max_adapts_without_overflow() {
    let cache = TtlCache::builder()
        .max_capacity(u64::MAX - 1)
        .shards(8)
        .build()
        .unwrap();
    for key in 0..10_000u64 {
        cache.insert(key, key);
        cache.get(&key);
    }
    assert_eq!(cache.len(), 10_000);
}
