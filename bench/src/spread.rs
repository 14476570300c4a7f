//! `natter-bench spread`: one-to-one sends over REST from many seeded users, each to its
//! friend, at a fixed total rate, so that every one of USERS inboxes receives messages while
//! its owner is offline. It measures what the number of objects costs the log and the task
//! layer (accepted sends/s and the time to the `201`), not live delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use natter::client::ApiClient;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::http::Method;

use crate::Target;
use crate::report::Percentiles;
use crate::setup::{check_timing, progress_bar};

/// The most sends a second this scenario offers.
const MAX_RATE: f64 = 20_000.0;

/// Options of `natter-bench spread`.
#[derive(Debug, clap::Args)]
pub struct SpreadOptions {
    #[command(flatten)]
    pub target: Target,
    /// Users seeded by `natter-bench seed` (their sessions file).
    #[arg(long)]
    pub sessions: std::path::PathBuf,
    /// How many of the seeded users send, each to its friend (an even number).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Sends per second in all, spread over the users in turn.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Sends in flight at most; past it the generator waits, and the offered rate falls.
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
}

/// What a spread run measured.
#[derive(Debug, Serialize)]
pub struct SpreadResults {
    /// Users sending (and objects receiving: each user's inbox gets its own and its friend's).
    pub users: usize,
    /// Sends per second offered.
    pub offered_per_second: f64,
    /// Seconds of sending.
    pub seconds: u64,
    /// Sends made.
    pub sent: u64,
    /// Sends answered `201`.
    pub accepted: u64,
    /// Sends refused or failed.
    pub errors: u64,
    /// Accepted sends per second, over the time until the last answer.
    pub accepted_per_second: f64,
    /// Time from the request to its answer.
    pub latency_ms: Percentiles,
}

/// Runs the scenario.
pub async fn run(options: &SpreadOptions) -> anyhow::Result<SpreadResults> {
    if options.users < 2 || !options.users.is_multiple_of(2) {
        bail!("--users must be even and at least 2");
    }
    check_timing(options.rate, MAX_RATE, options.seconds)?;
    let mut users = crate::seed::load_sessions(&options.sessions)?;
    if users.len() < options.users {
        bail!(
            "{} holds {} users, not {}",
            options.sessions.display(),
            users.len(),
            options.users
        );
    }
    users.truncate(options.users);
    let users = Arc::new(users);
    let api = Arc::new(ApiClient::new(&options.target.api));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let run = rand::random::<u32>();
    let total = (options.rate * options.seconds as f64) as u64;
    let bar = progress_bar(total, "sends");
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sends = Vec::with_capacity(total as usize);
    for number in 0..total {
        ticker.tick().await;
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("the send limit closed")?;
        let sender = number as usize % users.len();
        let (users, api, latency) = (Arc::clone(&users), Arc::clone(&api), Arc::clone(&latency));
        let (accepted, errors) = (Arc::clone(&accepted), Arc::clone(&errors));
        sends.push(tokio::spawn(async move {
            let body = serde_json::json!({
                "cid": format!("s{run}-{number}"),
                "to": format!("user:{}", users[sender ^ 1].user_id),
                "kind": "text",
                "body": crate::tally::timed_body(number),
            });
            let asked = Instant::now();
            let reply = api
                .call(
                    Method::POST,
                    "/api/v1/messages",
                    Some(&users[sender].access_token),
                    Some(body),
                )
                .await;
            let micros = asked.elapsed().as_micros() as u64;
            match reply {
                Ok(reply) if reply.status == 201 => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let _ = latency.lock().await.record(micros.max(1));
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
        bar.inc(1);
    }
    for send in sends {
        send.await.context("a send failed")?;
    }
    bar.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    let latency = latency.lock().await;
    Ok(SpreadResults {
        users: options.users,
        offered_per_second: options.rate,
        seconds: options.seconds,
        sent: total,
        accepted,
        errors: errors.load(Ordering::Relaxed),
        accepted_per_second: accepted as f64 / elapsed.max(f64::EPSILON),
        latency_ms: Percentiles::of(&latency),
    })
}

/// The results as one markdown table row, with its header.
pub fn markdown(results: &SpreadResults) -> String {
    format!(
        "| scenario | users (objects) | offered/s | seconds | sent | accepted | errors | accepted/s | p50 ms | p99 ms | max ms |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n\
         | spread | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
        results.users,
        results.offered_per_second,
        results.seconds,
        results.sent,
        results.accepted,
        results.errors,
        results.accepted_per_second,
        results.latency_ms.p50,
        results.latency_ms.p99,
        results.latency_ms.max,
    )
}
