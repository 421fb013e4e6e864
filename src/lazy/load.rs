//! An [`AsyncLazy`]'s loads: its front door to the single-flight engine, and where a load
//! lands (rules 2 to 5 of `lazy/mod.rs`).

use std::sync::Arc;

use super::{AsyncLazy, Current, LazyInner, Loaded};
use crate::{
    clock::Tick,
    error::LoadError,
    flight::{self, Flight, Found, Landing, Launched, Outcome, Run, catch_panic},
    sync::{self, Ordering},
};

/// The leader of a lazy's load.
pub(crate) type LazyLeader<T, E> = flight::Leader<Arc<LazyInner<T, E>>, Arc<T>>;

/// What a load is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// A value: a current one will do.
    Current,
    /// A new value (`refresh`): a current one does not count.
    Reload,
}

impl<T, E> AsyncLazy<T, E>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Waits for the pending load, or starts one.
    pub(super) async fn load(&self, wanted: Wanted) -> Result<Arc<T>, LoadError<E>> {
        let answer = flight::join_or_lead(
            || self.find(wanted),
            |leader, run| match run {
                Run::Anywhere => match self.spawn(leader) {
                    Ok(()) => Launched::Spawned,
                    Err(leader) => Launched::Here(self.run(leader)),
                },
                Run::Here => Launched::Here(self.run(leader)),
            },
        )
        .await;
        answer.into_result().map_err(|error| (*error).clone())
    }

    /// Under the `pending` lock: a current value (unless a reload is wanted), the pending
    /// load, or a new load to lead (rule 2).
    pub(crate) fn find(&self, wanted: Wanted) -> Found<Arc<T>, LazyLeader<T, E>> {
        let mut pending = self.inner.pending.lock();
        if wanted == Wanted::Current {
            if let Current::Fresh(value) | Current::Stale(value) = self.current() {
                return Found::Value(value);
            }
        }
        match &*pending {
            Some(flight) => Found::Join(sync::Arc::clone(flight)),
            None => Found::Lead(self.begin_load(&mut pending)),
        }
    }

    /// Starts a reload in the background, unless one is running, or there is no runtime to
    /// run it on.
    pub(super) fn refresh_in_background(&self) {
        #[cfg(feature = "tokio")]
        {
            if self.inner.runtime().is_none() {
                return;
            }
            let leader = {
                let mut pending = self.inner.pending.lock();
                // Still stale once locked: a refresh may just have landed.
                if pending.is_some() || !matches!(self.current(), Current::Stale(_)) {
                    return;
                }
                self.begin_load(&mut pending)
            };
            // A runtime was found above; should it shut down meanwhile, the leader is dropped
            // and the load abandoned, which the next read notices.
            drop(self.spawn(leader));
        }
    }

    /// Registers a new pending load, under the `pending` lock the caller holds (rule 2).
    fn begin_load(&self, pending: &mut Option<sync::Arc<Flight<Arc<T>>>>) -> LazyLeader<T, E> {
        let flight = Flight::new();
        *pending = Some(sync::Arc::clone(&flight));
        flight::Leader::new(Arc::clone(&self.inner), flight)
    }

    /// Runs the load as a task on a tokio runtime, or hands the leader back if there is none.
    fn spawn(&self, leader: LazyLeader<T, E>) -> Result<(), LazyLeader<T, E>> {
        #[cfg(feature = "tokio")]
        if let Some(runtime) = self.inner.runtime() {
            let this = self.clone();
            drop(runtime.spawn(async move {
                // The outcome reaches the callers through the flight.
                let _ = this.run(leader).await;
            }));
            return Ok(());
        }
        Err(leader)
    }

    /// Runs the initializer as the leader of the load, then keeps and shares its outcome.
    async fn run(&self, leader: LazyLeader<T, E>) -> Result<Arc<T>, std::sync::Arc<LoadError<E>>> {
        let init = async {
            match catch_panic(async { (self.inner.init)().await }).await {
                Ok(Ok(value)) => {
                    crate::trace::lazy_loaded();
                    Ok(Arc::new(value))
                }
                Ok(Err(error)) => {
                    crate::trace::lazy_failed(false);
                    Err(LoadError::Failed(Arc::new(error)))
                }
                Err(()) => {
                    crate::trace::lazy_failed(true);
                    Err(LoadError::Panicked)
                }
            }
        };
        leader.run(init).await
    }
}

