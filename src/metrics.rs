//! Feature `metrics`: named caches (and coherence handles) report through the [`metrics`]
//! facade, so whatever exporter the service installs (Prometheus, StatsD, OpenTelemetry) shows
//! them.
//!
//! This file is the sink: producers register with `report_while_alive`, giving their
//! `Family` of metrics (described here for caches, in `redis/metrics.rs` for coherence
//! handles) and how to report one of them; the registry runs the reports.
//!
//! Rules:
//! 1. Nothing is counted twice, and nothing on the hit path: the striped counters (`stats.rs`)
//!    already hold every count. A report reads them, as [`TtlCache::stats`] does, and hands the
//!    totals to the facade as absolute values.
//! 2. Reports run one at a time: on one thread of the process, `ttlcache-metrics`, every
//!    [`INTERVAL`] (scheduled from the first, so reports do not drift later), and in [`report`]
//!    whenever the service calls it (before rendering a scrape, say). The thread starts with
//!    the first registration and exits once every registered reporter is gone.
//! 3. No lock of the registry is held while reporters run: a reporter may hold the last
//!    handle of its cache, whose drop runs user code, which may build a named cache (or call
//!    [`report`], which then returns at once). A reporter that panics is dropped, the others
//!    kept.
//! 4. Each report looks its metrics up in the facade afresh, so a recorder installed after a
//!    cache was built still sees it. That costs a few map lookups a second per cache.
//! 5. Names should be unique among live caches: the facade keeps one series per name and
//!    labels, and two caches of one name would overwrite each other's values.
//! 6. Totals of seconds are gauges: the facade's counters hold integers.
//!
//! | metric | kind | labels | from |
//! |---|---|---|---|
//! | `ttlcache_hits_total` | counter | `cache` | [`CacheStats::hits`] |
//! | `ttlcache_misses_total` | counter | `cache` | [`CacheStats::misses`] |
//! | `ttlcache_inserts_total` | counter | `cache` | [`CacheStats::inserts`] |
//! | `ttlcache_evictions_total` | counter | `cache`, `cause` = `size` or `expired` | [`CacheStats::evictions`], [`CacheStats::expirations`] |
//! | `ttlcache_loads_total` | counter | `cache`, `result` = `success` or `failure` | [`CacheStats::load_successes`], [`CacheStats::load_failures`] |
//! | `ttlcache_load_seconds` | gauge | `cache` | [`CacheStats::total_load_time`] |
//! | `ttlcache_refreshes_total` | counter | `cache` | [`CacheStats::refreshes`] |
//! | `ttlcache_stale_served_total` | counter | `cache` | [`CacheStats::stale_served`] |
//! | `ttlcache_entries` | gauge | `cache` | [`TtlCache::len`] |
//! | `ttlcache_weighted_size` | gauge | `cache` | [`TtlCache::weighted_size`] |
//! | `ttlcache_coherence_sent_total` and `_received_total`, `_flushes_total`, `_reconnects_total` | counter | `namespace`, `handle` | [`CoherenceStats`] |
//! | `ttlcache_coherence_unhealthy_seconds` | gauge | `namespace`, `handle` | [`CoherenceStats::time_unhealthy`] |
//! | `ttlcache_coherence_healthy` | gauge, 1 or 0 | `namespace`, `handle` | [`Coherence::is_healthy`] |
//!
//! [`TtlCache::stats`]: crate::TtlCache::stats
//! [`TtlCache::len`]: crate::TtlCache::len
//! [`TtlCache::weighted_size`]: crate::TtlCache::weighted_size
//! [`CacheStats::hits`]: crate::CacheStats::hits
//! [`CacheStats::misses`]: crate::CacheStats::misses
//! [`CacheStats::inserts`]: crate::CacheStats::inserts
//! [`CacheStats::evictions`]: crate::CacheStats::evictions
//! [`CacheStats::expirations`]: crate::CacheStats::expirations
//! [`CacheStats::load_successes`]: crate::CacheStats::load_successes
//! [`CacheStats::load_failures`]: crate::CacheStats::load_failures
//! [`CacheStats::total_load_time`]: crate::CacheStats::total_load_time
//! [`CacheStats::refreshes`]: crate::CacheStats::refreshes
//! [`CacheStats::stale_served`]: crate::CacheStats::stale_served
//! [`CoherenceStats`]: crate::redis::CoherenceStats
//! [`CoherenceStats::time_unhealthy`]: crate::redis::CoherenceStats::time_unhealthy
//! [`Coherence::is_healthy`]: crate::redis::Coherence::is_healthy

