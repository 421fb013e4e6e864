//! A shard: one lock's worth of the cache, as plain single-threaded code.
//!
//! Entries live in `slots`, a slab whose indices stay fixed from insert to removal; `table`
//! maps a key's hash to its slot index, and the eviction [`Policy`] links slots through the
//! [`Node`] in each. The sharded wrapper (`cache.rs`) owns the locks and does the hashing.
//!
//! Rules:
//! 1. `&self` methods run under the shard's read lock. They change nothing but atomics: an
//!    entry's policy mark and, with a time to idle, its deadline.
//! 2. After every `&mut self` method returns, `weighted_size <= capacity`.
//! 3. An entry is live while the clock is before its deadline. Reads treat expired entries as
//!    absent; writes remove them: each insert examines at most [`EXPIRY_WORK`] slots, moving a
//!    cursor round the slab, so expired entries cannot outnumber live ones by much (see
//!    [`EXPIRY_WORK`]); `purge_expired` removes the rest.
//! 4. A key has at most one pending load (see `flight.rs`), and every write to the key
//!    detaches it.
//!
//! An entry's deadline is a pair: the written deadline, set by the write (its time to live),
//! and `expires_at`, the deadline reads check. Without a time to idle the two are equal; with
//! one, `expires_at = min(written deadline, last access + time to idle)`. A third time, the
//! refresh time, is when a `LoadingCache` starts reloading the entry in the background
//! (never, for a plain `TtlCache`). The written deadline and the refresh time are kept beside
//! the slab, only by shards with a time to idle or `refresh_after`: a slot is 16 bytes
//! smaller for the caches that need neither.

use std::{
    borrow::Borrow,
    hash::{BuildHasher, Hash},
    mem,
    time::Duration,
};

use hashbrown::{HashTable, hash_table::Entry};

use crate::{
    clock::{Now, Tick},
    flight::{Flight, Loads},
    policy::{Arena, Node, Policy, SlotIndex},
    removal::{RemovalCause, Removals},
    sync::{Arc, AtomicU64, Ordering},
};

/// Slots an insert examines for expired entries.
///
/// If every write examines `w` slots, an entry that expires is removed within one turn of the
/// cursor, `n / w` writes for `n` slots, so at most `n / w` expired entries wait at a time and
/// `n <= live * w / (w - 1)`: with 4, at most a third more entries than are live.
pub(crate) const EXPIRY_WORK: usize = 4;

struct Slot<K, V> {
    key: K,
    value: V,
    /// The deadline reads check, as a raw tick: see the module docs.
    expires_at: AtomicU64,
    node: Node,
}

impl<K, V> Slot<K, V> {
    #[inline]
    fn expires_at(&self) -> Tick {
        Tick::from_raw(self.expires_at.load(Ordering::Relaxed))
    }

    /// Reads the clock only if the entry can expire.
    #[inline]
    fn is_expired(&self, now: &Now<'_>) -> bool {
        self.expires_at().is_reached(now)
    }

    /// Moves the idle deadline to `idle_deadline`, never past `written_deadline` nor back.
    ///
    /// A deadline that was finite stays finite (at worst 584 years out), so an entry counted
    /// in `Shard::timed` stays counted until it leaves.
    #[inline]
    fn extend_idle(&self, idle_deadline: Tick, written_deadline: Tick) {
        let deadline = idle_deadline
            .min(written_deadline)
            .to_raw()
            .min(Tick::NEVER.to_raw() - 1);
        if self.expires_at.load(Ordering::Relaxed) < deadline {
            self.expires_at.fetch_max(deadline, Ordering::Relaxed);
        }
    }
}

/// The slab: slots by index, the times some shards keep beside them, and the indices free for
/// reuse.
struct Slots<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    /// With a time to idle: the deadline each slot's last write set, its time plus its time to
    /// live, or never.
    written_deadlines: Column<Tick>,
    /// With `refresh_after`: when a read of each slot should start a reload.
    refresh_times: Column<Tick>,
    /// With a weigher: each slot's weight (1 without one).
    weights: Column<u32>,
    vacant: Vec<SlotIndex>,
    /// The most entries the shard holds at once (unless weights are 0): its capacity, plus
    /// the one an insert adds before it evicts. The slab grows up to it and no further, so a
    /// full cache carries no spare slots.
    expected: usize,
}

