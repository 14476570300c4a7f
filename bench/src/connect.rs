//! The `connect` scenario: open N WebSocket connections (spread over 127.0.0.x source
//! addresses, so one machine can hold more than one address's worth of ports), hold them
//! idle, and report the accept rate, handshake latency and the server's RSS per connection.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use natter::client::{ApiClient, Session};
use natter_proto::frame::ClientFrame;
use serde::Serialize;
use tokio::net::TcpSocket;
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Target;
use crate::cpu;
use crate::report::{Percentiles, curve, latency_svg};
use crate::setup::{progress_bar, register_users};

/// Options of `natter-bench connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectOptions {
    /// Server and output.
    #[command(flatten)]
    pub target: Target,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Users they belong to (each user gets connections / users devices).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds to hold the connections idle before measuring the server's memory.
    #[arg(long, default_value_t = 5)]
    pub hold_seconds: u64,
}

/// Upper bounds that keep every run small enough for a shared machine.
const MAX_CONNECTIONS: usize = 60_000;
const MAX_HOLD_SECONDS: u64 = 300;
/// Source addresses 127.0.0.1 ..= 127.0.0.250 take turns.
const SOURCE_ADDRESSES: u8 = 250;

/// The source address of connection `number`.
pub fn source_address(number: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, (number % SOURCE_ADDRESSES as usize) as u8 + 1)
}

/// One run's results.
#[derive(Debug, Serialize)]
pub struct ConnectResults {
    /// Connections asked for.
    pub connections: u64,
    /// Connections that completed the handshake and got `welcome`.
    pub opened: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Opened connections over the time to open them all.
    pub connections_per_second: f64,
    /// Time from starting a TCP connect to reading `welcome`.
    pub handshake_ms: Percentiles,
    /// The handshake latency by percentile, for the plot.
    pub handshake_curve_ms: Vec<(f64, f64)>,
    /// Server RSS before opening, in bytes (summed over the given pids).
    pub server_rss_before: Option<u64>,
    /// Server RSS with the first half of the connections open.
    pub server_rss_half: Option<u64>,
    /// Server RSS while holding every connection idle.
    pub server_rss_holding: Option<u64>,
    /// (holding - half) / connections opened in the second half: what a connection costs.
    pub server_rss_per_connection: Option<f64>,
    /// (holding - before) / opened: the same, plus whatever else the server grew by.
    pub server_rss_per_connection_from_start: Option<f64>,
    /// Server CPU seconds spent accepting.
    pub server_cpu_seconds: Option<f64>,
}

/// The pause between registering users and the first RSS reading: longer than tokio's
/// blocking threads live idle (10 s), so the argon2 memory they held has been given back.
const SETTLE: Duration = Duration::from_secs(12);

/// Refuses a run whose `connections` (plus some room) exceed what this process may open.
pub fn check_open_files(connections: usize) -> anyhow::Result<()> {
    let needed = connections as u64 + 64;
    match open_file_limit() {
        Some(limit) if limit < needed => bail!(
            "this process may open {limit} files but needs {needed} (run `ulimit -n {needed}` \
             first; beyond the hard limit use several generator processes)"
        ),
        _ => Ok(()),
    }
}

/// The most files this process may open (its soft limit), read from /proc.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn server_rss(pids: &[u32]) -> Option<u64> {
    (!pids.is_empty()).then(|| {
        pids.iter()
            .filter_map(|pid| cpu::resident_bytes(*pid))
            .sum()
    })
}

