//! The sync facade: the only module that names parking_lot, std's atomics or loom.
//!
//! Two whole modules stand behind it, chosen by one cfg: `std.rs` for builds, and under
//! `--cfg ttlcache_loom` `loom.rs`, so the models (`loom-tests/`) check the crate's real code
//! rather than a copy of it. Both offer the same items with the same signatures. The crate
//! writes the facade's `Arc` and `Weak` as `sync::Arc` and `sync::Weak`; a bare `Arc` or
//! `Weak` is std's.
//!
//! Rules:
//! 1. Locks never report poisoning. The crate's own code does not panic while it holds a lock;
//!    the user code that runs under one (`Hash`, `Eq` and `Clone` of keys and values,
//!    `Clock::now`, the weigher, an `Expiry`, `retain`'s predicate) can unwind only from
//!    points where the shard is consistent, so a poisoned lock carries no information and is taken anyway.
//! 2. Everything that waits, waits through [`block_on`] or a lock from here, so loom sees it.
//! 3. What has no loom counterpart (a thread's number, the machine's parallelism, arc-swap)
//!    is given a stand-in under loom that keeps the same contract, or a weaker one that the
//!    callers' docs state.

#[cfg(not(ttlcache_loom))]
mod std;
#[cfg(not(ttlcache_loom))]
pub(crate) use self::std::*;

#[cfg(ttlcache_loom)]
mod loom;
#[cfg(ttlcache_loom)]
pub(crate) use self::loom::*;

/// Memory orderings are loom's and std's alike.
pub(crate) use ::std::sync::atomic::Ordering;
