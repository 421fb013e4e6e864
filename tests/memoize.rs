//! `#[memoize]`: a function's results cached by its arguments or a `key`, `Err` never cached
//! and shared with concurrent callers, expiry and refresh in real time, and caches that
//! outlive the tokio runtime of each test.
//!
//! Each test memoizes functions of its own, with counters of its own, since tests run
//! concurrently and every memoized function's cache is a `static`.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    time::{Duration, Instant},
};

use tokio::time::{sleep, timeout};
use ttlcache::memoize;

/// Waits until `gate` opens: concurrent callers pile up on one call of a body meanwhile.
async fn wait_for(gate: &AtomicBool) {
    while !gate.load(SeqCst) {
        sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `done` until it holds, failing the test after five seconds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(5)).await;
    }
}

/// An error that is not `std::error::Error`: only `Clone` is asked of it.
#[derive(Clone, Debug, PartialEq)]
struct Unavailable {
    attempt: usize,
}

static DOUBLE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(capacity = 100)]
fn double(x: u64) -> u64 {
    DOUBLE_RUNS.fetch_add(1, SeqCst);
    x * 2
}

#[test]
fn a_sync_fn_runs_its_body_once_per_key() {
    assert_eq!(double(21), 42);
    assert_eq!(double(21), 42);
    assert_eq!(DOUBLE_RUNS.load(SeqCst), 1, "the second call is a hit");
    assert_eq!(double(5), 10);
    assert_eq!(
        DOUBLE_RUNS.load(SeqCst),
        2,
        "another argument is another key"
    );
    let stats = double_cache().stats();
    assert_eq!((stats.hits, stats.misses), (1, 2));
    assert_eq!(double_cache().remove(&(21_u64,)), Some(42));
    assert_eq!(double(21), 42);
    assert_eq!(
        DOUBLE_RUNS.load(SeqCst),
        3,
        "a removed key runs the body again"
    );
}

static PARSE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize]
fn parse_port(text: &str) -> Result<u16, String> {
    PARSE_RUNS.fetch_add(1, SeqCst);
    text.parse::<u16>()
        .map_err(|error| format!("{text}: {error}"))
}

#[test]
fn a_sync_fn_caches_ok_and_never_err() {
    assert_eq!(
        parse_port("80a"),
        Err("80a: invalid digit found in string".to_string()),
        "the caller gets the body's own error"
    );
    assert!(parse_port("80a").is_err());
    assert_eq!(PARSE_RUNS.load(SeqCst), 2, "an error is not cached");
    assert_eq!(parse_port("8080"), Ok(8080));
    assert_eq!(parse_port("8080"), Ok(8080));
    assert_eq!(PARSE_RUNS.load(SeqCst), 3, "an `Ok` is cached");
    assert_eq!(parse_port_cache().get(&("8080".to_string(),)), Some(8080));
}

static LABEL_RUNS: AtomicUsize = AtomicUsize::new(0);
static LABEL_GATE: AtomicBool = AtomicBool::new(false);

#[memoize]
async fn label(id: u64) -> String {
    LABEL_RUNS.fetch_add(1, SeqCst);
    wait_for(&LABEL_GATE).await;
    format!("label {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_of_one_key_run_the_body_once() {
    let calls: Vec<_> = (0..100).map(|_| tokio::spawn(label(7))).collect();
    until("every caller asked", || {
        label_cache().cache().stats().misses >= 100
    })
    .await;
    LABEL_GATE.store(true, SeqCst);
    for call in calls {
        assert_eq!(call.await.unwrap(), "label 7");
    }
    assert_eq!(LABEL_RUNS.load(SeqCst), 1);
}

static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);
static FLAKY_GATE: AtomicBool = AtomicBool::new(false);

