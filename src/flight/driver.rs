//! The one loop every front door runs: find a value, join a load or lead one, and wait (rules
//! 1, 4 and 6 of `flight/mod.rs`).

use std::future::Future;

use super::{Flight, Leads, Outcome};
use crate::sync;

const RECURSIVE_LOAD: &str = "ttlcache: a load asked for its own key (a `get_or_*` call from its \
     `init`, a `LoadingCache` loader or an `AsyncLazy` initializer); it would wait for itself \
     forever";

/// What a caller finds under its front door's lock.
pub(crate) enum Found<V, L> {
    /// A live value.
    Value(V),
    /// A load in progress, to wait for.
    Join(sync::Arc<Flight<V>>),
    /// Nothing: the caller leads a new load, with this leader.
    Lead(L),
}

/// Where a front door may run a load the caller leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// Where the door chooses: a door whose loads outlive their callers spawns a task.
    Anywhere,
    /// In the call: a task spawned for an earlier attempt was dropped unrun (its runtime shut
    /// down), and another would fare no better.
    Here,
}

/// How a front door launched a load the caller leads.
pub(crate) enum Launched<F> {
    /// In the call: [`join_or_lead`] awaits the load and returns its result.
    Here(F),
    /// In a task: the caller waits on the load's flight like any other waiter.
    Spawned,
}

/// How a call was answered.
pub(crate) enum Answer<V, X> {
    /// By a live value: a hit.
    Found(V),
    /// By the load the caller led in the call.
    Led(Result<V, std::sync::Arc<X>>),
    /// By a load the caller waited for (one it spawned, or another caller's).
    Joined(Result<V, std::sync::Arc<X>>),
}

impl<V, X> Answer<V, X> {
    pub(crate) fn into_result(self) -> Result<V, std::sync::Arc<X>> {
        match self {
            Answer::Found(value) => Ok(value),
            Answer::Led(result) | Answer::Joined(result) => result,
        }
    }
}

/// Finds a value or a load to join with `find` (which holds the front door's lock while it
/// looks, and registers a new load when it finds neither), leads a new load with `lead`, and
/// waits: the single-flight loop of every front door.
///
/// A failure reaches the waiters as an `Arc<X>`; a waiter that cannot receive it (its error
/// type is another) starts over, as do the waiters of an abandoned load (rule 4).
///
/// # Panics
///
/// If the load to join is led by this thread (rule 6).
pub(crate) async fn join_or_lead<V, L, X, F>(
    mut find: impl FnMut() -> Found<V, L>,
    mut lead: impl FnMut(L, Run) -> Launched<F>,
) -> Answer<V, X>
where
    V: Clone,
    L: Leads<V>,
    X: Send + Sync + 'static,
    F: Future<Output = Result<V, std::sync::Arc<X>>>,
{
    let mut run = Run::Anywhere;
    loop {
        let (flight, spawned) = match find() {
            Found::Value(value) => return Answer::Found(value),
            Found::Join(flight) => {
                assert!(!flight.is_led_by_this_thread(), "{RECURSIVE_LOAD}");
                (flight, false)
            }
            Found::Lead(leader) => {
                let flight = sync::Arc::clone(leader.flight());
                match lead(leader, run) {
                    Launched::Here(load) => return Answer::Led(load.await),
                    Launched::Spawned => (flight, true),
                }
            }
        };
        match &*Flight::wait(&flight).await {
            Outcome::Loaded(value) => return Answer::Joined(Ok(value.clone())),
            Outcome::Failed(error) => {
                if let Ok(error) = std::sync::Arc::clone(error).downcast::<X>() {
                    return Answer::Joined(Err(error));
                }
            }
            Outcome::Abandoned if spawned => run = Run::Here,
            Outcome::Abandoned => {}
        }
    }
}
