//! [`Expiry`]: a time to live chosen per entry from its value, and what the cache keeps of it.
//!
//! The cache asks `expire_after_create` or `expire_after_update` under the shard's write lock,
//! for the writes that would otherwise take the cache's `time_to_live` (`insert`, landing
//! loads and refreshes, `compute`'s `Put`), never for `insert_with_ttl` or a snapshot's
//! entries. It asks `expire_after_read` on hits under the read lock, and stops asking as soon
//! as a call shows the method is not overridden: the default body marks the calling thread,
//! and the cache, seeing the mark on a call that answered `None`, turns off a flag that every
//! later hit reads instead. The mark is saved and restored around each call, so an override
//! that reads another cache (whose `Expiry` may be the default) is not mistaken for one.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use crate::sync::{AtomicU8, Ordering, thread_local};

/// A time to live for each entry, chosen from its key and value: an OAuth token cached until
/// its `expires_in` minus a margin, a DNS answer for its TTL, an HTTP response for its
/// `max-age`.
///
/// Set it with [`CacheBuilder::expire_after`](crate::CacheBuilder::expire_after). It applies
/// to every write that would otherwise take the cache's `time_to_live`:
/// [`insert`](crate::TtlCache::insert), the `get_or_*` loads, a
/// [`LoadingCache`](crate::LoadingCache)'s loads and refreshes, and
/// [`compute`](crate::TtlCache::compute)'s `Put`. [`insert_with_ttl`](crate::TtlCache::insert_with_ttl)
/// wins over it for its write, and entries restored from a snapshot keep the deadlines they
/// were saved with. A `time_to_idle` still applies on top: an entry expires at the earlier of
/// the two deadlines. A duration too large for the clock means never.
///
/// Override only the methods you need; a cache whose `Expiry` does not override
/// `expire_after_read` pays nothing for it on a hit (it notices on the first hit and stops
/// asking). The methods run under the shard's lock: keep them short.
///
/// # Panics
///
/// A panic in a method unwinds from the call that asked: the write that asked is not stored
/// (its key and value are dropped while the shard's lock is held, so their `Drop` must not
/// call into the same cache), a load that asked fails its waiters over to the next attempt,
/// and the cache stays usable.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use ttlcache::{Expiry, ManualClock, TtlCache};
///
/// #[derive(Clone)]
/// struct Token {
///     secret: String,
///     expires_in: Duration,
/// }
///
/// struct UntilTokenExpires;
///
/// impl Expiry<String, Token> for UntilTokenExpires {
///     fn expire_after_create(&self, _: &String, token: &Token, _: Instant) -> Option<Duration> {
///         // Ten seconds early, so that no caller gets a token that dies in flight.
///         Some(token.expires_in.saturating_sub(Duration::from_secs(10)))
///     }
/// }
///
/// let clock = ManualClock::new();
/// let tokens = TtlCache::builder()
///     .time_to_live(Duration::from_secs(3600))
///     .expire_after(UntilTokenExpires)
///     .clock(clock.clone())
///     .build()
///     .unwrap();
/// let token = Token { secret: "s3cr3t".into(), expires_in: Duration::from_secs(300) };
/// tokens.insert("api".to_string(), token);
/// clock.advance(Duration::from_secs(289));
/// assert!(tokens.get("api").is_some());
/// clock.advance(Duration::from_secs(1));
/// assert!(tokens.get("api").is_none());
/// ```
pub trait Expiry<K, V>: Send + Sync + 'static {
    /// A new entry's time to live: `Some(d)` replaces the cache's `time_to_live` for this
    /// entry, even when longer; `None`: the cache's `time_to_live` (or never, without one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ttlcache::Expiry;
    ///
    /// /// A DNS answer lives its record's TTL, in seconds.
    /// struct RecordTtl;
    ///
    /// impl Expiry<String, (std::net::IpAddr, u32)> for RecordTtl {
    ///     fn expire_after_create(
    ///         &self,
    ///         _name: &String,
    ///         answer: &(std::net::IpAddr, u32),
    ///         _now: Instant,
    ///     ) -> Option<Duration> {
    ///         Some(Duration::from_secs(u64::from(answer.1)))
    ///     }
    /// }
    /// # let _ = RecordTtl;
    /// ```
    fn expire_after_create(&self, key: &K, value: &V, now: Instant) -> Option<Duration>;

    /// The time to live of a write over a live entry, which had `remaining` of its time to
    /// live left (`Duration::MAX` for never; a time to idle aside). `None`: the cache's
    /// `time_to_live`. Return `Some(remaining)` to keep the entry's deadline. Default: as
    /// [`expire_after_create`](Self::expire_after_create).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ttlcache::Expiry;
    ///
    /// /// A session lives an hour from its creation, however often it is updated.
    /// struct FromCreation;
    ///
    /// impl Expiry<u64, String> for FromCreation {
    ///     fn expire_after_create(&self, _: &u64, _: &String, _: Instant) -> Option<Duration> {
    ///         Some(Duration::from_secs(3600))
    ///     }
    ///     fn expire_after_update(
    ///         &self,
    ///         _: &u64,
    ///         _: &String,
    ///         _: Instant,
    ///         remaining: Duration,
    ///     ) -> Option<Duration> {
    ///         Some(remaining)
    ///     }
    /// }
    /// # let _ = FromCreation;
    /// ```
    fn expire_after_update(
        &self,
        key: &K,
        value: &V,
        now: Instant,
        remaining: Duration,
    ) -> Option<Duration> {
        let _ = remaining;
        self.expire_after_create(key, value, now)
    }

    /// A hit on an entry with `remaining` of its time to live left (`Duration::MAX` for
    /// never; a time to idle aside): `Some(d)` makes it live `d` from now; `None` leaves the
    /// deadline as it is (the default).
    ///
    /// A cache stops calling this method once a call reaches this default body and answers
    /// `None`, so that caches whose `Expiry` does not override it pay nothing on hits. An
    /// override that sometimes forwards to another `Expiry`'s default `expire_after_read`
    /// should return `None` itself instead, or the cache stops asking it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ttlcache::Expiry;
    ///
    /// /// Entries live a minute from their last read, and at least that from their write.
    /// struct Sliding;
    ///
    /// impl Expiry<u64, u64> for Sliding {
    ///     fn expire_after_create(&self, _: &u64, _: &u64, _: Instant) -> Option<Duration> {
    ///         Some(Duration::from_secs(60))
    ///     }
    ///     fn expire_after_read(
    ///         &self,
    ///         _: &u64,
    ///         _: &u64,
    ///         _: Instant,
    ///         _remaining: Duration,
    ///     ) -> Option<Duration> {
    ///         Some(Duration::from_secs(60))
    ///     }
    /// }
    /// # let _ = Sliding;
    /// ```
    fn expire_after_read(
        &self,
        key: &K,
        value: &V,
        now: Instant,
        remaining: Duration,
    ) -> Option<Duration> {
        let _ = (key, value, now, remaining);
        READ_NOT_OVERRIDDEN.with(|mark| mark.set(true));
        None
    }
}

