//! Coherent replicas (feature `redis`), against a real `redis-server` that each test starts
//! on a port of its own and stops: invalidations across "replicas" (separate `Coherence`
//! handles, as separate processes would have), and the faults that may lose them.

#![cfg(feature = "redis")]

#[path = "coherence/server.rs"]
mod server;
#[path = "coherence/support.rs"]
mod support;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use server::RedisServer;
use support::{an_invalidation_crosses, eventually, fast, holding, replica, run, users, within};
use ttlcache::{
    LoadingCache, TtlCache,
    redis::{Coherence, CoherenceError, Unhealthy},
};

#[test]
fn an_invalidation_on_one_replica_removes_the_key_on_the_others() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b, c) = (
            replica(&server, "app").await,
            replica(&server, "app").await,
            replica(&server, "app").await,
        );
        let (users_a, users_b, users_c) = (users(&a), users(&b), users(&c));
        for users in [&users_a, &users_b, &users_c] {
            users.insert(7, "Ada".into());
            users.insert(8, "Grace".into());
        }
        users_a.invalidate_everywhere(&7).await.unwrap();
        assert_eq!(users_a.get(&7), None, "removed here at once");
        assert!(eventually(|| users_b.get(&7).is_none() && users_c.get(&7).is_none()).await);
        assert_eq!(users_b.get(&8).as_deref(), Some("Grace"), "other keys stay");
        assert_eq!(a.stats().sent, 1);
        assert!(b.stats().received >= 1);
        assert!(a.is_healthy() && b.is_healthy() && c.is_healthy());
    });
}

#[test]
fn invalidate_all_everywhere_empties_every_replica_and_is_no_fault() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let (users_a, users_b) = (users(&a), users(&b));
        let other = TtlCache::<u64, u64>::builder()
            .coherent(&b, "orders")
            .build()
            .unwrap();
        users_b.insert(1, "one".into());
        users_b.insert(2, "two".into());
        other.insert(1, 1);
        users_a.invalidate_all_everywhere().await.unwrap();
        assert!(eventually(|| users_b.is_empty()).await);
        assert_eq!(other.get(&1), Some(1), "another cache's entries stay");
        assert!(b.is_healthy());
        assert_eq!(b.stats().flushes, 1, "only the flush of the first connect");
    });
}

#[test]
fn a_marker_written_by_another_client_invalidates() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "app").await;
        let sessions = TtlCache::<String, u64>::builder()
            .coherent(&coherence, "sessions")
            .build()
            .unwrap();
        sessions.insert("user:7".into(), 1);
        sessions.insert("user:8".into(), 2);
        // What a writer in another language does: any write of the marker key.
        server.cli(&["SET", "app:inv:sessions:user:7", "x"]);
        assert!(eventually(|| sessions.get("user:7").is_none()).await);
        assert_eq!(sessions.get("user:8"), Some(2));
    });
}

#[test]
fn flushall_from_outside_flushes_every_replica_which_then_recovers() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let (users_a, users_b) = (users(&a), users(&b));
        users_a.insert(1, "one".into());
        users_b.insert(1, "one".into());
        server.cli(&["FLUSHALL"]);
        assert!(eventually(|| users_a.is_empty() && users_b.is_empty()).await);
        assert!(eventually(|| a.is_healthy() && b.is_healthy()).await);
        assert!(
            a.stats().flushes >= 2,
            "connect, and FLUSHALL (one flush covers a fault that loses nothing on the connection)"
        );
        users_a.insert(2, "two".into());
        assert_eq!(
            users_a.get(&2).as_deref(),
            Some("two"),
            "stores again once healthy"
        );
    });
}

