//! The facade under `--cfg ttlcache_loom`: loom's atomics, `Arc` and locks, so that the models
//! explore the crate's real code.

use std::{future::Future, sync::PoisonError};

#[allow(unused_imports)]
pub(crate) use loom::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64},
    },
    thread_local,
};

/// A mutual-exclusion lock that never reports poisoning.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader-writer lock that never reports poisoning.
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drives `future` to completion, as loom schedules the threads.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    loom::future::block_on(future)
}

/// No thread has a number of its own under loom: `usize::MAX` for every thread, as for a
/// thread being torn down, so that none relies on owning what the number would give it.
pub(crate) fn thread_index() -> usize {
    usize::MAX
}

/// One: the models keep to one shard.
pub(crate) fn parallelism() -> usize {
    1
}

/// A mutex stands in for arc-swap, whose own correctness is not this crate's to model.
pub(crate) struct ArcCell<T>(loom::sync::Mutex<Option<std::sync::Arc<T>>>);

impl<T> ArcCell<T> {
    pub(crate) fn empty() -> Self {
        Self(loom::sync::Mutex::new(None))
    }

    pub(crate) fn read<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        read(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_deref(),
        )
    }

    pub(crate) fn swap(&self, value: Option<std::sync::Arc<T>>) -> Option<std::sync::Arc<T>> {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            value,
        )
    }
}

/// A mutex stands in for `OnceLock`, as for arc-swap.
pub(crate) struct WeakOnce<T>(loom::sync::Mutex<Option<std::sync::Weak<T>>>);

impl<T> WeakOnce<T> {
    pub(crate) fn new() -> Self {
        Self(loom::sync::Mutex::new(None))
    }

    pub(crate) fn upgrade(&self) -> Option<std::sync::Arc<T>> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().and_then(std::sync::Weak::upgrade)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    pub(crate) fn set(&self, value: &std::sync::Arc<T>) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(std::sync::Arc::downgrade(value));
        }
    }
}

impl<T> std::fmt::Debug for ArcCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcCell").finish_non_exhaustive()
    }
}
