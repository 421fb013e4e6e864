//! Models of batch loading (`loading/batch.rs`): the real gathering, and leaders started and
//! landed as a batch-loaded `LoadingCache` starts and lands them.

use std::task::{Context, Poll, Waker};

use super::model;
use crate::{
    TtlCache,
    cache::KeyLeader,
    flight::Found,
    loading::{Gathering, Joined},
};
use loom::{sync::Arc, thread};

type Gathered = (u64, KeyLeader<u64, u64, crate::DefaultHashBuilder>);

/// How a batch's task ends.
#[derive(Clone, Copy, PartialEq)]
enum Task {
    /// It loads the batch (each key's value is ten times the key) and lands each leader.
    Lands,
    /// Its runtime drops it unrun: it takes the batch and drops the leaders.
    IsDropped,
}

/// Starts a load of `key` and joins it to the gathering, as a `get` of a missing key
/// does, spawning the tasks the join asks for.
fn lead_and_join(
    cache: &TtlCache<u64, u64>,
    gathering: &Arc<Gathering<Gathered>>,
    key: u64,
    task: Task,
) -> Vec<thread::JoinHandle<()>> {
    let door = cache.task_door();
    let Found::Lead(leader) = door.start(door.hash(&key), &key) else {
        return Vec::new();
    };
    let Joined { full, dispatch } = gathering.join([(key, leader)]);
    assert!(full.is_empty(), "the batch never fills in these models");
    dispatch
        .map(|generation| {
            let gathering = Arc::clone(gathering);
            thread::spawn(move || {
                let batch = gathering.take(generation);
                if task == Task::IsDropped {
                    return drop(batch);
                }
                for (key, leader) in batch {
                    let landed = loom::future::block_on(leader.land(Ok::<_, ()>(key * 10)));
                    assert_eq!(landed, Ok(key * 10));
                }
            })
        })
        .into_iter()
        .collect()
}

/// Two callers' keys gather into batches while the second caller is cancelled: the first
/// gets its value, and the cancelled caller's key is loaded and stored all the same.
#[test]
fn a_batch_gathering_keys_while_a_caller_is_cancelled_loads_every_key() {
    model(|| {
        let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        let gathering = Arc::new(Gathering::new(8));
        let cancelled = {
            let (cache, gathering) = (cache.clone(), Arc::clone(&gathering));
            thread::spawn(move || {
                let tasks = lead_and_join(&cache, &gathering, 2, Task::Lands);
                // Waits once on its key's load, then is dropped: a cancelled caller.
                let mut get = Box::pin(cache.get_or_load(2, std::future::pending()));
                let polled = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                assert!(polled.is_pending() || polled == Poll::Ready(20));
                tasks
            })
        };
        let tasks = lead_and_join(&cache, &gathering, 1, Task::Lands);
        let got = loom::future::block_on(cache.get_or_load(1, std::future::pending()));
        assert_eq!(got, 10);
        for task in tasks.into_iter().chain(cancelled.join().unwrap()) {
            task.join().unwrap();
        }
        assert_eq!(
            cache.peek(&2),
            Some(20),
            "the cancelled caller's key was stored"
        );
    });
}

/// A batch whose task is dropped unrun abandons its loads: the waiting caller leads the
/// next attempt itself instead of waiting forever.
#[test]
fn a_batch_dropped_unrun_leaves_no_caller_waiting() {
    model(|| {
        let cache = TtlCache::<u64, u64>::builder().shards(1).build().unwrap();
        let gathering = Arc::new(Gathering::new(8));
        let tasks = lead_and_join(&cache, &gathering, 1, Task::IsDropped);
        let got = loom::future::block_on(cache.get_or_load(1, async { 11 }));
        assert_eq!(got, 11);
        for task in tasks {
            task.join().unwrap();
        }
    });
}
