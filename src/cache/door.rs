//! The seam between the cache and `loading/` (feature `tokio`): [`TaskDoor`] is the whole of
//! what a front door that runs its loads as tasks may use of a [`TtlCache`] beyond its public
//! API and its constructor (`TtlCache::from_settings`, which the builder uses too), and
//! [`KeyLeader`] a load such a door leads. `loading/` uses these, [`Refresh`] and the
//! shard's `Freshness` that [`TaskDoor::read`] returns, and nothing else of `cache/`.
//!
//! A `LoadingCache::get` miss crosses into `cache/` here only: [`TaskDoor::start`] finds a
//! value, a load to join or a load to lead; the door's task runs the leader's load through
//! [`KeyLeader::run`] (timed by [`TaskDoor::timed`]), asks [`TaskDoor::while_pending`]
//! before it remembers a failure, and the leader lands the outcome in the key's shard
//! (`load.rs`).

use std::{
    borrow::Borrow,
    future::Future,
    hash::{BuildHasher, Hash},
};

use super::{TtlCache, load::ShardLeader};
#[cfg(feature = "redis")]
use crate::redis::CoherenceError;
use crate::{
    clock::Now,
    flight::{Flight, Found, Leads},
    shard::Freshness,
    sync,
    trace::ShownKey,
};

/// Whether a refresh starts whatever the entry's age, or only if it is still due for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Now: an explicit `refresh`.
    Always,
    /// Only if the entry is live and past its refresh time once the shard is locked: another
    /// reader's refresh may just have landed.
    IfStale,
}

/// A cache, as a front door that runs its loads as tasks sees it ([`TtlCache::task_door`]).
pub(crate) struct TaskDoor<'a, K, V, S> {
    cache: &'a TtlCache<K, V, S>,
}

/// The leader of a load of one of a cache's keys, with the key: what a task runs.
pub(crate) struct KeyLeader<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    leader: ShardLeader<K, V, S>,
    hash: u64,
    key: K,
}

impl<K, V, S> TtlCache<K, V, S> {
    /// The cache as `loading/` sees it.
    pub(crate) fn task_door(&self) -> TaskDoor<'_, K, V, S> {
        TaskDoor { cache: self }
    }
}

