//! Which tokio runtime runs the crate's background work (feature `tokio`): a builder records
//! the one it is called in, and a load runs on its caller's runtime, or outside one, on the
//! one recorded. Decided here for every front door (`loading/`, `lazy/`).

use tokio::runtime::Handle;

use crate::error::BuildError;

/// Whether a setting needs the runtime's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    Needed,
    NotNeeded,
}

/// The tokio runtime `setting` runs its work on: the one the builder is called in.
pub(crate) fn built_in(setting: &'static str, timer: Timer) -> Result<Handle, BuildError> {
    let runtime = Handle::try_current().map_err(|_| BuildError::NoTokioRuntime { setting })?;
    if timer == Timer::Needed && !crate::clock::tokio_timer_enabled() {
        return Err(BuildError::NoTokioTimer { setting });
    }
    Ok(runtime)
}

/// The runtime a load starting now runs on: the caller's, or outside one, `built_in`.
pub(crate) fn for_load(built_in: Option<&Handle>) -> Option<Handle> {
    Handle::try_current().ok().or_else(|| built_in.cloned())
}
