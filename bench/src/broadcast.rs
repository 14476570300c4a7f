//! The `broadcast` scenario: N online connections and a back end pushing system notices to
//! everyone through the admin API at a fixed rate. Every connection receives every notice, so
//! deliveries per second are N times the push rate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use natter::client::ApiClient;
use tokio_tungstenite::tungstenite::http::Method;

use crate::Target;
use crate::connect::{check_open_files, open_many};
use crate::cpu;
use crate::direct::{AckPolicy, Plan, chat};
use crate::report::Results;
use crate::setup::{check_timing, register_users};
use crate::tally::{Tally, timed_body};

/// Options of `natter-bench broadcast`.
#[derive(Debug, clap::Args)]
pub struct BroadcastOptions {
    /// Server and output.
    #[command(flatten)]
    pub target: Target,
    /// The server's `api.admin_token`.
    #[arg(long, env = "NATTER_ADMIN_TOKEN")]
    pub admin_token: String,
    /// Online connections.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Users they belong to (each user gets connections / users devices).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Notices per second pushed to everyone.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Seconds of pushing.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds to wait after pushing stops for deliveries still on their way.
    #[arg(long, default_value_t = 5)]
    pub drain_seconds: u64,
}

/// Upper bounds that keep every run small enough for a shared machine.
const MAX_CONNECTIONS: usize = 19_000;
const MAX_RATE: f64 = 100.0;
/// Handshakes in flight while connecting.
const CONNECT_CONCURRENCY: usize = 256;

/// Runs the scenario and returns its results.
pub async fn run(options: &BroadcastOptions) -> anyhow::Result<Results> {
    if options.connections == 0 || options.connections > MAX_CONNECTIONS {
        bail!("--connections must be between 1 and {MAX_CONNECTIONS}");
    }
    if options.users == 0 || options.users > options.connections {
        bail!("--users must be between 1 and --connections");
    }
    check_timing(options.rate, MAX_RATE, options.seconds)?;
    if options.admin_token.is_empty() {
        bail!("--admin-token (or NATTER_ADMIN_TOKEN) must be the server's api.admin_token");
    }
    check_open_files(options.connections)?;
    let api = ApiClient::new(&options.target.api);
    let users = register_users(&api, options.users).await?;
    let tokens: Vec<String> = (0..options.connections)
        .map(|number| users[number % users.len()].access_token.clone())
        .collect();
    let sockets = open_many(&options.target, &tokens, CONNECT_CONCURRENCY).await?;

    let tally = Arc::new(Tally::new()?);
    let cpu_before = cpu::cpu_times(&options.target.server_pids);
    let started = Instant::now();
    let send_until = started + Duration::from_secs(options.seconds);
    let stop_at = send_until + Duration::from_secs(options.drain_seconds);
    let workers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(number, socket)| {
            let plan = Plan {
                to: String::new(),
                rate: 0.0,
                ack: AckPolicy::Never,
                send_until,
                stop_at,
            };
            let user = users[number % users.len()].clone();
            tokio::spawn(chat(socket, user, plan, Arc::clone(&tally)))
        })
        .collect();
    // Let every connection finish its first sync: notices reach only live connections.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pusher = tokio::spawn(push_notices(
        api,
        options.admin_token.clone(),
        options.rate,
        send_until,
        Arc::clone(&tally),
    ));

    tally.watch(options.seconds + options.drain_seconds).await;
    let cpu_used = cpu::cpu_times(&options.target.server_pids).since(cpu_before);
    let _ = pusher.await;
    futures_util::future::join_all(workers).await;
    Ok(Results::from_tally(
        "broadcast",
        options.connections as u64,
        options.rate,
        options.seconds,
        &tally,
        &options.target.server_pids,
        cpu_used,
    )
    .await)
}

/// Pushes a timed notice to everyone at `rate` until `until`.
async fn push_notices(api: ApiClient, token: String, rate: f64, until: Instant, tally: Arc<Tally>) {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut number = 0;
    while Instant::now() < until {
        ticks.tick().await;
        number += 1;
        let body = serde_json::json!({"to": "all", "body": timed_body(number)});
        let pushed = api
            .call(Method::POST, "/api/v1/admin/push", Some(&token), Some(body))
            .await;
        match pushed {
            Ok(reply) if reply.status == 202 => {
                tally.sent.fetch_add(1, Ordering::Relaxed);
                tally.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
