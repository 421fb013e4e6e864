//! Helpers shared by the integration tests of the loading front doors.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// Counts calls of a loader or initializer; clones share the count.
#[derive(Clone, Default)]
pub(crate) struct Calls(Arc<AtomicUsize>);

impl Calls {
    /// How many calls were recorded.
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Records a call; returns how many came before it.
    pub(crate) fn record(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}
