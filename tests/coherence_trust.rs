//! Coherence you can bet on (feature `redis`), against a real `redis-server`: the lease holds
//! where values are read whatever the supervisor or the application's runtime is doing,
//! remembered failures go with the cache, markers stay in a key space of their own, a replica
//! is healthy only once pushes arrive and says why it is not, nothing panics on settings or
//! runtimes, and bursts cost a bounded few flushes. (Passwords: `coherence_secrets.rs`.)

#![cfg(feature = "redis")]

#[path = "coherence/mute_proxy.rs"]
mod mute_proxy;
#[allow(dead_code, reason = "the fault injection these tests do not need")]
#[path = "coherence/server.rs"]
mod server;
#[path = "coherence/support.rs"]
mod support;

use std::{
    collections::HashSet,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    thread,
    time::{Duration, Instant},
};

use server::RedisServer;
use support::{PATIENCE, eventually, fast, holding, replica, run, steady, users};
use ttlcache::{
    LoadError, TtlCache,
    redis::{Coherence, CoherenceError},
};

/// Polls `done` from a plain thread, every 5 ms, for up to [`PATIENCE`]: for the tests whose
/// runtime must not be driven.
fn eventually_here(mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() > give_up {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The lease of [`slow_replica`].
const LEASE: Duration = Duration::from_millis(500);

/// A replica with a lease of [`LEASE`] whose cache `users` holds keys 0 to 1,999, with a
/// listener of remote removals that takes 5 ms while the flag is set, as one that logs to a
/// slow sink would: 2,000 invalidations are ten seconds of its supervisor's work.
async fn slow_replica(
    server: &RedisServer,
) -> (Coherence, Arc<AtomicBool>, Arc<TtlCache<u64, String>>) {
    let a = steady(Coherence::builder(&server.url(), "app"))
        .lease(LEASE)
        .connect()
        .await
        .unwrap();
    assert!(eventually(|| a.is_healthy()).await);
    let slow = Arc::new(AtomicBool::new(true));
    let listener_slow = Arc::clone(&slow);
    let users = TtlCache::<u64, String>::builder()
        .coherent(&a, "users")
        .eviction_listener(move |_, _, _| {
            if listener_slow.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(5));
            }
        })
        .build()
        .unwrap();
    for key in 0..2_000 {
        users.insert(key, format!("v{key}"));
    }
    (a, slow, Arc::new(users))
}

