//! An HTTP service as people write them, with ttlcache in front of its slow database:
//!
//! - `GET /users/{id}`: a user, through a `LoadingCache` (one database query per missing id,
//!   however many requests ask at once);
//! - `GET /reports/{day}`: a report, from a function memoized with `#[ttlcache::memoize]`;
//! - `GET /config`: the configuration, an `AsyncLazy` the database reloads every second;
//! - `GET /metrics`: Prometheus text, the caches' counters included (feature `metrics`).
//!
//! On shutdown (Ctrl-C) the user cache is saved, and restored when the service starts again:
//! a warm restart.
//!
//! ```sh
//! cargo run --release --example service --all-features                 # serves 127.0.0.1:3000
//! cargo run --release --example service --all-features -- --load       # drives itself
//! ```
//!
//! With `--load [--seconds N]` it serves on a loopback port and drives itself with
//! [`CLIENTS`] concurrent keep-alive clients for N seconds (default 5), asking for users with a
//! Zipf-like skew, first with the caches bypassed, then with them, then once more after a warm
//! restart; it prints requests per second, latency percentiles, the hit rate and the database
//! queries of each run, and fails unless the cache spared the database most queries, `/metrics`
//! listed the cache's counters and the restart restored entries.

use std::{
    error::Error,
    fmt,
    net::SocketAddr,
    path::Path as FilePath,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, oneshot},
};
use ttlcache::{AsyncLazy, CacheSnapshot, LoadingCache, TtlCache};

/// Users in the database.
const USERS: u64 = 100_000;
/// Users the cache holds: a tenth of them, enough for the skewed traffic's head.
const CACHED_USERS: u64 = 10_000;
/// What one query costs, once it has a connection.
const QUERY_TIME: Duration = Duration::from_millis(2);
/// The database's connection pool: queries beyond it wait.
const CONNECTIONS: usize = 16;
/// The Zipf exponent of `--load`'s keys: the hundred most asked-for users get 58% of the
/// requests, the [`CACHED_USERS`] most asked-for 89%.
const SKEW: f64 = 1.1;
/// Concurrent clients of `--load`.
const CLIENTS: usize = 64;
/// One request in this many asks for a report instead of a user.
const REPORT_EVERY: u64 = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// A failed query. `Clone`: a memoized function hands its error to every caller that waited.
#[derive(Clone, Debug)]
struct DbError(String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for DbError {}

#[derive(Debug)]
struct Config {
    greeting: String,
    /// How many times it was loaded: it goes up as `refresh_every` reloads it.
    generation: u64,
}

/// The slow database: a pool of connections, a fixed time per query, every query counted.
struct Database {
    pool: Semaphore,
    queries: AtomicU64,
    config_loads: AtomicU64,
}

impl Database {
    fn new() -> Self {
        Self {
            pool: Semaphore::new(CONNECTIONS),
            queries: AtomicU64::new(0),
            config_loads: AtomicU64::new(0),
        }
    }

    /// Runs one query: waits for a connection, then for the query itself.
    async fn query<T>(&self, cost: u32, answer: impl FnOnce() -> T) -> T {
        let _connection = self.pool.acquire().await.expect("the pool is never closed");
        self.queries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("database_queries_total").increment(1);
        tokio::time::sleep(QUERY_TIME * cost).await;
        answer()
    }

    async fn user(&self, id: u64) -> Result<User, DbError> {
        self.query(1, || {
            (id < USERS)
                .then(|| User {
                    id,
                    name: format!("user {id}"),
                })
                .ok_or_else(|| DbError(format!("no user {id}")))
        })
        .await
    }

    /// A report over a day's orders: five times a user's cost.
    async fn report(&self, day: u32) -> Result<String, DbError> {
        self.query(5, || Ok(format!("day {day}: {} orders", 1_000 + day * 7)))
            .await
    }

    async fn config(&self) -> Config {
        let generation = self.config_loads.fetch_add(1, Ordering::Relaxed) + 1;
        self.query(1, || Config {
            greeting: "Hello,".to_string(),
            generation,
        })
        .await
    }
}

/// The day's report, memoized: one query per day a minute, however many requests ask.
#[ttlcache::memoize(capacity = 1_000, time_to_live = "1m", name = "reports", key: u32 = day)]
async fn daily_report(db: &Database, day: u32) -> Result<String, DbError> {
    db.report(day).await
}

/// What every handler shares.
#[derive(Clone)]
struct App {
    db: Arc<Database>,
    users: LoadingCache<u64, User, DbError>,
    config: AsyncLazy<Config>,
    /// False to bypass the caches, for the comparison `--load` prints.
    cached: bool,
    prometheus: PrometheusHandle,
}

impl App {
    /// A service instance with a fresh database, its user cache restored from `snapshot` if
    /// one was saved there.
    fn start(
        cached: bool,
        prometheus: PrometheusHandle,
        snapshot: &FilePath,
    ) -> Result<Self, Box<dyn Error>> {
        let db = Arc::new(Database::new());
        let loader_db = Arc::clone(&db);
        let users = TtlCache::builder()
            .name("users")
            .trace_keys()
            .max_capacity(CACHED_USERS)
            .time_to_live(Duration::from_secs(300))
            .refresh_after(Duration::from_secs(240))
            .build_loading(move |id: u64| {
                let db = Arc::clone(&loader_db);
                async move { db.user(id).await }
            })?;
        if let Ok(file) = std::fs::File::open(snapshot) {
            let saved: CacheSnapshot<u64, User> =
                serde_json::from_reader(std::io::BufReader::new(file))?;
            let restored = users.cache().restore(saved);
            tracing::info!(restored, "warm restart: user cache restored");
        }
        let config_db = Arc::clone(&db);
        let config = AsyncLazy::builder(move || {
            let db = Arc::clone(&config_db);
            async move { db.config().await }
        })
        .refresh_every(Duration::from_secs(1))
        .build()?;
        Ok(Self {
            db,
            users,
            config,
            cached,
            prometheus,
        })
    }

    /// Saves the user cache for the next start.
    fn save(&self, snapshot: &FilePath) -> Result<usize, Box<dyn Error>> {
        let saved = self.users.cache().snapshot();
        let file = std::fs::File::create(snapshot)?;
        serde_json::to_writer(std::io::BufWriter::new(file), &saved)?;
        Ok(saved.len())
    }

    fn router(self) -> Router {
        Router::new()
            .route("/users/{id}", get(user))
            .route("/reports/{day}", get(report))
            .route("/config", get(config))
            .route("/metrics", get(scrape))
            .with_state(self)
    }
}

type Reply = Result<String, (StatusCode, String)>;

fn not_found(error: impl fmt::Display) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, error.to_string())
}

