//! Three replicas of a service, each with its own in-process cache of products, kept coherent
//! over Redis: a writer changes the database and calls `invalidate_everywhere`, readers on
//! every replica read through their cache, and halfway through the example kills every
//! replica's tracking connection. It prints how long invalidations took to reach the other
//! replicas, what the fault cost, and how many stale reads there were (none).
//!
//! `cargo run --release --example replicas --features redis`
//!
//! It uses `REDIS_URL` if set; otherwise it starts a `redis-server` of its own on a free
//! loopback port (Debian: `apt-get install redis-server`).

#[path = "support/own_redis.rs"]
mod own_redis;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use own_redis::OwnRedis;
use ttlcache::{LoadingCache, TtlCache, redis::Coherence};

const PRODUCTS: u64 = 200;
const REPLICAS: usize = 3;
const WRITES: usize = 2_000;

/// The database: each product's current version.
type Database = Arc<Vec<AtomicU64>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = OwnRedis::start()?;
            (server.url(), Some(server))
        }
    };
    println!(
        "Redis: {}",
        if _server.is_some() {
            "a redis-server of the example's own"
        } else {
            "REDIS_URL"
        }
    );
    let database: Database = Arc::new((0..PRODUCTS).map(|_| AtomicU64::new(1)).collect());

    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let coherence = Coherence::connect(&url, "shop").await?;
        let database = Arc::clone(&database);
        let products: LoadingCache<u64, u64, String> = TtlCache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(600))
            .coherent(&coherence, "products")
            .build_loading(move |id: u64| {
                let version = database[id as usize].load(Ordering::SeqCst);
                async move { Ok(version) }
            })?;
        replicas.push((coherence, products));
    }
    let healthy = Instant::now();
    while !replicas.iter().all(|(coherence, _)| coherence.is_healthy()) {
        if healthy.elapsed() > Duration::from_secs(10) {
            return Err("the replicas did not connect to Redis in 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Readers on every replica, counting stale reads: a version older than one whose
    // invalidation had reached every replica before the read began.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..PRODUCTS).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<_> = replicas
        .iter()
        .map(|(_, products)| {
            let (products, stop, acknowledged) = (
                products.clone(),
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
            );
            tokio::spawn(async move {
                let (mut reads, mut stale) = (0_u64, 0_u64);
                let mut id = 0;
                while !stop.load(Ordering::Relaxed) {
                    id = (id + 7) % PRODUCTS;
                    let due = acknowledged[id as usize].load(Ordering::SeqCst);
                    if let Ok(version) = products.get(&id).await {
                        reads += 1;
                        stale += u64::from(version < due);
                    }
                    tokio::task::yield_now().await;
                }
                (reads, stale)
            })
        })
        .collect();

    // The writer: a new version, its invalidation from one replica, and how long until the
    // other replicas no longer hold the key.
    let mut latencies = Vec::with_capacity(WRITES * (REPLICAS - 1));
    let mut failed = 0;
    for write in 0..WRITES {
        if write == WRITES / 2 {
            let killed = kill_tracking_connections(&url)?;
            println!("halfway: killed {killed} tracking connections");
        }
        // A write every half millisecond or so, as a busy service's might come.
        tokio::time::sleep(Duration::from_micros(500)).await;
        let id = (write as u64 * 13) % PRODUCTS;
        let from = write % REPLICAS;
        let version = database[id as usize].fetch_add(1, Ordering::SeqCst) + 1;
        if replicas[from].1.invalidate_everywhere(&id).await.is_err() {
            // Redis unreachable: this replica removed it; the others flushed (they lost
            // their connections too) and bypass until they are back.
            failed += 1;
            continue;
        }
        let sent = Instant::now();
        for (index, (_, products)) in replicas.iter().enumerate() {
            if index == from {
                continue;
            }
            // Gone, or already reloaded by a reader: no longer the old version.
            while products
                .cache()
                .peek(&id)
                .is_some_and(|held| held < version)
            {
                tokio::task::yield_now().await;
            }
            latencies.push(sent.elapsed());
        }
        acknowledged[id as usize].fetch_max(version, Ordering::SeqCst);
    }
    stop.store(true, Ordering::Relaxed);
    let (mut reads, mut stale) = (0, 0);
    for reader in readers {
        let (r, s) = reader.await?;
        reads += r;
        stale += s;
    }

    latencies.sort();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile) as usize];
    println!(
        "{} invalidations reached the other replicas: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
    for (index, (coherence, products)) in replicas.iter().enumerate() {
        let stats = coherence.stats();
        println!(
            "replica {index}: healthy {}, {} sent, {} received, {} flushes, {} reconnects, \
             {:?} unhealthy; cache hit rate {:.1}%",
            coherence.is_healthy(),
            stats.sent,
            stats.received,
            stats.flushes,
            stats.reconnects,
            stats.time_unhealthy,
            products.cache().stats().hit_rate() * 100.0
        );
    }
    println!("{reads} reads, {stale} stale; {failed} writes not acknowledged during the fault");
    if stale > 0 {
        return Err(format!("{stale} stale reads").into());
    }
    Ok(())
}

/// Kills every client connection but the one that asks: the replicas' tracking connections.
fn kill_tracking_connections(url: &str) -> Result<i64, Box<dyn std::error::Error>> {
    let mut connection = redis::Client::open(url)?.get_connection()?;
    Ok(redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut connection)?)
}
