//! The port conformance suites against the cluster adapters on real servers.
//!
//! `scripts/deps.sh up` starts the servers and `scripts/test.sh` exports their URLs. Without
//! them these tests fail, saying which server is missing; they are never skipped.

use natter_infra::cluster::RedisSessions;
use natter_infra::conformance;
use natter_infra::sql::{Dialect, SqlStore, open_database};

/// The URL of a test server, or a failure that says how to start it.
fn server(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: the cluster tests need real servers. Run \
             `scripts/deps.sh up && eval \"$(scripts/deps.sh env)\"`, or scripts/test.sh"
        )
    })
}

/// A key prefix no other run shares, so runs never see each other's keys.
fn run_prefix() -> String {
    format!("natter-test-{}:", rand::random::<u32>())
}

#[tokio::test]
async fn redis_sessions_conform() {
    let url = server("NATTER_TEST_REDIS_URL");
    let sessions = RedisSessions::connect(&url, &run_prefix())
        .await
        .unwrap_or_else(|error| panic!("cannot reach Redis at {url}: {error}"));
    conformance::sessions::run(&sessions).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        RedisSessions::connect("redis://127.0.0.1:1", &run_prefix()),
    )
    .await;
    assert!(
        matches!(outcome, Ok(Err(_))),
        "connecting to a closed port must fail, took {:?}",
        started.elapsed()
    );
}

/// The store suite on a real database server, twice in a row and twice at once: a shared
/// server is never empty, and every run of the suite uses fresh random ids.
async fn store_conforms_on(variable: &str, dialect: Dialect) {
    let url = server(variable);
    let database = open_database(&url, 8)
        .await
        .unwrap_or_else(|error| panic!("cannot open {url}: {error}"));
    assert_eq!(database.dialect, dialect);
    // Migrations are idempotent: a second process starting on the same database is fine.
    database.migrate().await.expect("migrating again");
    let store = SqlStore::new(database);
    conformance::store::run(&store).await;
    tokio::join!(
        conformance::store::run(&store),
        conformance::store::run(&store)
    );
}

#[tokio::test]
async fn postgres_store_conforms() {
    store_conforms_on("NATTER_TEST_POSTGRES_URL", Dialect::Postgres).await;
}

#[tokio::test]
async fn mysql_store_conforms() {
    store_conforms_on("NATTER_TEST_MYSQL_URL", Dialect::MySql).await;
}