/// Invalidates keys 0 to 1,999 of `users`, as another client's pipeline: a backlog at every
/// replica.
async fn pile_up(server: &RedisServer) {
    let mut pipeline = redis::pipe();
    for key in 0..2_000 {
        pipeline.set(format!("app:inv:users:{key}"), 1).ignore();
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    pipeline.query_async::<()>(&mut connection).await.unwrap();
}

#[test]
fn a_slow_listener_and_a_backlog_of_pushes_never_extend_the_lease() {
    run(|| async {
        let server = RedisServer::start();
        let (a, slow, users_a) = slow_replica(&server).await;
        let b = replica(&server, "app").await;
        const K: u64 = 1_000_000;
        holding(&users_a, K, "old").await;
        let users_b = users(&b);
        // Ten seconds of listener work queue up at A, then K's invalidation.
        pile_up(&server).await;
        users_b.invalidate_everywhere(&K).await.unwrap();
        let acknowledged = Instant::now();
        tokio::time::sleep(LEASE + Duration::from_millis(150)).await;
        assert!(
            acknowledged.elapsed() < Duration::from_secs(5),
            "the check must come while the backlog is still there"
        );
        assert_eq!(
            users_a.get(&K),
            None,
            "K's invalidation was acknowledged a lease ago"
        );
        assert!(
            !a.is_healthy(),
            "a replica behind its pushes is not healthy"
        );
        // Nor through the doors that load on a miss.
        assert_eq!(
            users_a.get_or_insert_with(K, || "loaded".into()),
            "loaded",
            "a load's door served the held value"
        );
        let mut shown = None;
        users_a.compute(K, |held| {
            shown = held.cloned();
            ttlcache::Op::Keep
        });
        assert_eq!(shown, None, "compute showed the held value");
        slow.store(false, Ordering::Relaxed);
        assert!(eventually(|| a.is_healthy()).await, "did not recover");
        assert_eq!(users_a.get(&K), None);
    });
}

#[test]
fn a_replica_whose_runtime_sits_idle_still_applies_invalidations_and_keeps_its_lease() {
    let server = RedisServer::start();
    // The replica's runtime is driven only while it connects, as an application driven by an
    // occasional `block_on` would be.
    let idle = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = idle.block_on(async {
        fast(Coherence::builder(&server.url(), "app"))
            .connect()
            .await
            .unwrap()
    });
    assert!(eventually_here(|| a.is_healthy()), "not healthy in time");
    let users_a = users(&a);
    assert!(eventually_here(|| {
        users_a.insert(7, "old".into());
        users_a.get(&7).is_some()
    }));
    let received = a.stats().received;
    // Another replica, on a runtime of its own, writes.
    let elsewhere = tokio::runtime::Runtime::new().unwrap();
    elsewhere.block_on(async {
        let b = replica(&server, "app").await;
        users(&b).invalidate_everywhere(&7).await.unwrap();
    });
    assert!(
        eventually_here(|| a.stats().received > received && users_a.is_empty()),
        "the invalidation waited for a runtime nobody drives"
    );
    // Several leases later, with the runtime still idle, the replica is trusted and serves.
    thread::sleep(Duration::from_millis(1_200));
    assert!(
        eventually_here(|| {
            users_a.insert(8, "eight".into());
            a.is_healthy() && users_a.get(&8).as_deref() == Some("eight")
        }),
        "{:?}",
        a.health()
    );
}

#[test]
fn remembered_failures_go_with_a_remote_invalidation_and_with_a_flush() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        // Rows exist once they are in `rows`; the loader counts its calls.
        let rows = Arc::new(Mutex::new(HashSet::new()));
        let calls = Arc::new(AtomicU64::new(0));
        let loading = |coherence: &Coherence| {
            let (rows, calls) = (Arc::clone(&rows), Arc::clone(&calls));
            TtlCache::builder()
                .coherent(coherence, "users")
                .error_ttl(Duration::from_secs(3_600))
                .build_loading(move |id: u64| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    let found = rows.lock().unwrap().contains(&id);
                    async move {
                        match found {
                            true => Ok(format!("user {id}")),
                            false => Err("no such row".to_owned()),
                        }
                    }
                })
                .unwrap()
        };
        let (users_a, users_b) = (loading(&a), loading(&b));
        assert!(users_a.get(&42).await.is_err());
        assert!(users_a.get(&42).await.is_err());
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "the failure is remembered"
        );

        // The row is written, and the writer invalidates it everywhere.
        rows.lock().unwrap().insert(42);
        users_b.invalidate_everywhere(&42).await.unwrap();
        let give_up = Instant::now() + PATIENCE;
        while users_a.get(&42).await.is_err() {
            assert!(
                Instant::now() < give_up,
                "the remembered failure outlived it"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // A flush (here FLUSHALL's) forgets failures too.
        assert!(matches!(users_a.get(&43).await, Err(LoadError::Failed(_))));
        let calls_then = calls.load(Ordering::Relaxed);
        assert!(users_a.get(&43).await.is_err());
        assert_eq!(
            calls.load(Ordering::Relaxed),
            calls_then,
            "the failure is remembered"
        );
        rows.lock().unwrap().insert(43);
        let flushes = a.stats().flushes;
        server.cli(&["FLUSHALL"]);
        assert!(eventually(|| a.stats().flushes > flushes && a.is_healthy()).await);
        assert_eq!(users_a.get(&43).await.as_deref(), Ok("user 43"));
    });
}

