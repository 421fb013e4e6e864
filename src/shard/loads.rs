//! A shard's pending loads, as the front doors reach them under the shard's lock: find a value
//! or a load to join, start one, and end it (rule 4 of `shard/mod.rs`; the table itself is
//! `flight/loads.rs`).

use std::{
    borrow::Borrow,
    hash::{BuildHasher, Hash},
};

use super::Shard;
#[cfg(feature = "redis")]
use crate::removal::RemovalCause;
use crate::{
    clock::Now,
    flight::{Began, Flight, Found},
    sync,
};

impl<K: Hash + Eq, V> Shard<K, V> {
    /// The key's live value or the pending load to join; `Found::Lead` if there is neither,
    /// and the caller is to start one ([`start_load`](Self::start_load)).
    pub(crate) fn find_load<Q>(&self, hash: u64, key: &Q, now: &Now<'_>) -> Found<V, ()>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        if let Some(index) = self.live(hash, key, now) {
            return Found::Value(self.read(index, now).clone());
        }
        match self.loads.find(hash, key) {
            Some(flight) => Found::Join(sync::Arc::clone(flight)),
            None => Found::Lead(()),
        }
    }

    /// Starts a load of `key`, which has neither a live entry nor a pending load.
    pub(crate) fn start_load(
        &mut self,
        hash: u64,
        key: K,
        began: Began,
        hasher: &impl BuildHasher,
    ) -> sync::Arc<Flight<V>> {
        self.loads.start(hash, key, began, hasher)
    }

    /// Removes what a cache that may not serve now holds of `key` (a coherent cache whose
    /// lease passed): its entry, and its pending load if that began while the cache could
    /// serve; a load that began since stays, for its callers to share.
    #[cfg(feature = "redis")]
    pub(crate) fn withhold<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        now: &Now<'_>,
    ) -> Option<(K, V, RemovalCause)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.loads.detach_trusted(hash, key);
        self.remove_entry(hash, key, now)
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
        began: Began,
        hasher: &impl BuildHasher,
    ) -> Option<sync::Arc<Flight<V>>> {
        if self.loads.find(hash, &key).is_some() {
            return None;
        }
        if let Some(now) = stale_at {
            let index = self.live(hash, &key, now)?;
            if !self.slots.refresh_times.get(index).is_reached(now) {
                return None;
            }
        }
        Some(self.loads.start(hash, key, began, hasher))
    }

    /// Whether `flight`'s load of its key is still pending here (not detached by a write).
    #[cfg(feature = "tokio")]
    pub(crate) fn is_pending(&self, hash: u64, flight: &sync::Arc<Flight<V>>) -> bool {
        self.loads.contains(hash, flight)
    }

    /// Ends `flight`'s load, handing back its key unless a write detached the load.
    pub(crate) fn finish_load(&mut self, hash: u64, flight: &sync::Arc<Flight<V>>) -> Option<K> {
        self.loads.finish(hash, flight)
    }
}
