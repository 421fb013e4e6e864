//! Snapshots (feature `serde`): what a restart keeps, and what it must never bring back.

#![cfg(feature = "serde")]

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use ttlcache::{CacheSnapshot, ManualClock, TtlCache};

const MINUTE: Duration = Duration::from_secs(60);

fn cache_on(clock: &ManualClock, time_to_live: Option<Duration>) -> TtlCache<u64, String> {
    let builder = TtlCache::builder().clock(clock.clone());
    match time_to_live {
        Some(ttl) => builder.time_to_live(ttl).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

fn filled(count: u64) -> TtlCache<u64, String> {
    let cache = TtlCache::new(100_000, MINUTE);
    for key in 0..count {
        cache.insert(key, format!("value {key}"));
    }
    cache
}

fn sorted_entries(cache: &TtlCache<u64, String>) -> Vec<(u64, String)> {
    let mut entries: Vec<_> = cache.iter().collect();
    entries.sort();
    entries
}

#[test]
fn round_trip_through_json() {
    let cache = filled(1_000);
    let json = serde_json::to_string(&cache.snapshot()).unwrap();
    let snapshot: CacheSnapshot<u64, String> = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshot.len(), 1_000);

    let restarted = TtlCache::new(100_000, MINUTE);
    assert_eq!(restarted.restore(snapshot), 1_000);
    assert_eq!(sorted_entries(&restarted), sorted_entries(&cache));
}

#[test]
fn round_trip_through_a_binary_format() {
    let cache = filled(1_000);
    let bytes = postcard::to_allocvec(&cache.snapshot()).unwrap();
    let snapshot: CacheSnapshot<u64, String> = postcard::from_bytes(&bytes).unwrap();

    let restarted = TtlCache::new(100_000, MINUTE);
    assert_eq!(restarted.restore(snapshot), 1_000);
    assert_eq!(sorted_entries(&restarted), sorted_entries(&cache));
}

#[test]
fn the_json_is_readable() {
    let cache = TtlCache::<u64, String>::builder().build().unwrap();
    cache.insert(7, "seven".to_string());
    let json = serde_json::to_value(cache.snapshot()).unwrap();
    assert_eq!(json["format"], "ttlcache-snapshot-1");
    assert!(json["taken_at"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        json["entries"],
        serde_json::json!([{"key": 7, "value": "seven", "expires_at": null, "idle_until": null}])
    );
}

#[test]
fn an_entry_keeps_the_time_to_live_it_had_left() {
    let clock = ManualClock::new();
    let cache = cache_on(&clock, Some(MINUTE));
    cache.insert(1, "one".into());
    clock.advance(Duration::from_secs(45));
    let snapshot = cache.snapshot();

    let restarted = cache_on(&clock, Some(MINUTE));
    assert_eq!(restarted.restore(snapshot), 1);
    // Deadlines are kept to the millisecond, rounded down.
    clock.advance(Duration::from_secs(14));
    assert_eq!(restarted.get(&1).as_deref(), Some("one"));
    clock.advance(Duration::from_secs(1));
    assert_eq!(restarted.get(&1), None);
}

#[test]
fn an_entry_keeps_its_own_time_to_live_in_a_cache_with_another() {
    let clock = ManualClock::new();
    let cache = cache_on(&clock, Some(MINUTE));
    cache.insert_with_ttl(1, "an hour".into(), Duration::from_secs(3600));
    cache.insert_with_ttl(2, "forever".into(), Duration::MAX);
    let restarted = cache_on(&clock, Some(Duration::from_secs(10)));
    assert_eq!(restarted.restore(cache.snapshot()), 2);
    clock.advance(Duration::from_secs(3599));
    assert!(restarted.contains_key(&1));
    clock.advance(Duration::from_secs(1));
    assert!(!restarted.contains_key(&1));
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert_eq!(restarted.get(&2).as_deref(), Some("forever"));
}

#[test]
fn an_entry_without_a_time_to_live_stays_without_one() {
    let clock = ManualClock::new();
    let cache = cache_on(&clock, None);
    cache.insert(1, "one".into());
    let restarted = cache_on(&clock, None);
    assert_eq!(restarted.restore(cache.snapshot()), 1);
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert_eq!(restarted.get(&1).as_deref(), Some("one"));
}

#[test]
fn an_entry_that_expired_while_the_process_was_down_is_not_restored() {
    let clock = ManualClock::new();
    let cache = cache_on(&clock, Some(MINUTE));
    cache.insert(1, "stale soon".into());
    cache.insert_with_ttl(2, "fresh".into(), Duration::from_secs(3600));
    // Entry 1 has 30 ms left when the snapshot is taken.
    clock.advance(MINUTE - Duration::from_millis(30));
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.len(), 2);

    // The process is down for longer than that: the manual clock moves its wall time too.
    clock.advance(Duration::from_millis(100));
    let restarted = cache_on(&clock, Some(MINUTE));
    assert_eq!(restarted.restore(snapshot), 1);
    assert_eq!(restarted.get(&1), None);
    assert_eq!(restarted.get(&2).as_deref(), Some("fresh"));
}

#[test]
fn deadlines_are_wall_clock_times_in_the_file() {
    // A snapshot written by another process, one entry past its deadline, one far from it.
    let json = r#"{
        "format": "ttlcache-snapshot-1",
        "taken_at": 1700000000000,
        "entries": [
            {"key": 1, "value": "expired in 2023", "expires_at": 1700000060000},
            {"key": 2, "value": "good until 2200", "expires_at": 7258118400000},
            {"key": 3, "value": "never expires", "expires_at": null}
        ]
    }"#;
    let snapshot: CacheSnapshot<u64, String> = serde_json::from_str(json).unwrap();
    assert_eq!(
        snapshot.taken_at(),
        std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    );
    let cache = TtlCache::<u64, String>::builder().build().unwrap();
    assert_eq!(cache.restore(snapshot), 2);
    assert_eq!(cache.get(&1), None);
    assert!(cache.contains_key(&2));
    assert!(cache.contains_key(&3));
}

