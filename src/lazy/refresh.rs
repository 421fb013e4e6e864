//! The `refresh_every` task of an [`AsyncLazy`] (rule 6 of `lazy/mod.rs`): it reloads on a
//! timer, backs off after failures, and holds only a weak reference between ticks.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use super::{AsyncLazy, LazyInner};
use crate::jitter::Jitter;

/// The `refresh_every` task: reloads every `period`, sooner after a failure (rule 6).
pub(super) async fn refresh_periodically<T, E>(inner: Weak<LazyInner<T, E>>, period: Duration)
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    let mut jitter = Jitter::seeded();
    let mut failures = 0u32;
    loop {
        let delay = match failures {
            0 => period,
            failures => jitter.spread(retry_delay(period, failures)),
        };
        tokio::time::sleep(delay).await;
        failures = match tick(&inner).await {
            None => return,
            Some(true) => 0,
            Some(false) => failures.saturating_add(1),
        };
    }
}

impl<T, E> AsyncLazy<T, E> {
    /// A weak reference to the shared state: what the `refresh_every` task holds.
    pub(crate) fn downgrade(&self) -> Weak<LazyInner<T, E>> {
        Arc::downgrade(&self.inner)
    }
}

/// One tick of the `refresh_every` task: reloads, if any handle is left. Returns whether the
/// reload succeeded, or `None` if the lazy is gone. The strong reference it takes lives only
/// as long as the reload.
pub(crate) async fn tick<T, E>(inner: &Weak<LazyInner<T, E>>) -> Option<bool>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    let lazy = AsyncLazy {
        inner: inner.upgrade()?,
    };
    Some(lazy.refresh().await.is_ok())
}

/// How long to wait after `failures` failures in a row: a sixteenth of the period, doubled
/// with each further failure, up to the period.
fn retry_delay(period: Duration, failures: u32) -> Duration {
    let first = (period / 16).max(Duration::from_millis(1));
    first
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(period)
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_sixteenth_of_the_period_up_to_the_period() {
        let period = Duration::from_secs(64);
        let delays: Vec<u64> = (1..=7).map(|n| retry_delay(period, n).as_secs()).collect();
        assert_eq!(delays, [4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(retry_delay(period, u32::MAX), period);
    }
}