/// A fault and its recovery: a flush, unhealthy meanwhile, a write made during the gap never
/// surfacing as a stale value, and healthy again by itself.
async fn survives(
    server: &mut RedisServer,
    fault: impl FnOnce(&mut RedisServer),
    heal: impl FnOnce(&mut RedisServer),
) {
    let (a, b) = (replica(server, "app").await, replica(server, "app").await);
    let (users_a, users_b) = (users(&a), users(&b));
    users_b.insert(1, "old".into());
    let flushes = b.stats().flushes;
    fault(server);
    assert!(
        eventually(|| !b.is_healthy() && b.stats().flushes > flushes && users_b.is_empty()).await,
        "the fault was not noticed, or noticed without a flush"
    );
    // Bypass: nothing is stored while invalidations may be lost.
    users_b.insert(1, "old".into());
    assert_eq!(users_b.get(&1), None);
    // A write elsewhere during the gap: its invalidation cannot be sent now (or is stuck
    // behind a frozen server), but the key is gone there at once.
    let sent = users_a.invalidate_everywhere(&1).await;
    assert!(sent.is_err() || !b.is_healthy(), "{sent:?}");
    assert_eq!(users_a.get(&1), None);
    heal(server);
    assert!(
        eventually(|| a.is_healthy() && b.is_healthy()).await,
        "did not recover"
    );
    assert_eq!(users_b.get(&1), None, "the old value never comes back");
    users_b.insert(1, "new".into());
    assert_eq!(users_b.get(&1).as_deref(), Some("new"));
    users_a.invalidate_everywhere(&1).await.unwrap();
    assert!(eventually(|| users_b.get(&1).is_none()).await);
    assert!(b.stats().reconnects >= 1);
    assert!(b.stats().time_unhealthy > Duration::ZERO);
}

#[test]
fn a_killed_tracking_connection_flushes_and_recovers() {
    run(|| async {
        let mut server = RedisServer::start();
        // The replicas connect as `default`: turned off, it keeps them out until healed, so
        // that the gap lasts however slow this machine is.
        server.cli(&[
            "ACL",
            "SETUSER",
            "admin",
            "on",
            ">admin-pw",
            "~*",
            "&*",
            "+@all",
        ]);
        survives(
            &mut server,
            |server| {
                server.cli(&["ACL", "SETUSER", "default", "off"]);
                let kill = ["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"];
                server.cli_as("admin", "admin-pw", &kill);
            },
            |server| {
                server.cli_as("admin", "admin-pw", &["ACL", "SETUSER", "default", "on"]);
            },
        )
        .await;
    });
}

#[test]
fn a_closed_connection_is_noticed_at_once_not_after_the_lease() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = Coherence::builder(&server.url(), "app")
            .ping_every(Duration::from_secs(30))
            .lease(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        assert!(eventually(|| coherence.is_healthy()).await);
        let cache = users(&coherence);
        cache.insert(1, "one".into());
        server.cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        assert!(
            within(Duration::from_secs(2), || cache.is_empty()).await,
            "a closed connection waited for the lease"
        );
        assert!(eventually(|| coherence.is_healthy()).await);
    });
}

#[test]
fn a_server_restart_flushes_and_recovers() {
    run(|| async {
        let mut server = RedisServer::start();
        survives(&mut server, RedisServer::stop, RedisServer::launch).await;
    });
}

#[test]
fn a_frozen_server_is_noticed_within_the_lease_and_recovers_when_thawed() {
    run(|| async {
        let mut server = RedisServer::start();
        let frozen_at = std::cell::Cell::new(None);
        survives(
            &mut server,
            |server| {
                server.freeze();
                frozen_at.set(Some(Instant::now()));
            },
            |server| {
                let noticed = frozen_at.get().unwrap().elapsed();
                assert!(
                    noticed < Duration::from_secs(3),
                    "noticed after {noticed:?}"
                );
                server.thaw();
            },
        )
        .await;
    });
}

#[test]
fn a_server_asleep_past_the_lease_is_a_fault() {
    run(|| async {
        let mut server = RedisServer::start();
        survives(
            &mut server,
            |server| server.cli_in_background(&["DEBUG", "SLEEP", "3"]),
            |_| {},
        )
        .await;
    });
}

#[test]
fn redis_down_at_start_is_no_error_and_it_connects_once_up() {
    run(|| async {
        let mut server = RedisServer::not_started();
        let coherence = fast(Coherence::builder(&server.url(), "app"))
            .connect()
            .await
            .expect("an unreachable server is not an error");
        assert!(!coherence.is_healthy());
        let cache = users(&coherence);
        cache.insert(1, "one".into());
        assert_eq!(cache.get(&1), None, "bypassed while unhealthy");
        assert_eq!(
            cache.invalidate_everywhere(&1).await,
            Err(CoherenceError::Unavailable)
        );
        server.launch();
        assert!(eventually(|| coherence.is_healthy()).await);
        cache.insert(1, "one".into());
        assert_eq!(cache.get(&1).as_deref(), Some("one"));
    });
}