async fn user(State(app): State<App>, Path(id): Path<u64>) -> Reply {
    let user = if app.cached {
        app.users.get(&id).await.map_err(not_found)?
    } else {
        app.db.user(id).await.map_err(not_found)?
    };
    let config = app.config.get().await;
    Ok(format!("{} {}\n", config.greeting, user.name))
}

async fn report(State(app): State<App>, Path(day): Path<u32>) -> Reply {
    let report = if app.cached {
        daily_report(&app.db, day).await
    } else {
        app.db.report(day).await
    };
    report.map(|report| report + "\n").map_err(not_found)
}

async fn config(State(app): State<App>) -> String {
    let config = app.config.get().await;
    format!(
        "greeting={:?} generation={}\n",
        config.greeting, config.generation
    )
}

async fn scrape(State(app): State<App>) -> String {
    // Fresh numbers for this scrape, not the reporter's last round.
    ttlcache::metrics::report();
    app.prometheus.render()
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish.
async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds = match args.iter().position(|arg| arg == "--seconds") {
        Some(at) => args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .ok_or("--seconds needs a number of seconds")?,
        None => 5,
    };
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.iter().any(|arg| arg == "--load") {
        runtime.block_on(load_test(prometheus, Duration::from_secs(seconds)))
    } else {
        runtime.block_on(serve_until_ctrl_c(prometheus))
    }
}

/// The service proper: serves 127.0.0.1:3000 until Ctrl-C, restoring and saving its cache.
async fn serve_until_ctrl_c(prometheus: PrometheusHandle) -> Result<(), Box<dyn Error>> {
    let snapshot = std::env::temp_dir().join("ttlcache-service-users.json");
    let app = App::start(true, prometheus, &snapshot)?;
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        "serving http://{}/users/42 (Ctrl-C stops)",
        listener.local_addr()?
    );
    let ctrl_c = async {
        // Without a signal handler there is nothing to wait for: serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    serve(listener, app.clone(), ctrl_c).await?;
    let saved = app.save(&snapshot)?;
    tracing::info!(saved, path = %snapshot.display(), "shut down: user cache saved");
    Ok(())
}

/// What one run of the load test measured.
struct Run {
    requests: usize,
    took: Duration,
    /// Sorted request latencies, in microseconds.
    latencies: Vec<u32>,
    hit_rate: f64,
    queries: u64,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let at = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        Duration::from_micros(u64::from(self.latencies[at]))
    }

    fn print(&self, label: &str) {
        println!(
            "{label:<24} {:>9} {:>10.0} {:>9.2?} {:>9.2?} {:>8.1}% {:>11}",
            self.requests,
            self.requests as f64 / self.took.as_secs_f64(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.hit_rate * 100.0,
            self.queries,
        );
    }
}

