//! Statistics: what users read ([`CacheStats`]) and the counters behind it.
//!
//! Rules:
//! 1. No counter is shared by all threads. Each thread adds to its own stripe (chosen by
//!    [`thread_index`]), padded to a cache line, so a hit writes only to a line its own core
//!    already holds; [`Counters::snapshot`] sums the stripes.
//! 2. Counts are exact: stripes are added to atomically, so threads that share a stripe (more
//!    threads than stripes) lose nothing. A snapshot taken while other threads count is a sum
//!    of values each read at some moment during the call, not one instant's totals.
//! 3. Hits and misses are counted per shard as well, in a flat array with a run of counters
//!    per stripe (padded so no two stripes share a cache line): the eviction policy of each
//!    shard adapts to its own hit rate.

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

/// One thread's share of the counts, but for hits and misses (see [`Counters::lookups`]).
#[derive(Debug, Default)]
struct Stripe {
    inserts: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    load_successes: AtomicU64,
    load_failures: AtomicU64,
    load_nanos: AtomicU64,
}

/// Counters per 128 bytes: a run of lookup counters padded by this many never shares a cache
/// line with the next stripe's run.
const COUNTERS_PER_LINE: usize = 16;

/// The counters of one cache, striped by thread.
#[derive(Debug)]
pub(crate) struct Counters {
    stripes: Box<[CachePadded<Stripe>]>,
    /// Hits and misses of stripe `s` and shard `i` at `s * stride + 2 * i` and the next index.
    lookups: Box<[AtomicU64]>,
    stride: usize,
}

impl Counters {
    pub(crate) fn new(shards: usize) -> Self {
        let stripes = parallelism().next_power_of_two();
        let stride = (2 * shards).next_multiple_of(COUNTERS_PER_LINE) + COUNTERS_PER_LINE;
        Self {
            stripes: (0..stripes).map(|_| CachePadded::default()).collect(),
            lookups: (0..stripes * stride).map(|_| AtomicU64::new(0)).collect(),
            stride,
        }
    }

    #[inline]
    fn stripe_index(&self) -> usize {
        // The stripe count is a power of two.
        thread_index() & (self.stripes.len() - 1)
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[self.stripe_index()]
    }

    #[inline]
    fn lookup(&self, shard: usize, missed: bool) -> &AtomicU64 {
        &self.lookups[self.stripe_index() * self.stride + 2 * shard + usize::from(missed)]
    }

    #[inline]
    pub(crate) fn hit(&self, shard: usize) {
        self.lookup(shard, false).fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn miss(&self, shard: usize) {
        self.lookup(shard, true).fetch_add(1, Ordering::Relaxed);
    }

    /// One shard's hits and misses so far, summed over the stripes.
    pub(crate) fn shard_lookups(&self, shard: usize) -> (u64, u64) {
        let count = |at: usize| -> u64 {
            self.lookups
                .iter()
                .skip(at)
                .step_by(self.stride)
                .map(|counter| counter.load(Ordering::Relaxed))
                .sum()
        };
        (count(2 * shard), count(2 * shard + 1))
    }

    #[inline]
    pub(crate) fn insert(&self) {
        self.stripe().inserts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn removals(&self, evictions: u64, expirations: u64) {
        let stripe = self.stripe();
        if evictions > 0 {
            stripe.evictions.fetch_add(evictions, Ordering::Relaxed);
        }
        if expirations > 0 {
            stripe.expirations.fetch_add(expirations, Ordering::Relaxed);
        }
    }

    pub(crate) fn load(&self, succeeded: bool, took: Duration) {
        let stripe = self.stripe();
        let outcome = if succeeded {
            &stripe.load_successes
        } else {
            &stripe.load_failures
        };
        outcome.fetch_add(1, Ordering::Relaxed);
        stripe
            .load_nanos
            .fetch_add(saturating_nanos(took), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let sum = |field: fn(&Stripe) -> &AtomicU64| -> u64 {
            self.stripes
                .iter()
                .map(|stripe| field(stripe).load(Ordering::Relaxed))
                .fold(0, u64::saturating_add)
        };
        let lookups = |missed: usize| -> u64 {
            self.lookups
                .iter()
                .enumerate()
                .filter(|(at, _)| at % 2 == missed)
                .map(|(_, counter)| counter.load(Ordering::Relaxed))
                .fold(0, u64::saturating_add)
        };
        CacheStats {
            hits: lookups(0),
            misses: lookups(1),
            inserts: sum(|s| &s.inserts),
            evictions: sum(|s| &s.evictions),
            expirations: sum(|s| &s.expirations),
            load_successes: sum(|s| &s.load_successes),
            load_failures: sum(|s| &s.load_failures),
            total_load_time: Duration::from_nanos(sum(|s| &s.load_nanos)),
        }
    }
}