#[test]
fn an_expired_entry_is_not_in_the_snapshot() {
    let clock = ManualClock::new();
    let cache = cache_on(&clock, Some(MINUTE));
    cache.insert(1, "old".into());
    clock.advance(Duration::from_secs(30));
    cache.insert(2, "new".into());
    clock.advance(Duration::from_secs(30));
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.len(), 1);
    let restarted = cache_on(&clock, Some(MINUTE));
    assert_eq!(restarted.restore(snapshot), 1);
    assert_eq!(restarted.get(&2).as_deref(), Some("new"));
}

fn idle_cache(clock: &ManualClock) -> TtlCache<u64, String> {
    TtlCache::builder()
        .time_to_live(Duration::from_secs(3600))
        .time_to_idle(MINUTE)
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn a_time_to_idle_restarts_at_the_restore() {
    let clock = ManualClock::new();
    let cache = idle_cache(&clock);
    cache.insert(1, "one".into());
    clock.advance(Duration::from_secs(50));
    let restarted = idle_cache(&clock);
    assert_eq!(restarted.restore(cache.snapshot()), 1);
    clock.advance(Duration::from_secs(50));
    assert_eq!(restarted.get(&1).as_deref(), Some("one"));
    clock.advance(MINUTE);
    assert_eq!(restarted.get(&1), None);
}

#[test]
fn an_entry_that_idled_out_while_the_process_was_down_is_not_restored() {
    let clock = ManualClock::new();
    let cache = idle_cache(&clock);
    cache.insert(1, "idle".into());
    cache.insert(2, "read".into());
    clock.advance(Duration::from_secs(50));
    cache.get(&2);
    let snapshot = cache.snapshot();
    // Down for 20 seconds: entry 1 idled out at 60, entry 2 idles out at 110.
    clock.advance(Duration::from_secs(20));
    let restarted = idle_cache(&clock);
    assert_eq!(restarted.restore(snapshot), 1);
    assert!(restarted.contains_key(&2));
}

#[test]
fn a_restore_never_exceeds_the_capacity() {
    let snapshot = filled(10_000).snapshot();
    let small = TtlCache::<u64, String>::builder()
        .max_capacity(2_000)
        .shards(8)
        .build()
        .unwrap();
    let restored = small.restore(snapshot);
    assert_eq!(restored, small.len());
    assert!(small.weighted_size() <= 2_000);
    // Each shard fills its own share of the capacity: all of it here, as every shard is
    // offered more entries than it has room for.
    assert_eq!(restored, 2_000);

    let none = TtlCache::<u64, String>::builder()
        .max_capacity(0)
        .build()
        .unwrap();
    assert_eq!(none.restore(filled(10).snapshot()), 0);
    assert!(none.is_empty());
}

#[test]
fn a_restore_reports_nothing_to_the_listener() {
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cache = TtlCache::<u64, String>::builder()
        .max_capacity(5)
        .shards(1)
        .eviction_listener({
            let heard = Arc::clone(&heard);
            move |key, _, cause| heard.lock().unwrap().push((key, cause))
        })
        .build()
        .unwrap();
    assert_eq!(cache.restore(filled(100).snapshot()), 5);
    assert!(heard.lock().unwrap().is_empty());

    let no_idle = TtlCache::<u64, String>::builder()
        .time_to_idle(Duration::ZERO)
        .eviction_listener({
            let heard = Arc::clone(&heard);
            move |key, _, cause| heard.lock().unwrap().push((key, cause))
        })
        .build()
        .unwrap();
    assert_eq!(no_idle.restore(filled(10).snapshot()), 0);
    assert!(heard.lock().unwrap().is_empty());
}

#[test]
fn a_restore_weighs_entries_with_the_new_caches_weigher() {
    let snapshot = filled(1_000).snapshot();
    let weighed = TtlCache::<u64, String>::builder()
        .max_capacity(1_000)
        .weigher(|_, value: &String| value.len() as u32)
        .build()
        .unwrap();
    let restored = weighed.restore(snapshot);
    assert!(weighed.weighted_size() <= 1_000);
    assert!((50..=125).contains(&restored), "{restored}");
}

/// A cache of 200 in which keys 0..20 were read all the time while a stream of others passed
/// through.
fn hot_and_cold() -> TtlCache<u64, String> {
    let cache = TtlCache::<u64, String>::builder()
        .max_capacity(200)
        .shards(1)
        .build()
        .unwrap();
    for key in 0..20 {
        cache.insert(key, format!("hot {key}"));
    }
    for cold in 1_000..5_000 {
        cache.insert(cold, format!("cold {cold}"));
        for hot in 0..20 {
            cache.get(&hot);
        }
    }
    cache
}

fn hot_kept(cache: &TtlCache<u64, String>) -> usize {
    (0..20).filter(|key| cache.contains_key(key)).count()
}

#[test]
fn a_smaller_cache_keeps_what_the_policy_valued_most() {
    let small = TtlCache::<u64, String>::builder()
        .max_capacity(20)
        .build()
        .unwrap();
    assert_eq!(small.restore(hot_and_cold().snapshot()), 20);
    assert!(
        hot_kept(&small) >= 18,
        "{} of 20 hot keys kept",
        hot_kept(&small)
    );
}

#[test]
fn what_the_policy_valued_most_is_the_last_it_evicts_after_a_restore() {
    let restarted = TtlCache::<u64, String>::builder()
        .max_capacity(200)
        .shards(1)
        .build()
        .unwrap();
    assert_eq!(restarted.restore(hot_and_cold().snapshot()), 200);
    // New keys, each asked for thrice, win their place from 150 of the restored entries.
    for new in 10_000..10_150 {
        restarted.insert(new, format!("new {new}"));
        restarted.get(&new);
        restarted.get(&new);
    }
    assert!(
        hot_kept(&restarted) >= 18,
        "{} of 20 hot keys kept",
        hot_kept(&restarted)
    );
}

#[test]
fn a_restore_replaces_nothing_the_cache_holds() {
    let snapshot = filled(10).snapshot();
    let cache = TtlCache::new(100, MINUTE);
    cache.insert(3, "newer than the snapshot".to_string());
    assert_eq!(cache.restore(snapshot), 9);
    assert_eq!(cache.get(&3).as_deref(), Some("newer than the snapshot"));
    assert_eq!(cache.get(&4).as_deref(), Some("value 4"));
}

#[tokio::test]
async fn a_restore_skips_a_key_being_loaded() {
    let snapshot = filled(10).snapshot();
    let cache = TtlCache::<u64, String>::new(100, MINUTE);
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let load = tokio::spawn({
        let cache = cache.clone();
        async move {
            cache
                .get_or_load(5, async {
                    released.await.unwrap();
                    "loaded".to_string()
                })
                .await
        }
    });
    // Wait until the load is pending, then restore around it.
    while cache.stats().misses == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.restore(snapshot), 9);
    release.send(()).unwrap();
    assert_eq!(load.await.unwrap(), "loaded");
    assert_eq!(cache.get(&5).as_deref(), Some("loaded"));
}

