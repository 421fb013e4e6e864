//! Time: the [`Clock`] users choose (this file), the ticks a cache keeps deadlines in
//! (`tick.rs`), and the ticker thread that makes the default clock cheap to read
//! (`ticker.rs`).
//!
//! Every expiry decision reads the cache's clock through its [`Timeline`], never
//! `Instant::now()` directly, so tests drive expiry with [`ManualClock`] or, under
//! `tokio::time::pause`, with [`TokioClock`].

mod tick;
#[cfg(not(ttlcache_loom))]
mod ticker;
#[cfg(ttlcache_loom)]
#[path = "ticker_loom.rs"]
mod ticker;

pub(crate) use tick::{Now, Tick, TimeSource, Timeline};

use std::{
    fmt,
    time::{Duration, Instant, SystemTime},
};

use crate::sync::{self, AtomicU64, Ordering};

/// A source of the current time for expiry decisions.
///
/// The cache asks its clock for the time on writes, and on reads of entries that can expire.
/// A clock must be monotonic: `now` never returns an earlier instant than it returned before.
///
/// # Examples
///
/// A clock that is always some fixed distance ahead of the system's:
///
/// ```
/// use std::time::{Duration, Instant};
/// use ttlcache::{Clock, TtlCache};
///
/// struct Ahead(Duration);
///
/// impl Clock for Ahead {
///     fn now(&self) -> Instant {
///         Instant::now() + self.0
///     }
/// }
///
/// let cache = TtlCache::<u32, u32>::builder()
///     .clock(Ahead(Duration::from_secs(1)))
///     .build()
///     .unwrap();
/// cache.insert(1, 1);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), clock.now());
    /// ```
    fn now(&self) -> Instant;

    /// The wall-clock time now. Snapshots (feature `serde`) carry deadlines across a restart
    /// as wall-clock times, read from here. The default reads `SystemTime::now()`; a clock
    /// that moves its own time, as [`ManualClock`] does, moves this with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let start = clock.wall_now();
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(clock.wall_now().duration_since(start).unwrap(), Duration::from_secs(60));
    /// ```
    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The default clock: the system's monotonic time, [`Instant::now`].
///
/// Caches and lazies built with it do not call `Instant::now` on every decision, which costs
/// as much as the rest of a hit: a background thread (`ttlcache-ticker`, one per process)
/// publishes the time about once a millisecond. It starts when a cache or lazy first needs
/// the time (a write or read of an entry that can expire: a cache or lazy without deadlines
/// never starts it), and exits once nothing has read the time for one to two seconds; the
/// next read starts it again. The time read is therefore up to about a millisecond behind
/// the system's (more only if that thread is not scheduled); writes and reads both read it,
/// so an entry lives its time to live give or take about a millisecond. Load times in
/// [`CacheStats`](crate::CacheStats) are measured exactly. For exact expiry, pass a [`Clock`]
/// of your own that calls `Instant::now`.
///
/// After a `fork()` without `exec`, the child has no ticker thread, and its caches built with
/// this clock may read a time that stands still: a child that forks after using such caches
/// should build its own with another clock.
///
/// # Examples
///
/// ```
/// use ttlcache::{Clock, SystemClock};
///
/// let before = std::time::Instant::now();
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests.
///
/// Clones share one time: advance any of them and every cache built with a clone sees it.
/// Time starts at the instant [`ManualClock::new`] is called. Advancing saturates at
/// `u64::MAX` nanoseconds (about 584 years) after that.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ttlcache::{ManualClock, TtlCache};
///
/// let clock = ManualClock::new();
/// let cache = TtlCache::builder()
///     .time_to_live(Duration::from_secs(60))
///     .clock(clock.clone())
///     .build()
///     .unwrap();
///
/// cache.insert("session", 7);
/// clock.advance(Duration::from_secs(59));
/// assert_eq!(cache.get("session"), Some(7));
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(cache.get("session"), None);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: sync::Arc<ManualTime>,
}