/// One value per slot, kept only by the shards that use it; the others read `absent`.
struct Column<T> {
    values: Option<Vec<T>>,
    absent: T,
}

impl<T: Copy> Column<T> {
    fn kept(keep: bool, absent: T) -> Self {
        Self {
            values: keep.then(Vec::new),
            absent,
        }
    }

    #[inline]
    fn get(&self, index: SlotIndex) -> T {
        self.values
            .as_ref()
            .map_or(self.absent, |values| values[index as usize])
    }

    /// Forgets every slot's value, and the memory they took.
    fn clear(&mut self) {
        if let Some(values) = &mut self.values {
            *values = Vec::new();
        }
    }

    fn set(&mut self, index: SlotIndex, value: T, expected: usize) {
        if let Some(values) = &mut self.values {
            match values.get_mut(index as usize) {
                Some(slot) => *slot = value,
                None => push_within(values, value, expected),
            }
        }
    }
}

/// The 32 bits of a key's hash a shard keeps in the entry's node: the sketch counts by them,
/// and the table places the entry by their [`bucket_hash`], so that the entry's bucket is found
/// from its node alone. Both halves are folded in, so a hasher that fills only the low half
/// (an identity hash of small integers) still tells keys apart.
#[inline]
fn short_hash(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

/// A short hash spread over 64 bits for the table, which takes buckets from the low bits and
/// tags from the top seven: a bijection, so distinct short hashes stay distinct.
#[inline]
fn bucket_hash(short: u32) -> u64 {
    let spread = u64::from(short).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    spread ^ (spread >> 29)
}

/// Pushes `item`, growing `items` by doubling but not past `expected` items until they exceed it.
fn push_within<T>(items: &mut Vec<T>, item: T, expected: usize) {
    if items.len() == items.capacity() {
        let room = expected.saturating_sub(items.len());
        let grow = items.len().max(4);
        items.reserve_exact(if room > 0 { grow.min(room) } else { grow });
    }
    items.push(item);
}

impl<K, V> Slots<K, V> {
    fn new(expected: usize, time_to_idle: bool, refresh_after: bool, weighted: bool) -> Self {
        Self {
            slots: Vec::new(),
            written_deadlines: Column::kept(time_to_idle, Tick::NEVER),
            refresh_times: Column::kept(refresh_after, Tick::NEVER),
            weights: Column::kept(weighted, 1),
            vacant: Vec::new(),
            expected,
        }
    }

    #[inline]
    fn get(&self, index: SlotIndex) -> &Slot<K, V> {
        self.slots[index as usize]
            .as_ref()
            .expect("an indexed slot is occupied")
    }

    /// Stores `slot` with its written deadline, refresh time and weight; returns its index.
    fn insert(
        &mut self,
        slot: Slot<K, V>,
        written_deadline: Tick,
        refreshes_at: Tick,
        weight: u32,
    ) -> SlotIndex {
        let index = match self.vacant.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(slot);
                index
            }
            None => {
                let index = SlotIndex::try_from(self.slots.len())
                    .expect("a shard holds fewer than 2^32 entries: use more shards");
                push_within(&mut self.slots, Some(slot), self.expected);
                index
            }
        };
        self.written_deadlines
            .set(index, written_deadline, self.expected);
        self.refresh_times.set(index, refreshes_at, self.expected);
        debug_assert!(self.weights.values.is_some() || weight == 1);
        self.weights.set(index, weight, self.expected);
        index
    }

    fn take(&mut self, index: SlotIndex) -> Slot<K, V> {
        self.vacant.push(index);
        self.slots[index as usize]
            .take()
            .expect("an indexed slot is occupied")
    }
}

impl<K, V> Arena for Slots<K, V> {
    #[inline]
    fn node(&self, index: SlotIndex) -> &Node {
        &self.get(index).node
    }

