//! The slab a shard keeps its entries in: slots whose indices stay fixed from insert to
//! removal, and the columns of times and weights that only some shards keep beside them.

use std::time::Duration;

use crate::{
    clock::{Now, Tick},
    hash,
    policy::{Arena, Links, Node, SlotIndex},
    sync::{AtomicU64, Ordering},
};

/// The three times a write sets (see the `shard` module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Deadlines {
    /// When the write's time to live ends, or never.
    pub(super) written: Tick,
    /// The deadline reads check: `written`, or sooner with a time to idle.
    pub(super) expires_at: Tick,
    /// When a read starts a background reload (`refresh_after`), or never.
    pub(super) refreshes_at: Tick,
}

/// What a hit reads, and nothing else: a slot of a `u64` key and value is 32 bytes, and the
/// alignment keeps each within one cache line. The policy's links live in a column of their own.
/// The alignment rounds larger slots up to a multiple of 32 bytes: a `String` key and a `u64`
/// value take 64 bytes (56 unaligned) and 8 of links. A cost paid for the small keys and
/// values a hit path is measured on.
#[repr(C, align(32))]
pub(super) struct Slot<K, V> {
    pub(super) node: Node,
    /// The deadline reads check, as a raw tick: see the module docs.
    pub(super) expires_at: AtomicU64,
    pub(super) key: K,
    pub(super) value: V,
}

impl<K, V> Slot<K, V> {
    #[inline]
    pub(super) fn expires_at(&self) -> Tick {
        Tick::from_raw(self.expires_at.load(Ordering::Relaxed))
    }

    /// Reads the clock only if the entry can expire.
    #[inline]
    pub(super) fn is_expired(&self, now: &Now<'_>) -> bool {
        self.expires_at().is_reached(now)
    }

