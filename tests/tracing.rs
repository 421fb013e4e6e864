//! Feature `tracing`: loads, failures, timeouts and panics are reported to a subscriber, with
//! the cache's name and (with `trace_keys`) the key; hits are not.
#![cfg(feature = "tracing")]

use std::{
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use ttlcache::{LoadError, TtlCache};

/// What a `fmt` subscriber wrote, one event a line.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `test` on a current-thread runtime (so spawned loads run on this thread) under a
/// subscriber that records every level; returns what it wrote.
fn traced<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Vec<String> {
    let written = Written::default();
    let sink = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(test());
    });
    written.lines()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|line| line.contains(needle)).count()
}

#[test]
fn a_load_is_traced_with_the_cache_and_key_and_a_hit_is_not() {
    let lines = traced(|| async {
        let users = TtlCache::builder()
            .name("users")
            .trace_keys()
            .build_loading(|id: u64| async move { Ok::<_, String>(format!("user {id}")) })
            .unwrap();
        assert_eq!(users.get(&7).await.unwrap(), "user 7");
        for _ in 0..10 {
            assert_eq!(users.get(&7).await.unwrap(), "user 7");
        }
    });
    assert_eq!(count(&lines, "load finished"), 1, "{lines:#?}");
    assert_eq!(
        count(&lines, r#"load{cache="users" key=7}"#),
        1,
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 1, "hits are not traced: {lines:#?}");
}

#[test]
fn failures_timeouts_and_panics_are_traced() {
    let lines = traced(|| async {
        let flaky = TtlCache::builder()
            .name("flaky")
            .load_timeout(Duration::from_millis(20))
            .build_loading(|key: u64| async move {
                match key {
                    0 => Err("down"),
                    1 => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok(1)
                    }
                    _ => panic!("loader bug"),
                }
            })
            .unwrap();
        assert!(matches!(flaky.get(&0).await, Err(LoadError::Failed(_))));
        assert_eq!(flaky.get(&1).await, Err(LoadError::TimedOut));
        assert_eq!(flaky.get(&2).await, Err(LoadError::Panicked));
    });
    // Keys not asked for with `trace_keys` show as `_`.
    assert_eq!(
        count(&lines, r#"load{cache="flaky" key=_}"#),
        5,
        "{lines:#?}"
    );
    assert_eq!(count(&lines, "load failed"), 3, "{lines:#?}");
    assert_eq!(count(&lines, "WARN"), 4, "{lines:#?}");
    assert_eq!(
        count(&lines, "load timed out load_timeout_ms=20.0"),
        1,
        "{lines:#?}"
    );
    assert_eq!(count(&lines, "ERROR"), 1, "{lines:#?}");
    assert_eq!(count(&lines, "loader panicked"), 1, "{lines:#?}");
}

#[test]
fn a_refresh_and_a_listener_panic_are_traced() {
    let lines = traced(|| async {
        let config = TtlCache::builder()
            .name("config")
            .trace_keys()
            .refresh_after(Duration::from_millis(10))
            .build_loading(|key: String| async move { Ok::<_, String>(key.len()) })
            .unwrap();
        assert_eq!(config.get("port").await, Ok(4));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(config.get("port").await, Ok(4)); // stale: starts a refresh
        tokio::time::sleep(Duration::from_millis(30)).await;

        let listened = TtlCache::builder()
            .name("listened")
            .eviction_listener(|_: u32, _: u32, _| panic!("listener bug"))
            .build()
            .unwrap();
        listened.insert(1, 1);
        let removal =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listened.remove(&1)));
        assert!(removal.is_err());
    });
    assert_eq!(
        count(&lines, r#"refresh started cache="config" key="port""#),
        1,
        "{lines:#?}"
    );
    assert_eq!(count(&lines, "load finished"), 2, "{lines:#?}");
    assert_eq!(
        count(
            &lines,
            r#"eviction listener panicked cache="listened" panics=1"#
        ),
        1,
        "{lines:#?}"
    );
}

/// A coherence handle traces its flushes: when tracking comes on, and when the connection is
/// lost; against a real `redis-server`.
#[cfg(feature = "redis")]
#[test]
fn coherence_flushes_are_traced() {
    #[allow(dead_code, reason = "the fault injection this test does not need")]
    #[path = "coherence/server.rs"]
    mod server;

    let lines = traced(|| async {
        let mut server = server::RedisServer::start();
        let coherence = ttlcache::redis::Coherence::connect(&server.url(), "shop")
            .await
            .unwrap();
        let _carts = TtlCache::<u64, u64>::builder()
            .coherent(&coherence, "carts")
            .build()
            .unwrap();
        let patience = std::time::Instant::now() + Duration::from_secs(10);
        while !coherence.is_healthy() && std::time::Instant::now() < patience {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(coherence.is_healthy());
        server.stop();
        while coherence.is_healthy() && std::time::Instant::now() < patience {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!coherence.is_healthy());
    });
    let on = r#"coherence tracking on: flushed every member namespace="shop""#;
    assert!(count(&lines, on) >= 1, "{lines:#?}");
    assert_eq!(
        count(&lines, r#"coherence healthy namespace="shop""#),
        1,
        "{lines:#?}"
    );
    let lost = r#"WARN ttlcache::trace: coherence lost: flushed every member namespace="shop""#;
    // At least one: a reconnection attempt may fail and flush again before the runtime ends.
    assert!(count(&lines, lost) >= 1, "{lines:#?}");
}