use std::{
    cell::Cell,
    panic::{self, AssertUnwindSafe},
    time::{Duration, Instant},
};

use ::metrics::{counter, describe_counter, describe_gauge, gauge};

use crate::{
    CacheStats,
    sync::{self, Mutex},
};

/// How often the thread reports: what an exporter shows is at most this old.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The metrics of one kind of producer: described once a report, however many producers of
/// the kind report.
pub(crate) struct Family {
    /// Gives the facade each metric's description, for exporters that show one (`# HELP`).
    pub(crate) describe: fn(),
}

/// Reports one cache or handle; false once it is gone, which unregisters it.
struct Reporter {
    family: &'static Family,
    report: Box<dyn FnMut() -> bool + Send>,
}

struct Registry {
    reporters: Vec<Reporter>,
    /// Whether the `ttlcache-metrics` thread runs (rule 2).
    running: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    reporters: Vec::new(),
    running: false,
});

/// Held through a report, so that reports run one at a time (rule 2).
static REPORTING: Mutex<()> = Mutex::new(());

/// Reports every named cache and coherence handle now.
///
/// The `ttlcache-metrics` thread does this every [`INTERVAL`]; call it where numbers must be
/// current, such as a scrape handler before it renders.
///
/// # Examples
///
/// ```
/// let users = ttlcache::TtlCache::<u64, String>::builder()
///     .name("users")
///     .build()
///     .unwrap();
/// users.insert(1, "Ada".to_string());
/// // With a recorder installed, it now shows `ttlcache_inserts_total{cache="users"} 1`.
/// ttlcache::metrics::report();
/// ```
pub fn report() {
    report_all(false);
}

/// Has `report` report `producer`, a member of `family`, for as long as anything else holds
/// it: a weak reference is kept, so a dropped cache or handle leaves (rule 2).
pub(crate) fn report_while_alive<T: Send + Sync + 'static>(
    family: &'static Family,
    producer: &sync::Arc<T>,
    report: impl Fn(sync::Arc<T>) + Send + 'static,
) {
    let producer = sync::Arc::downgrade(producer);
    register(Reporter {
        family,
        report: Box::new(move || {
            let Some(producer) = producer.upgrade() else {
                return false;
            };
            report(producer);
            true
        }),
    });
}

/// Adds a reporter, starting the thread if none runs (rule 2).
fn register(reporter: Reporter) {
    let mut registry = REGISTRY.lock();
    registry.reporters.push(reporter);
    if !registry.running {
        let started = std::thread::Builder::new()
            .name("ttlcache-metrics".into())
            .spawn(run);
        // Without a thread, reports come from `report` alone; the next registration retries.
        registry.running = started.is_ok();
    }
}

/// The thread's loop: a report every [`INTERVAL`] (not an interval after the last report's
/// end), until nothing is left to report.
fn run() {
    let mut next = Instant::now();
    loop {
        next += INTERVAL;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if !report_all(true) {
            return;
        }
    }
}