#[test]
fn serve_local_keeps_serving_while_unhealthy() {
    run(|| async {
        let mut server = RedisServer::start();
        let coherence = fast(Coherence::builder(&server.url(), "app"))
            .when_unhealthy(Unhealthy::ServeLocal)
            .connect()
            .await
            .unwrap();
        assert!(eventually(|| coherence.is_healthy()).await);
        let cache = users(&coherence);
        cache.insert(1, "one".into());
        server.stop();
        assert!(
            eventually(|| !coherence.is_healthy() && cache.is_empty()).await,
            "flushed all the same"
        );
        cache.insert(2, "two".into());
        assert_eq!(cache.get(&2).as_deref(), Some("two"));
        // What was stored meanwhile may be stale: flushed again when tracking is back.
        server.launch();
        assert!(eventually(|| coherence.is_healthy()).await);
        assert_eq!(cache.get(&2), None);
    });
}

/// A database of one key's version, and a gate a load can be held at: the loader reads the
/// version as it is called, counts the read, then waits at the gate if one is set.
#[derive(Clone)]
struct GatedSource {
    version: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    gate: Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
}

impl GatedSource {
    fn new() -> Self {
        Self {
            version: Arc::new(AtomicU64::new(1)),
            reads: Arc::default(),
            gate: Arc::default(),
        }
    }

    /// Holds the next load at the gate until the sender is used.
    fn hold_next(&self) -> tokio::sync::oneshot::Sender<()> {
        let (release, released) = tokio::sync::oneshot::channel();
        *self.gate.lock().unwrap() = Some(released);
        release
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    fn load(&self) -> impl Future<Output = Result<u64, String>> + Send + use<> {
        let read = self.version.load(Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().take();
        self.reads.fetch_add(1, Ordering::SeqCst);
        async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Ok(read)
        }
    }
}

#[test]
fn a_load_that_began_before_a_remote_invalidation_is_not_stored() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let source = GatedSource::new();
        let release = source.hold_next();
        let loads = source.clone();
        let users_b: LoadingCache<u64, u64, String> = TtlCache::builder()
            .coherent(&b, "users")
            .build_loading(move |_key: u64| loads.load())
            .unwrap();
        let users_a = users(&a);
        let slow = tokio::spawn({
            let users_b = users_b.clone();
            async move { users_b.get(&1).await }
        });
        assert!(eventually(|| source.reads() == 1).await);
        // The database write, then its invalidation, while the load holds the old version.
        source.version.store(2, Ordering::SeqCst);
        users_a.invalidate_everywhere(&1).await.unwrap();
        assert!(eventually(|| b.stats().received >= 1).await);
        release.send(()).unwrap();
        assert_eq!(
            slow.await.unwrap(),
            Ok(1),
            "its caller gets the value it loaded"
        );
        assert_eq!(users_b.get_if_present(&1), None, "but it was not stored");
        assert_eq!(users_b.get(&1).await, Ok(2));
    });
}

#[test]
fn a_lazy_invalidated_on_one_replica_loads_afresh_on_the_others() {
    run(|| async {
        let server = RedisServer::start();
        let source = Arc::new(AtomicU64::new(1));
        let config = |coherence: &Coherence| {
            let source = Arc::clone(&source);
            ttlcache::AsyncLazy::builder(move || {
                let version = source.load(Ordering::SeqCst);
                async move { version }
            })
            .coherent(coherence, "config")
            .build()
            .unwrap()
        };
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let (config_a, config_b) = (config(&a), config(&b));
        assert_eq!(*config_a.get().await, 1);
        assert_eq!(*config_b.get().await, 1);
        source.store(2, Ordering::SeqCst);
        config_a.invalidate_everywhere().await.unwrap();
        assert!(eventually(|| config_b.peek().is_none()).await);
        assert_eq!(*config_b.get().await, 2);
        // An operator's write of the marker does the same.
        source.store(3, Ordering::SeqCst);
        server.cli(&["SET", "app:inv:config", "reload"]);
        assert!(eventually(|| config_a.peek().is_none() && config_b.peek().is_none()).await);
        assert_eq!(*config_a.get().await, 3);
    });
}

