//! Feature `metrics`: a named cache's statistics reach an installed exporter (Prometheus's,
//! rendered as a scrape would be) when `report` is called. The timer has a test binary of its
//! own (`metrics_timer.rs`), where nothing calls `report`.
#![cfg(feature = "metrics")]

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ttlcache::{ManualClock, TtlCache};

/// The process's recorder: one per test binary, shared by its tests, which use distinct names.
fn exporter() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
}

/// The value of the series `series` (name and labels, as rendered) in a scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

#[test]
fn a_named_cache_reports_its_statistics_when_asked() {
    let exporter = exporter();
    let clock = ManualClock::new();
    let cache = TtlCache::builder()
        .name("users")
        .max_capacity(2)
        .shards(1)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    cache.insert(1, 1);
    cache.insert(2, 2);
    cache.insert(3, 3); // over capacity: one of the three goes
    assert!(cache.get(&4).is_none());
    let present = (1..=3).filter(|key| cache.get(key).is_some()).count();
    assert_eq!(present, 2);
    let loaded = cache.try_get_or_insert_with(5, || Err::<u32, _>("down"));
    assert!(loaded.is_err());
    clock.advance(Duration::from_secs(10));
    assert_eq!(cache.purge_expired(), 2);

    ttlcache::metrics::report();
    let scrape = exporter.render();
    let users = |series: &str| value(&scrape, series).unwrap_or_else(|| panic!("{series}"));
    assert_eq!(users(r#"ttlcache_hits_total{cache="users"}"#), 2.0);
    assert_eq!(users(r#"ttlcache_misses_total{cache="users"}"#), 3.0);
    assert_eq!(users(r#"ttlcache_inserts_total{cache="users"}"#), 3.0);
    assert_eq!(
        users(r#"ttlcache_evictions_total{cache="users",cause="size"}"#),
        1.0
    );
    assert_eq!(
        users(r#"ttlcache_evictions_total{cache="users",cause="expired"}"#),
        2.0
    );
    assert_eq!(
        users(r#"ttlcache_loads_total{cache="users",result="failure"}"#),
        1.0
    );
    assert_eq!(
        users(r#"ttlcache_loads_total{cache="users",result="success"}"#),
        0.0
    );
    assert_eq!(users(r#"ttlcache_entries{cache="users"}"#), 0.0);
    assert!(scrape.contains("# HELP ttlcache_hits_total"), "{scrape}");
}

#[test]
fn a_cache_without_a_name_reports_nothing() {
    let exporter = exporter();
    let cache = TtlCache::builder().build().unwrap();
    cache.insert(1, 1);
    assert_eq!(cache.name(), None);
    ttlcache::metrics::report();
    assert!(!exporter.render().contains(r#"cache="""#));
}

/// A coherence handle reports its counts and health under its namespace, and a coherent
/// cache given no name reports under its coherent name; against a real `redis-server`.
#[cfg(feature = "redis")]
#[test]
fn a_coherence_reports_its_counts_and_health() {
    #[allow(dead_code, reason = "the fault injection this test does not need")]
    #[path = "coherence/server.rs"]
    mod server;

    let exporter = exporter();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut server = server::RedisServer::start();
        let coherence = ttlcache::redis::Coherence::connect(&server.url(), "shop")
            .await
            .unwrap();
        let carts = TtlCache::<u64, u64>::builder()
            .coherent(&coherence, "carts")
            .build()
            .unwrap();
        assert_eq!(carts.name(), Some("carts"));
        // A second handle on the same namespace keeps series of its own.
        let other = ttlcache::redis::Coherence::connect(&server.url(), "shop")
            .await
            .unwrap();
        let scrape = || {
            ttlcache::metrics::report();
            exporter.render()
        };
        let handles = |scrape: &str| -> Vec<String> {
            let prefix = r#"ttlcache_coherence_healthy{namespace="shop",handle=""#;
            scrape
                .lines()
                .filter_map(|line| Some(line.strip_prefix(prefix)?.split('"').next()?.to_owned()))
                .collect()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while handles(&scrape()).len() < 2 {
            assert!(std::time::Instant::now() < deadline, "{}", scrape());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Handles are numbered in the order they were made.
        let (mine, theirs) = {
            let mut ids: Vec<u64> = handles(&scrape())
                .iter()
                .map(|id| id.parse().unwrap())
                .collect();
            ids.sort_unstable();
            (ids[0], ids[1])
        };
        let series = |name: &str, id: u64| {
            format!(r#"ttlcache_coherence_{name}{{namespace="shop",handle="{id}"}}"#)
        };
        let healthy = &series("healthy", mine);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while value(&scrape(), healthy) != Some(1.0) {
            assert!(std::time::Instant::now() < deadline, "{}", scrape());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        carts.insert(1, 1);
        carts.invalidate_everywhere(&1).await.unwrap();
        let now = scrape();
        assert_eq!(value(&now, &series("sent_total", mine)), Some(1.0));
        assert_eq!(value(&now, &series("sent_total", theirs)), Some(0.0));
        drop(other);
        assert!(value(&now, r#"ttlcache_inserts_total{cache="carts"}"#) == Some(1.0));

        server.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while value(&scrape(), healthy) != Some(0.0) {
            assert!(std::time::Instant::now() < deadline, "{}", scrape());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let flushes = &series("flushes_total", mine);
        assert!(value(&scrape(), flushes) >= Some(2.0), "{}", scrape());
    });
}