#[test]
fn an_application_key_under_the_namespace_is_never_touched() {
    run(|| async {
        let server = RedisServer::start();
        // The application keeps its rows under the usual `<app>:<table>:<id>` names.
        server.cli(&["SET", "myapp:users:42", "row 42"]);
        let (a, b) = (
            replica(&server, "myapp").await,
            replica(&server, "myapp").await,
        );
        let (users_a, users_b) = (users(&a), users(&b));
        holding(&users_a, 42, "Ada").await;
        holding(&users_a, 7, "Grace").await;
        users_b.invalidate_everywhere(&42).await.unwrap();
        assert!(eventually(|| users_a.get(&42).is_none()).await);
        assert_eq!(server.cli(&["GET", "myapp:users:42"]), "row 42");

        // The application's own writes under the namespace invalidate nothing and arrive as
        // nothing: the next push A receives is the marker written after them.
        let received = a.stats().received;
        server.cli(&["SET", "myapp:users:7", "row 7"]);
        server.cli(&["DEL", "myapp:users:42"]);
        users_b.invalidate_everywhere(&8).await.unwrap();
        assert!(eventually(|| a.stats().received > received).await);
        assert_eq!(a.stats().received, received + 1);
        assert_eq!(users_a.get(&7).as_deref(), Some("Grace"));

        // A writer in another language writes the marker, `<namespace>:inv:<cache>:<key>`.
        server.cli(&["SET", "myapp:inv:users:7", "1"]);
        assert!(eventually(|| users_a.get(&7).is_none()).await);
    });
}

#[test]
fn a_server_that_never_pushes_keeps_the_replica_unhealthy_with_a_reason() {
    run(|| async {
        let server = RedisServer::start();
        let url = mute_proxy::start(server.port());
        let coherence = fast(Coherence::builder(&url, "app"))
            .connect()
            .await
            .unwrap();
        // Commands pass: a marker written through the proxy reaches the server.
        let cache = users(&coherence);
        assert!(
            eventually(|| {
                coherence
                    .health()
                    .last_fault
                    .is_some_and(|fault| fault.contains("tracking pushes"))
            })
            .await,
            "{:?}",
            coherence.health()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!coherence.is_healthy());
        cache.insert(1, "one".into());
        assert_eq!(cache.get(&1), None, "an unhealthy replica serves nothing");
    });
}

#[test]
fn settings_that_cannot_work_are_errors_and_extreme_ones_saturate() {
    run(|| async {
        for (ping_every, lease) in [(2_000, 1_000), (1_000, 1_000), (501, 1_000)] {
            let error = Coherence::builder("redis://127.0.0.1/", "app")
                .ping_every(Duration::from_millis(ping_every))
                .lease(Duration::from_millis(lease))
                .connect()
                .await
                .unwrap_err();
            assert!(matches!(error, CoherenceError::PingEveryTooLong { .. }));
            let message = error.to_string();
            assert!(
                message.contains("ping_every") && message.contains("lease"),
                "{message}"
            );
        }

        for namespace in ["", "app:v2", "app\0", "app\n"] {
            let error = Coherence::connect("redis://127.0.0.1/", namespace)
                .await
                .unwrap_err();
            assert!(
                matches!(error, CoherenceError::InvalidNamespace { .. }),
                "{error}"
            );
        }

        // A lease too long for an instant never ends, and nothing panics.
        let server = RedisServer::start();
        // Nor does a ping period too long for a timer: it is taken as a day.
        let sleepy = Coherence::builder(&server.url(), "app")
            .ping_every(Duration::MAX)
            .lease(Duration::MAX)
            .connect()
            .await
            .unwrap();
        assert!(
            eventually(|| sleepy.is_healthy()).await,
            "{:?}",
            sleepy.health()
        );
        let forever = Coherence::builder(&server.url(), "app")
            .ping_every(Duration::from_millis(50))
            .lease(Duration::MAX)
            .max_backoff(Duration::MAX)
            .connect()
            .await
            .unwrap();
        assert!(eventually(|| forever.is_healthy()).await);
        let b = replica(&server, "app").await;
        let users_forever = users(&forever);
        holding(&users_forever, 1, "one").await;
        users(&b).invalidate_everywhere(&1).await.unwrap();
        assert!(eventually(|| users_forever.get(&1).is_none()).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(forever.is_healthy(), "{:?}", forever.health());
    });
}

#[test]
fn a_runtime_without_a_timer_or_io_driver_is_no_problem() {
    let server = RedisServer::start();
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    bare.block_on(async {
        let a = fast(Coherence::builder(&server.url(), "app"))
            .connect()
            .await
            .unwrap();
        let b = fast(Coherence::builder(&server.url(), "app"))
            .connect()
            .await
            .unwrap();
        assert!(eventually_here(|| a.is_healthy() && b.is_healthy()));
        let users_b = users(&b);
        assert!(eventually_here(|| {
            users_b.insert(1, "one".into());
            users_b.get(&1).is_some()
        }));
        users(&a).invalidate_everywhere(&1).await.unwrap();
        assert!(eventually_here(|| users_b.get(&1).is_none()));
    });
}

/// Drives `future` on this thread, with no runtime of tokio's anywhere near.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        thread::park_timeout(Duration::from_millis(10));
    }
}

