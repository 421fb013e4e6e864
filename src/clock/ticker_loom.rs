//! The ticker's stand-in under loom: no thread runs, nothing is published, and a timeline
//! reads the system's time itself.

use std::{sync::OnceLock, time::Instant};

pub(super) static TICKER: Ticker = Ticker {
    epoch: OnceLock::new(),
};

pub(super) struct Ticker {
    epoch: OnceLock<Instant>,
}

impl Ticker {
    pub(super) fn epoch(&self) -> Instant {
        *self.epoch.get_or_init(Instant::now)
    }

    /// Never a published time.
    pub(super) fn nanos(&'static self) -> Option<u64> {
        None
    }
}