impl<K, V, S> TaskDoor<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The key's hash, as the cache computes it.
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.cache.hash(key)
    }

    /// `key` as the cache's tracing events show it.
    pub(crate) fn shown<'k>(&self, key: &'k K) -> ShownKey<'k, K> {
        self.cache.shown(key)
    }

    /// A hit, counted as one, and whether the entry is due for a refresh; a miss is left to
    /// the caller to count ([`record_miss`](Self::record_miss)).
    #[inline]
    pub(crate) fn read<Q>(&self, hash: u64, key: &Q) -> Option<(V, Freshness)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache.read(hash, key)
    }

    /// The value of the key's entry kept past its time to live (`stale_if_error`), counted as
    /// served stale; none if the cache may not serve now (rule 3 of `redis/mod.rs`).
    pub(crate) fn serve_kept<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cache = self.cache;
        let now = Now::lazy(&cache.inner.timeline);
        cache.serve_kept(&cache.shard(hash).read(), hash, key, &now)
    }

    /// Counts a miss of a lookup made through [`read`](Self::read) or [`start`](Self::start).
    pub(crate) fn record_miss(&self) {
        self.cache.inner.counters.miss();
    }

    /// Finds the key's live value or the load to join, or starts a load of it that the
    /// caller now leads (a clone of `key` goes into the shard). Counts nothing.
    pub(crate) fn start(&self, hash: u64, key: &K) -> Found<V, KeyLeader<K, V, S>> {
        match self.cache.start(hash, &mut Some(key.clone())) {
            Found::Value(value) => Found::Value(value),
            Found::Join(flight) => Found::Join(flight),
            Found::Lead(leader) => Found::Lead(KeyLeader {
                leader,
                hash,
                key: key.clone(),
            }),
        }
    }

    /// Starts a reload of `key` that leaves its current value live, unless a load of the key
    /// is already pending, or, with [`Refresh::IfStale`], unless its entry is due for one.
    pub(crate) fn start_refresh(
        &self,
        hash: u64,
        key: K,
        refresh: Refresh,
    ) -> Option<KeyLeader<K, V, S>> {
        let cache = self.cache;
        let now = Now::lazy(&cache.inner.timeline);
        let stale_at = (refresh == Refresh::IfStale).then_some(&now);
        let began = cache.began();
        // Cloned before the lock: `K::clone` is the user's code.
        let pending_key = key.clone();
        let flight = cache.shard(hash).write().start_refresh(
            hash,
            pending_key,
            stale_at,
            began,
            &cache.inner.hasher,
        )?;
        cache.inner.counters.refresh();
        Some(KeyLeader {
            leader: cache.leader(hash, flight),
            hash,
            key,
        })
    }

    /// Whether a load of `key` is pending (under the shard's read lock).
    pub(crate) fn is_loading<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache.shard(hash).read().is_loading(hash, key)
    }

    /// `load`, with the time it took counted in the stats as a load that succeeded or failed.
    pub(crate) async fn timed<T, X>(
        &self,
        load: impl Future<Output = Result<T, X>>,
    ) -> Result<T, X> {
        self.cache.timed(load).await
    }

    /// Whether `flight`'s load is still pending in the key's shard: no write detached it.
    pub(crate) fn is_pending(&self, hash: u64, flight: &sync::Arc<Flight<V>>) -> bool {
        self.cache.shard(hash).read().is_pending(hash, flight)
    }

    /// Runs `record` under the key's shard read lock if `flight`'s load is still pending
    /// there, so that a write detaching it comes wholly before or after. `record` must not
    /// block or call into the cache (it is an atomic store, for the memory of failures).
    pub(crate) fn while_pending(
        &self,
        hash: u64,
        flight: &sync::Arc<Flight<V>>,
        record: impl FnOnce(),
    ) {
        let shard = self.cache.shard(hash).read();
        if shard.is_pending(hash, flight) {
            record();
        }
    }

    /// Removes the key's entry if `flight`'s load is still pending (no write detached it), in
    /// one critical section: a load that found the key gone (a batch loader's `NotFound`)
    /// takes the old value with it. The listener hears `Explicit`.
    pub(crate) fn remove_while_pending(&self, hash: u64, key: &K, flight: &sync::Arc<Flight<V>>) {
        let cache = self.cache;
        let now = Now::lazy(&cache.inner.timeline);
        let mut removals = cache.removals();
        let mut shard = cache.shard(hash).write();
        let removed = if shard.is_pending(hash, flight) {
            shard.remove(hash, key, &now)
        } else {
            None
        };
        drop(shard);
        if let Some((key, value, cause)) = removed {
            removals.push(key, value, cause);
        }
    }
}

#[cfg(feature = "redis")]
impl<K, V, S> TaskDoor<'_, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// [`CoherenceError::NotCoherent`] unless the cache is coherent.
    pub(crate) fn check_coherent(&self) -> Result<(), CoherenceError> {
        self.cache.coherent().map(drop)
    }

    /// Writes the marker of `key`, for the other replicas (the caller removed it here).
    pub(crate) async fn send_invalidation(&self, key: &K) -> Result<(), CoherenceError>
    where
        K: ::redis::ToRedisArgs,
    {
        self.cache.send_invalidation(key).await
    }

    /// Writes the marker of every entry, for the other replicas (the caller emptied it here).
    pub(crate) async fn send_invalidation_of_all(&self) -> Result<(), CoherenceError> {
        self.cache.send_invalidation_of_all().await
    }
}

impl<K, V, S> Leads<V> for KeyLeader<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    fn flight(&self) -> &sync::Arc<Flight<V>> {
        self.leader.flight()
    }
}

impl<K, V, S> KeyLeader<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The key's hash.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The key.
    pub(crate) fn key(&self) -> &K {
        &self.key
    }

    /// Runs the load `load` makes of the key as the leader, then lands its outcome in the
    /// key's shard and settles the flight (`flight/leader.rs`).
    pub(crate) async fn run<X, F>(self, load: impl FnOnce(K) -> F) -> Result<V, std::sync::Arc<X>>
    where
        F: Future<Output = Result<V, X>>,
        X: Send + Sync + 'static,
    {
        let Self { leader, key, .. } = self;
        leader.run(load(key)).await
    }

    /// Lands `result`, an outcome reached without a load of this key's own (a batch's), as
    /// [`run`](Self::run) lands a load's; the key is dropped after the flight settles.
    pub(crate) async fn land<X>(self, result: Result<V, X>) -> Result<V, std::sync::Arc<X>>
    where
        X: Send + Sync + 'static,
    {
        let Self { leader, key, .. } = self;
        let answer = leader.run(async { result }).await;
        drop(key);
        answer
    }
}
