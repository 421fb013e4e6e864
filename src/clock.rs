//! Time: the [`Clock`] users choose, and the ticks the cache keeps deadlines in.
//!
//! Every expiry decision reads the cache's clock through its [`Timeline`], never
//! `Instant::now()` directly, so tests drive expiry with [`ManualClock`] or, under
//! `tokio::time::pause`, with [`TokioClock`].
//!
//! Inside the cache a point in time is a [`Tick`]: nanoseconds since the cache was built, in a
//! `u64`. Eight bytes per deadline instead of an `Instant`'s sixteen, and a `Duration` too large
//! to add (`Duration::MAX`) saturates to [`Tick::NEVER`] instead of panicking.

use std::{
    cell::Cell,
    fmt,
    time::{Duration, Instant, SystemTime},
};

use crate::sync::{Arc, AtomicU64, Ordering};

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
/// publishes the time about once a millisecond from the first time one of them reads it until
/// a second after the last one is dropped. Their time is therefore up to about a millisecond
/// behind the system's (more only if that thread is not scheduled); writes and reads both
/// read it, so an entry lives its time to live give or take about a millisecond. Load times
/// in [`CacheStats`](crate::CacheStats) are measured exactly. For exact expiry, pass a
/// [`Clock`] of your own that calls `Instant::now`.
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
    shared: Arc<ManualTime>,
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
            shared: Arc::new(ManualTime {
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
        let elapsed = &self.shared.elapsed_nanos;
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
        Duration::from_nanos(self.shared.elapsed_nanos.load(Ordering::Acquire))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let origin = self.shared.origin;
        let elapsed = self.elapsed();
        // An `Instant` 584 years out is representable on every platform Rust supports
        // today; should one refuse, the furthest instant a halving search finds stands in.
        origin
            .checked_add(elapsed)
            .unwrap_or_else(|| furthest_after(origin, elapsed))
    }

    fn wall_now(&self) -> SystemTime {
        // 584 years past now is a `SystemTime` on every platform Rust supports.
        let wall_origin = self.shared.wall_origin;
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

/// A point in a cache's time: nanoseconds since the cache's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(u64);

impl Tick {
    /// A deadline that is never reached.
    pub(crate) const NEVER: Tick = Tick(u64::MAX);

    /// The tick `after` from now; [`Tick::NEVER`] if that is past what a tick can hold.
    #[inline]
    pub(crate) fn after(self, after: Duration) -> Tick {
        Tick(self.0.saturating_add(saturating_nanos(after)))
    }

    /// Whether a deadline at `self` has passed at `now`. [`Tick::NEVER`] never passes.
    #[inline]
    pub(crate) fn has_passed(self, now: Tick) -> bool {
        self != Tick::NEVER && now >= self
    }

    /// Whether a deadline at `self` has passed, reading the clock only if it can have.
    #[inline]
    pub(crate) fn is_reached(self, now: &Now<'_>) -> bool {
        !self.is_never() && self.has_passed(now.get())
    }

    #[inline]
    pub(crate) fn is_never(self) -> bool {
        self == Tick::NEVER
    }

    #[inline]
    pub(crate) fn to_raw(self) -> u64 {
        self.0
    }

    #[inline]
    pub(crate) fn from_raw(raw: u64) -> Tick {
        Tick(raw)
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub(crate) fn since(self, earlier: Tick) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The clock a cache was built with, as the cache keeps it.
///
/// [`SystemClock`] is told apart from every other clock because caches do not ask it for the
/// time: they read the [ticker](ticker)'s, which costs an atomic load instead of a system call.
#[derive(Clone, Default)]
pub(crate) enum TimeSource {
    #[default]
    System,
    Custom(std::sync::Arc<dyn Clock>),
}

impl TimeSource {
    pub(crate) fn of<C: Clock>(clock: C) -> Self {
        if (&clock as &dyn std::any::Any).is::<SystemClock>() {
            Self::System
        } else {
            Self::Custom(std::sync::Arc::new(clock))
        }
    }
}

impl fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("SystemClock"),
            Self::Custom(_) => f.write_str("custom"),
        }
    }
}

/// A cache's clock together with the instant its ticks count from.
pub(crate) struct Timeline {
    clock: Reading,
    epoch: Instant,
}

enum Reading {
    /// The ticker's time, leased the first time the cache asks.
    #[cfg(not(ttlcache_loom))]
    Ticker(std::sync::OnceLock<Option<ticker::Lease>>),
    /// `Instant::now`, where no ticker can run: loom models, or a failed thread spawn.
    #[cfg_attr(not(ttlcache_loom), allow(dead_code))]
    System,
    Custom(std::sync::Arc<dyn Clock>),
}

impl Timeline {
    pub(crate) fn new(source: TimeSource) -> Self {
        match source {
            #[cfg(not(ttlcache_loom))]
            TimeSource::System => Self {
                clock: Reading::Ticker(std::sync::OnceLock::new()),
                epoch: ticker::epoch(),
            },
            #[cfg(ttlcache_loom)]
            TimeSource::System => Self {
                clock: Reading::System,
                epoch: Instant::now(),
            },
            TimeSource::Custom(clock) => Self {
                epoch: clock.now(),
                clock: Reading::Custom(clock),
            },
        }
    }

    /// The current tick. It stays below [`Tick::NEVER`], so a finite deadline can be reached.
    #[inline]
    pub(crate) fn now(&self) -> Tick {
        let nanos = match &self.clock {
            #[cfg(not(ttlcache_loom))]
            Reading::Ticker(lease) => match lease.get_or_init(ticker::lease) {
                Some(lease) => lease.nanos(),
                None => self.nanos_at(Instant::now()),
            },
            Reading::System => self.nanos_at(Instant::now()),
            Reading::Custom(clock) => self.nanos_at(clock.now()),
        };
        Tick(nanos.min(u64::MAX - 1))
    }

    /// The current tick read exactly, for durations too short for the ticker's steps (how
    /// long a load took): the system's time itself where [`now`](Self::now) reads the ticker.
    pub(crate) fn precise_now(&self) -> Tick {
        let nanos = match &self.clock {
            Reading::Custom(clock) => self.nanos_at(clock.now()),
            _ => self.nanos_at(Instant::now()),
        };
        Tick(nanos.min(u64::MAX - 1))
    }

    /// The wall-clock time now, by the cache's clock ([`Clock::wall_now`]).
    #[cfg(feature = "serde")]
    pub(crate) fn wall_now(&self) -> SystemTime {
        match &self.clock {
            Reading::Custom(clock) => clock.wall_now(),
            _ => SystemTime::now(),
        }
    }

    #[inline]
    fn nanos_at(&self, instant: Instant) -> u64 {
        saturating_nanos(instant.saturating_duration_since(self.epoch))
    }
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeline")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The system's monotonic time, read by a background thread about once a millisecond and
/// published in one atomic, so that reading it on a cache hit costs a load, not a call to
/// `Instant::now` (about 25 ns on a virtual machine, as much as the rest of a hit).
///
/// Rules:
/// 1. The published time never runs ahead of `Instant::now` and never goes back: it is only
///    written under the `users` lock, with a time read under that lock.
/// 2. While a [`Lease`] is alive the thread runs, so the time lags the system's by about a
///    period (more only if the thread is not scheduled). A lease publishes the time when it
///    is taken, so its first reading is not a stale one from before the thread last slept.
/// 3. The thread exits after [`IDLE_TICKS`] periods without a lease; the next lease starts a
///    new one. A lease that cannot start its thread is not given: the caller reads
///    `Instant::now` instead.
///
/// Like memcached's and Redis's cached clocks, this trades exactness for speed: an entry's
/// life is its time to live give or take about a period.
#[cfg(not(ttlcache_loom))]
mod ticker {
    use std::{
        sync::OnceLock,
        time::{Duration, Instant},
    };

    use super::saturating_nanos;
    use crate::sync::{AtomicU64, Mutex, Ordering};

    /// How often the thread publishes the time.
    pub(super) const PERIOD: Duration = Duration::from_millis(1);
    /// Periods without a lease before the thread exits.
    const IDLE_TICKS: u32 = 1_000;

    struct Ticker {
        epoch: Instant,
        nanos: AtomicU64,
        users: Mutex<Users>,
    }

    #[derive(Default)]
    struct Users {
        leases: usize,
        thread_running: bool,
    }

    fn ticker() -> &'static Ticker {
        static TICKER: OnceLock<Ticker> = OnceLock::new();
        TICKER.get_or_init(|| Ticker {
            epoch: Instant::now(),
            nanos: AtomicU64::new(0),
            users: Mutex::new(Users::default()),
        })
    }

    /// The instant the published time counts from.
    pub(super) fn epoch() -> Instant {
        ticker().epoch
    }

    /// A claim on the ticker that keeps its thread running.
    pub(super) struct Lease(&'static Ticker);

    /// Starts the ticker's thread if it is not running; `None` if it cannot be started.
    #[cold]
    pub(super) fn lease() -> Option<Lease> {
        let ticker = ticker();
        let mut users = ticker.users.lock();
        ticker.publish();
        if !users.thread_running {
            std::thread::Builder::new()
                .name("ttlcache-ticker".into())
                .spawn(|| ticker.run())
                .ok()?;
            users.thread_running = true;
        }
        users.leases += 1;
        Some(Lease(ticker))
    }

    impl Lease {
        /// The published time, in nanoseconds since [`epoch`].
        #[inline]
        pub(super) fn nanos(&self) -> u64 {
            self.0.nanos.load(Ordering::Relaxed)
        }
    }

    impl Drop for Lease {
        fn drop(&mut self) {
            self.0.users.lock().leases -= 1;
        }
    }

    impl Ticker {
        /// Call with `users` locked (rule 1).
        fn publish(&self) {
            let nanos = saturating_nanos(self.epoch.elapsed());
            self.nanos.fetch_max(nanos, Ordering::Relaxed);
        }

        fn run(&self) {
            let mut idle = 0;
            loop {
                std::thread::sleep(PERIOD);
                let mut users = self.users.lock();
                self.publish();
                idle = if users.leases == 0 { idle + 1 } else { 0 };
                if idle >= IDLE_TICKS {
                    users.thread_running = false;
                    return;
                }
            }
        }
    }
}

/// The current tick, read from the clock at most once and only if someone asks.
///
/// Reads of entries that cannot expire never ask, so a cache without expiry never reads its
/// clock on the hit path.
pub(crate) struct Now<'a> {
    timeline: &'a Timeline,
    tick: Cell<Option<Tick>>,
}

impl<'a> Now<'a> {
    #[inline]
    pub(crate) fn lazy(timeline: &'a Timeline) -> Self {
        Self {
            timeline,
            tick: Cell::new(None),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> Tick {
        match self.tick.get() {
            Some(tick) => tick,
            None => {
                let tick = self.timeline.now();
                self.tick.set(Some(tick));
                tick
            }
        }
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn durations_too_large_for_a_tick_mean_never() {
        assert_eq!(Tick(5).after(Duration::MAX), Tick::NEVER);
        assert_eq!(
            Tick(u64::MAX - 1).after(Duration::from_nanos(2)),
            Tick::NEVER
        );
        assert!(!Tick::NEVER.has_passed(Tick(u64::MAX - 1)));
    }

    #[test]
    fn a_deadline_passes_exactly_at_its_tick() {
        let deadline = Tick(10).after(Duration::from_nanos(5));
        assert!(!deadline.has_passed(Tick(14)));
        assert!(deadline.has_passed(Tick(15)));
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
    fn the_ticker_time_advances_and_never_goes_back() {
        let timeline = Timeline::new(TimeSource::System);
        let start = timeline.now();
        let mut last = start;
        let give_up = Instant::now() + Duration::from_secs(30);
        while last == start && Instant::now() < give_up {
            std::thread::sleep(ticker::PERIOD);
            let now = timeline.now();
            assert!(now >= last, "the ticker went back from {last:?} to {now:?}");
            last = now;
        }
        assert!(last > start, "the ticker did not move in 30 s");
        // Never ahead of the system's time.
        assert!(timeline.epoch + last.since(Tick(0)) <= Instant::now());
    }

    #[test]
    fn clones_of_a_manual_clock_share_its_time() {
        let clock = ManualClock::new();
        let clone = clock.clone();
        clock.advance(Duration::from_secs(3));
        assert_eq!(clone.elapsed(), Duration::from_secs(3));
        let timeline = Timeline::new(TimeSource::of(clone));
        clock.advance(Duration::from_millis(1));
        assert_eq!(timeline.now(), Tick(1_000_000));
    }
}
