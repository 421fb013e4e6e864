//! Waits between reconnection attempts.

use std::time::Duration;

use crate::jitter::Jitter;

/// The first wait before a reconnection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Waits between reconnection attempts: doubling from [`FIRST_BACKOFF`], capped, each spread
/// by up to a quarter either way so that replicas cut off together do not return together.
pub(super) struct Backoff {
    next: Duration,
    jitter: Jitter,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Self {
            next: FIRST_BACKOFF,
            jitter: Jitter::seeded(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }

    pub(super) fn next(&mut self, cap: Duration) -> Duration {
        let delay = self.next.min(cap);
        self.next = self.next.saturating_mul(2).min(cap);
        self.jitter.spread(delay)
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_stays_within_a_quarter() {
        let mut backoff = Backoff::new();
        let cap = Duration::from_millis(400);
        let delays: Vec<f64> = (0..8)
            .map(|_| backoff.next(cap).as_secs_f64() * 1_000.0)
            .collect();
        for (delay, base) in delays.iter().zip([50.0, 100.0, 200.0, 400.0, 400.0, 400.0]) {
            assert!(
                (base * 0.75..=base * 1.25).contains(delay),
                "{delay} ms for {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next(cap) <= Duration::from_micros(62_500));
    }
}
