//! Removals: why entries leave, and how the eviction listener hears of it.
//!
//! Rules:
//! 1. Entries removed under a shard lock are gathered in a [`Removals`] declared before the
//!    lock guard, so they are counted, reported and dropped after the lock is released (also
//!    when the caller unwinds): the listener, and the `Drop` of removed entries, never run
//!    under a lock. (Keys of pending loads that a write detaches are dropped under it.)
//! 2. Every entry that leaves a live cache is reported exactly once.
//! 3. A listener that panics does not stop the others from being reported: each call is
//!    caught, and the first panic is resumed once all are delivered, in the call that caused
//!    the removals. When that call is already unwinding, later panics are dropped.

use std::{
    any::Any,
    panic::{self, AssertUnwindSafe},
};

use smallvec::SmallVec;

use crate::stats::Counters;

/// Why an entry left the cache: the third argument of the eviction listener.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ttlcache::{RemovalCause, TtlCache};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let cache = TtlCache::builder()
///     .max_capacity(1)
///     .eviction_listener(move |key, _value: &str, cause| log.lock().unwrap().push((key, cause)))
///     .build()
///     .unwrap();
///
/// cache.insert(1, "one");
/// cache.insert(1, "uno");
/// cache.insert(2, "two");
/// cache.remove(&2);
/// assert_eq!(
///     *seen.lock().unwrap(),
///     [(1, RemovalCause::Replaced), (1, RemovalCause::Size), (2, RemovalCause::Explicit)]
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its time to live or time to idle passed.
    Expired,
    /// The user removed it: `remove`, `clear` or `retain`.
    Explicit,
    /// An `insert` of its key replaced it while it was live.
    Replaced,
    /// It was evicted to keep the cache within its capacity, or, as a new entry, it was too
    /// heavy for its shard and was never stored.
    Size,
}

impl RemovalCause {
    /// Whether the cache removed the entry on its own (`Expired` or `Size`), rather than
    /// because the user removed or replaced it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::RemovalCause;
    ///
    /// assert!(RemovalCause::Size.was_evicted());
    /// assert!(!RemovalCause::Replaced.was_evicted());
    /// ```
    #[must_use]
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Size)
    }
}

/// The eviction listener a cache was built with.
pub(crate) type Listener<K, V> = Box<dyn Fn(K, V, RemovalCause) + Send + Sync>;

/// Entries removed during one call, reported when this is dropped.
pub(crate) struct Removals<'a, K, V> {
    removed: SmallVec<[(K, V, RemovalCause); 2]>,
    listener: Option<&'a Listener<K, V>>,
    counters: &'a Counters,
    /// The cache's name, for tracing a listener's panic.
    cache: Option<&'a str>,
}

impl<'a, K, V> Removals<'a, K, V> {
    pub(crate) fn new(
        listener: Option<&'a Listener<K, V>>,
        counters: &'a Counters,
        cache: Option<&'a str>,
    ) -> Self {
        Self {
            removed: SmallVec::new(),
            listener,
            counters,
            cache,
        }
    }

    /// Whether anyone will hear of removals; when not, callers may skip cloning values.
    #[inline]
    pub(crate) fn is_heard(&self) -> bool {
        self.listener.is_some()
    }

    /// Adds a removal; returns its value, for a caller that also hands it out.
    #[inline]
    pub(crate) fn push(&mut self, key: K, value: V, cause: RemovalCause) -> &V {
        self.removed.push((key, value, cause));
        &self.removed[self.removed.len() - 1].1
    }

    pub(crate) fn extend(&mut self, removed: impl IntoIterator<Item = (K, V, RemovalCause)>) {
        self.removed.extend(removed);
    }
}

impl<K, V> Drop for Removals<'_, K, V> {
    fn drop(&mut self) {
        if self.removed.is_empty() {
            return;
        }
        let count = |cause| self.removed.iter().filter(|r| r.2 == cause).count() as u64;
        self.counters
            .removals(count(RemovalCause::Size), count(RemovalCause::Expired));

        let Some(listener) = self.listener else {
            return;
        };
        let mut first_panic: Option<Box<dyn Any + Send>> = None;
        let mut panics = 0;
        for (key, value, cause) in self.removed.drain(..) {
            if let Err(payload) =
                panic::catch_unwind(AssertUnwindSafe(|| listener(key, value, cause)))
            {
                panics += 1;
                first_panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = first_panic {
            crate::trace::listener_panicked(self.cache, panics);
            if !std::thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
    }
}