#[test]
fn a_refresh_in_flight_when_its_key_is_invalidated_elsewhere_is_not_stored() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let source = GatedSource::new();
        let loads = source.clone();
        let users_b: LoadingCache<u64, u64, String> = TtlCache::builder()
            .time_to_live(Duration::from_secs(60))
            .refresh_after(Duration::from_millis(50))
            .coherent(&b, "users")
            .build_loading(move |_key: u64| loads.load())
            .unwrap();
        assert_eq!(users_b.get(&1).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let release = source.hold_next();
        // A stale read: served at once, and a refresh starts, reading version 1.
        assert_eq!(users_b.get(&1).await, Ok(1));
        assert!(eventually(|| source.reads() == 2).await);
        source.version.store(2, Ordering::SeqCst);
        users(&a).invalidate_everywhere(&1).await.unwrap();
        assert!(eventually(|| users_b.get_if_present(&1).is_none()).await);
        release.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            users_b.get_if_present(&1),
            None,
            "the refresh was not stored"
        );
        assert_eq!(users_b.get(&1).await, Ok(2));
    });
}

#[test]
fn a_reconnect_storm_slows_its_reconnects_down() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "app").await;
        let storm = Instant::now();
        while storm.elapsed() < Duration::from_millis(1_500) {
            server.cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reconnects = coherence.stats().reconnects;
        // Waits of 50, 100, then 200 ms (this test's cap), give or take a quarter, fit about
        // eight attempts in 1.5 s: not one per kill (150).
        assert!(
            (1..=12).contains(&reconnects),
            "{reconnects} reconnects in a 1.5 s storm of 10 ms"
        );
        assert!(
            eventually(|| coherence.is_healthy()).await,
            "did not recover"
        );
    });
}

#[test]
fn a_slow_consumer_cut_off_by_the_server_flushes_and_recovers() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "app").await;
        let cache = users(&coherence);
        cache.insert(1, "one".into());
        server.cli(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 64kb 32kb 1",
        ]);
        // One script writes 20,000 markers of 100-byte keys: their invalidations, sent to the
        // tracking connection together, are far over its 64 KiB output limit.
        server.cli(&[
            "EVAL",
            "for i = 1, 20000 do redis.call('SET', 'app:inv:other:' .. string.rep('k', 100) .. i, 1) end",
            "0",
        ]);
        assert!(eventually(|| cache.is_empty()).await, "not flushed");
        assert!(
            eventually(|| coherence.is_healthy()).await,
            "did not recover"
        );
        assert!(coherence.stats().reconnects >= 1);
    });
}

#[test]
fn a_unix_socket_url_works() {
    run(|| async {
        let mut server = RedisServer::not_started();
        let socket = server.path("redis.sock");
        let socket_text = socket.to_str().unwrap().to_owned();
        server.launch_with(&["--unixsocket", &socket_text]);
        let url = format!("redis+unix://{socket_text}");
        an_invalidation_crosses(&url).await;
    });
}

/// Each key's acknowledged versions, with when `invalidate_everywhere` returned.
type Acknowledged = Arc<Vec<std::sync::Mutex<Vec<(u64, Instant)>>>>;

/// The faults a soak injects, one at a time.
#[derive(Clone, Copy, Debug)]
enum Fault {
    KillConnections,
    Restart,
    FreezePastTheLease,
    SleepPastTheLease,
}

