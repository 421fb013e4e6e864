//! Trust: until when a [`Coherence`](super::Coherence)'s members may serve what they hold.
//! The lease is enforced here, where values are read, and not only by the supervisor: trust
//! is a deadline that passes by itself, so a supervisor that is slow, blocked or not run at
//! all (a slow listener, a backlog of pushes, a starved machine) can delay a renewal but
//! never extend trust.
//!
//! Rules:
//! 1. Trust is granted only by the supervisor, and only as "until `lease` after an instant
//!    at which every invalidation sent before it had been applied here": the sending of
//!    `CLIENT TRACKING`, once the probe's push is seen (nothing sent before tracking came on is
//!    ours to apply: the flush that follows covers it), or a ping once every push received
//!    before its answer has been handed to the members (`supervisor.rs`, rule 3).
//! 2. It is revoked (set to zero) before every flush that follows a fault.
//! 3. It is read with the process's ticker (`clock/ticker.rs`), not the system's clock: on a
//!    coherent `Bypass` cache's hit, the deadline's load, the ticker's and a compare (about 25
//!    instructions in all, BENCHMARKS.md). The ticker never runs ahead of the system's clock, so it
//!    can lag it by about its period (a millisecond) and no more than that thread's scheduling:
//!    trust can outlast its deadline by that much, never by what a task of any runtime does.
//! 4. A lease too long for an instant to hold is "never expires" (saturates), not a panic.

use std::time::{Duration, Instant};

use crate::{
    clock::{Tick, TimeSource, Timeline},
    sync::{AtomicU64, Ordering},
};

/// A deadline that passes by itself: members serve before it, not after.
pub(crate) struct Trust {
    /// The raw tick, on `timeline`, before which members may serve; zero, which every time
    /// has reached, while revoked. Raised only by [`grant`](Self::grant) (rule 1).
    until: AtomicU64,
    timeline: Timeline,
}

impl Trust {
    /// Trust not yet granted.
    pub(crate) fn revoked() -> Self {
        Self {
            until: AtomicU64::new(0),
            timeline: Timeline::new(TimeSource::System),
        }
    }

    /// Whether members may serve now.
    #[inline]
    pub(crate) fn holds(&self) -> bool {
        let until = Tick::from_raw(self.until.load(Ordering::Acquire));
        !until.has_passed(self.timeline.now())
    }

    /// Trusts until `lease` after `evidence` (rule 1). A grant older than the one in force
    /// is ignored: trust moves forward only.
    pub(crate) fn grant(&self, evidence: Instant, lease: Duration) {
        let until = self.timeline.tick_at(evidence).after(lease).to_raw();
        self.until.fetch_max(until, Ordering::AcqRel);
    }

    /// Withdraws trust at once (rule 2).
    pub(crate) fn revoke(&self) {
        self.until.store(0, Ordering::Release);
    }

    /// When trust ends, as the supervisor's timer needs it: `None` for never (rule 4), and
    /// a past instant while revoked.
    pub(crate) fn ends(&self) -> Option<Instant> {
        let until = Tick::from_raw(self.until.load(Ordering::Acquire));
        (!until.is_never()).then(|| self.timeline.instant(until))
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn trust_passes_by_itself_and_never_moves_back() {
        let trust = Trust::revoked();
        assert!(!trust.holds());
        let now = Instant::now();
        trust.grant(now, Duration::from_secs(3600));
        assert!(trust.holds());
        // An older grant does not shorten it.
        trust.grant(now, Duration::from_millis(1));
        assert!(trust.holds());
        trust.revoke();
        assert!(!trust.holds());
        trust.grant(Instant::now(), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!trust.holds(), "a lease passes by itself");
    }

    #[test]
    fn a_lease_too_long_for_an_instant_is_never_ending_not_a_panic() {
        let trust = Trust::revoked();
        trust.grant(Instant::now(), Duration::MAX);
        assert!(trust.holds());
        assert_eq!(trust.ends(), None);
    }
}
