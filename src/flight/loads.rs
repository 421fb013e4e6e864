//! A shard's pending loads: the keys being loaded, each with its load's flight. The key lives
//! here until the leader stores its value (rule 3 of `flight/mod.rs`), and a write to the key
//! removes it, detaching the load (rule 5).

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use super::Flight;
use crate::sync;

/// A load in progress for one key: the key lives here until the leader stores its value.
struct PendingLoad<K, V> {
    key: K,
    flight: sync::Arc<Flight<V>>,
    /// Whether the load may serve a caller that comes while its cache may not serve.
    #[cfg(feature = "redis")]
    began: Began,
}

/// When a load began: while its cache could serve what it holds, or while it could not (a
/// coherent cache whose lease had passed, rule 3 of `redis/mod.rs`). A caller that comes
/// while the cache cannot serve joins only a load that began so too: one that began before
/// may have read what an invalidation, acknowledged since and not yet applied here, replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Began {
    Trusted,
    #[cfg(feature = "redis")]
    Untrusted,
}

/// A shard's pending loads. Single-threaded: it lives under the shard's lock.
pub(crate) struct Loads<K, V> {
    /// At most one pending load per key (rule 1 of `flight/mod.rs`); a write to the key
    /// removes its entry (rule 5).
    table: HashTable<PendingLoad<K, V>>,
}

impl<K, V> Default for Loads<K, V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
        }
    }
}

impl<K: Hash + Eq, V> Loads<K, V> {
    /// The flight of the pending load for `key`, if there is one.
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<&sync::Arc<Flight<V>>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(hash, |pending| pending.key.borrow() == key)
            .map(|pending| &pending.flight)
    }

    /// Starts a load for `key`, which must have none pending.
    pub(crate) fn start(
        &mut self,
        hash: u64,
        key: K,
        began: Began,
        hasher: &impl BuildHasher,
    ) -> sync::Arc<Flight<V>> {
        // Without coherence, every load begins trusted.
        #[cfg(not(feature = "redis"))]
        let Began::Trusted = began;
        let flight = Flight::new();
        let pending = PendingLoad {
            key,
            flight: sync::Arc::clone(&flight),
            #[cfg(feature = "redis")]
            began,
        };
        self.table
            .insert_unique(hash, pending, |pending| hasher.hash_one(&pending.key));
        flight
    }

    /// Whether `flight`'s load is still pending (no write detached it).
    #[cfg(feature = "tokio")]
    pub(crate) fn contains(&self, hash: u64, flight: &sync::Arc<Flight<V>>) -> bool {
        self.table
            .find(hash, |pending| sync::Arc::ptr_eq(&pending.flight, flight))
            .is_some()
    }

    /// Ends `flight`'s load, handing back its key, unless a write detached it (rule 5).
    pub(crate) fn finish(&mut self, hash: u64, flight: &sync::Arc<Flight<V>>) -> Option<K> {
        let entry = self
            .table
            .find_entry(hash, |pending| sync::Arc::ptr_eq(&pending.flight, flight))
            .ok()?;
        Some(entry.remove().0.key)
    }

    /// Detaches the pending load of `key`, if any: a write to the key supersedes it.
    pub(crate) fn detach<Q>(&mut self, hash: u64, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.table.is_empty() {
            return;
        }
        if let Ok(entry) = self
            .table
            .find_entry(hash, |pending| pending.key.borrow() == key)
        {
            entry.remove();
        }
    }

    /// Detaches the pending load of `key` if it began [`Began::Trusted`]: for a caller that
    /// may join only a load that began untrusted.
    #[cfg(feature = "redis")]
    pub(crate) fn detach_trusted<Q>(&mut self, hash: u64, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if let Ok(entry) = self.table.find_entry(hash, |pending| {
            pending.key.borrow() == key && pending.began == Began::Trusted
        }) {
            entry.remove();
        }
    }

    /// Detaches every pending load.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_write_detaches_the_pending_load_so_the_leader_does_not_store() {
        let hasher = std::hash::RandomState::new();
        let mut loads = Loads::<&str, u8>::default();
        let hash = hasher.hash_one("k");
        let flight = loads.start(hash, "k", Began::Trusted, &hasher);
        assert!(loads.find(hash, "k").is_some());
        loads.detach(hash, "k");
        assert!(loads.find(hash, "k").is_none());
        assert_eq!(loads.finish(hash, &flight), None);
    }
}