    #[inline]
    fn node_mut(&mut self, index: SlotIndex) -> &mut Node {
        &mut self.slots[index as usize]
            .as_mut()
            .expect("a linked slot is occupied")
            .node
    }

    #[inline]
    fn weight(&self, index: SlotIndex) -> u32 {
        self.weights.get(index)
    }
}

/// An entry from a snapshot, on its way into its shard.
#[cfg(feature = "serde")]
pub(crate) struct Restored<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) weight: u32,
    /// Its written deadline, on this cache's clock.
    pub(crate) deadline: Tick,
}

/// What a caller of `get_or_*` finds under the write lock.
pub(crate) enum LoadStart<K, V> {
    /// A live value.
    Hit(V),
    /// A load in progress, and the caller's key back, to retry with if the load is abandoned.
    Wait(K, Arc<Flight<V>>),
    /// Nothing: the caller now leads a new load.
    Lead(Arc<Flight<V>>),
}

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

pub(crate) struct Shard<K, V> {
    table: HashTable<SlotIndex>,
    slots: Slots<K, V>,
    policy: Policy,
    loads: Loads<K, V>,
    capacity: u64,
    weighted_size: u64,
    time_to_idle: Option<Duration>,
    refresh_after: Option<Duration>,
    /// Entries whose deadline is not never: while there are none, writes skip expiry work.
    timed: usize,
    expiry_cursor: usize,
}

impl<K, V> Shard<K, V> {
    /// A shard of `capacity`; `weighted` when the cache has a weigher (entries of other
    /// weights than 1).
    pub(crate) fn new(
        capacity: u64,
        weighted: bool,
        time_to_idle: Option<Duration>,
        refresh_after: Option<Duration>,
    ) -> Self {
        Self {
            table: HashTable::new(),
            slots: Slots::new(
                usize::try_from(capacity.saturating_add(1)).unwrap_or(usize::MAX),
                time_to_idle.is_some(),
                refresh_after.is_some(),
                weighted,
            ),
            policy: Policy::new(capacity),
            loads: Loads::default(),
            capacity,
            weighted_size: 0,
            time_to_idle,
            refresh_after,
            timed: 0,
            expiry_cursor: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.weighted_size
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
    #[inline]
    fn live<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<SlotIndex>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.find(hash, key)?;
        (!self.slots.get(index).is_expired(now)).then_some(index)
    }

    /// A live entry's value, recording the read for the policy and the time to idle.
    #[inline]
    fn read(&self, index: SlotIndex, now: &Now<'_>) -> &V {
        let slot = self.slots.get(index);
        slot.node.touch();
        if let Some(time_to_idle) = self.time_to_idle {
            let written_deadline = self.slots.written_deadlines.get(index);
            slot.extend_idle(now.get().after(time_to_idle), written_deadline);
        }
        &slot.value
    }

    /// The key's value if it is live, recording the read (a hit), and whether it is due for
    /// a refresh (never, in a shard without `refresh_after`).
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<(&V, bool)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.live(hash, key, now)?;
        let stale = self.slots.refresh_times.get(index).is_reached(now);
        Some((self.read(index, now), stale))
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
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        time_to_live: Option<Duration>,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> bool {
        self.loads.detach(hash, &key);
        self.expire_some(now, removals);

        let deadline = time_to_live.map_or(Tick::NEVER, |ttl| now.get().after(ttl));
        let expires_at = match self.time_to_idle {
            Some(time_to_idle) => deadline.min(now.get().after(time_to_idle)),
            None => deadline,
        };
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
        let refreshes_at = self
            .refresh_after
            .map_or(Tick::NEVER, |after| now.get().after(after));
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
                    let times = (deadline, expires_at, refreshes_at);
                    let (old_key, old_value) = self.replace_entry(index, key, value, times);
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
                let reused = self.slots.insert(slot, deadline, refreshes_at, weight);
                debug_assert_eq!(reused, index);
                index
            }
            Entry::Vacant(entry) => {
                if let Some(cause) = refused {
                    removals.push(key, value, cause);
                    return false;
                }
                let slot = slot(key, value);
                let index = self.slots.insert(slot, deadline, refreshes_at, weight);
                entry.insert(index);
                index
            }
        };
        self.weighted_size += u64::from(weight);
        if !expires_at.is_never() {
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
            if self.expire(index, now, removals) {
                continue;
            }
            let Some(slot) = &self.slots.slots[index as usize] else {
                continue;
            };
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
        self.slots.vacant.clear();
        self.slots.written_deadlines.clear();
        self.slots.refresh_times.clear();
        self.slots.weights.clear();
        self.weighted_size = 0;
        self.timed = 0;
        self.expiry_cursor = 0;
        Cleared(mem::take(&mut self.slots.slots))
    }

