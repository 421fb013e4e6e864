//! Batch loading ([`build_batch_loading`](crate::CacheBuilder::build_batch_loading)): the
//! loads of many keys gathered into one loader call, the DataLoader pattern.
//!
//! Rules (on top of those of `loading/mod.rs`):
//! 1. Each key is still single-flighted by its own pending load and leader. A batch-loaded
//!    cache's leaders do not call a loader one by one: they join the batch now gathering
//!    ([`Gathering`]). A dispatch task takes it after `batch_window` (by default, after one
//!    yield to the runtime: the keys that tasks ready now ask for), or it is taken at once
//!    when it holds `max_batch_size` keys.
//! 2. A taken batch runs as a task that owns its leaders, so no caller's cancellation reaches
//!    it. A task its runtime drops unrun drops its leaders, or (a dispatch task) takes its
//!    batch and drops them: their flights are abandoned and their waiters start over (rule 4
//!    of `flight/mod.rs`), never left waiting on a batch that no task holds.
//! 3. A batch makes one loader call, holding one permit of `max_concurrent_loads`, within
//!    `load_timeout`, with each of its keys' flights marked as led by the polling thread, so
//!    that a loader asking for a key of its own batch panics (and the batch fails with
//!    `Panicked`) instead of waiting for itself. Its outcome settles each of its leaders: the
//!    key's value from the map (values of keys not asked for are ignored),
//!    [`LoadError::NotFound`] for a key the map leaves out, or the batch's error, one `Arc`
//!    shared by all its keys. Stats count the batch as one load, as Caffeine counts a bulk
//!    load.
//! 4. `NotFound` removes the key's live entry (a refresh that finds the row gone takes the
//!    old value with it, as Caffeine's refresh to `null` does), in one critical section with
//!    checking that no write detached the load.
//!
//! [`LoadError::NotFound`]: crate::LoadError::NotFound

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    hash::{BuildHasher, Hash},
    mem,
    pin::Pin,
    time::Duration,
};

use super::LoadingCache;
use crate::{
    cache::KeyLeader,
    error::LoadError,
    flight::{Flight, Leads, leading_all},
    sync::{self, Mutex},
    trace::LoadSpan,
};

/// A boxed batch loader future.
type BatchFuture<K, V, E> = Pin<Box<dyn Future<Output = Result<HashMap<K, V>, E>> + Send>>;

/// What a load's callers get: its value, or its error as all of them share it.
type Reply<V, E> = Result<V, std::sync::Arc<LoadError<E>>>;

/// What lands a key's load with the outcome of its batch, and answers with what its callers
/// get: its leader, behind a closure. Dropped unrun, it abandons the load.
type Lander<V, E> = Box<
    dyn FnOnce(Result<V, LoadError<E>>) -> Pin<Box<dyn Future<Output = Reply<V, E>> + Send>> + Send,
>;

/// A load as a batch gathers it.
pub(crate) struct Gathered<K, V, E> {
    key: K,
    flight: sync::Arc<Flight<V>>,
    land: Lander<V, E>,
}

/// A batch loader and how its batches gather.
pub(crate) struct Batcher<K, V, E> {
    load: Box<dyn Fn(Vec<K>) -> BatchFuture<K, V, E> + Send + Sync>,
    /// How long a batch gathers; `None`: one yield to the runtime.
    window: Option<Duration>,
    gathering: Gathering<Gathered<K, V, E>>,
}

