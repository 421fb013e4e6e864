//! A cache's part in its replicas' coherence (feature `redis`; the mechanism is in
//! `redis/`): invalidations sent from here, received through a registered member, and the
//! write-path check of rule 3 there.

use std::{
    any::TypeId,
    hash::{BuildHasher, Hash},
};

use redis::ToRedisArgs;

use super::{CacheInner, TtlCache};
use crate::{
    BuildError,
    redis::{CoherenceError, Coherent, Link, Member, Undecodable},
    sync,
};

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// Registers the cache with its coherence, if it has one.
    ///
    /// # Errors
    ///
    /// [`BuildError::CoherentNameTaken`] if a live cache of the coherence holds the name with
    /// keys of another type: markers of one would not decode as keys of the other.
    pub(super) fn join_coherence(&self) -> Result<(), BuildError> {
        let Some(coherent) = &self.inner.coherence else {
            return Ok(());
        };
        let member = CacheMember {
            cache: sync::Arc::downgrade(&self.inner),
        };
        let joined = coherent.link.coherence.register(
            &coherent.link.name,
            Some(TypeId::of::<K>()),
            sync::Arc::new(member),
        );
        joined
            .then_some(())
            .ok_or_else(|| BuildError::CoherentNameTaken {
                name: coherent.link.name.clone(),
            })
    }

    /// Removes `key` here, then tells every replica to remove it, and returns once Redis has
    /// acknowledged that.
    ///
    /// After it returns `Ok`, no healthy replica serves the old value once Redis's
    /// invalidation has reached it (milliseconds on a LAN), and no replica at all serves it
    /// after the coherence's lease. A load of the key running anywhere meanwhile answers its
    /// callers but is not stored.
    ///
    /// # Errors
    ///
    /// [`CoherenceError::NotCoherent`] if the cache was not built with
    /// [`coherent`](crate::CacheBuilder::coherent) (nothing is removed then);
    /// [`CoherenceError::Unavailable`] or [`CoherenceError::Redis`] if the marker could not
    /// be written (the key is removed here all the same); and
    /// [`CoherenceError::KeyNotOneArgument`] for a key that is not one Redis argument.
    ///
    /// # Cancel safety
    ///
    /// The local removal happens before the first await. Dropped later, the marker may or may
    /// not have been written.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let users = TtlCache::<u64, String>::builder()
    ///     .coherent(&coherence, "users")
    ///     .build()?;
    /// users.invalidate_everywhere(&7).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_everywhere(&self, key: &K) -> Result<(), CoherenceError>
    where
        K: ToRedisArgs,
    {
        self.coherent()?;
        self.remove(key);
        self.send_invalidation(key).await
    }

    /// Empties the cache here, then tells every replica to empty theirs, and returns once
    /// Redis has acknowledged that. Replicas stay healthy: this is no fault.
    ///
    /// # Errors
    ///
    /// As [`invalidate_everywhere`](Self::invalidate_everywhere), but for the key's.
    ///
    /// # Cancel safety
    ///
    /// As [`invalidate_everywhere`](Self::invalidate_everywhere).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let prices = TtlCache::<u64, u64>::builder()
    ///     .coherent(&coherence, "prices")
    ///     .build()?;
    /// prices.invalidate_all_everywhere().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_all_everywhere(&self) -> Result<(), CoherenceError> {
        self.coherent()?;
        self.clear();
        self.send_invalidation_of_all().await
    }

    /// Writes the marker of `key`, for the other replicas (the caller removed it here).
    pub(crate) async fn send_invalidation(&self, key: &K) -> Result<(), CoherenceError>
    where
        K: ToRedisArgs,
    {
        let coherent = self.coherent()?;
        coherent.link.coherence.send_key(coherent.name(), key).await
    }

    /// Writes the marker of every entry, for the other replicas (the caller emptied it here).
    pub(crate) async fn send_invalidation_of_all(&self) -> Result<(), CoherenceError> {
        let coherent = self.coherent()?;
        coherent.link.coherence.send_all(coherent.name()).await
    }
}

impl<K, V, S> TtlCache<K, V, S> {
    /// The cache's coherence, or [`CoherenceError::NotCoherent`].
    pub(crate) fn coherent(&self) -> Result<&Coherent<K>, CoherenceError> {
        self.inner
            .coherence
            .as_ref()
            .ok_or(CoherenceError::NotCoherent)
    }

    /// Whether the cache's coherence is trusted now: the hit path's check, for a cache that
    /// bypasses while unhealthy (`READS_NEED_TRUST`).
    #[inline]
    pub(super) fn is_trusted(&self) -> bool {
        self.inner
            .coherence
            .as_ref()
            .is_none_or(|coherent| coherent.link.coherence.is_trusted())
    }

    /// Whether the cache may serve what it holds, and store, now (rule 3 of `redis/mod.rs`):
    /// always, for a cache that is not coherent; for a coherent one, while its coherence is
    /// trusted or it serves local values while unhealthy.
    #[inline]
    pub(crate) fn may_serve(&self) -> bool {
        Link::may_serve(self.inner.coherence.as_ref().map(|coherent| &coherent.link))
    }
}

/// What the coherence holds of a cache: a weak reference, so a dropped cache leaves.
struct CacheMember<K, V, S> {
    cache: sync::Weak<CacheInner<K, V, S>>,
}

impl<K, V, S> CacheMember<K, V, S> {
    fn cache(&self) -> Option<TtlCache<K, V, S>> {
        self.cache.upgrade().map(|inner| TtlCache { inner })
    }
}

impl<K, V, S> Member for CacheMember<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    fn invalidate(&self, key: &[u8]) -> Result<(), Undecodable> {
        let Some(cache) = self.cache() else {
            return Ok(());
        };
        let coherent = cache.inner.coherence.as_ref().ok_or(Undecodable)?;
        let key = coherent.decode(key)?;
        cache.remove(&key);
        Ok(())
    }

    fn flush(&self) {
        if let Some(cache) = self.cache() {
            cache.clear();
        }
    }

    fn is_alive(&self) -> bool {
        self.cache.strong_count() > 0
    }

    fn key_type(&self) -> Option<TypeId> {
        Some(TypeId::of::<K>())
    }
}