#[test]
fn a_soak_of_faults_in_turn_never_serves_a_version_older_than_one_acknowledged() {
    const KEYS: usize = 16;
    const REPLICAS: usize = 3;
    let soak = Duration::from_secs(6);
    // A read may lag an acknowledged write by the lease (and the scheduling of this 2-core
    // machine), never by more.
    let lease = Duration::from_millis(400);
    let grace = lease + Duration::from_millis(300);
    run(|| async move {
        let mut server = RedisServer::start();
        // The database: each key's current version.
        let database: Arc<Vec<AtomicU64>> =
            Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
        let acknowledged: Acknowledged =
            Arc::new((0..KEYS).map(|_| std::sync::Mutex::default()).collect());
        let mut replicas = Vec::new();
        for _ in 0..REPLICAS {
            let coherence = fast(Coherence::builder(&server.url(), "soak"))
                .connect()
                .await
                .unwrap();
            assert!(eventually(|| coherence.is_healthy()).await);
            let database = Arc::clone(&database);
            let items: LoadingCache<u64, u64, String> = TtlCache::builder()
                .time_to_live(Duration::from_secs(60))
                .coherent(&coherence, "items")
                .build_loading(move |key: u64| {
                    let version = database[key as usize].load(Ordering::SeqCst);
                    async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        Ok(version)
                    }
                })
                .unwrap();
            replicas.push((coherence, items));
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

        // Faults, from a thread of their own: the server's controls block.
        let faults = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let kinds = [
                    Fault::KillConnections,
                    Fault::Restart,
                    Fault::FreezePastTheLease,
                    Fault::SleepPastTheLease,
                ];
                let mut injected = Vec::new();
                let mut turn = 0_usize;
                while !stop.load(Ordering::SeqCst) {
                    // Calm spells longer than the grace: a lost invalidation would show there.
                    std::thread::sleep(Duration::from_millis(800));
                    let fault = kinds[turn % kinds.len()];
                    turn += 1;
                    match fault {
                        Fault::KillConnections => {
                            server.cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
                        }
                        Fault::Restart => {
                            server.stop();
                            std::thread::sleep(Duration::from_millis(100));
                            server.launch();
                        }
                        Fault::FreezePastTheLease => {
                            server.freeze();
                            std::thread::sleep(Duration::from_millis(600));
                            server.thaw();
                        }
                        Fault::SleepPastTheLease => {
                            server.cli_in_background(&["DEBUG", "SLEEP", "0.6"]);
                            std::thread::sleep(Duration::from_millis(700));
                        }
                    }
                    injected.push(fault);
                }
                (server, injected)
            })
        };

        // The writer: a new version, then its invalidation, from a replica in turn.
        let writer = {
            let (database, acknowledged, stop) = (
                Arc::clone(&database),
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
            );
            let writers: Vec<_> = replicas.iter().map(|(_, items)| items.clone()).collect();
            tokio::spawn(async move {
                let (mut acked, mut failed) = (0_u64, 0_u64);
                let mut turn = 0_usize;
                while !stop.load(Ordering::SeqCst) {
                    let key = turn * 7 % KEYS;
                    let version = database[key].fetch_add(1, Ordering::SeqCst) + 1;
                    let sent = tokio::time::timeout(
                        Duration::from_secs(2),
                        writers[turn % REPLICAS].invalidate_everywhere(&(key as u64)),
                    )
                    .await;
                    if let Ok(Ok(())) = sent {
                        acknowledged[key]
                            .lock()
                            .unwrap()
                            .push((version, Instant::now()));
                        acked += 1;
                    } else {
                        failed += 1;
                    }
                    turn += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                (acked, failed)
            })
        };

        // Readers: each read checked against what was acknowledged more than `grace` before
        // it began.
        let check = {
            let acknowledged = Arc::clone(&acknowledged);
            move |key: usize, version: u64, began: Instant| -> bool {
                let acked = acknowledged[key].lock().unwrap();
                let newest_due = acked
                    .iter()
                    .filter(|(_, at)| *at + grace < began)
                    .map(|(version, _)| *version)
                    .max()
                    .unwrap_or(0);
                version >= newest_due
            }
        };
        let readers: Vec<_> = replicas
            .iter()
            .map(|(_, items)| {
                let (items, stop, check) = (items.clone(), Arc::clone(&stop), check.clone());
                tokio::spawn(async move {
                    let (mut reads, mut stale) = (0_u64, 0_u64);
                    let mut turn = 0_usize;
                    while !stop.load(Ordering::SeqCst) {
                        let key = turn * 5 % KEYS;
                        let began = Instant::now();
                        if let Ok(version) = items.get(&(key as u64)).await {
                            reads += 1;
                            stale += u64::from(!check(key, version, began));
                        }
                        turn += 1;
                        tokio::task::yield_now().await;
                    }
                    (reads, stale)
                })
            })
            .collect();

        tokio::time::sleep(soak).await;
        stop.store(true, Ordering::SeqCst);
        let (acked, failed) = writer.await.unwrap();
        let (mut reads, mut stale) = (0, 0);
        for reader in readers {
            let (r, s) = reader.await.unwrap();
            reads += r;
            stale += s;
        }
        let (server, injected) = faults.join().unwrap();

        // Settled: every replica healthy again, then a lease more.
        assert!(eventually(|| replicas.iter().all(|(coherence, _)| coherence.is_healthy())).await);
        tokio::time::sleep(lease).await;
        let mut stale_after = 0;
        for (_, items) in &replicas {
            for key in 0..KEYS {
                let newest = acknowledged[key]
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(v, _)| *v)
                    .max()
                    .unwrap_or(0);
                let version = items.get(&(key as u64)).await.unwrap();
                stale_after += u64::from(version < newest);
            }
        }
        // And the plain path, faults over: a write reaches every replica well within the lease.
        let mut late = 0;
        for key in 0..KEYS {
            let version = database[key].fetch_add(1, Ordering::SeqCst) + 1;
            replicas[key % REPLICAS]
                .1
                .invalidate_everywhere(&(key as u64))
                .await
                .unwrap();
            for (_, items) in &replicas {
                let mut seen = 0;
                let reached = within(lease / 2, || {
                    seen = items.get_if_present(&(key as u64)).unwrap_or(version);
                    seen >= version
                })
                .await;
                late += u64::from(!reached);
            }
        }
        let flushes: u64 = replicas.iter().map(|(c, _)| c.stats().flushes).sum();
        let reconnects: u64 = replicas.iter().map(|(c, _)| c.stats().reconnects).sum();
        println!(
            "soak: {} faults {injected:?}; {acked} writes acknowledged, {failed} not; \
             {reads} reads, {stale} older than a write acknowledged {grace:?} before; \
             {flushes} flushes, {reconnects} reconnects; {stale_after} stale after settling, \
             {late} replicas late for a write after it",
            injected.len()
        );
        drop(server);
        assert!(injected.len() >= 4, "every kind of fault was injected");
        assert!(acked > 0 && reads > 0);
        assert_eq!(stale, 0, "a read older than the lease allows");
        assert_eq!(stale_after, 0, "a stale version after settling");
        assert_eq!(
            late, 0,
            "an invalidation did not reach a replica within half a lease"
        );
    });
}

