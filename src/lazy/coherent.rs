//! An [`AsyncLazy`]'s part in its replicas' coherence (feature `redis`; the mechanism is in
//! `redis/`): its marker is `<namespace>:inv:<name>`, and any invalidation of it makes the
//! next `get` load afresh.

use std::sync::{Arc, Weak};

use super::{AsyncLazy, LazyInner};
use crate::redis::{CoherenceError, Link, Member, Undecodable};

impl<T, E> AsyncLazy<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Registers the lazy with its coherence, if it has one.
    pub(super) fn join_coherence(&self) {
        if let Some(link) = &self.inner.coherent {
            let member = LazyMember {
                lazy: Arc::downgrade(&self.inner),
            };
            // A lazy takes any marker of its name: it shares a name with anything.
            let joined = link.coherence.register(&link.name, None, Arc::new(member));
            debug_assert!(joined);
        }
    }

    /// Forgets the value here, then tells every replica to forget theirs, and returns once
    /// Redis has acknowledged that: each replica's next `get` loads afresh. A load running
    /// anywhere meanwhile answers its callers but is not kept.
    ///
    /// # Errors
    ///
    /// [`CoherenceError::NotCoherent`] if the lazy was not built with
    /// [`coherent`](crate::AsyncLazyBuilder::coherent) (nothing is forgotten then);
    /// [`CoherenceError::Unavailable`] or [`CoherenceError::Redis`] if the marker could not
    /// be written (the value is forgotten here all the same).
    ///
    /// # Cancel safety
    ///
    /// The local invalidation happens before the first await. Dropped later, the marker may
    /// or may not have been written.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ttlcache::{AsyncLazy, redis::Coherence};
    ///
    /// let coherence = Coherence::connect("redis://127.0.0.1/", "myapp").await?;
    /// let flags = AsyncLazy::builder(|| async { vec!["beta"] })
    ///     .coherent(&coherence, "flags")
    ///     .build()?;
    /// flags.invalidate_everywhere().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_everywhere(&self) -> Result<(), CoherenceError> {
        let link = self
            .inner
            .coherent
            .as_ref()
            .ok_or(CoherenceError::NotCoherent)?;
        self.invalidate();
        link.coherence.send_all(&link.name).await
    }
}

impl<T, E> LazyInner<T, E> {
    /// Whether the value may be served and kept now (rule 3 of `redis/mod.rs`); always, for
    /// a lazy that is not coherent.
    #[inline]
    pub(super) fn may_serve(&self) -> bool {
        Link::may_serve(self.coherent.as_ref())
    }
}

/// What the coherence holds of a lazy: a weak reference, so a dropped lazy leaves.
struct LazyMember<T, E> {
    lazy: Weak<LazyInner<T, E>>,
}

impl<T, E> Member for LazyMember<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    fn invalidate(&self, _key: &[u8]) -> Result<(), Undecodable> {
        self.flush();
        Ok(())
    }

    fn flush(&self) {
        if let Some(inner) = self.lazy.upgrade() {
            AsyncLazy { inner }.invalidate();
        }
    }

    fn is_alive(&self) -> bool {
        self.lazy.strong_count() > 0
    }

    fn key_type(&self) -> Option<std::any::TypeId> {
        None
    }
}
