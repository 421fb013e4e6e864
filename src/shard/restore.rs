//! What a snapshot (`cache/snapshot.rs`) takes from a shard, and how it puts it back.

use std::{hash::Hash, time::Duration};

use super::{Shard, Write};
use crate::{
    clock::{Now, Tick},
    removal::Removals,
};

/// An entry from a snapshot, on its way into its shard.
pub(crate) struct Restored<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) weight: u32,
    /// Its written deadline, on this cache's clock.
    pub(crate) deadline: Tick,
}

impl<K: Hash + Eq, V> Shard<K, V> {
    /// The live entries, most valuable to the policy first, each with its written deadline
    /// (its time to live's end, or never) and, with a time to idle, the deadline it idles out
    /// at: what a snapshot keeps.
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
                let idle_deadline = self.slots.time_to_idle.map(|_| slot.expires_at());
                let written_deadline = self.written_deadline(index);
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
    pub(crate) fn restore(
        &mut self,
        entries: Vec<Restored<K, V>>,
        now: &Now<'_>,
        removals: &mut Removals<'_, K, V>,
    ) -> usize {
        // An entry would be expired as it is written with a time to idle of zero; it is
        // skipped, not stored and reported as expired.
        if entries.is_empty() || self.slots.time_to_idle == Some(Duration::ZERO) {
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
            let time_to_live =
                (!entry.deadline.is_never()).then(|| entry.deadline.since(now.get()));
            let write = Write {
                hash: entry.hash,
                key: entry.key,
                value: entry.value,
                weight: entry.weight,
                time_to_live,
            };
            if self.insert(write, now, removals) {
                stored += 1;
            }
        }
        stored
    }
}
