//! Feature `metrics`: the reporter thread reports a named cache within a few `INTERVAL`s, in a
//! test binary where nothing calls `report`.
#![cfg(feature = "metrics")]

use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use ttlcache::TtlCache;

#[test]
fn the_reporter_thread_reports_without_being_asked() {
    let exporter = PrometheusBuilder::new().install_recorder().unwrap();
    let cache = TtlCache::builder().name("sessions").build().unwrap();
    cache.insert("a", 1);
    cache.insert("b", 2);
    let series = r#"ttlcache_entries{cache="sessions"}"#;
    // Every report is at most `INTERVAL` (one second) old: allow for a slow machine.
    let deadline = Instant::now() + ttlcache::metrics::INTERVAL * 10;
    while !exporter.render().contains(&format!("{series} 2\n")) {
        assert!(Instant::now() < deadline, "{}", exporter.render());
        std::thread::sleep(Duration::from_millis(20));
    }
}
