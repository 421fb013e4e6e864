//! How a [`LoadingCache`] runs its loads (rules 1, 2, 4 and 5 of `loading/mod.rs`): the
//! loader it was built with, and the tasks that run what the cache's [`TaskDoor`] starts,
//! each within `load_timeout`, holding a permit of `max_concurrent_loads`.

use std::{
    collections::HashMap,
    future::Future,
    hash::{BuildHasher, Hash},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use tokio::sync::OwnedSemaphorePermit;

use super::{LoadingCache, batch::Batcher};
use crate::{
    cache::{KeyLeader, TaskDoor},
    error::LoadError,
    flight::{Flight, Leads, catch_panic},
    sync,
    trace::LoadSpan,
};

/// A boxed loader future.
type LoaderFuture<V, E> = Pin<Box<dyn Future<Output = Result<V, E>> + Send>>;

/// How the cache loads: a key at a time, or in batches (`batch.rs`).
pub(crate) enum Loader<K, V, E> {
    Single(Box<dyn Fn(K) -> LoaderFuture<V, E> + Send + Sync>),
    Batch(Batcher<K, V, E>),
}

impl<K, V, E> Loader<K, V, E> {
    /// A loader of one key at a time.
    pub(crate) fn single<F, Fut>(loader: F) -> Self
    where
        F: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        Self::Single(Box::new(move |key| Box::pin(loader(key))))
    }

    /// A loader of batches of at most `max_batch_size` keys, gathered for `window` (`None`:
    /// one yield to the runtime).
    pub(crate) fn batch<F, Fut>(loader: F, window: Option<Duration>, max_batch_size: usize) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send + 'static,
    {
        Self::Batch(Batcher::new(loader, window, max_batch_size))
    }

    /// The batch loader, if the cache loads in batches.
    pub(super) fn batcher(&self) -> Option<&Batcher<K, V, E>> {
        match self {
            Self::Batch(batcher) => Some(batcher),
            Self::Single(_) => None,
        }
    }
}

impl<K, V, E, S> LoadingCache<K, V, E, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// The cache underneath, as this front door may use it (`cache/door.rs`).
    pub(super) fn door(&self) -> TaskDoor<'_, K, V, S> {
        self.cache.task_door()
    }

    /// Runs loads this cache leads in the background: each as a task, or, with a batch
    /// loader, in the batches they join (`batch.rs`).
    pub(super) fn launch(&self, leaders: Vec<KeyLeader<K, V, S>>) {
        match &self.inner.loader {
            Loader::Batch(batcher) => self.launch_batched(batcher, leaders),
            Loader::Single(_) => {
                for leader in leaders {
                    let this = self.clone();
                    self.spawn(async move {
                        // The outcome reaches the callers through the flight.
                        let _ = this.run(leader).await;
                    });
                }
            }
        }
    }

    /// Spawns `task` on the caller's runtime, or outside one, on the runtime the cache was
    /// built in (`runtime.rs`).
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let runtime = crate::runtime::for_load(Some(&self.inner.runtime))
            .expect("a runtime given is a runtime found");
        drop(runtime.spawn(task));
    }

    /// Runs one load in the call: with a batch loader, as a batch of one key.
    pub(super) async fn run(&self, leader: KeyLeader<K, V, S>) -> Result<V, Arc<LoadError<E>>> {
        let loader = match &self.inner.loader {
            Loader::Single(loader) => loader,
            Loader::Batch(batcher) => {
                let batch = vec![self.gathered(leader)];
                let mut results = self.run_batch(batcher, batch).await;
                return results.pop().expect("a batch of one key has one result");
            }
        };
        let span = LoadSpan::new(self.cache.name(), self.door().shown(leader.key()));
        let _permit = self.permit().await;
        let hash = leader.hash();
        let flight = sync::Arc::clone(leader.flight());
        let load = |key: K| async move {
            let remembered_as = self.inner.errors.as_ref().map(|_| key.clone());
            let result = self
                .door()
                .timed(self.guarded(async move { loader(key).await }))
                .await;
            self.remember_outcome(remembered_as, &result, hash, &flight);
            result
        };
        span.wrap(leader.run(load)).await
    }

    /// A permit of `max_concurrent_loads`, once one is free (rule 5).
    pub(super) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        let permits = self.inner.permits.as_ref()?;
        let permit = Arc::clone(permits).acquire_owned().await;
        Some(permit.expect("the load semaphore is never closed"))
    }

    /// With `error_ttl` (rule 4): forgets the key's remembered failure after a success,
    /// remembers a failure.
    pub(super) fn remember_outcome(
        &self,
        key: Option<K>,
        result: &Result<V, LoadError<E>>,
        hash: u64,
        flight: &sync::Arc<Flight<V>>,
    ) {
        if let (Some(errors), Some(key)) = (&self.inner.errors, key) {
            errors.record(&self.door(), key, result, hash, flight);
        }
    }

    /// Runs `load` (a loader's call and its future) within `load_timeout`, turning a panic
    /// into [`LoadError::Panicked`], whether it comes from the loader's call or its future.
    pub(super) async fn guarded<T>(
        &self,
        load: impl Future<Output = Result<T, E>>,
    ) -> Result<T, LoadError<E>> {
        let limited = async {
            match self.inner.load_timeout {
                Some(limit) => tokio::time::timeout(limit, load).await.ok(),
                None => Some(load.await),
            }
        };
        match catch_panic(limited).await {
            Ok(Some(Ok(value))) => Ok(value),
            Ok(Some(Err(error))) => Err(LoadError::Failed(Arc::new(error))),
            Ok(None) => {
                if let Some(limit) = self.inner.load_timeout {
                    crate::trace::load_timed_out(limit);
                }
                Err(LoadError::TimedOut)
            }
            Err(()) => {
                crate::trace::loader_panicked();
                Err(LoadError::Panicked)
            }
        }
    }
}
