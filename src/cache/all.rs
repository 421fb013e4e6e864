//! The operations of a [`TtlCache`] on all its entries, one shard at a time.

use std::hash::{BuildHasher, Hash};

use super::TtlCache;
use crate::{clock::Now, stats::CacheStats};

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// How many entries the cache holds.
    ///
    /// This may include entries that have expired but that no write has removed yet; call
    /// [`purge_expired`](Self::purge_expired) first for a count of live entries only (with
    /// `stale_if_error`, expired entries it keeps are counted until their window passes).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// assert_eq!(cache.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.read().len())
            .sum()
    }

    /// Whether the cache holds no entries (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// assert!(cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner
            .shards
            .iter()
            .all(|shard| shard.read().len() == 0)
    }

    /// The total weight of the entries held (see [`len`](Self::len)); never more than the
    /// capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::builder()
    ///     .weigher(|_key: &u32, value: &Vec<u8>| value.len() as u32)
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, vec![0; 100]);
    /// assert_eq!(cache.weighted_size(), 100);
    /// ```
    pub fn weighted_size(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.read().weighted_size())
            .sum()
    }

    /// Removes every entry, each reported as [`RemovalCause::Explicit`] (or `Expired`).
    ///
    /// Loads running meanwhile still hand their values to their own callers, but do not
    /// store them.
    ///
    /// [`RemovalCause::Explicit`]: crate::RemovalCause::Explicit
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        for shard in self.inner.shards.iter() {
            let cleared = shard.write().clear();
            removals.extend(cleared.into_removals(&now));
        }
    }

    /// Keeps the live entries for which `keep` returns true, and removes the others
    /// ([`RemovalCause::Explicit`]) along with every expired entry.
    ///
    /// `keep` runs with the entry's shard locked: it must not call into this cache.
    ///
    /// [`RemovalCause::Explicit`]: crate::RemovalCause::Explicit
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// for key in 0..10 {
    ///     cache.insert(key, key * key);
    /// }
    /// cache.retain(|_key, square| square % 2 == 0);
    /// assert_eq!(cache.len(), 5);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        for shard in self.inner.shards.iter() {
            let mut shard = shard.write();
            // A coherent cache that may not serve now (rule 3 of `redis/mod.rs`) shows `keep`
            // nothing: it keeps nothing, as the flush to come would. Asked under each lock.
            #[cfg(feature = "redis")]
            if !self.may_serve() {
                shard.retain(|_, _| false, &now, &mut removals);
                continue;
            }
            shard.retain(&mut keep, &now, &mut removals);
        }
    }

    /// The live entries, as clones, one shard at a time.
    ///
    /// Each shard is copied under its read lock when the iterator reaches it, so the
    /// iterator holds no lock between items and sees each shard as of one moment. Reads
    /// through it count nowhere, like [`peek`](Self::peek).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// cache.insert(2, 20);
    /// let mut entries: Vec<_> = cache.iter().collect();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 10), (2, 20)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + '_
    where
        K: Clone,
    {
        self.inner.shards.iter().flat_map(move |shard| {
            #[cfg(feature = "redis")]
            if !self.may_serve() {
                return Vec::new();
            }
            let now = Now::lazy(&self.inner.timeline);
            let shard = shard.read();
            shard
                .live_entries(&now)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect::<Vec<_>>()
        })
    }

    /// Removes every expired entry now; returns how many it removed.
    ///
    /// Writes already remove expired entries a few at a time, so memory stays bounded
    /// without this; call it for an exact [`len`](Self::len), or after a burst of writes.
    /// A loading cache built with
    /// [`stale_if_error`](crate::CacheBuilder::stale_if_error) keeps an expired entry for
    /// that long past its deadline, for a failed load to answer with: this leaves it until
    /// then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(1))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// cache.insert(2, 2);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.purge_expired(), 2);
    /// assert!(cache.is_empty());
    /// ```
    pub fn purge_expired(&self) -> usize {
        let now = Now::lazy(&self.inner.timeline);
        let mut removals = self.removals();
        self.inner
            .shards
            .iter()
            .map(|shard| shard.write().purge_expired(&now, &mut removals))
            .sum()
    }

    /// The cache's statistics since it was built.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.get_or_insert_with(1, || 1);
    /// cache.get_or_insert_with(1, || 1);
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.load_successes), (1, 1, 1));
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// The name the cache was built with ([`CacheBuilder::name`]), if any.
    ///
    /// [`CacheBuilder::name`]: crate::CacheBuilder::name
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// assert_eq!(cache.name(), None);
    /// ```
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }
}
