//! The `fanout` scenario: one group with M online members, a few of whom send to it at a
//! fixed total rate. Every other member receives every message, so deliveries per second are
//! M - 1 times the send rate. Members acknowledge once a second by default, as a client showing
//! a busy group would, rather than every message; `--ack-interval-ms 0` leaves acknowledgements
//! out to measure the fan-out alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use natter::client::ApiClient;

use crate::Target;
use crate::connect::{check_open_files, open_many};
use crate::cpu;
use crate::direct::{AckPolicy, Plan, chat};
use crate::report::Results;
use crate::setup::{check_timing, register_users, seed_group};
use crate::tally::Tally;

/// Options of `natter-bench fanout`.
#[derive(Debug, clap::Args)]
pub struct FanoutOptions {
    /// Server and output.
    #[command(flatten)]
    pub target: Target,
    /// Online members of the group (each one connection).
    #[arg(long, default_value_t = 2000)]
    pub members: usize,
    /// Messages per second sent to the group, in all.
    #[arg(long, default_value_t = 25.0)]
    pub rate: f64,
    /// Members who send (the rate is split between them).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds to wait after sending stops for deliveries still on their way.
    #[arg(long, default_value_t = 5)]
    pub drain_seconds: u64,
    /// How often each member acknowledges what it read, in ms; 0 never (to measure the
    /// fan-out alone, without the cursor writes acknowledgements cost).
    #[arg(long, default_value_t = 1000)]
    pub ack_interval_ms: u64,
}

/// Upper bounds that keep every run small enough for a shared machine.
const MAX_MEMBERS: usize = 19_000;
const MAX_RATE: f64 = 10_000.0;
/// Handshakes in flight while connecting the members.
const CONNECT_CONCURRENCY: usize = 128;

/// Runs the scenario and returns its results.
pub async fn run(options: &FanoutOptions) -> anyhow::Result<Results> {
    if options.members < 2 || options.members > MAX_MEMBERS {
        bail!("--members must be between 2 and {MAX_MEMBERS}");
    }
    if options.senders == 0 || options.senders > options.members {
        bail!("--senders must be between 1 and --members");
    }
    check_timing(options.rate, MAX_RATE, options.seconds)?;
    check_open_files(options.members)?;
    let api = ApiClient::new(&options.target.api);
    let users = register_users(&api, options.members).await?;
    let group = seed_group(&api, &users).await?;

    let tokens: Vec<String> = users.iter().map(|user| user.access_token.clone()).collect();
    let sockets = open_many(&options.target, &tokens, CONNECT_CONCURRENCY).await?;

    let tally = Arc::new(Tally::new()?);
    let cpu_before = cpu::cpu_times(&options.target.server_pids);
    let started = Instant::now();
    let send_until = started + Duration::from_secs(options.seconds);
    let stop_at = send_until + Duration::from_secs(options.drain_seconds);
    let per_sender = options.rate / options.senders as f64;
    let workers: Vec<_> = sockets
        .into_iter()
        .zip(&users)
        .enumerate()
        .map(|(number, (socket, user))| {
            let plan = Plan {
                to: format!("group:{group}"),
                rate: if number < options.senders {
                    per_sender
                } else {
                    0.0
                },
                ack: match options.ack_interval_ms {
                    0 => AckPolicy::Never,
                    every => AckPolicy::Every(Duration::from_millis(every)),
                },
                send_until,
                stop_at,
            };
            tokio::spawn(chat(socket, user.clone(), plan, Arc::clone(&tally)))
        })
        .collect();

    tally.watch(options.seconds + options.drain_seconds).await;
    let cpu_used = cpu::cpu_times(&options.target.server_pids).since(cpu_before);
    futures_util::future::join_all(workers).await;
    Ok(Results::from_tally(
        "fanout",
        options.members as u64,
        per_sender,
        options.seconds,
        &tally,
        &options.target.server_pids,
        cpu_used,
    )
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(members: usize, senders: usize, rate: f64) -> FanoutOptions {
        FanoutOptions {
            target: Target {
                api: "http://127.0.0.1:1".into(),
                ws: vec!["ws://127.0.0.1:1/ws".into()],
                server_pids: Vec::new(),
                out: "bench-results".into(),
            },
            members,
            rate,
            senders,
            seconds: 1,
            drain_seconds: 0,
            ack_interval_ms: 1000,
        }
    }

    #[tokio::test]
    async fn runs_out_of_bounds_are_refused_before_any_work() {
        for (members, senders, rate) in [(1, 1, 1.0), (10, 0, 1.0), (10, 11, 1.0), (10, 1, 0.0)] {
            let refused = run(&options(members, senders, rate)).await;
            assert!(
                refused.is_err(),
                "{members} members, {senders} senders, {rate}/s"
            );
        }
        let too_many = run(&options(MAX_MEMBERS + 1, 1, 1.0)).await;
        assert!(format!("{:#}", too_many.unwrap_err()).contains("--members"));
    }
}