#[test]
fn a_coherence_works_outside_any_runtime() {
    let server = RedisServer::start();
    let a = block_on(fast(Coherence::builder(&server.url(), "app")).connect()).unwrap();
    let b = block_on(fast(Coherence::builder(&server.url(), "app")).connect()).unwrap();
    assert!(eventually_here(|| a.is_healthy() && b.is_healthy()));
    let users_b = users(&b);
    assert!(eventually_here(|| {
        users_b.insert(1, "one".into());
        users_b.get(&1).is_some()
    }));
    block_on(users(&a).invalidate_everywhere(&1)).unwrap();
    assert!(eventually_here(|| users_b.get(&1).is_none()));
}

#[test]
fn a_burst_of_undecodable_markers_costs_a_bounded_few_flushes() {
    run(|| async {
        let server = RedisServer::start();
        // A lease long enough that the burst cannot outlast it on a loaded machine.
        let coherence = steady(Coherence::builder(&server.url(), "app"))
            .lease(Duration::from_secs(10))
            .connect()
            .await
            .unwrap();
        assert!(eventually(|| coherence.is_healthy()).await);
        let cache = users(&coherence);
        holding(&cache, 1, "one").await;
        let flushes = coherence.stats().flushes;
        let started = Instant::now();
        // A thousand markers that no `u64` key decodes from, each its own push.
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        // Pauses in the writer longer than the supervisor's quiet time (20 ms) end a burst
        // there, on a loaded machine: each may cost a flush.
        let mut pauses = 0;
        let mut last = Instant::now();
        for i in 0..1_000 {
            redis::cmd("SET")
                .arg(format!("app:inv:users:bad{i}"))
                .arg(1)
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            pauses += u64::from(last.elapsed() >= Duration::from_millis(15));
            last = Instant::now();
        }
        let burst = started.elapsed();
        assert!(eventually(|| cache.is_empty() && coherence.is_healthy()).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let flushed = coherence.stats().flushes - flushes;
        // One flush per 250 ms of burst at most, one per pause, and one more for its tail.
        let bound = 2 + pauses + burst.as_millis() as u64 / 250;
        assert!(
            (1..=bound).contains(&flushed),
            "{flushed} flushes for {burst:?} with {pauses} pauses"
        );
        assert_eq!(coherence.stats().reconnects, 0, "on the same connection");
    });
}

#[test]
fn a_push_past_what_the_queue_holds_is_a_fault_that_flushes() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "app").await;
        let cache = users(&coherence);
        holding(&cache, 1, "one").await;
        // One script writes 5,000 markers of 4 KiB names: Redis sends their invalidations
        // as one push of 20 MB, past the 16 MiB the queue holds.
        server.cli(&[
            "EVAL",
            "for i = 1, 5000 do redis.call('SET', 'app:inv:other:' .. string.rep('k', 4096) .. i, 1) end",
            "0",
        ]);
        assert!(
            eventually(|| coherence.stats().reconnects >= 1 && coherence.is_healthy()).await,
            "{:?}",
            coherence.health()
        );
        assert!(cache.is_empty());
        let fault = coherence.health().last_fault.unwrap();
        assert!(fault.contains("dropped"), "{fault}");
    });
}

