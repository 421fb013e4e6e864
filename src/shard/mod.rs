//! A shard: one lock's worth of the cache, as plain single-threaded code.
//!
//! Entries live in `slots`, a slab whose indices stay fixed from insert to removal; `table`
//! maps a key's hash to its slot index, and the eviction [`Policy`] keeps a small [`Node`] in
//! each slot and links slots through a column beside the slab. The sharded wrapper (`cache/`)
//! owns the locks and does the hashing.
//!
//! This file holds the shard's operations on entries; `loads.rs` those on its pending loads,
//! `slots.rs` the slab, `restore.rs` what snapshots take from a shard and put back, `tests.rs`
//! the unit tests.
//!
//! Rules:
//! 1. `&self` methods run under the shard's read lock. They change nothing but atomics: an
//!    entry's policy mark and, with a time to idle or an `Expiry`'s reads, its deadlines.
//! 2. After every `&mut self` method returns, `weighted_size <= capacity`.
//! 3. An entry is live while the clock is before its deadline. Reads treat expired entries as
//!    absent; writes remove them: each insert examines at most [`EXPIRY_WORK`] slots, moving a
//!    cursor round the slab, so expired entries cannot outnumber live ones by much (see
//!    [`EXPIRY_WORK`]); `purge_expired` removes the rest. With `stale_for` (a loading
//!    cache's `stale_if_error`), both leave an expired entry until it is that far past its
//!    deadline, for a failed load to answer with; `retain` and `clear` remove it at once.
//! 4. A key has at most one pending load (see `flight/mod.rs`), and every write to the key
//!    detaches it.
//!
//! An entry's deadline is a pair: the written deadline, set by the write (its time to live),
//! and `expires_at`, the deadline reads check. Without a time to idle the two are equal; with
//! one, `expires_at = min(written deadline, last access + time to idle)`. A third time, the
//! refresh time, is when a `LoadingCache` starts reloading the entry in the background
//! (never, for a plain `TtlCache`). The written deadline and the refresh time are kept beside
//! the slab, only by shards with a time to idle or `refresh_after`: a slot is 16 bytes
//! smaller for the caches that need neither.
//!
//! Layout. A hit of a small key and value misses the CPU's cache on as few lines as
//! quick_cache's (issue 15, measured in BENCHMARKS.md): the table's control bytes, the
//! bucket's slot index, the slot, and the shard's own fields. For the last two, the slot holds
//! what a hit reads and nothing else (its ring links are in a column, and it is aligned so that
//! a 32-byte slot never straddles two lines), and the shard and the slab are `repr(C)` with the
//! fields a hit reads first, so that they share the first two lines behind the lock word.

mod loads;
#[cfg(feature = "serde")]
mod restore;
mod slots;
#[cfg(all(test, not(ttlcache_loom)))]
mod tests;

use std::{borrow::Borrow, hash::Hash, mem, time::Duration};

use hashbrown::{HashTable, hash_table::Entry};

#[cfg(feature = "serde")]
pub(crate) use restore::Restored;
use slots::{Deadlines, Slot, Slots, bucket_hash, short_hash};

use crate::{
    clock::{Now, Tick, saturating_nanos},
    flight::Loads,
    policy::{Node, Policy, SlotIndex},
    removal::{RemovalCause, Removals},
    sync::{AtomicU64, Ordering},
};

/// Whether a live entry is due for a background reload: past its refresh time
/// (`refresh_after`, never for a plain `TtlCache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    DueForRefresh,
}

/// An entry on its way into a shard.
pub(crate) struct Write<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) weight: u32,
    /// How long it lives from now (before any time to idle); `None`: forever.
    pub(crate) time_to_live: Option<Duration>,
}

/// Which entries a shard counts in `timed`, the entries its writes look at for expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timed {
    /// Those with a finite deadline: a read never moves a deadline from or to never.
    Finite,
    /// All: an [`Expiry`](crate::Expiry)'s reads may move any deadline, under the read lock,
    /// where the count cannot follow.
    All,
}

/// Slots an insert examines for expired entries.
///
/// If every write examines `w` slots, an entry that expires is removed within one turn of the
/// cursor, `n / w` writes for `n` slots, so at most `n / w` expired entries wait at a time and
/// `n <= live * w / (w - 1)`: with 4, at most a third more entries than are live.
pub(crate) const EXPIRY_WORK: usize = 4;

