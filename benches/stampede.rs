//! A stampede: 1,000 tasks ask for one missing key at once, and loading it takes 10 ms.
//!
//! `cargo bench --bench stampede`. Each iteration builds an empty cache, starts 1,000 tasks on
//! a multi-threaded tokio runtime that all ask for key 0, and times until the last of them
//! has its value. A cache that coalesces loads finishes in about one load's time and calls
//! the loader once; the loads counted are printed after the group. Peers: `LoadingCache::get`,
//! moka's `future::Cache::get_with` and quick_cache's `get_value_or_guard_async`.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use ttlcache::TtlCache;

const TASKS: usize = 1_000;
const LOAD_TIME: Duration = Duration::from_millis(10);

/// The slow backend every peer loads from; counts its calls.
async fn load(calls: &AtomicU64) -> u64 {
    calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(LOAD_TIME).await;
    42
}

/// Times `TASKS` tasks that each run `ask` once, started together on `runtime`.
fn stampede<F>(runtime: &tokio::runtime::Runtime, ask: impl Fn() -> F) -> Duration
where
    F: Future<Output = u64> + Send + 'static,
{
    runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(ask())).collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 42);
        }
        start.elapsed()
    })
}

fn one_key(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("stampede");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut loads = Vec::new();

    let mut peer = |name: &'static str, run: &dyn Fn(&Arc<AtomicU64>) -> Duration| {
        let calls = Arc::new(AtomicU64::new(0));
        let stampedes = AtomicU64::new(0);
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                stampedes.fetch_add(iterations, Ordering::Relaxed);
                (0..iterations).map(|_| run(&calls)).sum()
            })
        });
        let per_stampede =
            calls.load(Ordering::Relaxed) as f64 / stampedes.load(Ordering::Relaxed) as f64;
        loads.push((name, per_stampede));
    };

    peer("ttlcache", &|calls| {
        let calls = Arc::clone(calls);
        let cache = runtime.block_on(async {
            TtlCache::builder()
                .build_loading(move |_: u64| {
                    let calls = Arc::clone(&calls);
                    async move { Ok::<_, ()>(load(&calls).await) }
                })
                .unwrap()
        });
        stampede(&runtime, || {
            let cache = cache.clone();
            async move { cache.get(&0).await.unwrap() }
        })
    });
    peer("moka", &|calls| {
        let cache = moka::future::Cache::<u64, u64>::new(10_000);
        stampede(&runtime, || {
            let (cache, calls) = (cache.clone(), Arc::clone(calls));
            async move { cache.get_with(0, async move { load(&calls).await }).await }
        })
    });
    peer("quick_cache", &|calls| {
        let cache = Arc::new(quick_cache::sync::Cache::<u64, u64>::new(10_000));
        stampede(&runtime, || {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(calls));
            async move {
                match cache.get_value_or_guard_async(&0).await {
                    Ok(value) => value,
                    Err(guard) => {
                        let value = load(&calls).await;
                        let _ = guard.insert(value);
                        value
                    }
                }
            }
        })
    });
    group.finish();
    for (name, per_stampede) in loads {
        println!("stampede/{name}: {per_stampede:.2} loads per {TASKS} tasks");
    }
}

criterion_group!(benches, one_key);
criterion_main!(benches);
