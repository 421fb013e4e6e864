//! What the coherence tests share: waiting for a condition, replicas made healthy, and a
//! runtime of a test's own.

#![allow(dead_code, unreachable_pub)]

use std::{
    future::Future,
    time::{Duration, Instant},
};

use ttlcache::{TtlCache, redis::Coherence};

use super::server::RedisServer;

/// How long any condition may take to come true before the test fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Waits until `done` holds, polling every 5 ms; false after [`PATIENCE`].
pub(crate) async fn eventually(done: impl FnMut() -> bool) -> bool {
    within(PATIENCE, done).await
}

/// Waits until `done` holds, polling every 5 ms; false after `patience`.
pub(crate) async fn within(patience: Duration, mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + patience;
    while !done() {
        if Instant::now() > give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// A replica's handle, fast to notice faults, and healthy before it is returned.
pub(crate) async fn replica(server: &RedisServer, namespace: &str) -> Coherence {
    let coherence = steady(Coherence::builder(&server.url(), namespace))
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(|| coherence.is_healthy()).await,
        "not healthy in time"
    );
    coherence
}

/// Quick to reconnect, with a lease long enough that a loaded test machine never misses it.
pub(crate) fn steady(
    builder: ttlcache::redis::CoherenceBuilder,
) -> ttlcache::redis::CoherenceBuilder {
    builder
        .ping_every(Duration::from_millis(50))
        .lease(Duration::from_millis(1_500))
        .max_backoff(Duration::from_millis(200))
}

/// As [`steady`], with a short lease: for the tests of what the lease bounds.
pub(crate) fn fast(
    builder: ttlcache::redis::CoherenceBuilder,
) -> ttlcache::redis::CoherenceBuilder {
    steady(builder).lease(Duration::from_millis(400))
}

/// Two handles on `url`, healthy, and an invalidation from one reaching the other.
pub(crate) async fn an_invalidation_crosses(url: &str) {
    let a = fast(Coherence::builder(url, "app"))
        .connect()
        .await
        .unwrap();
    let b = fast(Coherence::builder(url, "app"))
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(|| a.is_healthy() && b.is_healthy()).await,
        "not connected"
    );
    let (users_a, users_b) = (users(&a), users(&b));
    holding(&users_b, 1, "one").await;
    users_a.invalidate_everywhere(&1).await.unwrap();
    assert!(eventually(|| users_b.get(&1).is_none()).await);
}

/// Stores `value` under `key` until the cache serves it: a write made while the handle is not
/// trusted is refused, and a test that then saw the key gone would prove nothing.
pub(crate) async fn holding(cache: &TtlCache<u64, String>, key: u64, value: &str) {
    assert!(
        eventually(|| {
            cache.insert(key, value.to_owned());
            cache.get(&key).as_deref() == Some(value)
        })
        .await,
        "the cache never held {key}"
    );
}

pub(crate) fn users(coherence: &Coherence) -> TtlCache<u64, String> {
    TtlCache::builder()
        .coherent(coherence, "users")
        .build()
        .unwrap()
}

/// Runs `test` on a multi-threaded runtime of its own.
pub(crate) fn run<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test());
}
