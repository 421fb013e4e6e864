//! Unit tests of the shard, with a manual clock and a listener that logs what leaves.

use std::{
    hash::{BuildHasher, RandomState},
    sync::Mutex,
};

use super::*;
use crate::{
    ManualClock,
    clock::{TimeSource, Timeline},
    flight::{Began, Found},
    removal::Listener,
    stats::Counters,
};

type Log = std::sync::Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A shard of `u64`s with a manual clock and a listener that logs what leaves.
struct Harness {
    shard: Shard<u64, u64>,
    clock: ManualClock,
    timeline: Timeline,
    hasher: RandomState,
    counters: Counters,
    listener: Option<Listener<u64, u64>>,
    log: Log,
}

impl Harness {
    fn new(capacity: u64, time_to_idle: Option<Duration>) -> Self {
        let clock = ManualClock::new();
        let log = Log::default();
        let sink = log.clone();
        let listener: Listener<u64, u64> =
            Box::new(move |key, value, cause| sink.lock().unwrap().push((key, value, cause)));
        Self {
            shard: Shard::new(capacity, true, time_to_idle, None, Timed::Finite),
            timeline: Timeline::new(TimeSource::of(clock.clone())),
            clock,
            hasher: RandomState::new(),
            counters: Counters::new(),
            listener: Some(listener),
            log,
        }
    }

    fn insert_weighted(&mut self, key: u64, weight: u32, ttl: Option<Duration>) {
        let now = Now::lazy(&self.timeline);
        let mut removals = Removals::new(self.listener.as_ref(), &self.counters, None);
        let hash = self.hasher.hash_one(key);
        let write = Write {
            hash,
            key,
            value: key * 10,
            weight,
            time_to_live: ttl,
        };
        self.shard.insert(write, &now, &mut removals);
        drop(removals);
        if self.shard.len() < 1_000 {
            self.shard.assert_consistent(&self.hasher);
        }
    }

    fn insert(&mut self, key: u64, ttl: Option<Duration>) {
        self.insert_weighted(key, 1, ttl);
    }

    fn get(&self, key: u64) -> Option<u64> {
        let now = Now::lazy(&self.timeline);
        let index = self.shard.live(self.hasher.hash_one(key), &key, &now)?;
        Some(*self.shard.hit(index, &now).0)
    }

    fn removed(&self) -> Vec<(u64, RemovalCause)> {
        let mut log = self.log.lock().unwrap();
        log.drain(..).map(|(key, _, cause)| (key, cause)).collect()
    }
}

impl<K: Hash + Eq, V> Shard<K, V> {
    /// Checks that the table, slab, ring and counters agree.
    fn assert_consistent(&self, hasher: &impl BuildHasher) {
        let occupied: Vec<SlotIndex> = (0..self.slot_count())
            .filter(|&index| self.slots.slots[index as usize].is_some())
            .collect();
        assert_eq!(self.table.len(), occupied.len());
        assert_eq!(
            self.slots.vacant.len() + occupied.len(),
            self.slots.slots.len()
        );
        let mut weight = 0;
        let mut timed = 0;
        for &index in &occupied {
            let slot = self.slots.get(index);
            assert_eq!(
                self.find(hasher.hash_one(&slot.key), &slot.key),
                Some(index)
            );
            weight += u64::from(self.slots.weights.get(index));
            timed += usize::from(self.is_timed(slot.expires_at()));
        }
        assert_eq!(self.weighted_size, weight);
        assert!(self.weighted_size <= self.capacity);
        assert_eq!(self.timed, timed);
        let mut tracked = self.policy.tracked(&self.slots);
        tracked.sort_unstable();
        assert_eq!(tracked, occupied, "the policy tracks every entry once");
    }
}

#[test]
fn a_full_shard_evicts_by_policy_and_reports_size() {
    let mut shard = Harness::new(3, None);
    for key in 0..3 {
        shard.insert(key, None);
    }
    assert_eq!(shard.get(0), Some(0));
    shard.insert(3, None);
    // Entry 0 was read, so it stays; one of the others leaves, for capacity.
    let removed = shard.removed();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].1, RemovalCause::Size);
    assert_ne!(removed[0].0, 0);
    assert_eq!(shard.get(0), Some(0));
}

#[test]
fn weights_count_against_capacity() {
    let mut shard = Harness::new(10, None);
    shard.insert_weighted(1, 4, None);
    shard.insert_weighted(2, 4, None);
    shard.insert_weighted(3, 4, None);
    assert_eq!(shard.shard.weighted_size(), 8);
    assert_eq!(shard.removed().len(), 1);
    // A write is stored even when it displaces everything else.
    shard.insert_weighted(4, 10, None);
    assert_eq!(shard.removed().len(), 2);
    assert_eq!(shard.get(4), Some(40));
    assert_eq!(shard.shard.weighted_size(), 10);
}