thread_local! {
    /// Set by the default `expire_after_read`: the call just made was not overridden.
    // loom's `thread_local!` takes no `const` initializer.
    #[allow(clippy::missing_const_for_thread_local)]
    static READ_NOT_OVERRIDDEN: Cell<bool> = Cell::new(false);
}

/// A cache's [`Expiry`].
pub(crate) struct Expiries<K, V> {
    expiry: Box<dyn Expiry<K, V>>,
}

impl<K: 'static, V: 'static> Expiries<K, V> {
    pub(crate) fn new(expiry: Box<dyn Expiry<K, V>>) -> Self {
        Self { expiry }
    }

    /// The time to live of a write, new (`remaining` is `None`) or over a live entry.
    pub(crate) fn on_write(
        &self,
        key: &K,
        value: &V,
        now: Instant,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        match remaining {
            None => self.expiry.expire_after_create(key, value, now),
            Some(remaining) => self.expiry.expire_after_update(key, value, now, remaining),
        }
    }

    /// The new time to live a hit gives its entry, if any. Turns `reads` (whether the
    /// cache's hits ask) off if `expire_after_read` turns out to be the default.
    pub(crate) fn on_read(
        &self,
        key: &K,
        value: &V,
        now: Instant,
        remaining: Duration,
        reads: &AtomicU8,
        reads_expire: u8,
    ) -> Option<Duration> {
        // Saved and restored: this hit may be inside another cache's `expire_after_read`.
        let outer = READ_NOT_OVERRIDDEN.with(|mark| mark.replace(false));
        let time_to_live = self.expiry.expire_after_read(key, value, now, remaining);
        let not_overridden = READ_NOT_OVERRIDDEN.with(|mark| mark.replace(outer));
        if not_overridden && time_to_live.is_none() {
            reads.fetch_and(!reads_expire, Ordering::Relaxed);
        }
        time_to_live
    }
}