/// What keeping a new value replaced, held only to be dropped once `pending` is unlocked: user
/// `Drop` code must not run under the lock.
pub(crate) struct Replaced<T, E> {
    _value: Option<Arc<Loaded<T>>>,
    _announced: Option<Option<Arc<T>>>,
    _error: Option<LoadError<E>>,
    /// A value not kept: a coherent lazy that bypasses while unhealthy.
    _refused: Option<Arc<T>>,
}

impl<T, E> Default for Replaced<T, E> {
    fn default() -> Self {
        Self {
            _value: None,
            _announced: None,
            _error: None,
            _refused: None,
        }
    }
}

impl<T, E> LazyInner<T, E> {
    /// Keeps `value`, loaded at `loaded_at`, as the current one, then tells subscribers (in
    /// that order, so a woken subscriber reads the new value). The caller holds `pending`,
    /// which keeps the notifications in the order of the stores.
    ///
    /// A coherent lazy that may not store now (rule 3 of `redis/mod.rs`) keeps nothing.
    pub(super) fn keep(&self, value: Arc<T>, loaded_at: Tick) -> Replaced<T, E> {
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            return Replaced {
                _refused: Some(value),
                ..Replaced::default()
            };
        }
        #[cfg(feature = "tokio")]
        let announce = Some(Arc::clone(&value));
        // The first value of a lazy without deadlines is also kept where readers find it
        // cheaply, once `value` holds it; any later write turns that off first (rule 7).
        let first = !self.first.is_set() && !self.replaced.load(Ordering::Relaxed);
        let fast = (first && !self.has_deadlines()).then(|| Arc::clone(&value));
        if !first {
            self.replaced.store(true, Ordering::Release);
        }
        let old = self.value.swap(Some(Arc::new(Loaded { value, loaded_at })));
        if let Some(value) = fast {
            self.first.set(&value);
        }
        #[cfg(feature = "tokio")]
        let announced = announce.map(|value| self.updates.send_replace(Some(value)));
        #[cfg(not(feature = "tokio"))]
        let announced = None;
        Replaced {
            _value: old,
            _announced: announced,
            _error: self.last_error.lock().take(),
            _refused: None,
        }
    }

    /// The runtime loads run on: the caller's, or outside one, the one `refresh_every` was
    /// built in (`runtime.rs`).
    #[cfg(feature = "tokio")]
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        crate::runtime::for_load(self.runtime.as_ref())
    }
}

impl<T, E> Landing<Arc<T>> for Arc<LazyInner<T, E>>
where
    T: Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    type Receipt<'a>
        = Replaced<T, E>
    where
        Self: 'a;

    fn store(
        &self,
        flight: &sync::Arc<Flight<Arc<T>>>,
        outcome: &Outcome<Arc<T>>,
    ) -> Replaced<T, E> {
        let loaded_at = self.loaded_now();
        let mut pending = self.pending.lock();
        let current = pending
            .as_ref()
            .is_some_and(|pending| sync::Arc::ptr_eq(pending, flight));
        if !current {
            // Detached by `invalidate` or `set` (rule 4).
            return Replaced::default();
        }
        *pending = None;
        match outcome {
            Outcome::Loaded(value) => self.keep(Arc::clone(value), loaded_at),
            Outcome::Failed(error) => Replaced {
                _error: std::mem::replace(
                    &mut *self.last_error.lock(),
                    error.downcast_ref::<LoadError<E>>().cloned(),
                ),
                ..Replaced::default()
            },
            Outcome::Abandoned => Replaced::default(),
        }
    }

    fn abandon(&self, flight: &sync::Arc<Flight<Arc<T>>>) {
        let mut pending = self.pending.lock();
        if pending
            .as_ref()
            .is_some_and(|pending| sync::Arc::ptr_eq(pending, flight))
        {
            *pending = None;
        }
    }
}
