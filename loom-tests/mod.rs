//! Loom models of the crate's real code, through its sync facade.
//!
//! A module of the crate (`lib.rs` includes it under `--cfg ttlcache_loom`), so the models
//! reach the engine's hand-overs (a refresh started and landed by hand, a lazy's load, its
//! refresher's tick) without a public back door. Run with `RUSTFLAGS="--cfg ttlcache_loom"
//! LOOM_MAX_PREEMPTIONS=2 cargo test --release --lib loom_models`.
//!
//! One file per mechanism, as tokio keeps `sync/tests/loom_*.rs`:
//! - `mod.rs` (this file): `model` and the logged one-shard cache the shard and refresh
//!   models share;
//! - `single_flight.rs`: `get_or_insert_with` racing, a leader that panics or is cancelled
//!   (`flight/mod.rs`);
//! - `shard.rs`: one shard's inserts, removes, reads, eviction at capacity and expiry, raced
//!   (`shard/mod.rs`, `cache/mod.rs`);
//! - `snapshot.rs`: a restore racing an insert, a snapshot racing an eviction (`cache/snapshot.rs`,
//!   `shard/restore.rs`; feature `serde`);
//! - `refresh.rs`: a refresh landing against an invalidation, an insert or a compute, and two
//!   stale reads racing to start one (rule 3 of `loading/mod.rs`);
//! - `batch.rs`: batch loading's gathering and its leaders (`loading/batch.rs`);
//! - `lazy.rs`: `AsyncLazy`'s load, invalidation, first value, refresh and refresher
//!   (`lazy/mod.rs`).

mod batch;
mod lazy;
mod refresh;
mod shard;
mod single_flight;
#[cfg(feature = "serde")]
mod snapshot;

use std::{sync::Mutex, time::Duration};

use crate::{ManualClock, RemovalCause, TtlCache};

/// Explores every interleaving of `body`, with at most `LOOM_MAX_PREEMPTIONS` (default 2)
/// preemptions per run.
fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body()
    });
    eprintln!(
        "explored {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

type Log = std::sync::Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A one-shard cache whose listener logs what leaves.
fn logged_cache(capacity: Option<u64>, clock: Option<ManualClock>) -> (TtlCache<u64, u64>, Log) {
    let log = Log::default();
    let sink = log.clone();
    let mut builder = TtlCache::builder()
        .shards(1)
        .eviction_listener(move |key, value, cause| sink.lock().unwrap().push((key, value, cause)));
    if let Some(capacity) = capacity {
        builder = builder.max_capacity(capacity);
    }
    if let Some(clock) = clock {
        builder = builder.clock(clock).time_to_live(Duration::from_secs(10));
    }
    (builder.build().unwrap(), log)
}
