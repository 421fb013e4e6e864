//! `AsyncLazy::get` of a fresh value, beside what users would otherwise write.
//!
//! `cargo bench --bench lazy`. Each holds an `Arc<Config>`; each read returns an `Arc` clone.

// criterion_group! generates functions that cannot carry docs.
#![allow(missing_docs)]

use std::{
    future::Future,
    hint::black_box,
    pin::pin,
    sync::{Arc, RwLock},
    task::{Context, Poll, Waker},
    time::Duration,
};

use arc_swap::ArcSwap;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ttlcache::AsyncLazy;

/// Reads per measured iteration.
const BATCH: u64 = 1_000;

#[derive(Debug)]
struct Config {
    replicas: u32,
}

/// Polls a future that is ready at once, as a fresh `get` is.
#[inline]
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a fresh value is ready at once"),
    }
}

fn fresh_get(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("lazy_get_fresh");
    group.throughput(Throughput::Elements(BATCH));

    let mut reads = |name: &str, read: &dyn Fn() -> Arc<Config>| {
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    black_box(read().replicas);
                }
            })
        });
    };

    let plain = AsyncLazy::new(|| async { Config { replicas: 3 } });
    ready(plain.get());
    reads("ttlcache_async_lazy", &|| ready(plain.get()));

    let refreshing = runtime.block_on(async {
        let lazy = AsyncLazy::builder(|| async { Config { replicas: 3 } })
            .time_to_live(Duration::from_secs(3_600))
            .refresh_after(Duration::from_secs(1_800))
            .build()
            .unwrap();
        lazy.get().await;
        lazy
    });
    reads("ttlcache_async_lazy_refresh_after", &|| {
        ready(refreshing.get())
    });

    let once = tokio::sync::OnceCell::new();
    once.set(Arc::new(Config { replicas: 3 })).unwrap();
    reads("tokio_once_cell_get_arc_clone", &|| {
        Arc::clone(once.get().unwrap())
    });

    let swap = ArcSwap::from_pointee(Config { replicas: 3 });
    reads("arc_swap_load_full", &|| swap.load_full());

    let locked = RwLock::new(Arc::new(Config { replicas: 3 }));
    reads("rwlock_arc_clone", &|| Arc::clone(&locked.read().unwrap()));
    group.finish();
}

criterion_group!(benches, fresh_get);
criterion_main!(benches);