#[test]
fn an_unhealthy_bypassing_cache_still_makes_one_load_per_key() {
    run(|| async {
        // Redis is not there: the handle never turns healthy, and the cache bypasses.
        let coherence = Coherence::connect("redis://127.0.0.1:1/", "app")
            .await
            .unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let loader_calls = Arc::clone(&calls);
        let users = TtlCache::builder()
            .coherent(&coherence, "users")
            .build_loading(move |id: u64| {
                loader_calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, String>(format!("user {id}"))
                }
            })
            .unwrap();
        let users = Arc::new(users);
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let users = Arc::clone(&users);
                tokio::spawn(async move { users.get(&7).await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().as_deref(), Ok("user 7"));
        }
        assert!(!coherence.is_healthy());
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "one load for fifty callers"
        );
        assert!(users.cache().is_empty(), "nothing stored while unhealthy");
    });
}

#[test]
fn a_caller_after_the_lease_never_joins_a_load_that_began_before_it() {
    run(|| async {
        let server = RedisServer::start();
        let (a, slow, users_a) = slow_replica(&server).await;
        let b = replica(&server, "app").await;
        const K: u64 = 1_000_000;
        // A slow load of K begins while A is trusted: it reads the row before it changes.
        let early = tokio::spawn({
            let users_a = Arc::clone(&users_a);
            async move {
                users_a
                    .get_or_load(K, async {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        "old".to_owned()
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The row changes; its invalidation queues up behind 2,000 others at A.
        pile_up(&server).await;
        users(&b).invalidate_everywhere(&K).await.unwrap();
        tokio::time::sleep(LEASE + Duration::from_millis(150)).await;
        assert!(
            !early.is_finished(),
            "the check must come while the early load runs"
        );
        // A lease after the acknowledgement, a caller loads afresh rather than join the
        // early load.
        let late = users_a.get_or_load(K, async { "new".to_owned() }).await;
        assert_eq!(late, "new");
        assert_eq!(
            early.await.unwrap(),
            "old",
            "the early load still answers its caller"
        );
        slow.store(false, Ordering::Relaxed);
        assert!(eventually(|| a.is_healthy()).await, "did not recover");
    });
}

#[test]
fn a_bypassing_cache_answers_with_a_kept_value_only_while_trusted() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "app").await;
        let clock = ttlcache::ManualClock::new();
        let failing = Arc::new(AtomicBool::new(false));
        let loader_failing = Arc::clone(&failing);
        let users = TtlCache::builder()
            .clock(clock.clone())
            .time_to_live(Duration::from_secs(10))
            .stale_if_error(Duration::from_secs(60))
            .coherent(&coherence, "users")
            .build_loading(move |id: u64| {
                let failing = loader_failing.load(Ordering::SeqCst);
                async move {
                    if failing {
                        return Err("backend down".to_owned());
                    }
                    Ok(format!("user {id}"))
                }
            })
            .unwrap();
        assert_eq!(users.get(&1).await.as_deref(), Ok("user 1"));
        assert_eq!(users.get(&2).await.as_deref(), Ok("user 2"));
        clock.advance(Duration::from_secs(10));
        failing.store(true, Ordering::SeqCst);
        assert_eq!(
            users.get(&1).await.as_deref(),
            Ok("user 1"),
            "trusted: the kept value answers the failure"
        );
        drop(server);
        assert!(eventually(|| !coherence.is_healthy()).await);
        assert!(
            users.get(&2).await.is_err(),
            "untrusted: the failure reaches the caller, never a kept value"
        );
        assert_eq!(users.stats().stale_served, 1);
    });
}
