//! Jitter: delays spread by up to a quarter either way, so that many clients failing together
//! (lazies refreshing, replicas reconnecting) do not retry together.

use std::time::Duration;

/// A small generator of spreads (xorshift64), seeded from the clock.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        Self(u64::from(nanos) | 1)
    }

    /// `delay` times a factor from 0.75 to 1.25; a delay too long to spread stays as it is.
    pub(crate) fn spread(&mut self, delay: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let factor = 0.75 + (self.0 % 1_000) as f64 / 2_000.0;
        Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(delay)
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn jitter_of_the_longest_delay_does_not_overflow() {
        let mut jitter = Jitter(7);
        for _ in 0..1_000 {
            let spread = jitter.spread(Duration::MAX);
            assert!(spread >= Duration::MAX.mul_f64(0.74));
        }
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let mut jitter = Jitter(7);
        for _ in 0..1_000 {
            let spread = jitter.spread(Duration::from_secs(100)).as_secs_f64();
            assert!((75.0..=125.0).contains(&spread), "{spread}");
        }
    }
}