struct ManualTime {
    origin: Instant,
    /// The wall-clock time at `origin`.
    wall_origin: SystemTime,
    elapsed_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock that reads the current instant until it is advanced.
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let start = clock.now();
    /// std::thread::sleep(std::time::Duration::from_millis(1));
    /// assert_eq!(clock.now(), start);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: sync::Arc::new(ManualTime {
                origin: Instant::now(),
                wall_origin: SystemTime::now(),
                elapsed_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Moves the time forward by `by`, for this clock and all its clones.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let start = clock.now();
    /// clock.clone().advance(Duration::from_secs(5));
    /// assert_eq!(clock.now() - start, Duration::from_secs(5));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        let elapsed = &self.inner.elapsed_nanos;
        let mut current = elapsed.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(by);
            match elapsed.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// How far this clock has been advanced since it was created.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let clock = ttlcache::ManualClock::new();
    /// clock.advance(Duration::from_millis(1500));
    /// assert_eq!(clock.elapsed(), Duration::from_millis(1500));
    /// ```
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.elapsed_nanos.load(Ordering::Acquire))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let origin = self.inner.origin;
        let elapsed = self.elapsed();
        // An `Instant` 584 years out is representable on every platform Rust supports
        // today; should one refuse, the furthest instant a halving search finds stands in.
        origin
            .checked_add(elapsed)
            .unwrap_or_else(|| furthest_after(origin, elapsed))
    }

    fn wall_now(&self) -> SystemTime {
        // 584 years past now is a `SystemTime` on every platform Rust supports.
        let wall_origin = self.inner.wall_origin;
        wall_origin
            .checked_add(self.elapsed())
            .unwrap_or(wall_origin)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

fn furthest_after(origin: Instant, mut step: Duration) -> Instant {
    let mut at = origin;
    while !step.is_zero() {
        if let Some(next) = at.checked_add(step) {
            at = next;
        } else {
            step /= 2;
        }
    }
    at
}

/// A clock that follows tokio's time, so `tokio::time::pause` and `advance` drive expiry.
///
/// Outside a paused runtime it reads the same time as [`SystemClock`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ttlcache::{TokioClock, TtlCache};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let cache = TtlCache::builder()
///     .time_to_live(Duration::from_secs(5))
///     .clock(TokioClock)
///     .build()
///     .unwrap();
/// cache.insert(1, "one");
/// tokio::time::advance(Duration::from_secs(5)).await;
/// assert_eq!(cache.get(&1), None);
/// # }
/// ```
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// Whether the current tokio runtime keeps time (was built with `enable_time`): a sleep made
/// without its timer panics, so one is made, and dropped, under `catch_unwind`.
#[cfg(feature = "tokio")]
pub(crate) fn tokio_timer_enabled() -> bool {
    std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`: here, below the ticks
/// (`tick.rs`) and the ticker (`ticker.rs`) that both count in them.
#[inline]
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn durations_too_large_for_a_tick_mean_never() {
        assert_eq!(Tick::from_raw(5).after(Duration::MAX), Tick::NEVER);
        assert_eq!(
            Tick::from_raw(u64::MAX - 1).after(Duration::from_nanos(2)),
            Tick::NEVER
        );
        assert!(!Tick::NEVER.has_passed(Tick::from_raw(u64::MAX - 1)));
    }

    #[test]
    fn a_deadline_passes_exactly_at_its_tick() {
        let deadline = Tick::from_raw(10).after(Duration::from_nanos(5));
        assert!(!deadline.has_passed(Tick::from_raw(14)));
        assert!(deadline.has_passed(Tick::from_raw(15)));
    }

    #[test]
    fn manual_clock_saturates_instead_of_overflowing() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.elapsed(), Duration::from_nanos(u64::MAX));
        assert!(clock.now() > start);
    }

    #[test]
    fn only_the_system_clock_is_read_through_the_ticker() {
        assert!(matches!(TimeSource::of(SystemClock), TimeSource::System));
        assert!(matches!(
            TimeSource::of(ManualClock::new()),
            TimeSource::Custom(_)
        ));
    }

    #[test]
    fn clones_of_a_manual_clock_share_its_time() {
        let clock = ManualClock::new();
        let clone = clock.clone();
        clock.advance(Duration::from_secs(3));
        assert_eq!(clone.elapsed(), Duration::from_secs(3));
        let timeline = Timeline::new(TimeSource::of(clone));
        clock.advance(Duration::from_millis(1));
        assert_eq!(timeline.now(), Tick::from_raw(1_000_000));
    }
}