#[test]
fn an_entry_heavier_than_the_shard_is_refused_and_its_old_value_replaced() {
    let mut shard = Harness::new(10, None);
    shard.insert_weighted(1, 5, None);
    shard.insert_weighted(1, 11, None);
    assert_eq!(
        shard.removed(),
        [(1, RemovalCause::Replaced), (1, RemovalCause::Size)]
    );
    assert_eq!(shard.get(1), None);
    assert_eq!(shard.shard.weighted_size(), 0);
}

#[test]
fn replacing_an_expired_entry_reports_it_expired() {
    let mut shard = Harness::new(10, None);
    shard.insert(1, Some(Duration::from_secs(1)));
    shard.clock.advance(Duration::from_secs(1));
    shard.insert(1, None);
    assert_eq!(shard.removed(), [(1, RemovalCause::Expired)]);
    assert_eq!(shard.get(1), Some(10));
}

#[test]
fn an_expired_victim_is_reported_expired() {
    let mut shard = Harness::new(2, None);
    shard.insert(1, Some(Duration::from_secs(1)));
    shard.insert(2, None);
    shard.clock.advance(Duration::from_secs(5));
    // The expiry sweep or the eviction finds entry 1: either way it left by expiring.
    shard.insert(3, None);
    assert_eq!(shard.removed(), [(1, RemovalCause::Expired)]);
}

#[test]
fn an_entry_expired_as_it_is_written_evicts_nothing() {
    let mut shard = Harness::new(1, None);
    shard.insert(1, None);
    shard.insert(2, Some(Duration::ZERO));
    assert_eq!(shard.removed(), [(2, RemovalCause::Expired)]);
    assert_eq!(shard.get(1), Some(10));
}

#[test]
fn writes_keep_expired_entries_near_the_live_set() {
    let mut shard = Harness::new(u64::MAX, None);
    let ttl = Duration::from_millis(100);
    // 100 writes per millisecond: about 10,000 entries live at any time.
    for key in 0..400_000 {
        shard.insert(key, Some(ttl));
        if key % 100 == 99 {
            shard.clock.advance(Duration::from_millis(1));
        }
    }
    shard.shard.assert_consistent(&shard.hasher);
    let live = 10_000;
    let held = shard.shard.len();
    assert!(
        held <= live * EXPIRY_WORK / (EXPIRY_WORK - 1) + 200,
        "{held} entries held for {live} live"
    );
}

#[test]
fn time_to_idle_moves_the_deadline_but_not_past_the_written_one() {
    let mut shard = Harness::new(10, Some(Duration::from_secs(10)));
    shard.insert(1, Some(Duration::from_secs(25)));
    for _ in 0..2 {
        shard.clock.advance(Duration::from_secs(9));
        assert_eq!(shard.get(1), Some(10));
    }
    // Read at 18s: idle deadline 28s, but the written deadline 25s comes first.
    shard.clock.advance(Duration::from_nanos(6_999_999_999));
    assert_eq!(shard.get(1), Some(10));
    shard.clock.advance(Duration::from_nanos(1));
    assert_eq!(shard.get(1), None);
}

#[test]
fn a_panicking_retain_predicate_leaves_the_shard_consistent() {
    let mut shard = Harness::new(100, None);
    for key in 0..10 {
        shard.insert(key, None);
    }
    let now = Now::lazy(&shard.timeline);
    let mut removals = Removals::new(shard.listener.as_ref(), &shard.counters, None);
    let mut seen = 0;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shard.shard.retain(
            |_, _| {
                seen += 1;
                assert!(seen < 5, "predicate gives up");
                false
            },
            &now,
            &mut removals,
        );
    }));
    drop(removals);
    assert!(unwound.is_err());
    shard.shard.assert_consistent(&shard.hasher);
    assert_eq!(shard.shard.len(), 6);
    assert_eq!(shard.removed().len(), 4);
}

#[test]
fn a_write_detaches_a_pending_load() {
    let mut shard = Harness::new(10, None);
    let now = Now::lazy(&shard.timeline);
    let hash = shard.hasher.hash_one(1u64);
    assert!(matches!(
        shard.shard.find_load(hash, &1, &now),
        Found::Lead(())
    ));
    let flight = shard
        .shard
        .start_load(hash, 1, Began::Trusted, &shard.hasher);
    assert!(matches!(
        shard.shard.find_load(hash, &1, &now),
        Found::Join(_)
    ));
    shard.insert(1, None);
    assert_eq!(shard.shard.finish_load(hash, &flight), None);
}

#[test]
fn clear_empties_the_shard_and_reports_each_entry() {
    let mut shard = Harness::new(10, None);
    shard.insert(1, None);
    shard.insert(2, Some(Duration::from_secs(1)));
    shard.clock.advance(Duration::from_secs(1));
    let now = Now::lazy(&shard.timeline);
    let mut removed: Vec<_> = shard
        .shard
        .clear()
        .into_removals(&now)
        .map(|(key, _, cause)| (key, cause))
        .collect();
    removed.sort_by_key(|&(key, _)| key);
    assert_eq!(
        removed,
        [(1, RemovalCause::Explicit), (2, RemovalCause::Expired)]
    );
    shard.shard.assert_consistent(&shard.hasher);
    shard.insert(3, None);
    assert_eq!(shard.get(3), Some(30));
}
