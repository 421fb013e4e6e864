//! The leader of a load: it runs the load, stores the outcome through its [`Landing`] and
//! settles the flight, exactly once, whatever happens to it (rules 2 to 4 and 6 of
//! `flight/mod.rs`).

use std::{
    future::{Future, poll_fn},
    panic::{AssertUnwindSafe, catch_unwind},
    pin::pin,
    task::Poll,
};

use super::{Flight, LEADING, Outcome, SharedError};
use crate::sync;

/// Where a leader's load lands: the store its value goes into, and the pending load it ends.
pub(crate) trait Landing<V> {
    /// What storing left to do once the flight has settled: for a cache, reporting what the
    /// store evicted, after the waiters are released.
    type Receipt<'a>
    where
        Self: 'a;

    /// Ends `flight`'s pending load and, unless a write detached it (rule 5), stores a
    /// loaded value.
    fn store<'a>(
        &'a self,
        flight: &sync::Arc<Flight<V>>,
        outcome: &Outcome<V>,
    ) -> Self::Receipt<'a>;

    /// Ends `flight`'s pending load without storing anything.
    fn abandon(&self, flight: &sync::Arc<Flight<V>>);

    /// A value that a failed load answers with instead of its error, taken from what
    /// [`store`](Self::store) found under its lock (a cache's entry kept past its time to
    /// live, `stale_if_error`); never stored by the landing. None by default.
    fn kept(receipt: &mut Self::Receipt<'_>) -> Option<V> {
        let _ = receipt;
        None
    }
}

/// What leads a flight: a [`Leader`], or a front door's wrapper of one. [`join_or_lead`]
/// waits on its flight once the door has run or spawned it.
///
/// [`join_or_lead`]: super::join_or_lead
pub(crate) trait Leads<V> {
    /// The flight this leader settles, for others to wait on.
    fn flight(&self) -> &sync::Arc<Flight<V>>;
}

impl<L: Landing<V>, V> Leads<V> for Leader<L, V> {
    fn flight(&self) -> &sync::Arc<Flight<V>> {
        &self.flight
    }
}

/// The leader of a load: settles its flight exactly once (rule 2), storing the outcome
/// through its [`Landing`] first (rule 3), or abandons the flight when dropped unsettled: a
/// panic in the load, a cancelled future, a spawned load that never ran (rule 4).
pub(crate) struct Leader<L: Landing<V>, V> {
    /// Stores the outcome before the flight settles (rule 3), or ends the pending load
    /// before an abandoned flight settles (rule 4).
    landing: L,
    flight: sync::Arc<Flight<V>>,
    /// Whether `run` settled the flight; if not, dropping the leader abandons it (rules 2
    /// and 4).
    settled: bool,
}

impl<L: Landing<V>, V> Leader<L, V> {
    pub(crate) fn new(landing: L, flight: sync::Arc<Flight<V>>) -> Self {
        Self {
            landing,
            flight,
            settled: false,
        }
    }

    /// Runs `load` as the leader (rule 6), then stores its outcome and settles the flight.
    pub(crate) async fn run<X>(
        mut self,
        load: impl Future<Output = Result<V, X>>,
    ) -> Result<V, std::sync::Arc<X>>
    where
        V: Clone,
        X: Send + Sync + 'static,
    {
        let result = self.lead(load).await.map_err(std::sync::Arc::new);
        let outcome = match &result {
            Ok(value) => Outcome::Loaded(value.clone()),
            Err(error) => Outcome::Failed(std::sync::Arc::clone(error) as SharedError),
        };
        let mut receipt = self.landing.store(&self.flight, &outcome);
        // A failure answered with a kept value (rule 7): the waiters, and this caller, get it.
        let (outcome, result) = match L::kept(&mut receipt) {
            Some(value) if result.is_err() => (Outcome::Loaded(value.clone()), Ok(value)),
            _ => (outcome, result),
        };
        self.flight.settle(outcome);
        self.settled = true;
        drop(receipt);
        result
    }

