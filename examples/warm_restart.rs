//! Warm restarts: a service saves its cache when it shuts down and restores it when it starts,
//! so that its first requests after a deploy hit the cache instead of stampeding the backend.
//!
//! Run with `cargo run --release --example warm_restart --features serde`.

use std::{
    error::Error,
    fs::File,
    io::{BufReader, BufWriter},
    time::{Duration, Instant},
};

use ttlcache::{CacheSnapshot, TtlCache};

/// Products in the catalogue; some are asked for far more often than others.
const PRODUCTS: f64 = 1_000_000.0;
/// The product pages the service caches.
const CAPACITY: u64 = 50_000;
/// Requests the service serves before it restarts.
const BEFORE_RESTART: usize = 1_000_000;
/// Requests after the restart whose hit rate is compared.
const AFTER_RESTART: usize = 20_000;

type Pages = TtlCache<u64, String>;

fn main() -> Result<(), Box<dyn Error>> {
    let mut requests = Requests::new(42);
    let before = pages();
    let rate = serve(&before, &mut requests, BEFORE_RESTART);
    println!("before the restart: {BEFORE_RESTART} requests, hit rate {rate:.1}%");

    // Shutting down: save the cache.
    let path =
        std::env::temp_dir().join(format!("ttlcache-warm-restart-{}.json", std::process::id()));
    let started = Instant::now();
    let snapshot = before.snapshot();
    serde_json::to_writer(BufWriter::new(File::create(&path)?), &snapshot)?;
    println!(
        "saved {} entries to {} ({:.1} MB) in {:?}",
        snapshot.len(),
        path.display(),
        std::fs::metadata(&path)?.len() as f64 / 1e6,
        started.elapsed(),
    );
    drop((before, snapshot));

    // Starting again, twice over: once cold, once from the file. Both then see the same
    // requests, the ones the service would have seen next.
    let cold = pages();
    let cold_rate = serve(&cold, &mut requests.clone(), AFTER_RESTART);

    let warm = pages();
    let started = Instant::now();
    let snapshot: CacheSnapshot<u64, String> =
        serde_json::from_reader(BufReader::new(File::open(&path)?))?;
    let restored = warm.restore(snapshot);
    println!("restored {restored} entries in {:?}", started.elapsed());
    std::fs::remove_file(&path)?;
    let warm_rate = serve(&warm, &mut requests, AFTER_RESTART);

    println!("the first {AFTER_RESTART} requests after the restart:");
    println!("  hit rate with an empty cache:      {cold_rate:5.1}%");
    println!("  hit rate with the restored cache:  {warm_rate:5.1}%");
    assert!(warm_rate > cold_rate, "a restored cache serves more hits");
    Ok(())
}

fn pages() -> Pages {
    TtlCache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(Duration::from_secs(600))
        .build()
        .expect("valid settings")
}

/// Serves `count` requests through the cache; returns the hit rate, in percent.
fn serve(pages: &Pages, requests: &mut Requests, count: usize) -> f64 {
    let mut hits = 0;
    for product in requests.take(count) {
        let mut hit = true;
        pages.get_or_insert_with(product, || {
            hit = false;
            render(product)
        });
        hits += usize::from(hit);
    }
    100.0 * hits as f64 / count as f64
}

/// The backend's work: what a miss costs.
fn render(product: u64) -> String {
    format!("<h1>Product {product}</h1>")
}

/// Product ids with a Zipf-like popularity: `PRODUCTS^u` for a uniform `u` is drawn with a
/// density proportional to `1 / x`, so product `k` is asked for about as often as `1 / k`.
#[derive(Clone)]
struct Requests(u64);

impl Requests {
    fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl Iterator for Requests {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let uniform = (z ^ (z >> 31)) as f64 / u64::MAX as f64;
        Some(PRODUCTS.powf(uniform) as u64)
    }
}