thread_local! {
    /// Whether this thread is running reporters: a `report` from a reporter's drop (user
    /// code) returns at once rather than wait for its own report.
    static REPORTING_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Runs every reporter, unlocked (rule 3), keeping those still wanted and any registered
/// meanwhile. A reporter that panics (in a recorder, or in user code its drop runs) is dropped;
/// no panic leaves here, so nothing registered is lost. For the `thread`, returns whether any
/// reporter is left, having marked it stopped under the registry lock when none is.
fn report_all(thread: bool) -> bool {
    if REPORTING_HERE.get() {
        return true;
    }
    let _one_at_a_time = REPORTING.lock();
    REPORTING_HERE.set(true);
    let mut reporters = std::mem::take(&mut REGISTRY.lock().reporters);
    let mut described: Vec<&'static Family> = Vec::new();
    for Reporter { family, .. } in &reporters {
        if !described.iter().any(|done| std::ptr::eq(*done, *family)) {
            described.push(family);
            let _ = panic::catch_unwind(family.describe);
        }
    }
    reporters.retain_mut(|reporter| {
        panic::catch_unwind(AssertUnwindSafe(&mut reporter.report)).unwrap_or(false)
    });
    REPORTING_HERE.set(false);
    let mut registry = REGISTRY.lock();
    reporters.append(&mut registry.reporters);
    registry.reporters = reporters;
    if thread && registry.reporters.is_empty() {
        registry.running = false;
        return false;
    }
    true
}

/// A cache's metrics.
pub(crate) static CACHE: Family = Family {
    describe: describe_cache,
};

fn describe_cache() {
    describe_counter!("ttlcache_hits_total", "Lookups that found a live entry");
    describe_counter!("ttlcache_misses_total", "Lookups that found nothing live");
    describe_counter!("ttlcache_inserts_total", "Writes, stored loads included");
    describe_counter!(
        "ttlcache_evictions_total",
        "Entries removed to keep within capacity (cause=size) or because they expired (cause=expired)"
    );
    describe_counter!(
        "ttlcache_loads_total",
        "Loads, refreshes included, by result"
    );
    describe_counter!("ttlcache_refreshes_total", "Background reloads started");
    describe_counter!(
        "ttlcache_stale_served_total",
        "Failed loads answered with a value kept past its time to live (stale_if_error)"
    );
    describe_gauge!(
        "ttlcache_load_seconds",
        ::metrics::Unit::Seconds,
        "Time spent in loads since the cache was built"
    );
    describe_gauge!(
        "ttlcache_entries",
        "Entries held, expired ones not yet removed included"
    );
    describe_gauge!("ttlcache_weighted_size", "Total weight of the entries held");
}

/// Reports a cache's counts under `cache = name`.
pub(crate) fn cache(name: &str, stats: &CacheStats, entries: usize, weighted_size: u64) {
    let cache = ("cache", name.to_owned());
    let labels = std::slice::from_ref(&cache);
    counter!("ttlcache_hits_total", labels).absolute(stats.hits);
    counter!("ttlcache_misses_total", labels).absolute(stats.misses);
    counter!("ttlcache_inserts_total", labels).absolute(stats.inserts);
    for (cause, count) in [("size", stats.evictions), ("expired", stats.expirations)] {
        let labels = [cache.clone(), ("cause", cause.to_owned())];
        counter!("ttlcache_evictions_total", &labels).absolute(count);
    }
    for (result, count) in [
        ("success", stats.load_successes),
        ("failure", stats.load_failures),
    ] {
        let labels = [cache.clone(), ("result", result.to_owned())];
        counter!("ttlcache_loads_total", &labels).absolute(count);
    }
    counter!("ttlcache_refreshes_total", labels).absolute(stats.refreshes);
    counter!("ttlcache_stale_served_total", labels).absolute(stats.stale_served);
    gauge!("ttlcache_load_seconds", labels).set(stats.total_load_time.as_secs_f64());
    gauge!("ttlcache_entries", labels).set(entries as f64);
    gauge!("ttlcache_weighted_size", labels).set(weighted_size as f64);
}
