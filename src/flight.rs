//! Single flight: one load per key, however many callers ask for it at once.
//!
//! A shard keeps its pending loads in a [`Loads`] table, under the same lock as its entries.
//! The caller that finds neither a live entry nor a pending load for its key starts one and
//! becomes its leader; every other caller joins the load's [`Flight`] and waits for it to
//! settle. Synchronous callers wait through [`block_on`](crate::sync::block_on) on the same
//! futures, so there is one engine for both.
//!
//! Rules:
//! 1. A key has at most one pending load in its shard. The leader runs `init` with no lock
//!    held; other keys never wait on it.
//! 2. A flight settles exactly once: loaded, failed or abandoned. Settling wakes every waiter.
//! 3. A leader that succeeds removes its pending load and stores the value in one critical
//!    section, then settles. A caller that arrives later finds the value, or (if it was
//!    already evicted) starts a new load: never a pending load that will not settle.
//! 4. A leader that fails, panics or is dropped (its future cancelled) removes its pending
//!    load, then settles the flight as failed or abandoned. Waiters of an abandoned flight, and
//!    waiters that cannot receive the error (a different error type), start over: the first
//!    to reach the shard lock leads the next attempt, the others join it.
//! 5. A write to a key (insert, remove, clear) detaches its pending load: the leader's value
//!    still reaches that load's waiters but is not stored, and new callers start afresh.
//! 6. While a thread polls a leader's `init`, that flight is marked as led by the thread. A
//!    caller on that thread that would wait on it (a recursive load of the same key) panics
//!    instead of waiting for itself forever.

use std::{
    any::Any,
    cell::RefCell,
    future::{Future, poll_fn},
    hash::{BuildHasher, Hash},
    pin::{Pin, pin},
    task::{Context, Poll, Waker},
};

use hashbrown::HashTable;

use crate::sync::{Arc, Mutex, thread_local};

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
    state: Mutex<State<V>>,
}

enum State<V> {
    Running {
        waiters: Vec<(u64, Waker)>,
        next_waiter: u64,
    },
    Settled(Arc<Outcome<V>>),
}

impl<V> Flight<V> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::Running {
                waiters: Vec::new(),
                next_waiter: 0,
            }),
        })
    }

    /// Ends the flight and wakes its waiters (outside the lock). Only the first call counts.
    pub(crate) fn settle(&self, outcome: Outcome<V>) {
        let waiters = {
            let mut state = self.state.lock();
            match &mut *state {
                State::Settled(_) => return,
                State::Running { waiters, .. } => {
                    let waiters = std::mem::take(waiters);
                    *state = State::Settled(Arc::new(outcome));
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
    pub(crate) fn wait(flight: &Arc<Self>) -> Wait<V> {
        Wait {
            flight: Arc::clone(flight),
            waiter: None,
        }
    }

    /// Whether this thread is polling this flight's `init` right now (rule 6).
    pub(crate) fn is_led_by_this_thread(&self) -> bool {
        let id = self.id();
        LEADING.with(|leading| leading.borrow().contains(&id))
    }
}

/// Waits for a flight to settle. Dropping it (a cancelled waiter) unregisters its waker.
pub(crate) struct Wait<V> {
    flight: Arc<Flight<V>>,
    waiter: Option<u64>,
}

impl<V> Future for Wait<V> {
    type Output = Arc<Outcome<V>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.flight.state.lock();
        match &mut *state {
            State::Settled(outcome) => {
                this.waiter = None;
                Poll::Ready(Arc::clone(outcome))
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
    /// The flights whose `init` this thread is polling, innermost last.
    // loom's `thread_local!` takes no `const` initializer.
    #[allow(clippy::missing_const_for_thread_local)]
    static LEADING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

impl<V> Flight<V> {
    /// The flight's address: unique while it is alive, which a leader keeps it.
    fn id(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }
}

/// Marks the flight as led by this thread until dropped, also when `init` unwinds.
struct LeadingScope(usize);

impl LeadingScope {
    fn enter(id: usize) -> Self {
        LEADING.with(|leading| leading.borrow_mut().push(id));
        Self(id)
    }
}

impl Drop for LeadingScope {
    fn drop(&mut self) {
        LEADING.with(|leading| {
            let mut leading = leading.borrow_mut();
            if let Some(at) = leading.iter().rposition(|&id| id == self.0) {
                leading.remove(at);
            }
        });
    }
}

/// Runs a leader's `init`, with the flight marked as led by whichever thread polls it.
pub(crate) async fn lead<V, F: Future>(flight: &Arc<Flight<V>>, init: F) -> F::Output {
    let id = flight.id();
    let mut init = pin!(init);
    poll_fn(|cx| {
        let _scope = LeadingScope::enter(id);
        init.as_mut().poll(cx)
    })
    .await
}

/// Where a leader's load lands: the store its value goes into, and the pending load it ends.
pub(crate) trait Landing<V> {
    /// What storing left to do once the flight has settled: for a cache, reporting what the
    /// store evicted, after the waiters are released.
    type Receipt<'a>
    where
        Self: 'a;

    /// Ends `flight`'s pending load and, unless a write detached it (rule 5), stores a
    /// loaded value.
    fn store<'a>(&'a self, flight: &Arc<Flight<V>>, outcome: &Outcome<V>) -> Self::Receipt<'a>;

    /// Ends `flight`'s pending load without storing anything.
    fn abandon(&self, flight: &Arc<Flight<V>>);
}

/// The leader of a load: settles its flight exactly once (rule 2), storing the outcome
/// through its [`Landing`] first (rule 3), or abandons the flight when dropped unsettled: a
/// panic in `init`, a cancelled future, a spawned load that never ran (rule 4).
pub(crate) struct Leader<L: Landing<V>, V> {
    landing: L,
    flight: Arc<Flight<V>>,
    settled: bool,
}

impl<L: Landing<V>, V> Leader<L, V> {
    pub(crate) fn new(landing: L, flight: Arc<Flight<V>>) -> Self {
        Self {
            landing,
            flight,
            settled: false,
        }
    }

    /// The flight this leader settles, for others to wait on.
    pub(crate) fn flight(&self) -> &Arc<Flight<V>> {
        &self.flight
    }

    /// Stores the outcome (unless a write detached the load), then settles the flight.
    pub(crate) fn land(mut self, outcome: Outcome<V>) {
        let receipt = self.landing.store(&self.flight, &outcome);
        self.flight.settle(outcome);
        self.settled = true;
        drop(receipt);
    }
}

impl<L: Landing<V>, V> Drop for Leader<L, V> {
    fn drop(&mut self) {
        if !self.settled {
            self.landing.abandon(&self.flight);
            self.flight.settle(Outcome::Abandoned);
        }
    }
}

/// Polls `future` to completion, turning a panic in any poll into `Err` (the panic has been
/// reported by the panic hook, as usual).
pub(crate) async fn catch_panic<F: Future>(future: F) -> Result<F::Output, ()> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    })
    .await
}

/// A load in progress for one key: the key lives here until the leader stores its value.
struct PendingLoad<K, V> {
    key: K,
    flight: Arc<Flight<V>>,
}

/// A shard's pending loads. Single-threaded: it lives under the shard's lock.
pub(crate) struct Loads<K, V> {
    table: HashTable<PendingLoad<K, V>>,
}

impl<K, V> Default for Loads<K, V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
        }
    }
}