/// Drives the service three times on loopback (bypassing the caches, with them, and after a
/// warm restart) and checks what a test must: the cache spared the database, `/metrics` lists
/// its counters, the restart restored entries.
async fn load_test(prometheus: PrometheusHandle, each: Duration) -> Result<(), Box<dyn Error>> {
    let snapshot =
        std::env::temp_dir().join(format!("ttlcache-service-load-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&snapshot);
    let keys = Arc::new(Zipf::new(USERS, SKEW));
    println!(
        "{CLIENTS} clients, {} s a run, {USERS} users (Zipf {SKEW}), {CACHED_USERS} cached, \
         queries of {QUERY_TIME:?} on {CONNECTIONS} connections",
        each.as_secs()
    );
    println!(
        "{:<24} {:>9} {:>10} {:>9} {:>9} {:>9} {:>11}",
        "run", "requests", "req/s", "p50", "p99", "hit rate", "db queries"
    );
    let runs = [
        ("no cache", false),
        ("cache", true),
        ("cache, warm restart", true),
    ];
    let mut measured = Vec::new();
    let mut scrape = String::new();
    for (label, cached) in runs {
        let app = App::start(cached, prometheus.clone(), &snapshot)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        let (requests, took, latencies) = drive(addr, Arc::clone(&keys), each).await?;
        if cached {
            scrape = Client::connect(addr).await?.get("/metrics").await?.1;
        }
        let _ = stop.send(());
        server.await??;
        if cached {
            app.save(&snapshot)?;
        }
        let stats = app.users.cache().stats();
        let run = Run {
            requests,
            took,
            latencies,
            hit_rate: if cached { stats.hit_rate() } else { 0.0 },
            queries: app.db.queries.load(Ordering::Relaxed),
        };
        run.print(label);
        measured.push(run);
    }
    let _ = std::fs::remove_file(&snapshot);

    let (bypassed, cached, restarted) = (&measured[0], &measured[1], &measured[2]);
    println!(
        "with the cache: {:.1}x the requests per second, {:.1}% of the database queries per request",
        (cached.requests as f64 / cached.took.as_secs_f64())
            / (bypassed.requests as f64 / bypassed.took.as_secs_f64()),
        100.0 * (cached.queries as f64 / cached.requests as f64)
            / (bypassed.queries as f64 / bypassed.requests as f64),
    );
    // Cold misses weigh on a short run: count both cached runs, and ask for a third.
    let (queries, requests) = (
        cached.queries + restarted.queries,
        (cached.requests + restarted.requests) as u64,
    );
    if queries * 3 > requests {
        return Err(format!(
            "the cache did not spare the database: {queries} queries for {requests} requests"
        )
        .into());
    }
    for series in [
        r#"ttlcache_hits_total{cache="users"}"#,
        r#"ttlcache_misses_total{cache="users"}"#,
        r#"ttlcache_hits_total{cache="reports"}"#,
        "database_queries_total",
    ] {
        if !scrape.contains(series) {
            return Err(format!("/metrics lists no {series}:\n{scrape}").into());
        }
    }
    if restarted.hit_rate <= cached.hit_rate * 0.9 {
        return Err("the warm restart restored nothing useful".into());
    }
    Ok(())
}

/// Runs [`CLIENTS`] keep-alive clients against `addr` for `each`; returns the requests they
/// made, the time they took and the sorted latencies.
async fn drive(
    addr: SocketAddr,
    keys: Arc<Zipf>,
    each: Duration,
) -> Result<(usize, Duration, Vec<u32>), Box<dyn Error>> {
    let started = Instant::now();
    let deadline = started + each;
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|client| {
            let keys = Arc::clone(&keys);
            tokio::spawn(async move {
                let mut connection = Client::connect(addr).await?;
                let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ (client + 1));
                let mut latencies = Vec::new();
                for request in 0_u64.. {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let key = keys.sample(random.next());
                    let path = if request % REPORT_EVERY == 0 {
                        format!("/reports/{}", key % 30)
                    } else {
                        format!("/users/{key}")
                    };
                    let sent = Instant::now();
                    let (status, body) = connection.get(&path).await?;
                    if status != 200 {
                        return Err(format!("{path}: {status} {body}").into());
                    }
                    latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await?.map_err(|error| error.to_string())?);
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    Ok((latencies.len(), took, latencies))
}

/// A minimal HTTP/1.1 client on one keep-alive connection: enough for GETs on loopback.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    /// The status and body of `GET path`.
    async fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|status| status.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(std::io::Error::other)?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Keys `0..n` drawn with probability proportional to `1 / (rank + 1)^s`: a few are asked for
/// most of the time, as in real traffic.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(s);
                total
            })
            .collect();
        Self { cumulative }
    }

    /// The key a uniform `random` word picks.
    fn sample(&self, random: u64) -> u64 {
        let total = self.cumulative.last().copied().unwrap_or_default();
        let target = (random >> 11) as f64 / (1_u64 << 53) as f64 * total;
        self.cumulative.partition_point(|&c| c < target) as u64
    }
}

/// xorshift64*: a small, fast generator, plenty for picking keys.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
