//! An expensive async computation memoized behind a `LoadingCache`: a thousand concurrent
//! callers, a refresh interval, and what it cost.
//!
//! `cargo run --release --example memoize`

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ttlcache::TtlCache;

/// Stands in for a slow backend: a report over a customer's orders, 50 ms a call.
async fn expensive_report(customer: u32, calls: &AtomicU64) -> Result<String, std::io::Error> {
    let call = calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(format!(
        "report for customer {customer} (computation #{call})"
    ))
}

#[tokio::main]
async fn main() {
    let calls = Arc::new(AtomicU64::new(0));
    let backend = Arc::clone(&calls);
    let reports = TtlCache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(2))
        .refresh_after(Duration::from_millis(500))
        .max_concurrent_loads(16)
        .build_loading(move |customer: u32| {
            let backend = Arc::clone(&backend);
            async move { expensive_report(customer, &backend).await }
        })
        .expect("valid settings");

    // Five rounds a second apart; each round, a thousand callers ask for one of ten reports.
    for round in 0..5 {
        let started = Instant::now();
        let callers: Vec<_> = (0..1_000u32)
            .map(|caller| {
                let reports = reports.clone();
                tokio::spawn(async move {
                    let asked = Instant::now();
                    let report = reports
                        .get(&(caller % 10))
                        .await
                        .expect("the backend is up");
                    (report, asked.elapsed())
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(callers.len());
        for caller in callers {
            let (report, latency) = caller.await.expect("no caller panics");
            assert!(report.starts_with("report for customer"));
            latencies.push(latency);
        }
        latencies.sort_unstable();
        let stats = reports.cache().stats();
        println!(
            "round {round}: 1,000 callers in {:>7.2?}; latency p50 {:>9.2?}, p99 {:>9.2?}, max {:>9.2?}; \
             computations so far {:>2}, hit rate {:.3}",
            started.elapsed(),
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 99 / 100],
            latencies[latencies.len() - 1],
            calls.load(Ordering::Relaxed),
            stats.hit_rate(),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let stats = reports.cache().stats();
    println!(
        "\n5,000 requests, {} computations: {} loads ({} of them background refreshes after the \
         first 10), {} failures, {:.2?} spent loading",
        calls.load(Ordering::Relaxed),
        stats.load_successes,
        stats.load_successes.saturating_sub(10),
        stats.load_failures,
        stats.total_load_time,
    );
}
