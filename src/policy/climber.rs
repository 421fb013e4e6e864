//! The hill climber: how much of the capacity the eviction policy gives its window.
//!
//! A large window favours recency (what was asked for lately), a small one frequency (what
//! is asked for often). Which is best depends on the workload, so after each sample of
//! requests the climber compares the hit rate with the previous sample's: if it rose, it moves
//! the window the same way again; if it fell, the other way. Steps shrink while the hit rate
//! holds steady and start over when it jumps, which signals a new workload.
//!
//! One climber serves the whole cache (behind a mutex in `cache/mod.rs`): the right window is a
//! property of the workload, not of a shard, and pooling every shard's requests gives it as
//! many samples as an unsharded cache would have. Each shard applies the current fraction to
//! its own capacity when it next asks.

/// Requests per entry held in one sample of the hit rate.
const SAMPLE_PER_ENTRY: u64 = 5;
/// The smallest sample, for caches that hold few entries yet.
const MIN_SAMPLE: u64 = 5_000;
/// The window's share of the capacity at first.
const FIRST_WINDOW: f64 = 0.01;
/// The first step, and the step after a restart, as a share of the capacity.
const STEP: f64 = 0.0625;
/// How much each step shrinks from the one before.
const STEP_DECAY: f64 = 0.98;
/// A change in hit rate this large means the workload changed: the steps start over.
const RESTART_THRESHOLD: f64 = 0.10;

#[derive(Debug)]
pub(crate) struct Climber {
    /// The cache's hits and misses when the current sample began.
    sample_start: (u64, u64),
    /// The last sample's hit rate; none before the first sample ends.
    previous_hit_rate: Option<f64>,
    /// The next change to the window's share, with its direction.
    step: f64,
    window: f64,
}

impl Climber {
    pub(crate) fn new() -> Self {
        Self {
            sample_start: (0, 0),
            previous_hit_rate: None,
            // The window starts at its smallest, so the first move is to shrink it: the
            // climber turns round at once unless that keeps the hit rate.
            step: -STEP,
            window: FIRST_WINDOW,
        }
    }

    /// Given the cache's hits and misses so far and about how many entries it holds, ends a
    /// sample if enough requests came since the last; returns the window's share.
    pub(crate) fn observe(&mut self, hits: u64, misses: u64, entries: u64) -> f64 {
        let (start_hits, start_misses) = self.sample_start;
        let sample_hits = hits.saturating_sub(start_hits);
        let requests = sample_hits + misses.saturating_sub(start_misses);
        if requests < (SAMPLE_PER_ENTRY * entries).max(MIN_SAMPLE) {
            return self.window;
        }
        self.sample_start = (hits, misses);
        let hit_rate = sample_hits as f64 / requests as f64;
        // The first sample only sets the mark the next is compared with.
        let Some(previous) = self.previous_hit_rate.replace(hit_rate) else {
            return self.window;
        };
        let change = hit_rate - previous;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP * amount.signum()
        } else {
            amount * STEP_DECAY
        };
        self.window = (self.window + amount).clamp(0.0, 1.0);
        self.window
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    /// Feeds the climber samples whose hit rate `rate_at(window)` depends on the window.
    fn climb(rate_at: impl Fn(f64) -> f64, samples: u32) -> f64 {
        let mut climber = Climber::new();
        let (mut hits, mut misses) = (0u64, 0u64);
        let mut window = FIRST_WINDOW;
        for _ in 0..samples {
            let rate = rate_at(window);
            hits += (rate * 10_000.0) as u64;
            misses += ((1.0 - rate) * 10_000.0) as u64;
            window = climber.observe(hits, misses, 100);
        }
        window
    }

    #[test]
    fn the_window_grows_when_recency_pays() {
        // The hit rate peaks with 60% of the capacity in the window.
        let window = climb(|w| 0.8 - (w - 0.6).abs() * 0.3, 200);
        assert!((0.45..=0.75).contains(&window), "settled at {window:.2}");
    }

    #[test]
    fn the_window_stays_small_when_frequency_pays() {
        let window = climb(|w| 0.5 - w * 0.3, 200);
        assert!(window <= 0.1, "settled at {window:.2}");
    }

    #[test]
    fn nothing_moves_until_a_sample_is_complete() {
        let mut climber = Climber::new();
        assert_eq!(climber.observe(10, 10, 1_000), FIRST_WINDOW);
        assert_eq!(climber.observe(500, 500, 1_000), FIRST_WINDOW);
    }
}
