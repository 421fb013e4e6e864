//! A [`LoadingCache`]'s part in its replicas' coherence (feature `redis`): its values and its
//! remembered failures are removed everywhere together (the memory of failures registers
//! under the cache's name: `failures.rs`).

use std::hash::{BuildHasher, Hash};

use super::LoadingCache;
#[cfg(doc)]
use crate::TtlCache;

impl<K, V, E, S> LoadingCache<K, V, E, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// Removes the key's value and remembered failure here, then tells every replica to
    /// remove both: see [`TtlCache::invalidate_everywhere`].
    ///
    /// # Errors
    ///
    /// As [`TtlCache::invalidate_everywhere`].
    ///
    /// # Cancel safety
    ///
    /// As [`TtlCache::invalidate_everywhere`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let users = TtlCache::builder()
    ///     .coherent(&coherence, "users")
    ///     .build_loading(|id: u64| async move { Ok::<_, std::io::Error>(format!("user {id}")) })?;
    /// users.invalidate_everywhere(&7).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_everywhere(&self, key: &K) -> Result<(), crate::redis::CoherenceError>
    where
        K: ::redis::ToRedisArgs,
    {
        self.door().check_coherent()?;
        self.invalidate(key);
        self.door().send_invalidation(key).await
    }

    /// Removes every value and remembered failure here, then tells every replica to remove
    /// theirs: see [`TtlCache::invalidate_all_everywhere`].
    ///
    /// # Errors
    ///
    /// As [`TtlCache::invalidate_all_everywhere`].
    ///
    /// # Cancel safety
    ///
    /// As [`TtlCache::invalidate_everywhere`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{TtlCache, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let rates = TtlCache::builder()
    ///     .coherent(&coherence, "rates")
    ///     .build_loading(|code: String| async move { Ok::<_, std::io::Error>(code.len()) })?;
    /// rates.invalidate_all_everywhere().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_all_everywhere(&self) -> Result<(), crate::redis::CoherenceError> {
        self.door().check_coherent()?;
        self.invalidate_all();
        self.door().send_invalidation_of_all().await
    }
}