impl<K: Hash + Eq, V> Loads<K, V> {
    /// The flight of the pending load for `key`, if there is one.
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<&Arc<Flight<V>>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(hash, |pending| pending.key.borrow() == key)
            .map(|pending| &pending.flight)
    }

    /// Starts a load for `key`, which must have none pending.
    pub(crate) fn start(&mut self, hash: u64, key: K, hasher: &impl BuildHasher) -> Arc<Flight<V>> {
        let flight = Flight::new();
        let pending = PendingLoad {
            key,
            flight: Arc::clone(&flight),
        };
        self.table
            .insert_unique(hash, pending, |pending| hasher.hash_one(&pending.key));
        flight
    }

    /// Whether `flight`'s load is still pending (no write detached it).
    #[cfg(feature = "tokio")]
    pub(crate) fn contains(&self, hash: u64, flight: &Arc<Flight<V>>) -> bool {
        self.table
            .find(hash, |pending| Arc::ptr_eq(&pending.flight, flight))
            .is_some()
    }

    /// Ends `flight`'s load, handing back its key, unless a write detached it (rule 5).
    pub(crate) fn finish(&mut self, hash: u64, flight: &Arc<Flight<V>>) -> Option<K> {
        let entry = self
            .table
            .find_entry(hash, |pending| Arc::ptr_eq(&pending.flight, flight))
            .ok()?;
        Some(entry.remove().0.key)
    }

    /// Detaches the pending load of `key`, if any: a write to the key supersedes it.
    pub(crate) fn detach<Q>(&mut self, hash: u64, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.table.is_empty() {
            return;
        }
        if let Ok(entry) = self
            .table
            .find_entry(hash, |pending| pending.key.borrow() == key)
        {
            entry.remove();
        }
    }

    /// Detaches every pending load.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }
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

    #[test]
    fn a_flight_is_led_by_this_thread_only_while_its_init_is_polled() {
        let flight = Flight::<u8>::new();
        assert!(!flight.is_led_by_this_thread());
        let inside = block_on(lead(&flight, async { flight.is_led_by_this_thread() }));
        assert!(inside);
        assert!(!flight.is_led_by_this_thread());
    }

    #[test]
    fn a_panicking_future_is_caught_as_an_error() {
        assert_eq!(block_on(catch_panic(async { 5 })), Ok(5));
        let caught = block_on(catch_panic(async {
            if true {
                panic!("the load fails");
            }
        }));
        assert_eq!(caught, Err(()));
    }

    #[test]
    fn a_write_detaches_the_pending_load_so_the_leader_does_not_store() {
        let hasher = std::hash::RandomState::new();
        let mut loads = Loads::<&str, u8>::default();
        let hash = hasher.hash_one("k");
        let flight = loads.start(hash, "k", &hasher);
        assert!(loads.find(hash, "k").is_some());
        loads.detach(hash, "k");
        assert!(loads.find(hash, "k").is_none());
        assert_eq!(loads.finish(hash, &flight), None);
    }
}
