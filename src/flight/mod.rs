//! Single flight: one load per key, however many callers ask for it at once.
//!
//! Words, as every file of the crate uses them:
//! - **flight**: one load in progress, what its waiters wait on ([`Flight`]); it **settles**
//!   once, as loaded, failed or abandoned, and waking every waiter.
//! - **pending load**: a flight registered under its key where the values are (a shard's
//!   [`Loads`], a lazy's slot), so that later callers find it.
//! - **lead**: to run a flight's load. The **leader** ([`Leader`]) is what leads: it runs the
//!   load, lands the outcome and settles the flight. `KeyLeader` (`cache/door.rs`) is a
//!   cache key's leader with its key, `LazyLeader` (`lazy/`) a lazy's. [`Leads`] is what
//!   [`join_or_lead`] asks of either.
//! - **landing**: where a leader's outcome is stored, and its pending load ended
//!   ([`Landing`]): the key's shard, or the lazy's slot.
//! - **front door**: a way callers come in to this engine: `TtlCache::get_or_*`
//!   (`cache/load.rs`), `LoadingCache` (`loading/`, through `cache/door.rs`) and `AsyncLazy`
//!   (`lazy/`). Each calls [`join_or_lead`], and says where a load it leads runs ([`Run`])
//!   and how it was launched ([`Launched`]).
//! - **detach**: what a write does to a key's pending load (rule 5): the load goes on for its
//!   waiters, but its landing finds it gone and stores nothing.
//! - **join**: to wait on a pending load instead of leading one.
//!
//! One engine serves the three front doors (`TtlCache::get_or_*`, `LoadingCache::get`,
//! `AsyncLazy`): each keeps its pending loads where its values are, under the same lock, and
//! calls [`join_or_lead`] with two closures: how to find a value, a load to join or a new load
//! to lead (under that lock), and how to run a load it leads (in the call, or as a task).
//!
//! - `mod.rs` (this file): a load's [`Flight`], what its waiters wait on;
//! - `leader.rs`: the [`Leader`] that runs a load and lands its outcome where it belongs;
//! - `driver.rs`: the loop every front door calls, [`join_or_lead`];
//! - `loads.rs`: a shard's table of pending loads, [`Loads`].
//!
//! Rules:
//! 1. A key has at most one pending load in its shard. The leader runs its load with no lock
//!    held; other keys never wait on it.
//! 2. A flight settles exactly once: loaded, failed or abandoned. Settling wakes every waiter.
//! 3. A leader that succeeds removes its pending load and stores the value in one critical
//!    section, then settles. A caller that arrives later finds the value, or (if it was
//!    already evicted) starts a new load: never a pending load that will not settle.
//! 4. A leader that fails, panics or is dropped (its future cancelled, its task never run)
//!    removes its pending load, then settles the flight as failed or abandoned. Waiters of an
//!    abandoned flight, and waiters that cannot receive the error (a different error type),
//!    start over: the first to reach the lock leads the next attempt, the others join it. A
//!    caller whose own spawned load was abandoned (its runtime shut down) runs the next one
//!    in the call.
//! 5. A write to a key (insert, remove, clear) detaches its pending load: the leader's value
//!    still reaches that load's waiters but is not stored, and new callers start afresh.
//! 6. While a thread polls a leader's load, that flight is marked as led by the thread. A
//!    caller on that thread that would wait on it (a recursive load of the same key) panics
//!    instead of waiting for itself forever.
//! 7. A landing may answer a failed load with a value it keeps (a cache's entry past its time
//!    to live, `stale_if_error`), found while it ends the pending load under its lock: the
//!    flight then settles as loaded with that value, which is not stored anew, and the leader's
//!    caller gets it too.

mod driver;
mod leader;
mod loads;