impl<K, V, E> Batcher<K, V, E> {
    pub(crate) fn new<F, Fut>(loader: F, window: Option<Duration>, max_batch_size: usize) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send + 'static,
    {
        Self {
            load: Box::new(move |keys| -> BatchFuture<K, V, E> { Box::pin(loader(keys)) }),
            window,
            gathering: Gathering::new(max_batch_size),
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
    /// Joins loads this cache leads to the gathering batch, and spawns the tasks the join
    /// asks for: one per batch that filled up, and a dispatcher for a new gathering (rule 1).
    pub(super) fn launch_batched(
        &self,
        batcher: &Batcher<K, V, E>,
        leaders: Vec<KeyLeader<K, V, S>>,
    ) {
        if leaders.is_empty() {
            return;
        }
        // Made before the gathering's lock is taken: `K::clone` is the user's code.
        let gathered: Vec<_> = leaders
            .into_iter()
            .map(|leader| self.gathered(leader))
            .collect();
        let Joined { full, dispatch } = batcher.gathering.join(gathered);
        for batch in full {
            let this = self.clone();
            self.spawn(async move { drop(this.run_gathered(batch).await) });
        }
        if let Some(generation) = dispatch {
            let window = batcher.window;
            let dispatcher = Dispatcher {
                cache: self.clone(),
                generation,
            };
            self.spawn(async move {
                match window {
                    Some(window) => tokio::time::sleep(window).await,
                    None => tokio::task::yield_now().await,
                }
                let batch = dispatcher.take();
                drop(dispatcher.cache.run_gathered(batch).await);
            });
        }
    }

    /// Runs a batch this cache's batcher gathered.
    async fn run_gathered(&self, batch: Vec<Gathered<K, V, E>>) -> Vec<Reply<V, E>> {
        let batcher = self
            .inner
            .loader
            .batcher()
            .expect("only a batch loader gathers batches");
        self.run_batch(batcher, batch).await
    }

    /// Runs a batch (rule 3): one loader call for its keys, whose outcome settles each of its
    /// loads; their answers, in order.
    pub(super) async fn run_batch(
        &self,
        batcher: &Batcher<K, V, E>,
        batch: Vec<Gathered<K, V, E>>,
    ) -> Vec<Reply<V, E>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let loaded = {
            let _permit = self.permit().await;
            let mut seen = HashSet::with_capacity(batch.len());
            let keys: Vec<K> = batch
                .iter()
                .filter(|gathered| seen.insert(&gathered.key))
                .map(|gathered| gathered.key.clone())
                .collect();
            let flights: Vec<_> = batch
                .iter()
                .map(|gathered| sync::Arc::clone(&gathered.flight))
                .collect();
            let span = LoadSpan::batch(self.cache.name(), keys.len());
            let load = async move { (batcher.load)(keys).await };
            let door = self.door();
            let timed = door.timed(leading_all(&flights, self.guarded(load)));
            span.wrap(timed).await
        };
        let mut answers = Vec::with_capacity(batch.len());
        for Gathered { key, land, .. } in batch {
            let result = match &loaded {
                Ok(values) => values.get(&key).cloned().ok_or(LoadError::NotFound),
                Err(error) => Err(error.clone()),
            };
            answers.push(land(result).await);
        }
        answers
    }

    /// A load this cache leads, as a batch gathers it. Its lander remembers a failure (rule 4
    /// of `loading/mod.rs`), removes the key's entry on `NotFound` (rule 4), then lands and
    /// settles the load.
    pub(super) fn gathered(&self, leader: KeyLeader<K, V, S>) -> Gathered<K, V, E> {
        let this = self.clone();
        let flight = sync::Arc::clone(leader.flight());
        let key = leader.key().clone();
        let land: Lander<V, E> = Box::new(move |result| {
            Box::pin(async move {
                let hash = leader.hash();
                let flight = sync::Arc::clone(leader.flight());
                let remembered_as = this.inner.errors.as_ref().map(|_| leader.key().clone());
                this.remember_outcome(remembered_as, &result, hash, &flight);
                if let Err(LoadError::NotFound) = result {
                    this.door()
                        .remove_while_pending(hash, leader.key(), &flight);
                }
                leader.land(result).await
            })
        });
        Gathered { key, flight, land }
    }
}

/// The task that takes a gathering batch when its window closes. If its runtime drops it
/// unrun, it takes the batch all the same and drops its loads, so that their waiters start
/// over instead of waiting for a batch no task holds (rule 2).
struct Dispatcher<K, V, E, S> {
    cache: LoadingCache<K, V, E, S>,
    generation: u64,
}

impl<K, V, E, S> Dispatcher<K, V, E, S> {
    /// The batch, if no one took it yet.
    fn take(&self) -> Vec<Gathered<K, V, E>> {
        match self.cache.inner.loader.batcher() {
            Some(batcher) => batcher.gathering.take(self.generation),
            None => Vec::new(),
        }
    }
}

impl<K, V, E, S> Drop for Dispatcher<K, V, E, S> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The batch now gathering: the loads that joined it, until a dispatcher or a full batch takes
/// them (rule 1).
pub(crate) struct Gathering<T> {
    /// Joined and taken under this lock, so that a dispatcher takes a generation's batch
    /// whole, or nothing once it was taken full (rule 1).
    batch: Mutex<Batch<T>>,
    max_batch_size: usize,
}

struct Batch<T> {
    items: Vec<T>,
    /// Counts the batches taken: a dispatcher takes the batch of the generation it was
    /// started for, or nothing if that one was taken full.
    generation: u64,
}

/// What joining a gathering asks of the caller.
#[must_use = "full batches and a new gathering need a task each"]
pub(crate) struct Joined<T> {
    /// Batches that filled up, taken: each to run now.
    pub(crate) full: Vec<Vec<T>>,
    /// A gathering that the join began: a dispatcher is to take this generation.
    pub(crate) dispatch: Option<u64>,
}

impl<T> Gathering<T> {
    pub(crate) fn new(max_batch_size: usize) -> Self {
        assert!(
            max_batch_size > 0,
            "the builder refuses a zero max_batch_size"
        );
        Self {
            batch: Mutex::new(Batch {
                items: Vec::new(),
                generation: 0,
            }),
            max_batch_size,
        }
    }

    /// Adds `items` to the gathering batch, in one critical section, so that they go in as
    /// few batches as the size allows.
    pub(crate) fn join(&self, items: impl IntoIterator<Item = T>) -> Joined<T> {
        let mut joined = Joined {
            full: Vec::new(),
            dispatch: None,
        };
        let mut batch = self.batch.lock();
        for item in items {
            if batch.items.is_empty() {
                joined.dispatch = Some(batch.generation);
            }
            batch.items.push(item);
            if batch.items.len() >= self.max_batch_size {
                joined.full.push(batch.take());
                joined.dispatch = None;
            }
        }
        joined
    }

    /// The batch of `generation`, if it is still gathering; empty if it was taken.
    pub(crate) fn take(&self, generation: u64) -> Vec<T> {
        let mut batch = self.batch.lock();
        if batch.generation == generation {
            batch.take()
        } else {
            Vec::new()
        }
    }
}

impl<T> Batch<T> {
    fn take(&mut self) -> Vec<T> {
        self.generation += 1;
        mem::take(&mut self.items)
    }
}