#[test]
fn an_acl_user_in_the_url_authenticates_and_its_password_is_never_shown() {
    run(|| async {
        let server = RedisServer::start();
        server.cli(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">s3cret-pw",
            "~*",
            "&*",
            "+@all",
        ]);
        let url = server
            .url()
            .replacen("redis://", "redis://app:s3cret-pw@", 1);
        an_invalidation_crosses(&url).await;
        let builder = format!("{:?}", Coherence::builder(&url, "app"));
        assert!(!builder.contains("s3cret-pw"), "{builder}");

        // A wrong password is no error at connect, only a handle that never turns healthy.
        let wrong = server.url().replacen("redis://", "redis://app:wrong@", 1);
        let refused = fast(Coherence::builder(&wrong, "app"))
            .connect()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!refused.is_healthy());
        assert_eq!(
            users(&refused).invalidate_everywhere(&1).await,
            Err(CoherenceError::Unavailable)
        );
    });
}

/// Makes a certificate authority, a server certificate for 127.0.0.1 and a client certificate
/// in `dir`, with the `openssl` command; returns their paths.
#[cfg(feature = "redis-tls")]
fn certificates(dir: &std::path::Path) -> Certificates {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is needed for the TLS test (apt-get install openssl)");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=ttlcache-test-ca",
    ]);
    // A certificate for `name` from the authority, with `extension` (any extension makes it
    // an X.509 v3 certificate, the only version rustls accepts).
    let issue = |name: &str, subject: &str, extension: &str| {
        let [key, request, certificate, config] =
            ["key", "csr", "crt", "cnf"].map(|kind| format!("{name}.{kind}"));
        openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &request, "-subj",
            subject,
        ]);
        std::fs::write(dir.join(&config), extension).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &request,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &certificate,
            "-days",
            "2",
            "-extfile",
            &config,
        ]);
    };
    issue(
        "server",
        "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    );
    // A client's certificate, for mutual TLS.
    issue(
        "client",
        "/CN=ttlcache-test-client",
        "extendedKeyUsage=clientAuth",
    );
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    Certificates {
        server: path("server.crt"),
        server_key: path("server.key"),
        authority: path("ca.crt"),
        client: path("client.crt"),
        client_key: path("client.key"),
    }
}

