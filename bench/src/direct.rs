//! The `direct` scenario: pairs of friends, each user sending to its friend at a fixed rate.
//! Every body carries its send time, so the receiver measures end-to-end latency (send frame
//! written → message frame read) on the same clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use natter::client::{ApiClient, Session, WsClient};
use natter_proto::frame::{ClientFrame, ServerFrame};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::Target;
use crate::cpu;
use crate::report::Results;
use crate::setup::{befriend_pairs, progress_bar, register_users};

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
}

/// Upper bounds that keep every run small enough for a shared machine.
const MAX_USERS: usize = 10_000;
const MAX_SECONDS: u64 = 600;
const MAX_RATE: f64 = 1_000.0;

/// What every receiver adds to.
struct Tally {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs the scenario and returns its results.
pub async fn run(options: &DirectOptions) -> anyhow::Result<Results> {
    if options.users < 2 || !options.users.is_multiple_of(2) || options.users > MAX_USERS {
        bail!("--users must be even, between 2 and {MAX_USERS}");
    }
    if options.seconds == 0 || options.seconds > MAX_SECONDS {
        bail!("--seconds must be between 1 and {MAX_SECONDS}");
    }
    if !(options.rate > 0.0 && options.rate <= MAX_RATE) {
        bail!("--rate must be above 0 and at most {MAX_RATE}");
    }
    let api = ApiClient::new(&options.target.api);
    let users = register_users(&api, options.users).await?;
    befriend_pairs(&api, &users).await?;

    let tally = Arc::new(Tally {
        sent: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        // 1 µs to 60 s at 3 significant digits.
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let bar = progress_bar(users.len() as u64, "connections");
    let mut sockets = Vec::with_capacity(users.len());
    for (number, user) in users.iter().enumerate() {
        let ws_url = &options.target.ws[number % options.target.ws.len()];
        let socket = WsClient::connect(ws_url, &user.access_token)
            .await
            .with_context(|| format!("user {number} connecting to {ws_url}"))?;
        sockets.push(socket);
        bar.inc(1);
    }
    bar.finish();

    let cpu_before = cpu::cpu_seconds(&options.target.server_pids);
    let started = Instant::now();
    let send_until = started + Duration::from_secs(options.seconds);
    let stop_at = send_until + Duration::from_secs(options.drain_seconds);
    let mut workers = Vec::with_capacity(users.len());
    for (number, socket) in sockets.into_iter().enumerate() {
        let friend = &users[number ^ 1];
        workers.push(tokio::spawn(chat(
            socket,
            users[number].clone(),
            friend.user_id,
            options.rate,
            send_until,
            stop_at,
            Arc::clone(&tally),
        )));
    }

    let total = options.seconds + options.drain_seconds;
    let bar = progress_bar(total, "seconds");
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    for _ in 0..total {
        ticker.tick().await;
        bar.inc(1);
        bar.set_message(format!(
            "{} delivered",
            tally.delivered.load(Ordering::Relaxed)
        ));
    }
    bar.finish();
    for worker in workers {
        worker.await.context("a chat worker failed")?;
    }
    let cpu_used = cpu::cpu_seconds(&options.target.server_pids) - cpu_before;
    let latency = tally.latency_us.lock().await;
    let delivered = tally.delivered.load(Ordering::Relaxed);
    Ok(Results {
        scenario: "direct".into(),
        users: options.users as u64,
        rate_per_user: options.rate,
        seconds: options.seconds,
        sent: tally.sent.load(Ordering::Relaxed),
        acknowledged: tally.acknowledged.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        delivered,
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        deliveries_per_second: delivered as f64 / options.seconds as f64,
        latency_ms: crate::report::Percentiles::of(&latency),
        latency_curve_ms: crate::report::curve(&latency),
        server_cpu_seconds: (!options.target.server_pids.is_empty()).then_some(cpu_used),
        server_cpu_us_per_delivery: (!options.target.server_pids.is_empty() && delivered > 0)
            .then(|| cpu_used * 1e6 / delivered as f64),
        server_rss_bytes: (!options.target.server_pids.is_empty()).then(|| {
            options
                .target
                .server_pids
                .iter()
                .filter_map(|pid| cpu::resident_bytes(*pid))
                .sum()
        }),
    })
}

/// One user: sends to `friend` at `rate` until `send_until`, reads (and acks) until `stop_at`.
async fn chat(
    socket: WsClient,
    me: Session,
    friend: i64,
    rate: f64,
    send_until: Instant,
    stop_at: Instant,
    tally: Arc<Tally>,
) {
    let (mut sink, mut stream) = socket.into_inner().split();
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
    let mut sending = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    sending.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Start the users out of step so their sends do not land in lockstep bursts.
    tokio::time::sleep(Duration::from_secs_f64(rand::random::<f64>() / rate)).await;
    let mut number = 0u64;
    let mut seen = HashSet::new();
    let me_text = me.user_id.to_string();
    let stop = tokio::time::sleep_until(stop_at.into());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = sending.tick(), if Instant::now() < send_until => {
                number += 1;
                let frame = ClientFrame::Send {
                    cid: format!("{}-{number}", me.user_id),
                    to: format!("user:{friend}"),
                    kind: "text".into(),
                    body: format!("t={} n={number}", now_micros()),
                };
                let Ok(text) = serde_json::to_string(&frame) else { continue };
                if sink.send(WsMessage::text(text)).await.is_err() {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                tally.sent.fetch_add(1, Ordering::Relaxed);
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
                    Ok(ServerFrame::Sent { .. }) => {
                        tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerFrame::Msg(message)) => {
                        let ack = ClientFrame::Ack { object: message.object.clone(), seq: message.seq };
                        if let Ok(text) = serde_json::to_string(&ack) {
                            let _ = sink.send(WsMessage::text(text)).await;
                        }
                        // My own sends come back on my inbox too (for my other devices).
                        if message.from == me_text {
                            continue;
                        }
                        if !seen.insert(message.id.clone()) {
                            tally.duplicates.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        tally.delivered.fetch_add(1, Ordering::Relaxed);
                        if let Some(sent_at) = message
                            .body
                            .strip_prefix("t=")
                            .and_then(|rest| rest.split(' ').next())
                            .and_then(|micros| micros.parse::<u64>().ok())
                        {
                            let latency = now_micros().saturating_sub(sent_at).max(1);
                            let _ = tally.latency_us.lock().await.record(latency);
                        }
                    }
                    Ok(ServerFrame::Error { .. }) | Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    let _ = sink.close().await;
}
