//! The ticker: the system's monotonic time, read by a background thread about once a
//! millisecond and published in one atomic word, so that reading it on a cache hit costs a
//! load, not a call to `Instant::now` (about 25 ns on a virtual machine, as much as the rest of
//! a hit). Like memcached's and Redis's cached clocks, it trades exactness for speed: an
//! entry's life is its time to live give or take about a [`PERIOD`].
//!
//! The word:
//!
//! | bits  | meaning |
//! |-------|---------|
//! | 63..2 | the published time, nanoseconds since the epoch, rounded down to a multiple of 4 |
//! | 1     | `STOPPED`: no thread publishes; the time is stale, and the next reader starts one |
//! | 0     | `READ`: a reader took the time since the thread last looked |
//!
//! Rules:
//! 1. The published time never runs ahead of `Instant::now` and never goes back: it is only
//!    written under the `running` lock, with a time read under that lock.
//! 2. A reader uses the time only while `STOPPED` is clear. Seeing `READ` clear, it sets it
//!    (one write per reader per check, not per read); seeing `STOPPED`, it starts a thread
//!    (and publishes afresh) under the lock. A reader that cannot start one is told so, and
//!    reads `Instant::now` itself; after a failed start, no reader tries again (or takes the
//!    lock) for [`RETRY_SPAWN`].
//! 3. Every [`CHECK_TICKS`] periods the thread clears `READ`; if it was already clear, nobody
//!    read for a whole check, and the thread sets `STOPPED` and exits, in one
//!    compare-and-swap, so a reader that set `READ` meanwhile keeps it running. A process whose
//!    caches sit idle thus has no thread waking it.
//! 4. After `fork()`, the child has no ticker thread but may inherit a word without `STOPPED`:
//!    its default-clock caches would read a time that stands still. Build caches in the child
//!    with a clock of their own (any [`Clock`](crate::Clock) but `SystemClock`) if it forks
//!    after using them and does not `exec`.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use super::saturating_nanos;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// How often the thread publishes the time.
pub(super) const PERIOD: Duration = Duration::from_millis(1);
/// Periods between the thread's checks for readers (rule 3): it stops one to two checks
/// after the last read.
const CHECK_TICKS: u32 = 1_000;

/// How long after a failed thread start readers read `Instant::now` without trying again.
const RETRY_SPAWN: Duration = Duration::from_secs(1);

const READ: u64 = 1;
const STOPPED: u64 = 2;
const FLAGS: u64 = READ | STOPPED;

/// The process's ticker.
pub(super) static TICKER: Ticker = Ticker::new(CHECK_TICKS);

pub(super) struct Ticker {
    word: AtomicU64,
    /// Whether a thread runs; every write of the time is made under it (rule 1).
    running: Mutex<bool>,
    epoch: OnceLock<Instant>,
    check_ticks: u32,
    /// Nanoseconds since the epoch before which no start is tried: set by a failed one.
    no_start_before: AtomicU64,
}

impl Ticker {
    const fn new(check_ticks: u32) -> Self {
        Self {
            word: AtomicU64::new(STOPPED),
            running: Mutex::new(false),
            epoch: OnceLock::new(),
            check_ticks,
            no_start_before: AtomicU64::new(0),
        }
    }

    /// The instant the published time counts from.
    pub(super) fn epoch(&self) -> Instant {
        *self.epoch.get_or_init(Instant::now)
    }

    /// The published time in nanoseconds since [`epoch`](Self::epoch); `None` if it is stale
    /// and no thread could be started to publish it.
    #[inline]
    pub(super) fn nanos(&'static self) -> Option<u64> {
        let word = self.word.load(Ordering::Relaxed);
        if word & FLAGS == READ {
            return Some(word & !FLAGS);
        }
        self.mark_read(word)
    }

    /// Sets `READ` on a running ticker, or starts a stopped one (rule 2).
    #[cold]
    fn mark_read(&'static self, word: u64) -> Option<u64> {
        if word & STOPPED == 0 {
            let word = self.word.fetch_or(READ, Ordering::Relaxed);
            if word & STOPPED == 0 {
                return Some(word & !FLAGS);
            }
        }
        self.start()
    }

    #[cold]
    fn start(&'static self) -> Option<u64> {
        let now = saturating_nanos(self.epoch().elapsed());
        if now < self.no_start_before.load(Ordering::Relaxed) {
            return None;
        }
        let mut running = self.running.lock();
        if !*running {
            let started = std::thread::Builder::new()
                .name("ttlcache-ticker".into())
                .spawn(|| self.run());
            if started.is_err() {
                let retry = now.saturating_add(saturating_nanos(RETRY_SPAWN));
                self.no_start_before.store(retry, Ordering::Relaxed);
                return None;
            }
            *running = true;
        }
        Some(self.publish(READ))
    }

    /// Publishes the time now, with `flags` (`STOPPED` cleared), keeping a `READ` already set.
    /// Call with `running` locked (rule 1).
    fn publish(&self, flags: u64) -> u64 {
        let nanos = saturating_nanos(self.epoch().elapsed()) & !FLAGS;
        let published = self
            .word
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                Some((word & !FLAGS).max(nanos) | (word & READ) | flags)
            });
        let word = published.unwrap_or_else(|word| word);
        (word & !FLAGS).max(nanos)
    }

    fn run(&self) {
        let mut ticks = 0u32;
        loop {
            std::thread::sleep(PERIOD);
            let mut running = self.running.lock();
            self.publish(0);
            ticks += 1;
            if ticks >= self.check_ticks {
                ticks = 0;
                if self.stop_if_unread() {
                    *running = false;
                    return;
                }
            }
        }
    }

    /// Clears `READ`; if it was clear already, sets `STOPPED` instead and says so (rule 3).
    fn stop_if_unread(&self) -> bool {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let (next, stops) = if word & READ == 0 {
                (word | STOPPED, true)
            } else {
                (word & !READ, false)
            };
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return stops,
                Err(actual) => word = actual,
            }
        }
    }

    #[cfg(test)]
    fn is_running(&self) -> bool {
        *self.running.lock()
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    /// A ticker of its own, checking for readers every 10 periods.
    fn ticker() -> &'static Ticker {
        Box::leak(Box::new(Ticker::new(10)))
    }

    /// Waits (at most 10 s) for `done`.
    fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !done() {
            if Instant::now() > give_up {
                return false;
            }
            std::thread::sleep(PERIOD);
        }
        true
    }

    #[test]
    fn the_ticker_time_advances_and_never_goes_back_nor_ahead() {
        let ticker = ticker();
        let start = ticker.nanos().unwrap();
        let mut last = start;
        assert!(eventually(|| {
            let now = ticker.nanos().unwrap();
            assert!(now >= last, "the ticker went back from {last} to {now}");
            last = now;
            now > start
        }));
        let published = ticker.epoch() + Duration::from_nanos(last);
        assert!(published <= Instant::now());
    }

    #[test]
    fn the_ticker_thread_stops_when_nobody_reads_and_restarts_on_the_next_read() {
        let ticker = ticker();
        let before = ticker.nanos().unwrap();
        assert!(ticker.is_running());
        assert!(
            eventually(|| !ticker.is_running()),
            "the ticker ran on without readers"
        );
        assert_ne!(ticker.word.load(Ordering::Relaxed) & STOPPED, 0);
        // The stale time is not used: the read starts a thread and publishes afresh.
        std::thread::sleep(PERIOD * 2);
        let after = ticker.nanos().unwrap();
        assert!(ticker.is_running());
        assert!(after > before);
    }
}
