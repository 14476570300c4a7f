//! The `direct` scenario: pairs of friends, each user sending to its friend at a fixed rate.
//! Every body carries its send time, so the receiver measures end-to-end latency (send frame
//! written → message frame read) on the same clock.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use natter::client::{ApiClient, Session, WsClient};
use natter_proto::frame::{ClientFrame, ServerFrame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::Target;
use crate::cpu;
use crate::report::Results;
use crate::setup::{befriend_pairs, check_timing, progress_bar, register_users};
use crate::tally::{Tally, timed_body};

/// Options of `natter-bench direct`.
#[derive(Debug, clap::Args)]
pub struct DirectOptions {
    /// Server and output.
    #[command(flatten)]
    pub target: Target,
    /// Users (an even number: they chat in pairs).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Messages per second each user sends.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds to wait after sending stops for deliveries still on their way.
    #[arg(long, default_value_t = 10)]
    pub drain_seconds: u64,
    /// Users seeded by `natter-bench seed` (their sessions file) instead of registering.
    #[arg(long)]
    pub sessions: Option<std::path::PathBuf>,
    /// Acknowledge the newest message of each chat at most once per this many milliseconds,
    /// as the web client does; 0 acknowledges every message as it arrives.
    #[arg(long, default_value_t = 0)]
    pub ack_interval_ms: u64,
    /// Whether each connection is pushed the messages it sent itself (`?echo=`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub echo: bool,
    /// Whether each `ack` is answered with `acked` (`?acked=`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub acked: bool,
}

/// Upper bounds that keep every run small enough for a shared machine.
const MAX_USERS: usize = 10_000;
const MAX_RATE: f64 = 1_000.0;

/// Runs the scenario and returns its results.
pub async fn run(options: &DirectOptions) -> anyhow::Result<Results> {
    if options.users < 2 || !options.users.is_multiple_of(2) || options.users > MAX_USERS {
        bail!("--users must be even, between 2 and {MAX_USERS}");
    }
    check_timing(options.rate, MAX_RATE, options.seconds)?;
    let users = match &options.sessions {
        Some(path) => {
            let mut seeded = crate::seed::load_sessions(path)?;
            if seeded.len() < options.users {
                bail!(
                    "{} holds {} users, not {}",
                    path.display(),
                    seeded.len(),
                    options.users
                );
            }
            seeded.truncate(options.users);
            seeded
        }
        None => {
            let api = ApiClient::new(&options.target.api);
            let users = register_users(&api, options.users).await?;
            befriend_pairs(&api, &users).await?;
            users
        }
    };

    let tally = Arc::new(Tally::new()?);
    let bar = progress_bar(users.len() as u64, "connections");
    let mut sockets = Vec::with_capacity(users.len());
    for (number, user) in users.iter().enumerate() {
        let ws_url = format!(
            "{}?echo={}&acked={}",
            options.target.ws[number % options.target.ws.len()],
            options.echo,
            options.acked
        );
        let socket = WsClient::connect(&ws_url, &user.access_token)
            .await
            .with_context(|| format!("user {number} connecting to {ws_url}"))?;
        sockets.push(socket);
        bar.inc(1);
    }
    bar.finish();

    let cpu_before = cpu::cpu_times(&options.target.server_pids);
    let started = Instant::now();
    let send_until = started + Duration::from_secs(options.seconds);
    let stop_at = send_until + Duration::from_secs(options.drain_seconds);
    let mut workers = Vec::with_capacity(users.len());
    for (number, socket) in sockets.into_iter().enumerate() {
        let friend = &users[number ^ 1];
        let plan = Plan {
            to: format!("user:{}", friend.user_id),
            rate: options.rate,
            ack: match options.ack_interval_ms {
                0 => AckPolicy::Each,
                every => AckPolicy::Every(Duration::from_millis(every)),
            },
            send_until,
            stop_at,
        };
        workers.push(tokio::spawn(chat(
            socket.into_inner(),
            users[number].clone(),
            plan,
            Arc::clone(&tally),
        )));
    }

    tally.watch(options.seconds + options.drain_seconds).await;
    for worker in workers {
        worker.await.context("a chat worker failed")?;
    }
    let cpu_used = cpu::cpu_times(&options.target.server_pids).since(cpu_before);
    Ok(Results::from_tally(
        "direct",
        options.users as u64,
        options.rate,
        options.seconds,
        &tally,
        &options.target.server_pids,
        cpu_used,
    )
    .await)
}

/// When a client acknowledges what it read.
#[derive(Clone, Copy, Debug)]
pub enum AckPolicy {
    /// Every message as it arrives (a chat open on screen).
    Each,
    /// The newest message of each object, at most once per interval (a busy group).
    Every(Duration),
    /// Never (a client that only watches).
    Never,
}

/// What one client does during a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where its sends go (`user:<id>` or `group:<id>`).
    pub to: String,
    /// Sends per second (0: it only reads).
    pub rate: f64,
    /// When it acknowledges.
    pub ack: AckPolicy,
    /// When it stops sending.
    pub send_until: Instant,
    /// When it stops reading.
    pub stop_at: Instant,
}

