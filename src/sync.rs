//! The sync facade: the only module that names parking_lot, std's atomics or loom.
//!
//! Under `--cfg ttlcache_loom` every item here is loom's, so the models in `loom-tests/`
//! check the crate's real code rather than a copy of it.
//!
//! Rules:
//! 1. Locks never report poisoning. The crate's own code does not panic while it holds a lock;
//!    the user code that runs under one (`Hash`, `Eq` and `Clone` of keys and values,
//!    `Clock::now`, the weigher, `retain`'s predicate) can unwind only from points where the
//!    shard is consistent, so a poisoned lock carries no information and is taken anyway.
//! 2. Everything that waits, waits through [`block_on`] or a lock from here, so loom sees it.

#[cfg(not(ttlcache_loom))]
pub(crate) use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    thread_local,
};

#[cfg(ttlcache_loom)]
pub(crate) use loom::{
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    thread_local,
};

use std::future::Future;

/// A mutual-exclusion lock that never reports poisoning.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(ttlcache_loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(ttlcache_loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(ttlcache_loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(ttlcache_loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(ttlcache_loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(ttlcache_loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(ttlcache_loom))]
        return self.inner.lock();
        #[cfg(ttlcache_loom)]
        return self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// A reader-writer lock that never reports poisoning.
#[derive(Debug, Default)]
pub(crate) struct RwLock<T> {
    #[cfg(not(ttlcache_loom))]
    inner: parking_lot::RwLock<T>,
    #[cfg(ttlcache_loom)]
    inner: loom::sync::RwLock<T>,
}

#[cfg(not(ttlcache_loom))]
pub(crate) type ReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
#[cfg(not(ttlcache_loom))]
pub(crate) type WriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;
#[cfg(ttlcache_loom)]
pub(crate) type ReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
#[cfg(ttlcache_loom)]
pub(crate) type WriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(ttlcache_loom))]
            inner: parking_lot::RwLock::new(value),
            #[cfg(ttlcache_loom)]
            inner: loom::sync::RwLock::new(value),
        }
    }

    #[inline]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        #[cfg(not(ttlcache_loom))]
        return self.inner.read();
        #[cfg(ttlcache_loom)]
        return self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }

    #[inline]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        #[cfg(not(ttlcache_loom))]
        return self.inner.write();
        #[cfg(ttlcache_loom)]
        return self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// Drives `future` to completion on the calling thread, parking it while the future is pending.
///
/// This is how the synchronous front doors (`get_or_insert_with`) share the asynchronous
/// single-flight engine: a waiter's future registers a waker that unparks this thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    #[cfg(ttlcache_loom)]
    return loom::future::block_on(future);

    #[cfg(not(ttlcache_loom))]
    {
        use std::task::{Context, Poll, Wake, Waker};

        struct Unparker(std::thread::Thread);
        impl Wake for Unparker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                self.0.unpark();
            }
        }

        let mut future = std::pin::pin!(future);
        let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            // An unpark that lands between this poll and `park` leaves the thread's token set,
            // so `park` returns at once: no wake-up is lost.
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }
}

/// A number no other live thread holds: the smallest free one when the thread first asks,
/// handed back when it exits, so that threads which come and go (scoped threads, a blocking
/// pool) reuse small numbers instead of counting up forever. `usize::MAX` while the thread is
/// being torn down (its number already handed back). Under loom, 0 for every thread: callers
/// must not rely on exclusivity there.
#[inline]
pub(crate) fn thread_index() -> usize {
    #[cfg(ttlcache_loom)]
    return 0;

    #[cfg(not(ttlcache_loom))]
    {
        use std::{cmp::Reverse, collections::BinaryHeap, sync::atomic::AtomicUsize};

        static NEXT: AtomicUsize = AtomicUsize::new(0);
        static FREE: parking_lot::Mutex<BinaryHeap<Reverse<usize>>> =
            parking_lot::Mutex::new(BinaryHeap::new());

        struct Claimed(usize);
        impl Drop for Claimed {
            fn drop(&mut self) {
                FREE.lock().push(Reverse(self.0));
            }
        }

        std::thread_local! {
            static INDEX: Claimed = Claimed(match FREE.lock().pop() {
                Some(Reverse(index)) => index,
                None => NEXT.fetch_add(1, Ordering::Relaxed),
            });
        }
        INDEX.try_with(|claimed| claimed.0).unwrap_or(usize::MAX)
    }
}

/// How many threads can run at once here, read once per process; 1 under loom.
pub(crate) fn parallelism() -> usize {
    #[cfg(ttlcache_loom)]
    return 1;

    #[cfg(not(ttlcache_loom))]
    {
        static PARALLELISM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *PARALLELISM.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
    }
}

/// A shared `Option<Arc<T>>` that readers load without a lock (arc-swap), and writers
/// replace whole. Under loom, a mutex stands in for arc-swap, whose own correctness is not
/// this crate's to model.
pub(crate) struct ArcCell<T> {
    #[cfg(not(ttlcache_loom))]
    inner: arc_swap::ArcSwapOption<T>,
    #[cfg(ttlcache_loom)]
    inner: loom::sync::Mutex<Option<std::sync::Arc<T>>>,
}

impl<T> ArcCell<T> {
    pub(crate) fn empty() -> Self {
        Self {
            #[cfg(not(ttlcache_loom))]
            inner: arc_swap::ArcSwapOption::empty(),
            #[cfg(ttlcache_loom)]
            inner: loom::sync::Mutex::new(None),
        }
    }

    /// Runs `read` on the current value. Takes no lock and no reference count: `read` must
    /// not block.
    #[inline]
    pub(crate) fn read<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        #[cfg(not(ttlcache_loom))]
        return read(self.inner.load().as_deref());
        #[cfg(ttlcache_loom)]
        return read(
            self.inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_deref(),
        );
    }

    /// Replaces the value; returns the old one, for the caller to drop where it chooses.
    pub(crate) fn swap(&self, value: Option<std::sync::Arc<T>>) -> Option<std::sync::Arc<T>> {
        #[cfg(not(ttlcache_loom))]
        return self.inner.swap(value);
        #[cfg(ttlcache_loom)]
        return std::mem::replace(
            &mut *self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            value,
        );
    }
}

impl<T> std::fmt::Debug for ArcCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcCell").finish_non_exhaustive()
    }
}