/// Fails its first call, succeeds afterwards.
#[memoize]
async fn flaky(id: u64) -> Result<String, Unavailable> {
    let attempt = FLAKY_RUNS.fetch_add(1, SeqCst) + 1;
    wait_for(&FLAKY_GATE).await;
    if attempt == 1 {
        Err(Unavailable { attempt })
    } else {
        Ok(format!("profile {id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_error_reaches_every_concurrent_caller_and_is_not_cached() {
    let calls: Vec<_> = (0..100).map(|_| tokio::spawn(flaky(3))).collect();
    until("every caller asked", || {
        flaky_cache().cache().stats().misses >= 100
    })
    .await;
    // Each caller joins the pending call in the same step that counts its miss; this only
    // leaves a preempted one time to finish that step.
    sleep(Duration::from_millis(50)).await;
    FLAKY_GATE.store(true, SeqCst);
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert_eq!(error, Unavailable { attempt: 1 });
        assert_eq!(error.attempt, 1);
    }
    assert_eq!(
        FLAKY_RUNS.load(SeqCst),
        1,
        "the body ran once for all callers"
    );
    assert_eq!(flaky(3).await, Ok("profile 3".to_string()));
    assert_eq!(FLAKY_RUNS.load(SeqCst), 2, "the error was not cached");
}

static GREET_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize]
async fn greet(name: &str, excited: bool) -> String {
    GREET_RUNS.fetch_add(1, SeqCst);
    let end = if excited { "!" } else { "." };
    format!("hello {name}{end}")
}

#[tokio::test]
async fn reference_arguments_are_keyed_by_their_owned_form() {
    let name = String::from("ada");
    assert_eq!(greet(&name, true).await, "hello ada!");
    assert_eq!(greet("ada", true).await, "hello ada!");
    assert_eq!(GREET_RUNS.load(SeqCst), 1, "equal arguments, one key");
    assert_eq!(greet("ada", false).await, "hello ada.");
    assert_eq!(GREET_RUNS.load(SeqCst), 2);
    assert_eq!(
        greet_cache().get_if_present(&("ada".to_string(), true)),
        Some("hello ada!".to_string())
    );
}

static USER_ID_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(key: String = user.to_lowercase())]
async fn user_id(user: &str) -> Result<u64, Unavailable> {
    USER_ID_RUNS.fetch_add(1, SeqCst);
    Ok(user.len() as u64)
}

#[tokio::test]
async fn a_key_option_replaces_the_arguments() {
    assert_eq!(user_id("Ada").await, Ok(3));
    assert_eq!(user_id("ADA").await, Ok(3));
    assert_eq!(
        USER_ID_RUNS.load(SeqCst),
        1,
        "both spellings are the key \"ada\""
    );
    assert_eq!(user_id_cache().get("ada"), Some(3));
}

struct Account {
    id: u64,
    owner: String,
}

static BALANCE_RUNS: AtomicUsize = AtomicUsize::new(0);
static STATEMENT_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Account {
    /// The balance of the account, fetched once per id.
    #[memoize(key: u64 = self.id)]
    async fn balance(&self) -> u64 {
        BALANCE_RUNS.fetch_add(1, SeqCst);
        self.id * 100 + self.owner.len() as u64
    }

    #[memoize(key: (u64, u32) = (self.id, month), capacity = 12)]
    fn statement(&self, month: u32) -> String {
        STATEMENT_RUNS.fetch_add(1, SeqCst);
        format!("{} in month {month}", self.owner)
    }
}

#[tokio::test]
async fn an_async_method_is_keyed_by_its_key_option() {
    let ada = Account {
        id: 1,
        owner: "ada".to_string(),
    };
    let grace = Account {
        id: 2,
        owner: "grace".to_string(),
    };
    let ada_again = Account {
        id: 1,
        owner: "someone else".to_string(),
    };
    assert_eq!(ada.balance().await, 103);
    assert_eq!(
        grace.balance().await,
        205,
        "another id does not share the result"
    );
    assert_eq!(ada_again.balance().await, 103, "the same id shares it");
    assert_eq!(BALANCE_RUNS.load(SeqCst), 2);
    assert_eq!(Account::balance_cache().len(), 2);
}

#[test]
fn a_sync_method_is_keyed_by_its_key_option() {
    let ada = Account {
        id: 1,
        owner: "ada".to_string(),
    };
    assert_eq!(ada.statement(3), "ada in month 3");
    assert_eq!(ada.statement(3), "ada in month 3");
    assert_eq!(STATEMENT_RUNS.load(SeqCst), 1);
    assert_eq!(ada.statement(4), "ada in month 4");
    assert_eq!(STATEMENT_RUNS.load(SeqCst), 2);
    assert_eq!(
        Account::statement_cache().get(&(1_u64, 3_u32)),
        Some("ada in month 3".to_string())
    );
}