/// This run's number: part of every cid, since a cid is remembered for a day and a second run
/// of the same users would otherwise be answered with the first run's messages.
fn run_id() -> u32 {
    static RUN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *RUN.get_or_init(rand::random)
}

/// One client: syncs, sends to `plan.to` at `plan.rate` until `send_until`, and reads (and
/// acknowledges) until `stop_at`.
pub async fn chat<S>(socket: WebSocketStream<S>, me: Session, plan: Plan, tally: Arc<Tally>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    // Live messages flow only after the first sync (docs/protocol.md).
    let sync = ClientFrame::Sync {
        cursors: Default::default(),
    };
    if let Ok(text) = serde_json::to_string(&sync)
        && sink.send(WsMessage::text(text)).await.is_err()
    {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut seen = HashSet::new();
    let mut unacked: BTreeMap<String, u64> = BTreeMap::new();
    let me_text = me.user_id.to_string();
    // A client sends once it is synced, as a real one does; a message a friend already
    // sending lands in that sync counts like any other. One never synced is an error.
    let mut synced = false;
    let sends = plan.rate > 0.0;
    let period = Duration::from_secs_f64(if sends { 1.0 / plan.rate } else { 3600.0 });
    // Start the users out of step so their sends do not land in lockstep bursts. The phase is
    // the interval's start: an interval made before a random sleep would tick every user at
    // the same instants after its first send, all of them at once every period.
    let offset = if sends {
        period.mul_f64(rand::random::<f64>())
    } else {
        Duration::ZERO
    };
    let mut sending = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    sending.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let ack_period = match plan.ack {
        AckPolicy::Each | AckPolicy::Never => Duration::from_secs(3600),
        AckPolicy::Every(period) => period,
    };
    let mut acking = tokio::time::interval_at(
        tokio::time::Instant::now() + ack_period.mul_f64(rand::random::<f64>()),
        ack_period,
    );
    acking.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut number = 0u64;
    let stop = tokio::time::sleep_until(plan.stop_at.into());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = sending.tick(), if sends && synced && Instant::now() < plan.send_until => {
                number += 1;
                let frame = ClientFrame::Send {
                    cid: format!("{}-{}-{number}", run_id(), me.user_id),
                    to: plan.to.clone(),
                    kind: "text".into(),
                    body: timed_body(number), reply_to: None, };
                let Ok(text) = serde_json::to_string(&frame) else { continue };
                if sink.send(WsMessage::text(text)).await.is_err() {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                tally.sent.fetch_add(1, Ordering::Relaxed);
            }
            _ = acking.tick(), if !unacked.is_empty() => {
                for (object, seq) in std::mem::take(&mut unacked) {
                    let Ok(text) = serde_json::to_string(&ClientFrame::Ack { object, seq }) else { continue };
                    let _ = sink.send(WsMessage::text(text)).await;
                }
            }
            incoming = stream.next() => {
                let Some(Ok(WsMessage::Text(text))) = incoming else {
                    if matches!(incoming, None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    continue;
                };
                match serde_json::from_str::<ServerFrame>(text.as_str()) {
                    Ok(ServerFrame::Synced { .. }) => synced = true,
                    Ok(ServerFrame::Sent { .. }) => {
                        tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerFrame::Msg(message)) => {
                        match plan.ack {
                            AckPolicy::Each => {
                                let ack = ClientFrame::Ack { object: message.object.clone(), seq: message.seq };
                                if let Ok(text) = serde_json::to_string(&ack) {
                                    let _ = sink.send(WsMessage::text(text)).await;
                                }
                            }
                            AckPolicy::Every(_) => {
                                let newest = unacked.entry(message.object.clone()).or_default();
                                *newest = (*newest).max(message.seq);
                            }
                            AckPolicy::Never => {}
                        }
                        // My own sends come back on my inbox too (for my other devices).
                        tally.received(&me_text, &message, &mut seen).await;
                    }
                    Ok(ServerFrame::Notice { id, body, .. }) => {
                        tally.delivery(&id, &body, &mut seen).await;
                    }
                    Ok(ServerFrame::Error { .. }) | Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    if !synced {
        tally.errors.fetch_add(1, Ordering::Relaxed);
    }
    let _ = sink.close().await;
}