/// Entries a `clear` took out, to be reported after the lock is released.
pub(crate) struct Cleared<K, V>(Vec<Option<Slot<K, V>>>);

impl<K, V> Cleared<K, V> {
    /// The entries with the cause each left by: expired ones as `Expired`.
    pub(crate) fn into_removals(self, now: &Now<'_>) -> impl Iterator<Item = (K, V, RemovalCause)> {
        self.0.into_iter().flatten().map(move |slot| {
            let cause = if slot.is_expired(now) {
                RemovalCause::Expired
            } else {
                RemovalCause::Explicit
            };
            (slot.key, slot.value, cause)
        })
    }
}

/// The fields a hit reads come first (see the module docs).
#[repr(C)]
pub(crate) struct Shard<K, V> {
    table: HashTable<SlotIndex>,
    slots: Slots<K, V>,
    policy: Policy,
    loads: Loads<K, V>,
    capacity: u64,
    weighted_size: u64,
    refresh_after: Option<Duration>,
    /// Entries whose deadline is not never (all entries, with [`Timed::All`]): while there
    /// are none, writes skip expiry work.
    timed: usize,
    counts: Timed,
    expiry_cursor: usize,
    /// How long an expired entry is kept, unseen by reads, for a failed load to answer with
    /// (`stale_if_error`; zero without): expiry work removes an entry only once its deadline
    /// is this far behind, in nanoseconds (8 bytes, not a `Duration`'s 16: the shard's size
    /// decides how a shard is found on every hit).
    stale_for: u64,
}

impl<K, V> Shard<K, V> {
    /// A shard of `capacity`; `weighted` when the cache has a weigher (entries of other
    /// weights than 1).
    pub(crate) fn new(
        capacity: u64,
        weighted: bool,
        time_to_idle: Option<Duration>,
        refresh_after: Option<Duration>,
        counts: Timed,
    ) -> Self {
        Self {
            table: HashTable::new(),
            slots: Slots::new(
                usize::try_from(capacity.saturating_add(1)).unwrap_or(usize::MAX),
                time_to_idle,
                refresh_after.is_some(),
                weighted,
            ),
            policy: Policy::new(capacity),
            loads: Loads::default(),
            capacity,
            weighted_size: 0,
            refresh_after,
            timed: 0,
            counts,
            expiry_cursor: 0,
            stale_for: 0,
        }
    }

    /// Keeps expired entries for `stale_for` past their deadline, unseen by reads, for
    /// [`stale`](Self::stale) to find (`stale_if_error`).
    pub(crate) fn keep_stale_for(&mut self, stale_for: Duration) {
        self.stale_for = saturating_nanos(stale_for);
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.weighted_size
    }

    /// Whether an entry with this deadline counts in `timed`.
    #[inline]
    fn is_timed(&self, expires_at: Tick) -> bool {
        self.counts == Timed::All || !expires_at.is_never()
    }
}

