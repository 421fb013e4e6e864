//! What a cache or lazy keeps of its coherence ([`Link`], and a cache's [`Coherent`]), and
//! what the coherence keeps of it ([`Member`]): the whole of `redis/` that `cache/`, `lazy/`
//! and the builders use, besides the public types.

use std::fmt;

use redis::FromRedisValue;

use super::{Coherence, marker::decode};

/// A cache or lazy that a [`Coherence`] keeps coherent.
pub(crate) trait Member: Send + Sync {
    /// Removes the entry of the key whose marker bytes are `key`; `Err` if they encode no key
    /// of this member's type.
    fn invalidate(&self, key: &[u8]) -> Result<(), Undecodable>;
    /// Removes every entry.
    fn flush(&self);
    /// Whether the cache or lazy is still there.
    fn is_alive(&self) -> bool;
    /// The type of a cache's keys; `None` for a lazy, which takes any marker of its name.
    fn key_type(&self) -> Option<std::any::TypeId>;
}

/// Marker bytes that encode no key of the member's type.
#[derive(Debug)]
pub(crate) struct Undecodable;

/// What a coherent cache or lazy keeps: its handle and name.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) coherence: Coherence,
    pub(crate) name: String,
}

impl Link {
    /// Whether a member with this link may serve what it holds, and store, now (rule 3 of
    /// `redis/mod.rs`); always, for a member without one (not coherent). Asked by caches and
    /// lazies alike.
    #[inline]
    pub(crate) fn may_serve(link: Option<&Self>) -> bool {
        link.is_none_or(|link| link.coherence.may_serve())
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("name", &self.name).finish()
    }
}

/// What a coherent cache keeps: its link, and how its keys are read from marker bytes.
/// Cloned for the cache's memory of failures (`loading/failures.rs`), which registers under
/// the same name so that invalidations and flushes reach it too.
pub(crate) struct Coherent<K> {
    pub(crate) link: Link,
    decode: fn(&[u8]) -> Option<K>,
}

impl<K: FromRedisValue + 'static> Coherent<K> {
    pub(crate) fn new(coherence: &Coherence, name: &str) -> Self {
        Self {
            link: Link {
                coherence: coherence.clone(),
                name: name.to_owned(),
            },
            decode: decode::<K>,
        }
    }
}

impl<K> Clone for Coherent<K> {
    fn clone(&self) -> Self {
        Self {
            link: self.link.clone(),
            decode: self.decode,
        }
    }
}

impl<K> Coherent<K> {
    /// Whether the cache serves what it holds while unhealthy ([`Unhealthy::ServeLocal`]):
    /// then its reads need no check.
    ///
    /// [`Unhealthy::ServeLocal`]: super::Unhealthy::ServeLocal
    pub(crate) fn serves_local(&self) -> bool {
        self.link.coherence.serves_local()
    }

    /// The name the cache is known by to the other replicas.
    pub(crate) fn name(&self) -> &str {
        &self.link.name
    }

    /// The key whose marker bytes are `key`, or [`Undecodable`].
    pub(crate) fn decode(&self, key: &[u8]) -> Result<K, Undecodable> {
        (self.decode)(key).ok_or(Undecodable)
    }
}
