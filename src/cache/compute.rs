//! Atomic updates of one key: [`TtlCache::compute`] and [`TtlCache::upsert`].
//!
//! Rules:
//! 1. `f` runs under the key's shard write lock, so no other write, load landing or compute of
//!    the key comes between its read and its result taking effect. It sees the live value
//!    only (never an expired one).
//! 2. Its result takes effect as the equivalent write would: `Put` as an `insert` (the
//!    weigher, capacity, `Replaced` for the old value, a fresh time to live), `Remove` as a
//!    `remove` (`Explicit`). Both detach a pending load of the key; `Keep` changes nothing.
//! 3. If `f` panics, nothing has changed: the shard is only touched after `f` returns, and the
//!    lock is released as the panic unwinds.

use std::hash::{BuildHasher, Hash};

use super::{Lifetime, TtlCache};
use crate::{clock::Now, shard::Write};

/// What [`TtlCache::compute`] does with the key, as its closure decides.
///
/// # Examples
///
/// ```
/// use ttlcache::{Op, TtlCache};
///
/// let stock = TtlCache::<&str, u32>::builder().build().unwrap();
/// stock.insert("apples", 1);
/// // Take one, and drop the entry when none are left.
/// let left = stock.compute("apples", |count| match count {
///     Some(&1) | None => Op::Remove,
///     Some(&count) => Op::Put(count - 1),
/// });
/// assert_eq!(left, None);
/// assert!(!stock.contains_key("apples"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<V> {
    /// Leave the entry as it is (or absent).
    Keep,
    /// Store this value, as `insert` would.
    Put(V),
    /// Remove the entry, as `remove` would.
    Remove,
}

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Reads the key's live value and decides, atomically, what becomes of it; returns the
    /// value afterwards.
    ///
    /// `f` sees the live value (`None` if the key is absent or expired) and returns an
    /// [`Op`]: [`Op::Put`] stores a value as [`insert`](Self::insert) would (the weigher and
    /// capacity apply, the old value is reported [`Replaced`](crate::RemovalCause::Replaced),
    /// the time to live starts again), [`Op::Remove`] removes it as
    /// [`remove`](Self::remove) would ([`Explicit`](crate::RemovalCause::Explicit)), and
    /// [`Op::Keep`] changes nothing. It returns the live value afterwards: `None` after a
    /// removal, for a value too heavy to be stored (or expired as it is written), and in a
    /// coherent cache that stores nothing while its coherence is unhealthy.
    ///
    /// # Concurrent calls on the same key
    ///
    /// `f` runs with the key's shard locked for writing: no other write, load landing or
    /// `compute` of the key happens between `f`'s read and its result taking effect, as with
    /// Caffeine's `compute`. So keep `f` short, and never call into this cache from it (it
    /// would deadlock); slow or async work belongs in
    /// [`get_or_load`](Self::get_or_load) or a [`LoadingCache`](crate::LoadingCache). A
    /// `Put` or `Remove` detaches a pending `get_or_*` load of the key, as `insert` does: the
    /// load still answers its callers, but never overwrites what `compute` did.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic reaches the caller, the entry is as it was, and the cache
    /// stays usable.
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::{Op, TtlCache};
    ///
    /// let sessions = TtlCache::<u32, Vec<&str>>::builder().build().unwrap();
    /// // Merge a partial update into whatever is there.
    /// sessions.compute(7, |old| {
    ///     let mut roles = old.cloned().unwrap_or_default();
    ///     roles.push("admin");
    ///     Op::Put(roles)
    /// });
    /// assert_eq!(sessions.get(&7), Some(vec!["admin"]));
    /// assert_eq!(sessions.compute(7, |_| Op::Keep), Some(vec!["admin"]));
    /// ```
    pub fn compute(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Option<V> {
        match self.apply(key, f) {
            Applied::Kept(value) => value,
            Applied::Removed => None,
            Applied::Put { value, stored } => stored.then_some(value),
        }
    }

    /// Makes the key's new value from its live one (`None` if absent or expired) and stores
    /// it, atomically: a [`compute`](Self::compute) that always puts. Returns the value `f`
    /// made, stored unless `compute` would not have stored it either (too heavy for its
    /// shard, expired as it is written, or a coherent cache bypassing).
    ///
    /// # Concurrent calls on the same key
    ///
    /// As for [`compute`](Self::compute): concurrent `upsert`s of one key apply one after
    /// the other, each seeing the value the one before stored.
    ///
    /// # Panics
    ///
    /// As for [`compute`](Self::compute).
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = ttlcache::TtlCache::<&str, u64>::builder().build().unwrap();
    /// for _ in 0..3 {
    ///     hits.upsert("/home", |count| count.copied().unwrap_or(0) + 1);
    /// }
    /// assert_eq!(hits.get("/home"), Some(3));
    /// ```
    pub fn upsert(&self, key: K, f: impl FnOnce(Option<&V>) -> V) -> V {
        match self.apply(key, |old| Op::Put(f(old))) {
            Applied::Put { value, .. } => value,
            Applied::Kept(_) | Applied::Removed => unreachable!("the closure always puts"),
        }
    }

    /// The engine of `compute` and `upsert`: `f`'s decision, taken and applied under the
    /// shard lock (rules 1 to 3).
    fn apply(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Applied<V> {
        let hash = self.hash(&key);
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        // Declared before the lock, so that the value is dropped after it even if the weigher
        // or `Clone` unwinds.
        let mut put = None;
        let mut shard = self.shard(hash).write();
        // A coherent cache that may not serve now (rule 3 of `redis/mod.rs`) drops what it
        // holds of the key rather than show it to `f`.
        #[cfg(feature = "redis")]
        if !self.may_serve()
            && let Some((key, value, cause)) = shard.remove_entry(hash, &key, &now)
        {
            removals.push(key, value, cause);
        }
        let live = shard.peek(hash, &key, &now);
        match f(live) {
            Op::Keep => Applied::Kept(live.cloned()),
            Op::Remove => {
                if let Some((key, value, cause)) = shard.remove(hash, &key, &now) {
                    removals.push(key, value, cause);
                }
                drop(shard);
                drop(key);
                Applied::Removed
            }
            Op::Put(value) => {
                let value = put.insert(value);
                let write = Write {
                    hash,
                    weight: self.weigh(&key, value),
                    value: value.clone(),
                    key,
                    time_to_live: self.inner.time_to_live,
                };
                let stored = self.store(&mut shard, write, Lifetime::Cache, &now, &mut removals);
                drop(shard);
                Applied::Put {
                    stored: stored.stored(),
                    value: put.take().expect("put just above"),
                }
            }
        }
    }
}

/// What `apply` did.
enum Applied<V> {
    /// Nothing: the live value, if any.
    Kept(Option<V>),
    Removed,
    /// `value` was put; `stored` unless refused (too heavy, or a coherent cache bypassing).
    Put {
        value: V,
        stored: bool,
    },
}
