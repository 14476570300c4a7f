//! Seeding through the real REST API: users and friendships, a bounded number at a time,
//! with a progress bar (registration hashes a password, so it is the slow part).

use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use natter::client::{ApiClient, Session};
use tokio_tungstenite::tungstenite::http::Method;

/// The longest any run may send for, in seconds.
const MAX_SECONDS: u64 = 600;

/// Refuses a send rate outside (0, `max_rate`] or a run length outside 1..=600 seconds.
pub fn check_timing(rate: f64, max_rate: f64, seconds: u64) -> anyhow::Result<()> {
    if !(rate > 0.0 && rate <= max_rate) {
        anyhow::bail!("--rate must be above 0 and at most {max_rate}");
    }
    if seconds == 0 || seconds > MAX_SECONDS {
        anyhow::bail!("--seconds must be between 1 and {MAX_SECONDS}");
    }
    Ok(())
}

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

/// Creates a group owned by the first user and has every other user join it; returns its id.
pub async fn seed_group(api: &ApiClient, users: &[Session]) -> anyhow::Result<String> {
    let owner = users.first().context("a group needs an owner")?;
    let created = api
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(&owner.access_token),
            Some(serde_json::json!({ "name": "natter-bench" })),
        )
        .await?;
    if created.status != 201 {
        anyhow::bail!("creating the group: {} {}", created.status, created.body);
    }
    let group = created.body["id"]
        .as_str()
        .context("the created group has no id")?
        .to_string();
    let path = format!("/api/v1/groups/{group}/join");
    let bar = progress_bar(users.len().saturating_sub(1) as u64, "joins");
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(&users[1..])
        .map(|member| {
            let (bar, path) = (bar.clone(), &path);
            async move {
                let reply = api
                    .call(Method::POST, path, Some(&member.access_token), None)
                    .await?;
                bar.inc(1);
                if reply.status != 200 {
                    anyhow::bail!("joining the group: {} {}", reply.status, reply.body);
                }
                Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    bar.finish();
    results.into_iter().collect::<anyhow::Result<()>>()?;
    Ok(group)
}