    /// Moves the idle deadline to `idle_deadline`, never past `written_deadline` nor back.
    ///
    /// A deadline that was finite stays finite (at worst 584 years out), so an entry counted
    /// in `Shard::timed` stays counted until it leaves.
    #[inline]
    pub(super) fn extend_idle(&self, idle_deadline: Tick, written_deadline: Tick) {
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
/// reuse. The fields a hit reads come first (see the `shard` module docs).
#[repr(C)]
pub(super) struct Slots<K, V> {
    pub(super) slots: Vec<Option<Slot<K, V>>>,
    /// With `refresh_after`: when a read of each slot should start a reload.
    pub(super) refresh_times: Column<Tick>,
    /// The shard's time to idle, kept here beside the columns a hit reads.
    pub(super) time_to_idle: Option<Duration>,
    /// With a time to idle: the deadline each slot's last write set, its time plus its time to
    /// live, or never, as raw ticks: an [`Expiry`](crate::Expiry)'s reads move it under the
    /// read lock.
    pub(super) written_deadlines: Column<AtomicU64>,
    /// Each slot's neighbours in its policy ring.
    links: Vec<Links>,
    /// With a weigher: each slot's weight (1 without one).
    pub(super) weights: Column<u32>,
    pub(super) vacant: Vec<SlotIndex>,
    /// The most entries the shard holds at once (unless weights are 0): its capacity, plus
    /// the one an insert adds before it evicts. The slab grows up to it and no further, so a
    /// full cache carries no spare slots.
    pub(super) expected: usize,
}

/// One value per slot, kept only by the shards that use it; the others read `absent`.
pub(super) struct Column<T> {
    values: Option<Vec<T>>,
    absent: T,
}

impl<T> Column<T> {
    pub(super) fn kept(keep: bool, absent: T) -> Self {
        Self {
            values: keep.then(Vec::new),
            absent,
        }
    }

    #[inline]
    fn value(&self, index: SlotIndex) -> &T {
        self.values
            .as_ref()
            .map_or(&self.absent, |values| &values[index as usize])
    }

    /// Forgets every slot's value, and the memory they took.
    pub(super) fn clear(&mut self) {
        if let Some(values) = &mut self.values {
            *values = Vec::new();
        }
    }

    pub(super) fn set(&mut self, index: SlotIndex, value: T, expected: usize) {
        if let Some(values) = &mut self.values {
            match values.get_mut(index as usize) {
                Some(slot) => *slot = value,
                None => push_within(values, value, expected),
            }
        }
    }
}

impl<T: Copy> Column<T> {
    #[inline]
    pub(super) fn get(&self, index: SlotIndex) -> T {
        *self.value(index)
    }
}

/// A column of deadlines that reads may move.
impl Column<AtomicU64> {
    pub(super) fn deadlines(keep: bool) -> Self {
        Self::kept(keep, AtomicU64::new(Tick::NEVER.to_raw()))
    }

    #[inline]
    pub(super) fn deadline(&self, index: SlotIndex) -> Tick {
        Tick::from_raw(self.value(index).load(Ordering::Relaxed))
    }

    /// Moves slot `index`'s deadline, if the column is kept.
    pub(super) fn store(&self, index: SlotIndex, deadline: Tick) {
        if let Some(values) = &self.values {
            values[index as usize].store(deadline.to_raw(), Ordering::Relaxed);
        }
    }

    pub(super) fn set_deadline(&mut self, index: SlotIndex, deadline: Tick, expected: usize) {
        self.set(index, AtomicU64::new(deadline.to_raw()), expected);
    }
}

/// The 32 bits of a key's hash a shard keeps in the entry's node: the sketch counts by them,
/// and the table places the entry by their [`bucket_hash`], so that the entry's bucket is found
/// from its node alone. Both halves are folded in, so a hasher that fills only the low half
/// (an identity hash of small integers) still tells keys apart.
#[inline]
pub(super) fn short_hash(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

/// A short hash spread over 64 bits for the table, which takes buckets from the low bits and
/// tags from the top seven: a bijection, so distinct short hashes stay distinct.
#[inline]
pub(super) fn bucket_hash(short: u32) -> u64 {
    let spread = hash::mix(u64::from(short));
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
    pub(super) fn new(
        expected: usize,
        time_to_idle: Option<Duration>,
        refresh_after: bool,
        weighted: bool,
    ) -> Self {
        Self {
            slots: Vec::new(),
            links: Vec::new(),
            written_deadlines: Column::deadlines(time_to_idle.is_some()),
            refresh_times: Column::kept(refresh_after, Tick::NEVER),
            time_to_idle,
            weights: Column::kept(weighted, 1),
            vacant: Vec::new(),
            expected,
        }
    }

    #[inline]
    pub(super) fn get(&self, index: SlotIndex) -> &Slot<K, V> {
        self.slots[index as usize]
            .as_ref()
            .expect("an indexed slot is occupied")
    }

    /// Stores `slot` with its written deadline, refresh time and weight; returns its index.
    pub(super) fn insert(
        &mut self,
        slot: Slot<K, V>,
        deadlines: &Deadlines,
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
                push_within(&mut self.links, Links::default(), self.expected);
                debug_assert_eq!(self.links.len(), self.slots.len());
                index
            }
        };
        self.written_deadlines
            .set_deadline(index, deadlines.written, self.expected);
        self.refresh_times
            .set(index, deadlines.refreshes_at, self.expected);
        debug_assert!(self.weights.values.is_some() || weight == 1);
        self.weights.set(index, weight, self.expected);
        index
    }

    /// Takes every slot out, forgetting the rest and the memory it took.
    pub(super) fn clear(&mut self) -> Vec<Option<Slot<K, V>>> {
        self.vacant.clear();
        self.links = Vec::new();
        self.written_deadlines.clear();
        self.refresh_times.clear();
        self.weights.clear();
        std::mem::take(&mut self.slots)
    }

    pub(super) fn take(&mut self, index: SlotIndex) -> Slot<K, V> {
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

    fn node_at(&self, index: SlotIndex) -> Option<&Node> {
        self.slots
            .get(index as usize)?
            .as_ref()
            .map(|slot| &slot.node)
    }

    #[inline]
    fn node_mut(&mut self, index: SlotIndex) -> &mut Node {
        &mut self.slots[index as usize]
            .as_mut()
            .expect("a linked slot is occupied")
            .node
    }

    #[inline]
    fn links(&self, index: SlotIndex) -> Links {
        self.links[index as usize]
    }

    #[inline]
    fn links_mut(&mut self, index: SlotIndex) -> &mut Links {
        &mut self.links[index as usize]
    }

    #[inline]
    fn weight(&self, index: SlotIndex) -> u32 {
        self.weights.get(index)
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_slot_of_a_u64_key_and_value_fills_half_a_cache_line() {
        assert_eq!(size_of::<Option<Slot<u64, u64>>>(), 32);
        assert_eq!(align_of::<Option<Slot<u64, u64>>>(), 32);
        assert_eq!(size_of::<Node>(), 8);
        assert_eq!(size_of::<Links>(), 8);
    }
}