use std::{
    any::Any,
    cell::RefCell,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

pub(crate) use driver::{Answer, Found, Launched, Run, join_or_lead};
#[cfg(feature = "tokio")]
pub(crate) use leader::leading_all;
pub(crate) use leader::{Landing, Leader, Leads, catch_panic};
pub(crate) use loads::{Began, Loads};

use crate::sync::{self, Mutex, thread_local};

/// An error of any type, shared by the waiters of a failed load.
pub(crate) type SharedError = std::sync::Arc<dyn Any + Send + Sync>;

/// How a load ended.
pub(crate) enum Outcome<V> {
    Loaded(V),
    Failed(SharedError),
    /// The leader panicked or was cancelled: waiters start over.
    Abandoned,
}

/// One load in progress: what its waiters wait on.
pub(crate) struct Flight<V> {
    /// `Running` until the flight settles, then `Settled` for good (rule 2): the first
    /// outcome is the only one, and settling takes every waiter's waker.
    state: Mutex<State<V>>,
}

enum State<V> {
    Running {
        waiters: Vec<(u64, Waker)>,
        next_waiter: u64,
    },
    Settled(sync::Arc<Outcome<V>>),
}

impl<V> Flight<V> {
    pub(crate) fn new() -> sync::Arc<Self> {
        sync::Arc::new(Self {
            state: Mutex::new(State::Running {
                waiters: Vec::new(),
                next_waiter: 0,
            }),
        })
    }

    /// Ends the flight and wakes its waiters (outside the lock). Only the first call counts.
    fn settle(&self, outcome: Outcome<V>) {
        let waiters = {
            let mut state = self.state.lock();
            match &mut *state {
                State::Settled(_) => return,
                State::Running { waiters, .. } => {
                    let waiters = std::mem::take(waiters);
                    *state = State::Settled(sync::Arc::new(outcome));
                    waiters
                }
            }
        };
        // A waker that panics must not keep the others from waking: wake them all, then let
        // the first panic go on.
        let mut first_panic = None;
        for (_, waker) in waiters {
            if let Err(payload) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()))
            {
                first_panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = first_panic {
            std::panic::resume_unwind(payload);
        }
    }

    /// A future that resolves to the outcome once the flight settles.
    fn wait(flight: &sync::Arc<Self>) -> Wait<V> {
        Wait {
            flight: sync::Arc::clone(flight),
            waiter: None,
        }
    }

    /// Whether this thread is polling this flight's load right now (rule 6).
    fn is_led_by_this_thread(&self) -> bool {
        let id = self.id();
        LEADING.with(|leading| leading.borrow().contains(&id))
    }

    /// The flight's address: unique while it is alive, which a leader keeps it.
    fn id(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }
}

/// Waits for a flight to settle. Dropping it (a cancelled waiter) unregisters its waker.
struct Wait<V> {
    flight: sync::Arc<Flight<V>>,
    waiter: Option<u64>,
}

impl<V> Future for Wait<V> {
    type Output = sync::Arc<Outcome<V>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.flight.state.lock();
        match &mut *state {
            State::Settled(outcome) => {
                this.waiter = None;
                Poll::Ready(sync::Arc::clone(outcome))
            }
            State::Running {
                waiters,
                next_waiter,
            } => {
                let registered = this
                    .waiter
                    .and_then(|id| waiters.iter_mut().find(|(waiter, _)| *waiter == id));
                match registered {
                    Some((_, waker)) => waker.clone_from(cx.waker()),
                    None => {
                        let id = *next_waiter;
                        *next_waiter += 1;
                        waiters.push((id, cx.waker().clone()));
                        this.waiter = Some(id);
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<V> Drop for Wait<V> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter {
            if let State::Running { waiters, .. } = &mut *self.flight.state.lock() {
                waiters.retain(|(waiter, _)| *waiter != id);
            }
        }
    }
}

thread_local! {
    /// The flights whose load this thread is polling, innermost last: a caller on this thread
    /// that would join one of them panics instead (rule 6).
    // loom's `thread_local!` takes no `const` initializer.
    #[allow(clippy::missing_const_for_thread_local)]
    static LEADING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;
    use crate::sync::block_on;

    #[test]
    fn waiters_see_the_outcome_of_the_settle_that_came_first() {
        let flight = Flight::new();
        let waiter = Flight::wait(&flight);
        flight.settle(Outcome::Loaded(1));
        flight.settle(Outcome::Loaded(2));
        assert!(matches!(*block_on(waiter), Outcome::Loaded(1)));
        assert!(matches!(
            *block_on(Flight::wait(&flight)),
            Outcome::Loaded(1)
        ));
    }

    #[test]
    fn a_dropped_waiter_leaves_no_waker_behind() {
        let flight = Flight::<u8>::new();
        let mut waiter = Box::pin(Flight::wait(&flight));
        let waker = Waker::noop();
        assert!(
            waiter
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        assert!(
            waiter
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        let registered = |flight: &Flight<u8>| match &*flight.state.lock() {
            State::Running { waiters, .. } => waiters.len(),
            State::Settled(_) => usize::MAX,
        };
        assert_eq!(registered(&flight), 1);
        drop(waiter);
        assert_eq!(registered(&flight), 0);
    }
}
