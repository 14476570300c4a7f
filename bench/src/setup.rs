//! Seeding through the real REST API: users and friendships, a bounded number at a time,
//! with a progress bar (registration hashes a password, so it is the slow part).

use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use natter::client::{ApiClient, Session};

/// Requests in flight while seeding.
const SEED_CONCURRENCY: usize = 16;

/// The shared bar style.
pub fn progress_bar(length: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Registers `count` fresh users (names unique to this run).
pub async fn register_users(api: &ApiClient, count: usize) -> anyhow::Result<Vec<Session>> {
    let run: u32 = rand::random();
    let bar = progress_bar(count as u64, "users");
    let api = Arc::new(api.clone());
    let sessions: Vec<anyhow::Result<Session>> = futures_util::stream::iter(0..count)
        .map(|number| {
            let api = Arc::clone(&api);
            let bar = bar.clone();
            async move {
                let session = api
                    .register(&format!("bench{run}x{number}"), "bench password 1234")
                    .await
                    .with_context(|| format!("registering user {number}"));
                bar.inc(1);
                session
            }
        })
        .buffered(SEED_CONCURRENCY)
        .collect()
        .await;
    bar.finish();
    sessions.into_iter().collect()
}

/// Makes each pair (0,1), (2,3), ... friends.
pub async fn befriend_pairs(api: &ApiClient, users: &[Session]) -> anyhow::Result<()> {
    let pairs: Vec<(&Session, &Session)> = users
        .chunks_exact(2)
        .map(|pair| (&pair[0], &pair[1]))
        .collect();
    let bar = progress_bar(pairs.len() as u64, "friendships");
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(pairs)
        .map(|(asker, accepter)| {
            let bar = bar.clone();
            async move {
                let done = api.befriend(asker, accepter).await;
                bar.inc(1);
                done
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    bar.finish();
    results.into_iter().collect()
}