/// A bad file fails as it is read, before `restore` is called, so the cache is untouched by
/// construction; what matters is that it fails rather than yield a garbled snapshot.
#[test]
fn a_truncated_or_foreign_file_is_an_error() {
    let snapshot = filled(1_000).snapshot();

    let json = serde_json::to_string(&snapshot).unwrap();
    let truncated = serde_json::from_str::<CacheSnapshot<u64, String>>(&json[..json.len() / 2]);
    assert!(truncated.unwrap_err().is_eof());

    let bytes = postcard::to_allocvec(&snapshot).unwrap();
    assert!(postcard::from_bytes::<CacheSnapshot<u64, String>>(&bytes[..bytes.len() / 2]).is_err());

    let foreign = r#"{"format": "something-else", "taken_at": 0, "entries": []}"#;
    let error = serde_json::from_str::<CacheSnapshot<u64, String>>(foreign).unwrap_err();
    assert!(
        error.to_string().contains("not a ttlcache snapshot"),
        "{error}"
    );
    assert!(serde_json::from_str::<CacheSnapshot<u64, String>>("[1, 2, 3]").is_err());
    assert!(
        postcard::from_bytes::<CacheSnapshot<u64, String>>(b"\x05hello, this is no snapshot")
            .is_err()
    );
    // Values of another type than the cache's: an error, not a partial restore.
    let numbers = serde_json::to_string(&filled(3).snapshot())
        .unwrap()
        .replace("\"value 1\"", "1");
    assert!(serde_json::from_str::<CacheSnapshot<u64, String>>(&numbers).is_err());
}

