//! Statistics: what users read ([`CacheStats`]) and the counters behind it.
//!
//! Rules:
//! 1. No counter is shared by all threads. The threads holding the smallest
//!    [`thread_index`] numbers (four per core; a number is held by one live thread at a time
//!    and reused after it exits) each own a stripe, padded to a cache line, so a hit writes
//!    only to a line its own core already holds; other threads share one last stripe.
//!    [`Counters::snapshot`] sums the stripes.
//! 2. Counts are exact. A stripe's owner is its only writer, so it adds with a plain load and
//!    store: no locked instruction, which is a fifth of a hit's time. The shared stripe is
//!    added to with atomic read-modify-writes, so its threads lose nothing. A snapshot taken
//!    while other threads count is a sum of values each read at some moment during the call,
//!    not one instant's totals.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::{
    clock::saturating_nanos,
    sync::{AtomicU64, Ordering, parallelism, thread_index},
};

/// A cache's statistics since it was built: a plain copy, taken by [`TtlCache::stats`].
///
/// [`TtlCache::stats`]: crate::TtlCache::stats
///
/// # Examples
///
/// ```
/// use ttlcache::TtlCache;
///
/// let cache = TtlCache::<u32, &str>::builder().build().unwrap();
/// cache.insert(1, "one");
/// assert_eq!(cache.get(&1), Some("one"));
/// assert_eq!(cache.get(&2), None);
///
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
/// assert_eq!(stats.hit_rate(), 0.5);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CacheStats {
    /// Lookups that found a live entry: `get`, and `get_or_*` calls that did not wait for a load.
    pub hits: u64,
    /// Lookups that found nothing live, including `get_or_*` calls that ran or awaited a load.
    pub misses: u64,
    /// Writes: `insert`, `insert_with_ttl` and stored loads, including entries then refused
    /// as too heavy.
    pub inserts: u64,
    /// Entries removed to keep within capacity, or refused because they would not fit
    /// ([`RemovalCause::Size`](crate::RemovalCause::Size)).
    pub evictions: u64,
    /// Expired entries removed ([`RemovalCause::Expired`](crate::RemovalCause::Expired)).
    pub expirations: u64,
    /// Loads (`init` of a `get_or_*` call) that produced a value.
    pub load_successes: u64,
    /// Loads that returned an error.
    pub load_failures: u64,
    /// Time spent in loads, successful or not, by the cache's clock.
    pub total_load_time: Duration,
    /// Background reloads started (a [`LoadingCache`](crate::LoadingCache)'s
    /// `refresh_after` and `refresh`); each is also a load once it ends.
    pub refreshes: u64,
    /// Failed loads answered with the entry they were to replace, kept past its time to live
    /// by [`stale_if_error`](crate::CacheBuilder::stale_if_error); and `get`s answered with it
    /// while a failure of the key is remembered (`error_ttl`). A failed load counts once,
    /// however many callers waited for it (a background refresh's too, with none).
    pub stale_served: u64,
}

impl CacheStats {
    /// The share of lookups that hit: `hits / (hits + misses)`, or 0.0 when there were none.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ttlcache::CacheStats::default().hit_rate(), 0.0);
    /// ```
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// One thread's share of the counts, or the share of the threads that own none.
#[derive(Debug, Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    load_successes: AtomicU64,
    load_failures: AtomicU64,
    load_nanos: AtomicU64,
    refreshes: AtomicU64,
    stale_served: AtomicU64,
}

/// The counts a thread adds to, and how it must add (rule 2).
struct Stripe<'a> {
    counts: &'a Counts,
    owned: bool,
}

impl Stripe<'_> {
    #[inline]
    fn add(&self, counter: fn(&Counts) -> &AtomicU64, amount: u64) {
        let counter = counter(self.counts);
        if self.owned {
            let count = counter.load(Ordering::Relaxed);
            counter.store(count.wrapping_add(amount), Ordering::Relaxed);
        } else {
            counter.fetch_add(amount, Ordering::Relaxed);
        }
    }
}

/// The counters of one cache, striped by thread.
#[derive(Debug)]
pub(crate) struct Counters {
    /// One stripe per owning thread, then the shared one.
    stripes: Box<[CachePadded<Counts>]>,
}

impl Counters {
    pub(crate) fn new() -> Self {
        let stripes = parallelism() * 4 + 1;
        Self {
            stripes: (0..stripes).map(|_| CachePadded::default()).collect(),
        }
    }

    /// This thread's stripe, and whether it owns it (rule 1).
    #[inline]
    fn stripe(&self) -> Stripe<'_> {
        let shared = self.stripes.len() - 1;
        let index = thread_index();
        if index < shared {
            Stripe {
                counts: &self.stripes[index],
                owned: true,
            }
        } else {
            Stripe {
                counts: &self.stripes[shared],
                owned: false,
            }
        }
    }

    #[inline]
    pub(crate) fn hit(&self) {
        self.stripe().add(|c| &c.hits, 1);
    }

    #[inline]
    pub(crate) fn miss(&self) {
        self.stripe().add(|c| &c.misses, 1);
    }

    #[inline]
    pub(crate) fn insert(&self) {
        self.stripe().add(|c| &c.inserts, 1);
    }

    pub(crate) fn removals(&self, evictions: u64, expirations: u64) {
        let stripe = self.stripe();
        if evictions > 0 {
            stripe.add(|c| &c.evictions, evictions);
        }
        if expirations > 0 {
            stripe.add(|c| &c.expirations, expirations);
        }
    }

    pub(crate) fn load(&self, succeeded: bool, took: Duration) {
        let stripe = self.stripe();
        if succeeded {
            stripe.add(|c| &c.load_successes, 1);
        } else {
            stripe.add(|c| &c.load_failures, 1);
        }
        stripe.add(|c| &c.load_nanos, saturating_nanos(took));
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn refresh(&self) {
        self.stripe().add(|c| &c.refreshes, 1);
    }

    /// A failed load, or a `get` while a failure is remembered, answered with a kept value.
    pub(crate) fn stale_served(&self) {
        self.stripe().add(|c| &c.stale_served, 1);
    }

    /// Hits and misses so far: what the eviction policy adapts to.
    pub(crate) fn lookups(&self) -> (u64, u64) {
        let sum = |field: fn(&Counts) -> &AtomicU64| -> u64 {
            self.stripes
                .iter()
                .map(|stripe| field(stripe).load(Ordering::Relaxed))
                .fold(0, u64::saturating_add)
        };
        (sum(|s| &s.hits), sum(|s| &s.misses))
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let sum = |field: fn(&Counts) -> &AtomicU64| -> u64 {
            self.stripes
                .iter()
                .map(|stripe| field(stripe).load(Ordering::Relaxed))
                .fold(0, u64::saturating_add)
        };
        CacheStats {
            hits: sum(|s| &s.hits),
            misses: sum(|s| &s.misses),
            inserts: sum(|s| &s.inserts),
            evictions: sum(|s| &s.evictions),
            expirations: sum(|s| &s.expirations),
            load_successes: sum(|s| &s.load_successes),
            load_failures: sum(|s| &s.load_failures),
            total_load_time: Duration::from_nanos(sum(|s| &s.load_nanos)),
            refreshes: sum(|s| &s.refreshes),
            stale_served: sum(|s| &s.stale_served),
        }
    }
}