/// What [`certificates`] made: paths of PEM files.
#[cfg(feature = "redis-tls")]
struct Certificates {
    server: String,
    server_key: String,
    authority: String,
    client: String,
    client_key: String,
}

/// A server with TLS on a port of its own (its plain port stays for `redis-cli`), asking
/// clients for a certificate if `clients_show_theirs`; returns it, its TLS port and the
/// certificates.
#[cfg(feature = "redis-tls")]
fn tls_server(clients_show_theirs: bool) -> (RedisServer, String, Certificates) {
    let mut server = RedisServer::not_started();
    let certificates = certificates(&server.path(""));
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    server.launch_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &certificates.server,
        "--tls-key-file",
        &certificates.server_key,
        "--tls-ca-cert-file",
        &certificates.authority,
        "--tls-auth-clients",
        if clients_show_theirs { "yes" } else { "no" },
    ]);
    (server, tls_port, certificates)
}

#[cfg(feature = "redis-tls")]
#[test]
fn a_tls_url_works() {
    run(|| async {
        let (_server, tls_port, _) = tls_server(false);
        // The test's own authority is in no trust store: `#insecure` skips the check.
        an_invalidation_crosses(&format!("rediss://127.0.0.1:{tls_port}/#insecure")).await;
    });
}

#[cfg(feature = "redis-tls")]
#[test]
fn a_private_authority_and_a_client_certificate_given_to_the_builder_work() {
    run(|| async {
        let (server, tls_port, certificates) = tls_server(true);
        let url = format!("rediss://127.0.0.1:{tls_port}/");
        let read = |path: &str| std::fs::read(path).unwrap();
        let with_certificates = || {
            fast(Coherence::builder(&url, "app"))
                .tls_root_certificates(read(&certificates.authority))
                .tls_client_certificate(read(&certificates.client), read(&certificates.client_key))
        };
        let (a, b) = (
            with_certificates().connect().await.unwrap(),
            with_certificates().connect().await.unwrap(),
        );
        assert!(
            eventually(|| a.is_healthy() && b.is_healthy()).await,
            "{:?}",
            a.health()
        );
        let (users_a, users_b) = (users(&a), users(&b));
        holding(&users_b, 1, "one").await;
        users_a.invalidate_everywhere(&1).await.unwrap();
        assert!(eventually(|| users_b.get(&1).is_none()).await);

        // Without the client certificate the server refuses, and the reason says so.
        let anonymous = fast(Coherence::builder(&url, "app"))
            .tls_root_certificates(read(&certificates.authority))
            .connect()
            .await
            .unwrap();
        // Without the authority, the server's certificate is not trusted.
        let untrusting = fast(Coherence::builder(&url, "app"))
            .tls_client_certificate(read(&certificates.client), read(&certificates.client_key))
            .connect()
            .await
            .unwrap();
        for refused in [&anonymous, &untrusting] {
            assert!(
                eventually(|| refused.health().last_error.is_some()).await,
                "no reason"
            );
            assert!(!refused.is_healthy(), "{:?}", refused.health());
        }

        // Certificates that do not parse, or that no TLS URL uses, are errors at once.
        let not_pem = fast(Coherence::builder(&url, "app"))
            .tls_root_certificates(b"not a certificate".to_vec())
            .connect()
            .await;
        let plain = fast(Coherence::builder("redis://127.0.0.1/", "app"))
            .tls_root_certificates(read(&certificates.authority))
            .connect()
            .await;
        for refused in [not_pem, plain] {
            assert!(
                matches!(refused, Err(CoherenceError::InvalidTls { .. })),
                "{refused:?}"
            );
        }
        drop(server);
    });
}