impl<K: Hash + Eq, V> Shard<K, V> {
    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<SlotIndex>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(bucket_hash(short_hash(hash)), |&index| {
                self.slots.get(index).key.borrow() == key
            })
            .copied()
    }

    /// The slot index of the key's entry, if it is live.
    #[inline(always)]
    pub(crate) fn live<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<SlotIndex>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.find(hash, key)?;
        (!self.slots.get(index).is_expired(now)).then_some(index)
    }

    /// The value of the key's entry if it has expired, but less than `stale_for` ago: what a
    /// failed load answers with (`stale_if_error`). Reads never see it.
    pub(crate) fn stale<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.stale_for == 0 {
            return None;
        }
        let slot = self.slots.get(self.find(hash, key)?);
        (slot.is_expired(now) && !self.is_past_keeping(slot, now)).then_some(&slot.value)
    }

    /// Whether `slot` expired `stale_for` ago or longer: expiry work may remove it.
    fn is_past_keeping(&self, slot: &Slot<K, V>, now: &Now<'_>) -> bool {
        slot.expires_at()
            .after_nanos(self.stale_for)
            .is_reached(now)
    }

    /// A live entry's value, recording the read for the policy and the time to idle.
    /// Always inlined, as [`hit`](Self::hit) is: out of line it cost a hit 16 instructions of
    /// call overhead.
    #[inline(always)]
    fn read(&self, index: SlotIndex, now: &Now<'_>) -> &V {
        let slot = self.slots.get(index);
        slot.node.touch();
        if let Some(time_to_idle) = self.slots.time_to_idle {
            let written_deadline = self.slots.written_deadlines.deadline(index);
            slot.extend_idle(now.get().after(time_to_idle), written_deadline);
        }
        &slot.value
    }

    /// When the entry in slot `index`'s time to live ends (a time to idle aside), or never.
    #[inline]
    fn written_deadline(&self, index: SlotIndex) -> Tick {
        match self.slots.time_to_idle {
            Some(_) => self.slots.written_deadlines.deadline(index),
            None => self.slots.get(index).expires_at(),
        }
    }

    /// When the key's live entry's time to live ends (a time to idle aside), or never;
    /// `None` if it has no live entry.
    pub(crate) fn written_deadline_of<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<Tick>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.live(hash, key, now)?;
        Some(self.written_deadline(index))
    }

    /// Asks `on_read` (an [`Expiry`](crate::Expiry)'s) for a new time to live of the live
    /// entry in slot `index`, given the entry and when its time to live ends now. Only for
    /// shards that count [`Timed::All`].
    ///
    /// Concurrent hits store their deadlines in either order (the last store wins), and with
    /// a time to idle, a hit that read the old written deadline may still extend the idle
    /// deadline up to it: a shortened time to live then ends up to one time to idle late.
    pub(crate) fn reexpire(
        &self,
        index: SlotIndex,
        now: &Now<'_>,
        on_read: impl FnOnce(&K, &V, Tick) -> Option<Duration>,
    ) {
        debug_assert_eq!(self.counts, Timed::All);
        let slot = self.slots.get(index);
        if let Some(time_to_live) = on_read(&slot.key, &slot.value, self.written_deadline(index)) {
            let written = now.get().after(time_to_live);
            let expires_at = match self.slots.time_to_idle {
                Some(time_to_idle) => {
                    self.slots.written_deadlines.store(index, written);
                    written.min(now.get().after(time_to_idle))
                }
                None => written,
            };
            slot.expires_at
                .store(expires_at.to_raw(), Ordering::Relaxed);
        }
    }

    /// The live entry in slot `index`, read (a hit), and whether it is due for a refresh.
    #[inline(always)]
    pub(crate) fn hit(&self, index: SlotIndex, now: &Now<'_>) -> (&V, Freshness) {
        let freshness = if self.slots.refresh_times.get(index).is_reached(now) {
            Freshness::DueForRefresh
        } else {
            Freshness::Fresh
        };
        (self.read(index, now), freshness)
    }

    /// A live entry's value, recording nothing.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.live(hash, key, now)?;
        Some(&self.slots.get(index).value)
    }

    /// Stores an entry that lives `time_to_live` from now (before any time to idle),
    /// replacing the key's entry and detaching its pending load.
    ///
    /// The deadline is taken from the clock under the lock, so time spent waiting for the lock
    /// does not shorten the entry's life. An entry that is expired as it is written (a zero
    /// time to live) is reported as `Expired` at once and evicts nothing; so is one heavier
    /// than the capacity, as `Size`. Returns whether the entry was stored.
    pub(crate) fn insert(
        &mut self,
        write: Write<K, V>,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> bool {
        let Write {
            hash,
            key,
            value,
            weight,
            time_to_live,
        } = write;
        self.loads.detach(hash, &key);
        self.expire_some(now, removals);

        let deadlines = self.deadlines(time_to_live, now);
        let expires_at = deadlines.expires_at;
        let refused = if expires_at.is_reached(now) {
            Some(RemovalCause::Expired)
        } else if u64::from(weight) > self.capacity {
            Some(RemovalCause::Size)
        } else {
            None
        };

        // One probe finds the key's bucket or reserves one, growing the table first; growing
        // rehashes from the nodes' short hashes, without calling the key's `Hash`.
        let short = short_hash(hash);
        let slots = &self.slots;
        let entry = self.table.entry(
            bucket_hash(short),
            |&index| slots.get(index).key == key,
            |&index| bucket_hash(slots.get(index).node.fingerprint()),
        );
        let slot = |key, value| Slot {
            key,
            value,
            expires_at: AtomicU64::new(expires_at.to_raw()),
            node: Node::new(short),
        };
        let index = match entry {
            Entry::Occupied(entry) => {
                let index = *entry.get();
                let live = !self.slots.get(index).is_expired(now);
                if refused.is_none() && live && self.slots.weights.get(index) == weight {
                    // A new value of the same weight for a live entry: the entry keeps its
                    // place in the policy, and the write counts as a request of it.
                    let (old_key, old_value) = self.replace_entry(index, key, value, &deadlines);
                    removals.push(old_key, old_value, RemovalCause::Replaced);
                    return true;
                }
                if refused.is_some() {
                    entry.remove();
                }
                let cause = if live {
                    RemovalCause::Replaced
                } else {
                    RemovalCause::Expired
                };
                let slot = slot(key, value);
                let old = self.release(index);
                removals.push(old.key, old.value, cause);
                if let Some(cause) = refused {
                    removals.push(slot.key, slot.value, cause);
                    return false;
                }
                // The slot just released is the first reused: the bucket still points at it.
                let reused = self.slots.insert(slot, &deadlines, weight);
                debug_assert_eq!(reused, index);
                index
            }
            Entry::Vacant(entry) => {
                if let Some(cause) = refused {
                    removals.push(key, value, cause);
                    return false;
                }
                let slot = slot(key, value);
                let index = self.slots.insert(slot, &deadlines, weight);
                entry.insert(index);
                index
            }
        };
        self.weighted_size += u64::from(weight);
        if self.is_timed(expires_at) {
            self.timed += 1;
        }
        self.policy.admit(&mut self.slots, index);
        self.evict_to_capacity(now, removals);
        true
    }

    /// Removes the key's entry, with `Expired` or `Explicit` as the cause it left by, and
    /// detaches its pending load.
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
    ) -> Option<(K, V, RemovalCause)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.loads.detach(hash, key);
        self.remove_entry(hash, key, now)
    }

    /// Removes the key's entry, as [`remove`](Self::remove) does, but leaves its pending load
    /// attached: for an entry that may not be served (a coherent cache that may not serve
    /// now), while the load that will replace it keeps its callers together.
    pub(crate) fn remove_entry<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
    ) -> Option<(K, V, RemovalCause)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.find(hash, key)?;
        let cause = if self.slots.get(index).is_expired(now) {
            RemovalCause::Expired
        } else {
            RemovalCause::Explicit
        };
        let slot = self.remove_at(index);
        Some((slot.key, slot.value, cause))
    }

    /// Keeps the live entries `keep` accepts; removes the others, and every expired entry.
    ///
    /// If `keep` panics, the entries removed so far stay removed and the shard is consistent.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(&K, &V) -> bool,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) {
        for index in 0..self.slot_count() {
            let Some(slot) = &self.slots.slots[index as usize] else {
                continue;
            };
            // Every expired entry, kept for a failed load or not: `keep` sees live ones only.
            if slot.is_expired(now) {
                let slot = self.remove_at(index);
                removals.push(slot.key, slot.value, RemovalCause::Expired);
                continue;
            }
            if !keep(&slot.key, &slot.value) {
                let slot = self.remove_at(index);
                removals.push(slot.key, slot.value, RemovalCause::Explicit);
            }
        }
    }

    /// Removes every entry and detaches every pending load.
    pub(crate) fn clear(&mut self) -> Cleared<K, V> {
        self.table.clear();
        self.policy.clear();
        self.loads.clear();
        self.weighted_size = 0;
        self.timed = 0;
        self.expiry_cursor = 0;
        Cleared(self.slots.clear())
    }

    /// Removes every expired entry that is not kept for a failed load; returns how many.
    pub(crate) fn purge_expired(
        &mut self,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> usize {
        if self.timed == 0 {
            return 0;
        }
        (0..self.slot_count())
            .filter(|&index| self.expire(index, now, removals))
            .count()
    }

    /// The live entries.
    pub(crate) fn live_entries<'a>(
        &'a self,
        now: &'a Now<'_>,
    ) -> impl Iterator<Item = (&'a K, &'a V)> {
        self.slots
            .slots
            .iter()
            .flatten()
            .filter(|slot| !slot.is_expired(now))
            .map(|slot| (&slot.key, &slot.value))
    }

    /// Whether it is time to give the policy's window a new share (`policy/climber.rs`).
    pub(crate) fn adaptation_due(&mut self) -> bool {
        self.policy.adaptation_due()
    }

    /// Gives the policy's window `share` of the shard's capacity.
    pub(crate) fn set_window(&mut self, share: f64) {
        self.policy.set_window(share);
    }

    /// The deadlines of a write now that lives `time_to_live` (before any time to idle).
    fn deadlines(&self, time_to_live: Option<Duration>, now: &Now<'_>) -> Deadlines {
        let after = |duration: Option<Duration>| {
            duration.map_or(Tick::NEVER, |duration| now.get().after(duration))
        };
        let written = after(time_to_live);
        Deadlines {
            written,
            expires_at: written.min(after(self.slots.time_to_idle)),
            refreshes_at: after(self.refresh_after),
        }
    }

    fn slot_count(&self) -> SlotIndex {
        // `Slots::insert` keeps the slab's length within a `SlotIndex`.
        self.slots.slots.len() as SlotIndex
    }

    /// Examines up to [`EXPIRY_WORK`] slots from the cursor, removing expired entries.
    fn expire_some(&mut self, now: &Now<'_>, removals: &mut Removals<'_, K, V>) {
        if self.timed == 0 {
            return;
        }
        for _ in 0..EXPIRY_WORK {
            if self.expiry_cursor >= self.slots.slots.len() {
                self.expiry_cursor = 0;
            }
            let index = self.expiry_cursor as SlotIndex;
            self.expiry_cursor += 1;
            self.expire(index, now, removals);
        }
    }

    /// Removes the entry in slot `index` if it has expired, and is no longer kept for a
    /// failed load (`stale_for`); returns whether it did.
    fn expire(
        &mut self,
        index: SlotIndex,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> bool {
        let Some(slot) = &self.slots.slots[index as usize] else {
            return false;
        };
        if !self.is_past_keeping(slot, now) {
            return false;
        }
        let slot = self.remove_at(index);
        removals.push(slot.key, slot.value, RemovalCause::Expired);
        true
    }

    /// Evicts what the policy picks until the shard is within its capacity: older entries, or
    /// an entry leaving the window that the policy declines to admit. Never the entry just
    /// written.
    fn evict_to_capacity(&mut self, now: &Now<'_>, removals: &mut Removals<'_, K, V>) {
        while self.weighted_size > self.capacity {
            let victim = self
                .policy
                .evict(&mut self.slots)
                .expect("a shard over its capacity holds an entry");
            let slot = self.slots.get(victim);
            let cause = if slot.is_expired(now) {
                RemovalCause::Expired
            } else {
                RemovalCause::Size
            };
            let slot = self.remove_at(victim);
            removals.push(slot.key, slot.value, cause);
        }
        self.policy.settle(&mut self.slots);
    }

    fn remove_at(&mut self, index: SlotIndex) -> Slot<K, V> {
        let short = self.slots.get(index).node.fingerprint();
        self.table
            .find_entry(bucket_hash(short), |&other| other == index)
            .expect("every slot is indexed")
            .remove();
        self.release(index)
    }

    /// Stores `key` (equal to the one held) and `value` in the live slot `index` with the
    /// write's deadlines, and returns what it held.
    fn replace_entry(
        &mut self,
        index: SlotIndex,
        key: K,
        value: V,
        deadlines: &Deadlines,
    ) -> (K, V) {
        let expected = self.slots.expected;
        self.slots
            .written_deadlines
            .set_deadline(index, deadlines.written, expected);
        self.slots
            .refresh_times
            .set(index, deadlines.refreshes_at, expected);
        let expires_at = deadlines.expires_at;
        let slot = self.slots.slots[index as usize]
            .as_mut()
            .expect("an indexed slot is occupied");
        let old_expires_at = slot.expires_at();
        slot.expires_at = AtomicU64::new(expires_at.to_raw());
        slot.node.touch();
        let old = (
            mem::replace(&mut slot.key, key),
            mem::replace(&mut slot.value, value),
        );
        match (self.is_timed(old_expires_at), self.is_timed(expires_at)) {
            (false, true) => self.timed += 1,
            (true, false) => self.timed -= 1,
            _ => {}
        }
        old
    }

    /// Takes the entry in slot `index` out of the slab and the policy; its bucket in the table
    /// is the caller's to remove or reuse.
    fn release(&mut self, index: SlotIndex) -> Slot<K, V> {
        self.policy.remove(&mut self.slots, index);
        self.weighted_size -= u64::from(self.slots.weights.get(index));
        let slot = self.slots.take(index);
        if self.is_timed(slot.expires_at()) {
            self.timed -= 1;
        }
        slot
    }
}
