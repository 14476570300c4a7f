//! Times user and group search on an embedded database of 100,000 users and 10,000 groups.
//!
//! `cargo run --release -p natter-infra --example search_bench`

use natter_infra::store::{GroupStore, UserStore};
use std::time::{Duration, Instant};

use natter_infra::embedded::open_sqlite;
use natter_infra::sql::SqlStore;

/// Searches timed per kind.
const SEARCHES: usize = 2000;

/// The median and the 99th percentile of `samples`.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction) as usize];
    (at(0.5), at(0.99))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let database = open_sqlite(&dir.path().join("natter.db")).await?;
    eprintln!("writing 100,000 users and 10,000 groups");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         INSERT INTO users (id, username, nickname, avatar, password_hash, created_at, \
         nickname_key) SELECT i, 'user' || i, 'Nick ' || i, NULL, 'h', 0, 'nick ' || i FROM n",
    )
    .execute(&database.pool)
    .await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO chat_groups (id, name, owner, avatar, created_at, name_key) \
         SELECT i, 'Group ' || i, 1, NULL, 0, 'group ' || i FROM n",
    )
    .execute(&database.pool)
    .await?;
    let store = SqlStore::new(database);
    // Prefixes from broad (1,111 matches by username) to narrow (1 match).
    let prefixes: Vec<String> = (0..SEARCHES)
        .map(|index| {
            let digits = 2 + index % 4;
            let number = (index * 7919) % 10_usize.pow(digits as u32);
            format!("user{number:0digits$}", digits = digits - 1)
        })
        .collect();
    let mut user_times = Vec::with_capacity(SEARCHES);
    let mut found = 0;
    for prefix in &prefixes {
        let started = Instant::now();
        found += store.search_users(prefix, 0, 20).await?.len();
        user_times.push(started.elapsed());
    }
    let mut group_times = Vec::with_capacity(SEARCHES);
    for prefix in &prefixes {
        let prefix = prefix.replace("user", "group ");
        let started = Instant::now();
        found += store.search_groups(&prefix, 0, 20).await?.len();
        group_times.push(started.elapsed());
    }
    let (user_p50, user_p99) = percentiles(&mut user_times);
    let (group_p50, group_p99) = percentiles(&mut group_times);
    println!(
        "users (100,000): p50 {user_p50:?} p99 {user_p99:?}; groups (10,000): p50 {group_p50:?} \
         p99 {group_p99:?}; {SEARCHES} searches each, {found} results in all"
    );
    Ok(())
}
