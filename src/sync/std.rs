//! The facade for builds: std's atomics and `Arc`, parking_lot's locks, arc-swap.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    future::Future,
    sync::{OnceLock, atomic::AtomicUsize},
    task::{Context, Poll, Wake, Waker},
};

// Not every build uses every primitive.
#[allow(unused_imports)]
pub(crate) use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU8, AtomicU64},
    },
    thread_local,
};

/// A mutual-exclusion lock that never reports poisoning.
pub(crate) type Mutex<T> = parking_lot::Mutex<T>;
/// A reader-writer lock that never reports poisoning.
pub(crate) type RwLock<T> = parking_lot::RwLock<T>;

/// Drives `future` to completion on the calling thread, parking it while the future is pending.
///
/// This is how the synchronous front doors (`get_or_insert_with`) share the asynchronous
/// single-flight engine: a waiter's future registers a waker that unparks this thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
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

/// A number no other live thread holds: the smallest free one when the thread first asks,
/// handed back when it exits, so that threads which come and go (scoped threads, a blocking
/// pool) reuse small numbers instead of counting up forever. `usize::MAX` while the thread is
/// being torn down (its number already handed back): a thread with that number owns nothing
/// by it.
#[inline]
pub(crate) fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static FREE: parking_lot::Mutex<BinaryHeap<Reverse<usize>>> =
        parking_lot::Mutex::new(BinaryHeap::new());

    struct Claimed(usize);
    impl Drop for Claimed {
        fn drop(&mut self) {
            FREE.lock().push(Reverse(self.0));
        }
    }

    thread_local! {
        static INDEX: Claimed = Claimed(match FREE.lock().pop() {
            Some(Reverse(index)) => index,
            None => NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        });
    }
    INDEX.try_with(|claimed| claimed.0).unwrap_or(usize::MAX)
}

/// How many threads can run at once here, read once per process.
pub(crate) fn parallelism() -> usize {
    static PARALLELISM: OnceLock<usize> = OnceLock::new();
    *PARALLELISM.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// A shared `Option<Arc<T>>` that readers load without a lock (arc-swap), and writers
/// replace whole.
pub(crate) struct ArcCell<T>(arc_swap::ArcSwapOption<T>);

impl<T> ArcCell<T> {
    pub(crate) fn empty() -> Self {
        Self(arc_swap::ArcSwapOption::empty())
    }

    /// Runs `read` on the current value. Takes no lock and no reference count: `read` must
    /// not block.
    #[inline]
    pub(crate) fn read<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        read(self.0.load().as_deref())
    }

    /// Replaces the value; returns the old one, for the caller to drop where it chooses.
    pub(crate) fn swap(&self, value: Option<Arc<T>>) -> Option<Arc<T>> {
        self.0.swap(value)
    }
}

/// A weak reference to an `Arc<T>`, set at most once, read with one acquire load
/// (`OnceLock`): it does not keep the value alive.
pub(crate) struct WeakOnce<T>(std::sync::OnceLock<Weak<T>>);

impl<T> WeakOnce<T> {
    pub(crate) const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }

    /// The value, if it was set and is still alive.
    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Arc<T>> {
        self.0.get().and_then(Weak::upgrade)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// Sets it to `value` unless it is set already.
    pub(crate) fn set(&self, value: &Arc<T>) {
        let _ = self.0.set(Arc::downgrade(value));
    }
}

impl<T> std::fmt::Debug for ArcCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcCell").finish_non_exhaustive()
    }
}
