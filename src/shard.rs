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
//! An entry's deadline is a pair: `written_deadline`, set by the write (its time to live), and
//! `expires_at`, the deadline reads check. Without a time to idle the two are equal; with one,
//! `expires_at = min(written_deadline, last access + time to idle)`.

use std::{
    borrow::Borrow,
    hash::{BuildHasher, Hash},
    mem,
    time::Duration,
};

use hashbrown::HashTable;

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
    weight: u32,
    /// The deadline the last write set: its time plus the time to live, or never.
    written_deadline: Tick,
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
        let deadline = self.expires_at();
        !deadline.is_never() && deadline.has_passed(now.get())
    }

    /// Moves the idle deadline to `idle_deadline`, never past the written deadline nor back.
    #[inline]
    fn extend_idle(&self, idle_deadline: Tick) {
        let deadline = idle_deadline.min(self.written_deadline).to_raw();
        if self.expires_at.load(Ordering::Relaxed) < deadline {
            self.expires_at.fetch_max(deadline, Ordering::Relaxed);
        }
    }
}

/// The slab: slots by index, and the indices free for reuse.
struct Slots<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    vacant: Vec<SlotIndex>,
}

impl<K, V> Slots<K, V> {
    #[inline]
    fn get(&self, index: SlotIndex) -> &Slot<K, V> {
        self.slots[index as usize]
            .as_ref()
            .expect("an indexed slot is occupied")
    }