/// Runs the scenario.
pub async fn run(options: &ConnectOptions) -> anyhow::Result<ConnectResults> {
    if options.connections == 0 || options.connections > MAX_CONNECTIONS {
        bail!("--connections must be between 1 and {MAX_CONNECTIONS}");
    }
    if options.hold_seconds > MAX_HOLD_SECONDS {
        bail!("--hold-seconds must be at most {MAX_HOLD_SECONDS}");
    }
    if options.users == 0 || options.users > options.connections {
        bail!("--users must be between 1 and --connections");
    }
    check_open_files(options.connections)?;
    let api = ApiClient::new(&options.target.api);
    let users = register_users(&api, options.users).await?;
    // Registration hashes passwords with argon2 (19 MiB each); let the server hand that
    // memory back first, or it would count against (or for) the connections.
    tokio::time::sleep(SETTLE).await;
    let pids = &options.target.server_pids;
    let rss_before = server_rss(pids);
    let cpu_before = cpu::cpu_seconds(pids);

    let handshakes = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let bar = progress_bar(options.connections as u64, "connections");
    let opener = Opener {
        options,
        users: &users,
        handshakes: Arc::clone(&handshakes),
        limit: Arc::new(Semaphore::new(options.concurrency.max(1))),
        bar: bar.clone(),
    };
    // Two halves with a reading in between: the growth over the second half is what the
    // connections themselves cost, whatever the allocator kept from earlier work.
    let half = options.connections / 2;
    let mut first = opener.open(0..half).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_half = server_rss(pids);
    let second = opener.open(half..options.connections).await?;
    bar.finish();
    let opened_in_second_half = second.sockets.len() as u64;
    let opening = first.took + second.took;
    let failures = first.failures + second.failures;
    if let Some(error) = first.first_error.or(second.first_error) {
        eprintln!("{failures} connections failed; the first: {error:#}");
    }
    first.sockets.extend(second.sockets);
    let sockets = first.sockets;
    tokio::time::sleep(Duration::from_secs(options.hold_seconds)).await;
    let rss_holding = server_rss(pids);
    let cpu_used = cpu::cpu_seconds(pids) - cpu_before;
    let opened = sockets.len() as u64;
    for mut socket in sockets {
        let _ = socket.close(None).await;
    }
    let handshakes = handshakes.lock().await;
    Ok(ConnectResults {
        connections: options.connections as u64,
        opened,
        failed: failures,
        connections_per_second: opened as f64 / opening.as_secs_f64().max(1e-9),
        handshake_ms: Percentiles::of(&handshakes),
        handshake_curve_ms: curve(&handshakes),
        server_rss_before: rss_before,
        server_rss_half: rss_half,
        server_rss_holding: rss_holding,
        server_rss_per_connection: per_connection(rss_half, rss_holding, opened_in_second_half),
        server_rss_per_connection_from_start: per_connection(rss_before, rss_holding, opened),
        server_cpu_seconds: (!pids.is_empty()).then_some(cpu_used),
    })
}

/// RSS growth between two readings over the connections opened between them.
fn per_connection(before: Option<u64>, after: Option<u64>, connections: u64) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if connections > 0 => {
            Some((after as f64 - before as f64) / connections as f64)
        }
        _ => None,
    }
}

/// Opens connections with a bounded number of handshakes in flight.
struct Opener<'a> {
    options: &'a ConnectOptions,
    users: &'a [Session],
    handshakes: Arc<Mutex<Histogram<u64>>>,
    limit: Arc<Semaphore>,
    bar: ProgressBar,
}

/// What opening a range of connections gave.
struct Opened {
    sockets: Vec<Socket>,
    failures: u64,
    first_error: Option<anyhow::Error>,
    took: Duration,
}

impl Opener<'_> {
    /// Opens connections numbered `numbers` (the number picks the user, node and source).
    async fn open(&self, numbers: std::ops::Range<usize>) -> anyhow::Result<Opened> {
        let started = Instant::now();
        let mut attempts = Vec::with_capacity(numbers.len());
        for number in numbers {
            let permit = Arc::clone(&self.limit).acquire_owned().await?;
            let ws = &self.options.target.ws;
            let ws_url = ws[number % ws.len()].clone();
            let token = self.users[number % self.users.len()].access_token.clone();
            let source = source_address(number);
            let handshakes = Arc::clone(&self.handshakes);
            let bar = self.bar.clone();
            attempts.push(tokio::spawn(async move {
                let began = Instant::now();
                let opened = match open(&ws_url, &token, source).await {
                    Ok(socket) => sync(socket).await,
                    Err(error) => Err(error),
                };
                drop(permit);
                bar.inc(1);
                if opened.is_ok() {
                    let micros = began.elapsed().as_micros() as u64;
                    let _ = handshakes.lock().await.record(micros.max(1));
                }
                opened
            }));
        }
        let mut opened = Opened {
            sockets: Vec::with_capacity(attempts.len()),
            failures: 0,
            first_error: None,
            took: Duration::ZERO,
        };
        for attempt in attempts {
            match attempt.await.context("a connect task failed")? {
                Ok(socket) => opened.sockets.push(socket),
                Err(error) => {
                    opened.failures += 1;
                    opened.first_error.get_or_insert(error);
                }
            }
        }
        opened.took = started.elapsed();
        Ok(opened)
    }
}

