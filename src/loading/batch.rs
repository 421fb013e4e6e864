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
//!    `load_timeout`. Its outcome settles each of its leaders: the key's value from the map,
//!    [`LoadError::NotFound`] for a key the map leaves out, or the batch's error, one `Arc`
//!    shared by all its keys. Stats count the batch as one load, as Caffeine counts a bulk
//!    load.
//!
//! [`LoadError::NotFound`]: crate::LoadError::NotFound

use std::{collections::HashMap, future::Future, mem, pin::Pin, time::Duration};

use crate::sync::Mutex;

/// A boxed batch loader future.
pub(crate) type BatchFuture<K, V, E> =
    Pin<Box<dyn Future<Output = Result<HashMap<K, V>, E>> + Send>>;

/// A batch loader and how its batches gather.
pub(crate) struct Batcher<K, V, E, T> {
    pub(crate) load: Box<dyn Fn(Vec<K>) -> BatchFuture<K, V, E> + Send + Sync>,
    /// How long a batch gathers; `None`: one yield to the runtime.
    pub(crate) window: Option<Duration>,
    pub(crate) gathering: Gathering<T>,
}

/// The batch now gathering: the loads that joined it, until a dispatcher or a full batch takes
/// them (rule 1).
pub(crate) struct Gathering<T> {
    state: Mutex<State<T>>,
    max_batch_size: usize,
}

struct State<T> {
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
            state: Mutex::new(State {
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
        let mut state = self.state.lock();
        for item in items {
            if state.items.is_empty() {
                joined.dispatch = Some(state.generation);
            }
            state.items.push(item);
            if state.items.len() >= self.max_batch_size {
                joined.full.push(state.take());
                joined.dispatch = None;
            }
        }
        joined
    }

    /// The batch of `generation`, if it is still gathering; empty if it was taken.
    pub(crate) fn take(&self, generation: u64) -> Vec<T> {
        let mut state = self.state.lock();
        if state.generation == generation {
            state.take()
        } else {
            Vec::new()
        }
    }
}

impl<T> State<T> {
    fn take(&mut self) -> Vec<T> {
        self.generation += 1;
        mem::take(&mut self.items)
    }
}
