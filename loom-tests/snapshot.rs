//! Models of snapshots (`cache/snapshot.rs`, `shard/restore.rs`; feature `serde`): a restore
//! racing an insert only adds (rule 4), a snapshot racing an eviction sees the shard whole.

use super::{logged_cache, model};
use crate::{RemovalCause, TtlCache};
use loom::thread;

#[cfg(feature = "serde")]
#[test]
fn a_restore_racing_an_insert_adds_only_what_is_missing() {
    model(|| {
        let source = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        source.insert(2, 2);
        source.insert(3, 3);
        let snapshot = source.snapshot();

        let (cache, log) = logged_cache(Some(3), None);
        cache.insert(1, 10);
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(2, 20))
        };
        let restored = cache.restore(snapshot);
        writer.join().unwrap();

        // The writer's value stands whatever the order; the restore replaced and evicted
        // nothing. It stored key 2 only if it came first, and then the writer replaced it.
        let entries: Vec<_> = (1..=3).map(|key| cache.get(&key)).collect();
        assert_eq!(entries, [Some(10), Some(20), Some(3)]);
        let reports = log.lock().unwrap().clone();
        match restored {
            1 => assert!(reports.is_empty(), "{reports:?}"),
            2 => assert_eq!(reports, [(2, 2, RemovalCause::Replaced)]),
            _ => panic!("restored {restored}"),
        }
    });
}

#[cfg(feature = "serde")]
#[test]
fn a_snapshot_racing_an_eviction_sees_the_shard_before_or_after_it() {
    model(|| {
        let (cache, _log) = logged_cache(Some(1), None);
        cache.insert(1, 10);
        let writer = {
            let cache = cache.clone();
            thread::spawn(move || cache.insert(2, 20))
        };
        let snapshot = cache.snapshot();
        writer.join().unwrap();
        // One entry, whole: the old one, or whichever the eviction kept.
        assert_eq!(snapshot.len(), 1);
        let restored = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        assert_eq!(restored.restore(snapshot), 1);
        let entries: Vec<_> = restored.iter().collect();
        assert!(entries == [(1, 10)] || entries == [(2, 20)], "{entries:?}");
    });
}