#[test]
fn an_undecodable_marker_flushes_the_cache_and_it_stays_coherent() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let (users_a, users_b) = (users(&a), users(&b));
        users_b.insert(1, "one".into());
        let flushes = b.stats().flushes;
        // `users` holds u64 keys: "abc" is no key of it, so what it invalidates is unknown.
        server.cli(&["SET", "app:inv:users:abc", "x"]);
        assert!(eventually(|| users_b.is_empty() && b.stats().flushes > flushes).await);
        assert!(eventually(|| b.is_healthy()).await);
        assert_eq!(b.stats().reconnects, 0, "handled on the same connection");
        users_b.insert(2, "two".into());
        users_a.invalidate_everywhere(&2).await.unwrap();
        assert!(eventually(|| users_b.get(&2).is_none()).await);
    });
}

#[test]
fn a_panicking_listener_does_not_stop_invalidations() {
    run(|| async {
        let server = RedisServer::start();
        let (a, b) = (replica(&server, "app").await, replica(&server, "app").await);
        let users_a = users(&a);
        let users_b = TtlCache::<u64, String>::builder()
            .coherent(&b, "users")
            .eviction_listener(|key, _, _| assert_ne!(key, 1, "the listener panics on key 1"))
            .build()
            .unwrap();
        users_b.insert(1, "one".into());
        users_b.insert(2, "two".into());
        users_a.invalidate_everywhere(&1).await.unwrap();
        assert!(eventually(|| users_b.get(&1).is_none()).await);
        users_a.invalidate_everywhere(&2).await.unwrap();
        assert!(
            eventually(|| users_b.get(&2).is_none()).await,
            "the supervisor survived the panic"
        );
        assert!(eventually(|| b.is_healthy()).await);
    });
}

#[test]
fn the_last_handle_dropped_closes_its_connection() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "gone").await;
        let cache = users(&coherence);
        let named = || {
            server
                .cli(&["CLIENT", "LIST"])
                .contains("name=ttlcache:gone")
        };
        assert!(named());
        drop(cache);
        drop(coherence);
        assert!(
            eventually(|| !named()).await,
            "the connection outlived its handle"
        );
    });
}

#[test]
fn settings_that_cannot_work_are_errors_not_panics() {
    run(|| async {
        for namespace in ["", "app:v2"] {
            assert!(matches!(
                Coherence::connect("redis://127.0.0.1/", namespace).await,
                Err(CoherenceError::InvalidNamespace { .. })
            ));
        }
        let coherence = Coherence::connect("redis://127.0.0.1:1/", "app")
            .await
            .unwrap();
        let _users = users(&coherence);
        let other_keys = TtlCache::<String, u64>::builder()
            .coherent(&coherence, "users")
            .build();
        assert!(matches!(
            other_keys,
            Err(ttlcache::BuildError::CoherentNameTaken { .. })
        ));
        let same_keys = TtlCache::<u64, u64>::builder()
            .coherent(&coherence, "users")
            .build();
        assert!(
            same_keys.is_ok(),
            "two caches of one name and key type may share it"
        );
        let named = TtlCache::<u64, u64>::builder()
            .coherent(&coherence, "a:b")
            .build();
        assert!(named.unwrap_err().to_string().contains("\"a:b\""));
    });
    // Outside any runtime: the handle runs its own, so `connect` works there too, and awaits
    // nothing, so one poll answers.
    let mut outside = std::pin::pin!(Coherence::connect("redis://127.0.0.1/", "app"));
    let waker = std::task::Waker::noop();
    let std::task::Poll::Ready(outside) = outside
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    else {
        panic!("connect awaits nothing");
    };
    assert!(outside.is_ok(), "{outside:?}");
}

#[cfg(feature = "serde")]
#[test]
fn a_coherent_cache_restores_no_snapshot() {
    run(|| async {
        let server = RedisServer::start();
        let coherence = replica(&server, "app").await;
        let plain = TtlCache::<u64, String>::builder().build().unwrap();
        plain.insert(1, "one".into());
        let cache = users(&coherence);
        assert_eq!(cache.restore(plain.snapshot()), 0);
        assert!(cache.is_empty());
    });
}
