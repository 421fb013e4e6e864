//! Batch loading: `get_all` of 100 keys with 90 cached, one loader call for the 10 misses,
//! against 10 concurrent single misses on a cache whose loader takes one key.
//!
//! `cargo bench --bench batch`. Each iteration invalidates the 10 missing keys and asks for
//! them again on a current-thread tokio runtime; the loaders answer from memory at once, so
//! what is timed is the caches' own work (hits, single flight, tasks, gathering, landing).
//! SPEC: `get_all` takes at most 1.2× the time of the 10 single misses, in one loader call.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

use std::{
    collections::HashMap,
    future::Future,
    hint::black_box,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::Poll,
};

use criterion::{Criterion, criterion_group, criterion_main};
use ttlcache::TtlCache;

const CACHED: u64 = 90;
const MISSING: u64 = 10;

/// Runs `futures` concurrently in the calling task, as `futures::future::join_all` does.
async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, out) in futures.iter_mut().zip(&mut done) {
            if let Some(pending) = future
                && let Poll::Ready(value) = pending.as_mut().poll(cx)
            {
                *out = Some(value);
                *future = None;
            }
        }
        if futures.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter()
        .map(|value| value.expect("every future finished"))
        .collect()
}

fn batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let batch_calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&batch_calls);
    let batched = TtlCache::builder()
        .build_batch_loading(move |keys: Vec<u64>| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move {
                Ok::<_, ()>(
                    keys.into_iter()
                        .map(|key| (key, key))
                        .collect::<HashMap<_, _>>(),
                )
            }
        })
        .unwrap();
    let single_calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&single_calls);
    let single = TtlCache::builder()
        .build_loading(move |key: u64| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, ()>(key) }
        })
        .unwrap();
    runtime.block_on(async {
        batched.get_all(0..CACHED + MISSING).await.unwrap();
        single.get_all(0..CACHED + MISSING).await.unwrap();
    });
    let missing = CACHED..CACHED + MISSING;

    let mut group = c.benchmark_group("batch");
    let before = batch_calls.load(Ordering::Relaxed);
    let mut iterations = 0;
    group.bench_function("get_all_100_with_90_cached", |b| {
        b.iter(|| {
            iterations += 1;
            for key in missing.clone() {
                batched.invalidate(&key);
            }
            let found = runtime
                .block_on(batched.get_all(0..CACHED + MISSING))
                .unwrap();
            black_box(found);
        })
    });
    let calls = batch_calls.load(Ordering::Relaxed) - before;
    println!("get_all: {calls} loader calls in {iterations} iterations");
    assert_eq!(calls, iterations, "one loader call per get_all");

    group.bench_function("ten_concurrent_single_misses", |b| {
        b.iter(|| {
            for key in missing.clone() {
                single.invalidate(&key);
            }
            let gets = missing
                .clone()
                .map(|key| {
                    let single = &single;
                    Box::pin(async move { single.get(&key).await.unwrap() })
                        as Pin<Box<dyn Future<Output = u64>>>
                })
                .collect();
            black_box(runtime.block_on(join_all(gets)));
        })
    });
    group.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);