static SHORT_LIVED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// The id, and which run of the body this is.
#[memoize(time_to_live = "100ms")]
async fn short_lived(id: u64) -> (u64, usize) {
    (id, SHORT_LIVED_RUNS.fetch_add(1, SeqCst) + 1)
}

#[tokio::test]
async fn a_value_past_its_time_to_live_is_computed_again() {
    assert_eq!(short_lived(1).await, (1, 1));
    assert_eq!(short_lived(1).await, (1, 1), "fresh: served from the cache");
    // The cache's clock is real time.
    sleep(Duration::from_millis(300)).await;
    assert_eq!(short_lived(1).await, (1, 2), "expired: the body ran again");
}

static REFRESHED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(
    time_to_live = "10s",
    refresh_after = "100ms",
    name = "refreshed values"
)]
async fn refreshed(id: u64) -> (u64, usize) {
    (id, REFRESHED_RUNS.fetch_add(1, SeqCst) + 1)
}

#[tokio::test]
async fn a_stale_value_is_served_then_refreshed_in_the_background() {
    assert_eq!(refreshed(1).await, (1, 1));
    sleep(Duration::from_millis(200)).await;
    assert_eq!(
        refreshed(1).await,
        (1, 1),
        "stale: served at once, refreshed behind"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while refreshed(1).await.1 < 2 {
        assert!(Instant::now() < deadline, "the refresh never landed");
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(refreshed_cache().cache().name(), Some("refreshed values"));
}

static ACROSS_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize]
async fn across_runtimes(key: u64) -> u64 {
    ACROSS_RUNS.fetch_add(1, SeqCst);
    key * 2
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_async_fn_outlives_the_runtime_that_first_called_it() {
    let first = runtime();
    assert_eq!(first.block_on(across_runtimes(1)), 2);
    drop(first);
    let second = runtime();
    second.block_on(async {
        let limit = Duration::from_secs(5);
        let loaded = timeout(limit, across_runtimes(2)).await;
        assert_eq!(loaded.expect("a miss in a new runtime loads"), 4);
        assert_eq!(ACROSS_RUNS.load(SeqCst), 2);
        across_runtimes_cache().invalidate(&(1_u64,));
        let reloaded = timeout(limit, across_runtimes(1)).await;
        assert_eq!(reloaded.expect("an invalidated key loads again"), 2);
    });
    assert_eq!(ACROSS_RUNS.load(SeqCst), 3);
}

#[memoize]
async fn per_test(key: u64) -> u64 {
    key + 1
}

#[tokio::test]
async fn a_tokio_test_has_its_runtime() {
    let answer = timeout(Duration::from_secs(5), per_test(10)).await;
    assert_eq!(answer.expect("no hang"), 11);
}

#[tokio::test]
async fn another_tokio_test_has_another_runtime() {
    let answer = timeout(Duration::from_secs(5), per_test(20)).await;
    assert_eq!(answer.expect("no hang"), 21);
}

static CONFIG_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize]
async fn config() -> String {
    CONFIG_RUNS.fetch_add(1, SeqCst);
    "debug = false".to_string()
}

#[tokio::test]
async fn a_fn_without_arguments_is_keyed_by_the_empty_tuple() {
    assert_eq!(config().await, "debug = false");
    assert_eq!(config().await, "debug = false");
    assert_eq!(CONFIG_RUNS.load(SeqCst), 1);
    config_cache().invalidate(&());
    assert_eq!(config().await, "debug = false");
    assert_eq!(CONFIG_RUNS.load(SeqCst), 2);
}

#[memoize]
fn square(x: u64) -> u64 {
    x * x
}

#[memoize]
fn cube(x: u64) -> u64 {
    x * x * x
}

#[test]
fn each_memoized_fn_has_its_own_accessor_and_cache() {
    assert_eq!(square(3), 9);
    assert_eq!(cube(3), 27);
    assert_eq!(square_cache().get(&(3_u64,)), Some(9));
    assert_eq!(cube_cache().get(&(3_u64,)), Some(27));
    assert_eq!(square_cache().name(), Some("memoize::square"));
    assert_eq!(cube_cache().name(), Some("memoize::cube"));
}