    /// Polls `load` with the flight marked as led by whichever thread polls it.
    async fn lead<F: Future>(&self, load: F) -> F::Output {
        leading(&[self.flight.id()], load).await
    }
}

/// Polls `load` with each of `flights` marked as led by whichever thread polls it (rule 6):
/// a batch's loader call, which leads the loads of all its keys at once.
#[cfg(feature = "tokio")]
pub(crate) async fn leading_all<V, F: Future>(
    flights: &[sync::Arc<Flight<V>>],
    load: F,
) -> F::Output {
    let ids: Vec<usize> = flights.iter().map(|flight| flight.id()).collect();
    leading(&ids, load).await
}

async fn leading<F: Future>(ids: &[usize], load: F) -> F::Output {
    let mut load = pin!(load);
    poll_fn(|cx| {
        let _scope = LeadingScope::enter(ids);
        load.as_mut().poll(cx)
    })
    .await
}

impl<L: Landing<V>, V> Drop for Leader<L, V> {
    fn drop(&mut self) {
        if !self.settled {
            self.landing.abandon(&self.flight);
            self.flight.settle(Outcome::Abandoned);
        }
    }
}

/// Marks flights as led by this thread until dropped, also when the load unwinds.
struct LeadingScope<'a>(&'a [usize]);

impl<'a> LeadingScope<'a> {
    fn enter(ids: &'a [usize]) -> Self {
        LEADING.with(|leading| leading.borrow_mut().extend_from_slice(ids));
        Self(ids)
    }
}

impl Drop for LeadingScope<'_> {
    fn drop(&mut self) {
        LEADING.with(|leading| {
            let mut leading = leading.borrow_mut();
            for id in self.0.iter().rev() {
                if let Some(at) = leading.iter().rposition(|other| other == id) {
                    leading.remove(at);
                }
            }
        });
    }
}

/// Polls `future` to completion, turning a panic in any poll into `Err` (the panic has been
/// reported by the panic hook, as usual).
pub(crate) async fn catch_panic<F: Future>(future: F) -> Result<F::Output, ()> {
    let mut future = pin!(future);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        },
    )
    .await
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::sync::block_on;

    /// A landing that records what reached it.
    #[derive(Default)]
    struct Log {
        stored: Cell<Option<Result<u8, ()>>>,
        abandoned: Cell<bool>,
    }

    impl Landing<u8> for &Log {
        type Receipt<'a>
            = ()
        where
            Self: 'a;

        fn store(&self, _: &sync::Arc<Flight<u8>>, outcome: &Outcome<u8>) {
            self.stored.set(Some(match outcome {
                Outcome::Loaded(value) => Ok(*value),
                _ => Err(()),
            }));
        }

        fn abandon(&self, _: &sync::Arc<Flight<u8>>) {
            self.abandoned.set(true);
        }
    }

    #[test]
    fn a_flight_is_led_by_this_thread_only_while_its_load_is_polled() {
        let log = Log::default();
        let flight = Flight::<u8>::new();
        let leader = Leader::new(&log, sync::Arc::clone(&flight));
        assert!(!flight.is_led_by_this_thread());
        let inside =
            block_on(leader.run(async { Ok::<_, ()>(u8::from(flight.is_led_by_this_thread())) }));
        assert_eq!(inside.unwrap(), 1);
        assert!(!flight.is_led_by_this_thread());
        assert_eq!(log.stored.get(), Some(Ok(1)));
        assert!(matches!(
            *block_on(Flight::wait(&flight)),
            Outcome::Loaded(1)
        ));
    }

    #[test]
    fn a_leader_dropped_before_it_lands_abandons_its_flight() {
        let log = Log::default();
        let flight = Flight::<u8>::new();
        drop(Leader::new(&log, sync::Arc::clone(&flight)));
        assert!(log.abandoned.get());
        assert_eq!(log.stored.get(), None);
        assert!(matches!(
            *block_on(Flight::wait(&flight)),
            Outcome::Abandoned
        ));
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
}