    fn insert(&mut self, slot: Slot<K, V>) -> SlotIndex {
        if let Some(index) = self.vacant.pop() {
            self.slots[index as usize] = Some(slot);
            return index;
        }
        let index = SlotIndex::try_from(self.slots.len())
            .expect("a shard holds fewer than 2^32 entries: use more shards");
        self.slots.push(Some(slot));
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
    pub(crate) fn into_removals(
        self,
        now: &Now<'_>,
    ) -> impl Iterator<Item = (K, V, RemovalCause)> {
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
    /// Entries whose deadline is not never: while there are none, writes skip expiry work.
    timed: usize,
    expiry_cursor: usize,
}

impl<K, V> Shard<K, V> {
    pub(crate) fn new(capacity: u64, time_to_idle: Option<Duration>) -> Self {
        Self {
            table: HashTable::new(),
            slots: Slots {
                slots: Vec::new(),
                vacant: Vec::new(),
            },
            policy: Policy::default(),
            loads: Loads::default(),
            capacity,
            weighted_size: 0,
            time_to_idle,
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
            .find(hash, |&index| self.slots.get(index).key.borrow() == key)
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
            slot.extend_idle(now.get().after(time_to_idle));
        }
        &slot.value
    }

    /// The key's value if it is live, recording the read (a hit).
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.live(hash, key, now)?;
        Some(self.read(index, now))
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

    /// Stores an entry that expires at `deadline` (before any time to idle), replacing the
    /// key's entry and detaching its pending load.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        deadline: Tick,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
        removals: &mut Removals<'_, K, V>,
    ) {
        self.loads.detach(hash, &key);
        if let Some(index) = self.find(hash, &key) {
            let cause = if self.slots.get(index).is_expired(now) {
                RemovalCause::Expired
            } else {
                RemovalCause::Replaced
            };
            let old = self.remove_at(index, hash);
            removals.push(old.key, old.value, cause);
        }
        self.expire_some(now, hasher, removals);

        if u64::from(weight) > self.capacity {
            removals.push(key, value, RemovalCause::Size);
            return;
        }
        self.make_room(weight, now, hasher, removals);

        let expires_at = match self.time_to_idle {
            Some(time_to_idle) => deadline.min(now.get().after(time_to_idle)),
            None => deadline,
        };
        if !expires_at.is_never() {
            self.timed += 1;
        }
        let index = self.slots.insert(Slot {
            key,
            value,
            weight,
            written_deadline: deadline,
            expires_at: AtomicU64::new(expires_at.to_raw()),
            node: Node::new(),
        });
        let slots = &self.slots;
        self.table.insert_unique(hash, index, |&index| {
            hasher.hash_one(&slots.get(index).key)
        });
        self.policy.admit(&mut self.slots, index);
        self.weighted_size += u64::from(weight);
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
        let slot = self.remove_at(index, hash);
        Some((slot.key, slot.value, cause))
    }

    /// Keeps the live entries `keep` accepts; removes the others, and every expired entry.
    ///
    /// If `keep` panics, the entries removed so far stay removed and the shard is consistent.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(&K, &V) -> bool,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
        removals: &mut Removals<'_, K, V>,
    ) {
        for index in 0..self.slot_count() {
            if self.expire(index, now, hasher, removals) {
                continue;
            }
            let Some(slot) = &self.slots.slots[index as usize] else {
                continue;
            };
            if !keep(&slot.key, &slot.value) {
                let hash = hasher.hash_one(&slot.key);
                let slot = self.remove_at(index, hash);
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
        self.weighted_size = 0;
        self.timed = 0;
        self.expiry_cursor = 0;
        Cleared(mem::take(&mut self.slots.slots))
    }

    /// Removes every expired entry; returns how many.
    pub(crate) fn purge_expired(
        &mut self,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
        removals: &mut Removals<'_, K, V>,
    ) -> usize {
        if self.timed == 0 {
            return 0;
        }
        (0..self.slot_count())
            .filter(|&index| self.expire(index, now, hasher, removals))
            .count()
    }

    /// The live entries, for a snapshot.
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

    /// Ends `flight`'s load, handing back its key unless a write detached the load.
    pub(crate) fn finish_load(&mut self, hash: u64, flight: &Arc<Flight<V>>) -> Option<K> {
        self.loads.finish(hash, flight)
    }

    fn slot_count(&self) -> SlotIndex {
        // `Slots::insert` keeps the slab's length within a `SlotIndex`.
        self.slots.slots.len() as SlotIndex
    }

    /// Examines up to [`EXPIRY_WORK`] slots from the cursor, removing expired entries.
    fn expire_some(
        &mut self,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
        removals: &mut Removals<'_, K, V>,
    ) {
        if self.timed == 0 {
            return;
        }
        for _ in 0..EXPIRY_WORK {
            if self.expiry_cursor >= self.slots.slots.len() {
                self.expiry_cursor = 0;
            }
            let index = self.expiry_cursor as SlotIndex;
            self.expiry_cursor += 1;
            self.expire(index, now, hasher, removals);
        }
    }

    /// Removes the entry in slot `index` if it has expired; returns whether it did.
    fn expire(
        &mut self,
        index: SlotIndex,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
        removals: &mut Removals<'_, K, V>,
    ) -> bool {
        let Some(slot) = &self.slots.slots[index as usize] else {
            return false;
        };
        if !slot.is_expired(now) {
            return false;
        }
        let hash = hasher.hash_one(&slot.key);
        let slot = self.remove_at(index, hash);
        removals.push(slot.key, slot.value, RemovalCause::Expired);
        true
    }

    /// Evicts entries until `weight` more fits. The caller has checked `weight <= capacity`.
    fn make_room(
        &mut self,
        weight: u32,
        now: &Now<'_>,
        hasher: &impl BuildHasher,
        removals: &mut Removals<'_, K, V>,
    ) {
        while self.weighted_size.saturating_add(u64::from(weight)) > self.capacity {
            let victim = self
                .policy
                .victim(&self.slots)
                .expect("a shard over its capacity holds an entry");
            let slot = self.slots.get(victim);
            let cause = if slot.is_expired(now) {
                RemovalCause::Expired
            } else {
                RemovalCause::Size
            };
            let hash = hasher.hash_one(&slot.key);
            let slot = self.remove_at(victim, hash);
            removals.push(slot.key, slot.value, cause);
        }
    }

    fn remove_at(&mut self, index: SlotIndex, hash: u64) -> Slot<K, V> {
        self.table
            .find_entry(hash, |&other| other == index)
            .expect("every slot is indexed")
            .remove();
        self.policy.remove(&mut self.slots, index);
        let slot = self.slots.take(index);
        self.weighted_size -= u64::from(slot.weight);
        if !slot.expires_at().is_never() {
            self.timed -= 1;
        }
        slot
    }
}
