//! Ticks: the points in time a cache keeps deadlines in, and the [`Timeline`] that reads them
//! from the cache's clock.
//!
//! A tick is nanoseconds since the cache was built, in a `u64`: eight bytes per deadline
//! instead of an `Instant`'s sixteen, and a `Duration` too large to add (`Duration::MAX`)
//! saturates to [`Tick::NEVER`] instead of panicking.

use std::{
    cell::Cell,
    fmt,
    time::{Duration, Instant},
};

#[cfg(feature = "serde")]
use std::time::SystemTime;

use super::{Clock, SystemClock, saturating_nanos, ticker::TICKER};

/// A point in a cache's time: nanoseconds since the cache's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(u64);

impl Tick {
    /// A deadline that is never reached.
    pub(crate) const NEVER: Tick = Tick(u64::MAX);

    /// The tick `after` from now; [`Tick::NEVER`] if that is past what a tick can hold.
    #[inline]
    pub(crate) fn after(self, after: Duration) -> Tick {
        self.after_nanos(saturating_nanos(after))
    }

    /// The tick `nanos` nanoseconds after this one, saturating at [`Tick::NEVER`].
    pub(crate) fn after_nanos(self, nanos: u64) -> Tick {
        Tick(self.0.saturating_add(nanos))
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

/// The clock a cache was built with, as the cache keeps it.
///
/// [`SystemClock`] is told apart from every other clock because caches do not ask it for the
/// time: they read the ticker's (`ticker.rs`), which costs an atomic load instead of a system
/// call.
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
    source: TimeSource,
    epoch: Instant,
}

impl Timeline {
    pub(crate) fn new(source: TimeSource) -> Self {
        let epoch = match &source {
            TimeSource::System => TICKER.epoch(),
            TimeSource::Custom(clock) => clock.now(),
        };
        Self { source, epoch }
    }

    /// The current tick. It stays below [`Tick::NEVER`], so a finite deadline can be reached.
    #[inline]
    pub(crate) fn now(&self) -> Tick {
        let nanos = match &self.source {
            TimeSource::System => self.system_nanos(),
            TimeSource::Custom(clock) => self.nanos_at(clock.now()),
        };
        Tick(nanos.min(u64::MAX - 1))
    }

    /// The current tick read exactly, for durations too short for the ticker's steps (how
    /// long a load took): the system's time itself where [`now`](Self::now) reads the ticker.
    pub(crate) fn precise_now(&self) -> Tick {
        let nanos = match &self.source {
            TimeSource::System => self.nanos_at(Instant::now()),
            TimeSource::Custom(clock) => self.nanos_at(clock.now()),
        };
        Tick(nanos.min(u64::MAX - 1))
    }

    /// The tick of `instant` on this timeline (its epoch's, if earlier), for deadlines
    /// counted from an instant read elsewhere.
    #[cfg(feature = "redis")]
    pub(crate) fn tick_at(&self, instant: Instant) -> Tick {
        Tick(self.nanos_at(instant).min(u64::MAX - 1))
    }

    /// The instant of `tick` on the cache's clock, for code of the user's that takes
    /// instants ([`Expiry`](crate::Expiry)).
    pub(crate) fn instant(&self, tick: Tick) -> Instant {
        let since_epoch = Duration::from_nanos(tick.0);
        self.epoch.checked_add(since_epoch).unwrap_or(self.epoch)
    }

    /// The wall-clock time now, by the cache's clock ([`Clock::wall_now`]).
    #[cfg(feature = "serde")]
    pub(crate) fn wall_now(&self) -> SystemTime {
        match &self.source {
            TimeSource::System => SystemTime::now(),
            TimeSource::Custom(clock) => clock.wall_now(),
        }
    }

    /// The ticker's time, or the system's where no ticker thread could be started (and under
    /// loom, where none runs).
    #[inline]
    fn system_nanos(&self) -> u64 {
        TICKER
            .nanos()
            .unwrap_or_else(|| self.nanos_at(Instant::now()))
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