#[test]
fn a_snapshot_during_writes_sees_every_entry_that_was_there() {
    let cache = filled(10_000);
    let start = Arc::new(Barrier::new(2));
    let writer = thread::spawn({
        let (cache, start) = (cache.clone(), Arc::clone(&start));
        move || {
            start.wait();
            for key in 10_000..60_000 {
                cache.insert(key, format!("value {key}"));
            }
        }
    });
    start.wait();
    let snapshot = cache.snapshot();
    writer.join().unwrap();

    let restored = TtlCache::new(100_000, MINUTE);
    restored.restore(snapshot);
    assert!((0..10_000).all(|key| restored.contains_key(&key)));
}

#[test]
fn a_restore_during_traffic_never_overwrites_a_newer_value() {
    let snapshot = filled(20_000).snapshot();
    let cache = TtlCache::<u64, String>::new(100_000, MINUTE);
    let start = Arc::new(Barrier::new(2));
    let traffic = thread::spawn({
        let (cache, start) = (cache.clone(), Arc::clone(&start));
        move || {
            start.wait();
            for key in (0..20_000).step_by(3) {
                cache.insert(key, format!("newer {key}"));
                cache.get(&(key + 1));
            }
        }
    });
    start.wait();
    let restored = cache.restore(snapshot);
    traffic.join().unwrap();

    // Whichever came first, the traffic's write stands: a restore adds only what is missing.
    for key in 0..20_000 {
        let expected = if key % 3 == 0 {
            format!("newer {key}")
        } else {
            format!("value {key}")
        };
        assert_eq!(cache.get(&key), Some(expected));
    }
    let from_snapshot = (0..20_000).filter(|key| key % 3 != 0).count();
    assert!((from_snapshot..=20_000).contains(&restored), "{restored}");
}

#[tokio::test]
async fn a_loading_cache_snapshots_through_its_cache() {
    let loading = TtlCache::<u64, u64>::builder()
        .time_to_live(MINUTE)
        .build_loading(|key: u64| async move { Ok::<_, std::convert::Infallible>(key * 2) })
        .unwrap();
    for key in 0..10 {
        loading.get(&key).await.unwrap();
    }
    let snapshot = loading.cache().snapshot();
    let restarted = TtlCache::<u64, u64>::builder()
        .time_to_live(MINUTE)
        .build_loading(|_key: u64| async move { Ok::<_, std::convert::Infallible>(0) })
        .unwrap();
    assert_eq!(restarted.cache().restore(snapshot), 10);
    assert_eq!(restarted.get(&7).await.unwrap(), 14);
}

#[test]
fn a_key_listed_twice_is_restored_once_from_its_first_copy() {
    // As a hand-edited or concatenated file might have it: key 1 twice, the copy ranked
    // higher first.
    let entry = |key: u64, value: &str| serde_json::json!({"key": key, "value": value, "expires_at": null, "idle_until": null});
    let json = serde_json::json!({
        "format": "ttlcache-snapshot-1",
        "taken_at": 1_800_000_000_000_u64,
        "entries": [entry(1, "first"), entry(2, "two"), entry(1, "second"), entry(3, "three")],
    });
    let snapshot: CacheSnapshot<u64, String> = serde_json::from_value(json).unwrap();
    let cache = TtlCache::<u64, String>::builder()
        .shards(1)
        .max_capacity(3)
        .build()
        .unwrap();
    assert_eq!(
        cache.restore(snapshot),
        3,
        "the copy takes no room of its own"
    );
    assert_eq!(
        sorted_entries(&cache),
        [
            (1, "first".to_string()),
            (2, "two".to_string()),
            (3, "three".to_string())
        ]
    );
}