/// A generator-side connection.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One connection from `source`, through the upgrade and the `welcome`.
pub async fn open(ws_url: &str, token: &str, source: Ipv4Addr) -> anyhow::Result<Socket> {
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let host = request.uri().host().context("no host")?.to_string();
    let port = request.uri().port_u16().unwrap_or(80);
    let server: SocketAddr = format!("{host}:{port}")
        .parse()
        .with_context(|| format!("{host}:{port} is not an address"))?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(server).await?;
    // A chat client's frames are small and each is wanted at once: without this, Nagle holds
    // a frame until the previous one is acknowledged, and the generator measures its own
    // 40 ms delayed-ACK waits instead of the server.
    stream.set_nodelay(true)?;
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    let welcome = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .context("no welcome within 30 s")?;
    if !matches!(welcome, Some(Ok(WsMessage::Text(_)))) {
        bail!("expected a welcome frame, got {welcome:?}");
    }
    Ok(socket)
}

/// Opens one connection per token, spread over the target's WebSocket URLs and over
/// 127.0.0.x source addresses, with `concurrency` handshakes in flight and a progress bar.
pub async fn open_many(
    target: &Target,
    tokens: &[String],
    concurrency: usize,
) -> anyhow::Result<Vec<Socket>> {
    let bar = progress_bar(tokens.len() as u64, "connections");
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut opening = Vec::with_capacity(tokens.len());
    for (number, token) in tokens.iter().enumerate() {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let ws_url = target.ws[number % target.ws.len()].clone();
        let token = token.clone();
        let bar = bar.clone();
        opening.push(tokio::spawn(async move {
            let socket = open(&ws_url, &token, source_address(number)).await;
            drop(permit);
            bar.inc(1);
            socket
        }));
    }
    let mut sockets = Vec::with_capacity(tokens.len());
    for (number, socket) in opening.into_iter().enumerate() {
        let socket = socket.await.context("a connect task failed")?;
        sockets.push(socket.with_context(|| format!("connection {number}"))?);
    }
    bar.finish();
    Ok(sockets)
}

/// Sends an empty sync, which makes the connection a fully live client.
async fn sync(mut socket: Socket) -> anyhow::Result<Socket> {
    let sync = serde_json::to_string(&ClientFrame::Sync {
        cursors: Default::default(),
    })?;
    socket.send(WsMessage::text(sync)).await?;
    Ok(socket)
}

/// The results as a markdown table.
pub fn markdown(results: &ConnectResults) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| connections | opened | failed | connections/s | handshake p50 ms | p99 ms | max ms | \
         server RSS per connection | from start | server CPU s |"
    );
    let _ = writeln!(text, "|{}", "---|".repeat(10));
    let bytes = |value: Option<f64>| value.map_or("–".into(), |bytes| format!("{bytes:.0} B"));
    let _ = writeln!(
        text,
        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
        results.connections,
        results.opened,
        results.failed,
        results.connections_per_second,
        results.handshake_ms.p50,
        results.handshake_ms.p99,
        results.handshake_ms.max,
        bytes(results.server_rss_per_connection),
        bytes(results.server_rss_per_connection_from_start),
        results
            .server_cpu_seconds
            .map_or("–".into(), |seconds| format!("{seconds:.2}")),
    );
    text
}

/// Writes results.json, summary.md and handshake.svg into `folder`.
pub fn write(folder: &std::path::Path, results: &ConnectResults) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    std::fs::write(
        folder.join("results.json"),
        serde_json::to_string_pretty(results)?,
    )?;
    std::fs::write(folder.join("summary.md"), markdown(results))?;
    let title = format!(
        "natter-bench connect: handshake latency by percentile ({} connections)",
        results.opened
    );
    std::fs::write(
        folder.join("handshake.svg"),
        latency_svg(&title, &results.handshake_curve_ms),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read() {
        assert!(open_file_limit().is_some_and(|limit| limit > 0));
    }

    #[test]
    fn the_summary_carries_the_figures() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        histogram.record(2_000).expect("record");
        let results = ConnectResults {
            connections: 10,
            opened: 9,
            failed: 1,
            connections_per_second: 1234.4,
            handshake_ms: Percentiles::of(&histogram),
            handshake_curve_ms: curve(&histogram),
            server_rss_before: Some(1_000),
            server_rss_half: Some(19_000),
            server_rss_holding: Some(37_000),
            server_rss_per_connection: Some(4_000.0),
            server_rss_per_connection_from_start: Some(3_600.0),
            server_cpu_seconds: None,
        };
        let table = markdown(&results);
        assert!(table.contains("| 10 | 9 | 1 | 1234 | 2.00 |"), "{table}");
        assert!(table.contains("| 4000 B | 3600 B | – |"), "{table}");
    }
}
