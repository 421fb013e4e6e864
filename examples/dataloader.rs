//! The N+1 problem and its cure, the DataLoader pattern: a batch loader in front of a fake
//! database that counts its queries.
//!
//! A thousand concurrent requests ask for a hundred users. A `LoadingCache` with a loader of
//! one key makes one query per user (single flight already stops the other 900); one built
//! with `build_batch_loading` gathers the hundred missing keys into one `WHERE id = ANY($1)`.
//!
//! `cargo run --release --example dataloader` (exits with an error if batching does not turn
//! the hundred queries into one).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use ttlcache::{LoadingCache, TtlCache};

/// A database of users that counts its queries and the rows each returned.
#[derive(Default)]
struct Database {
    queries: Mutex<Vec<usize>>,
}

impl Database {
    /// `SELECT id, name FROM users WHERE id = ANY($1)`: 2 ms a query, whatever its size.
    async fn users(&self, ids: &[u64]) -> Result<HashMap<u64, String>, String> {
        self.queries.lock().unwrap().push(ids.len());
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(ids.iter().map(|&id| (id, format!("user {id}"))).collect())
    }

    fn queries(&self) -> Vec<usize> {
        self.queries.lock().unwrap().clone()
    }
}

/// A thousand concurrent requests for users 0 to 99, as a page of many widgets makes them.
async fn thousand_requests(users: &LoadingCache<u64, String, String>) {
    let requests: Vec<_> = (0..1_000u64)
        .map(|request| {
            let users = users.clone();
            tokio::spawn(async move { users.get(&(request % 100)).await })
        })
        .collect();
    for (request, handle) in requests.into_iter().enumerate() {
        let user = handle.await.expect("no request panics").expect("found");
        assert_eq!(user, format!("user {}", request % 100));
    }
}

fn describe(queries: &[usize]) -> String {
    let rows: usize = queries.iter().sum();
    match queries {
        [one] => format!("queries: 1 batch of {one}"),
        _ if queries.iter().all(|&rows| rows == 1) => format!("queries: {}", queries.len()),
        _ => format!("queries: {} batches of {rows} rows in all", queries.len()),
    }
}

// One thread, as DataLoader runs: a batch gathers the keys asked for until the runtime's next
// tick. On a multi-threaded runtime, give `batch_window` a millisecond or two instead.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let single_db = Arc::new(Database::default());
    let db = Arc::clone(&single_db);
    let one_by_one = TtlCache::builder()
        .time_to_live(Duration::from_secs(60))
        .build_loading(move |id: u64| {
            let db = Arc::clone(&db);
            async move {
                let mut found = db.users(&[id]).await?;
                found.remove(&id).ok_or_else(|| format!("no user {id}"))
            }
        })
        .map_err(|error| error.to_string())?;
    thousand_requests(&one_by_one).await;
    println!("without batching: {}", describe(&single_db.queries()));

    let batch_db = Arc::new(Database::default());
    let db = Arc::clone(&batch_db);
    let batched = TtlCache::builder()
        .time_to_live(Duration::from_secs(60))
        .build_batch_loading(move |ids: Vec<u64>| {
            let db = Arc::clone(&db);
            async move { db.users(&ids).await }
        })
        .map_err(|error| error.to_string())?;
    thousand_requests(&batched).await;
    println!("with batching:    {}", describe(&batch_db.queries()));

    // A page that shows 100 users, 90 of them cached: one query for the other 10.
    batched.invalidate_all();
    let cached: Vec<u64> = (0..90).collect();
    batched
        .get_all(cached)
        .await
        .map_err(|error| error.to_string())?;
    let before = batch_db.queries().len();
    let page = batched
        .get_all(0..100)
        .await
        .map_err(|error| error.to_string())?;
    let page_queries = &batch_db.queries()[before..];
    println!(
        "get_all of 100 users, 90 cached: {} users, {}",
        page.len(),
        describe(page_queries)
    );

    if batch_db.queries()[..1] != [100] || page_queries != [10] || page.len() != 100 {
        return Err(format!(
            "batching did not gather the keys: {:?}",
            batch_db.queries()
        ));
    }
    Ok(())
}