    /// Removes every expired entry; returns how many.
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

    /// The live entries, most valuable to the policy first, each with its written deadline
    /// (its time to live's end, or never) and, with a time to idle, the deadline it idles out
    /// at: what a snapshot keeps.
    #[cfg(feature = "serde")]
    pub(crate) fn ranked_entries<'a>(
        &'a self,
        now: &'a Now<'_>,
    ) -> impl Iterator<Item = (&'a K, &'a V, Tick, Option<Tick>)> {
        self.policy
            .ranked(&self.slots)
            .into_iter()
            .filter_map(move |index| {
                let slot = self.slots.get(index);
                if slot.is_expired(now) {
                    return None;
                }
                let (written_deadline, idle_deadline) = match self.time_to_idle {
                    Some(_) => (
                        self.slots.written_deadlines.get(index),
                        Some(slot.expires_at()),
                    ),
                    None => (slot.expires_at(), None),
                };
                Some((&slot.key, &slot.value, written_deadline, idle_deadline))
            })
    }

    /// Stores entries from a snapshot, listed most valuable first, where they take nothing
    /// from what the shard holds: not over a live entry or a pending load of the key (both
    /// newer than any snapshot), and only in the room the shard has left, so they evict
    /// nothing; the most valuable that fit are chosen. Returns how many it stored.
    ///
    /// They are stored least valuable first, so that the most valuable are the youngest to
    /// the policy, the last it would evict.
    #[cfg(feature = "serde")]
    pub(crate) fn restore(
        &mut self,
        entries: Vec<Restored<K, V>>,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> usize {
        // An entry would be expired as it is written with a time to idle of zero; it is
        // skipped, not stored and reported as expired.
        if entries.is_empty() || self.time_to_idle == Some(Duration::ZERO) {
            return 0;
        }
        // Room that expired entries take is room for the snapshot's.
        self.purge_expired(now, removals);
        let mut room = self.capacity - self.weighted_size;
        let chosen: Vec<Restored<K, V>> = entries
            .into_iter()
            .filter(|entry| {
                let fits = u64::from(entry.weight) <= room
                    && !entry.deadline.is_reached(now)
                    && self.live(entry.hash, &entry.key, now).is_none()
                    && self.loads.find(entry.hash, &entry.key).is_none();
                if fits {
                    room -= u64::from(entry.weight);
                }
                fits
            })
            .collect();
        let mut stored = 0;
        for entry in chosen.into_iter().rev() {
            // A key the snapshot lists twice is stored once.
            if self.live(entry.hash, &entry.key, now).is_some() {
                continue;
            }
            let time_to_live =
                (!entry.deadline.is_never()).then(|| entry.deadline.since(now.get()));
            let Restored {
                hash,
                key,
                value,
                weight,
                ..
            } = entry;
            if self.insert(hash, key, value, weight, time_to_live, now, removals) {
                stored += 1;
            }
        }
        stored
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

    /// Finds a live value, a pending load to join, or starts a load for `key` (`flight.rs`).
    pub(crate) fn start_load(
        &mut self,
        hash: u64,
        key: K,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
    ) -> LoadStart<K, V>
    where
        V: Clone,
    {
        if let Some(index) = self.live(hash, &key, now) {
            return LoadStart::Hit(self.read(index, now).clone());
        }
        if let Some(flight) = self.loads.find(hash, &key) {
            return LoadStart::Wait(key, Arc::clone(flight));
        }
        LoadStart::Lead(self.loads.start(hash, key, hasher))
    }

    /// Whether a load of `key` is pending.
    #[cfg(feature = "tokio")]
    pub(crate) fn is_loading<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.loads.find(hash, key).is_some()
    }

    /// Starts a reload of `key` while its value (if any) stays live, unless a load of it is
    /// already pending, or, given `stale_at`, unless its entry is live and due for a refresh
    /// then; returns the new load's flight.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_refresh(
        &mut self,
        hash: u64,
        key: K,
        stale_at: Option<&Now<'_>>,
        hasher: &impl BuildHasher,
    ) -> Option<Arc<Flight<V>>> {
        if self.loads.find(hash, &key).is_some() {
            return None;
        }
        if let Some(now) = stale_at {
            let index = self.live(hash, &key, now)?;
            if !self.slots.refresh_times.get(index).is_reached(now) {
                return None;
            }
        }
        Some(self.loads.start(hash, key, hasher))
    }

    /// Whether `flight`'s load of its key is still pending here (not detached by a write).
    #[cfg(feature = "tokio")]
    pub(crate) fn is_pending(&self, hash: u64, flight: &Arc<Flight<V>>) -> bool {
        self.loads.contains(hash, flight)
    }

    /// Whether it is time to give the policy's window a new share (`climber.rs`).
    pub(crate) fn adaptation_due(&mut self) -> bool {
        self.policy.adaptation_due()
    }

    /// Gives the policy's window `share` of the shard's capacity.
    pub(crate) fn set_window(&mut self, share: f64) {
        self.policy.set_window(share);
    }

    /// Ends `flight`'s load, handing back its key unless a write detached the load.
    pub(crate) fn finish_load(&mut self, hash: u64, flight: &Arc<Flight<V>>) -> Option<K> {
        self.loads.finish(hash, flight)
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

    /// Removes the entry in slot `index` if it has expired; returns whether it did.
    fn expire(
        &mut self,
        index: SlotIndex,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> bool {
        let Some(slot) = &self.slots.slots[index as usize] else {
            return false;
        };
        if !slot.is_expired(now) {
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
    /// write's `(written deadline, expires_at, refresh time)`, and returns what it held.
    fn replace_entry(
        &mut self,
        index: SlotIndex,
        key: K,
        value: V,
        times: (Tick, Tick, Tick),
    ) -> (K, V) {
        let (written_deadline, expires_at, refreshes_at) = times;
        let expected = self.slots.expected;
        self.slots
            .written_deadlines
            .set(index, written_deadline, expected);
        self.slots.refresh_times.set(index, refreshes_at, expected);
        let slot = self.slots.slots[index as usize]
            .as_mut()
            .expect("an indexed slot is occupied");
        let was_timed = !slot.expires_at().is_never();
        slot.expires_at = AtomicU64::new(expires_at.to_raw());
        slot.node.touch();
        let old = (
            mem::replace(&mut slot.key, key),
            mem::replace(&mut slot.value, value),
        );
        match (was_timed, !expires_at.is_never()) {
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
        if !slot.expires_at().is_never() {
            self.timed -= 1;
        }
        slot
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use std::{hash::RandomState, sync::Mutex};

    use super::*;
    use crate::{
        ManualClock,
        clock::{TimeSource, Timeline},
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
                shard: Shard::new(capacity, true, time_to_idle, None),
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
            let mut removals = Removals::new(self.listener.as_ref(), &self.counters);
            let hash = self.hasher.hash_one(key);
            self.shard
                .insert(hash, key, key * 10, weight, ttl, &now, &mut removals);
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
            self.shard
                .get(self.hasher.hash_one(key), &key, &now)
                .map(|(value, _)| *value)
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
                timed += usize::from(!slot.expires_at().is_never());
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
        let mut removals = Removals::new(shard.listener.as_ref(), &shard.counters);
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
        let LoadStart::Lead(flight) = shard.shard.start_load(hash, 1, &now, &shard.hasher) else {
            panic!("an empty shard has no value and no load for the key");
        };
        assert!(matches!(
            shard.shard.start_load(hash, 1, &now, &shard.hasher),
            LoadStart::Wait(1, _)
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
}
