//! The `soak` scenario: a long run with connection churn (every user drops its connection
//! abruptly after a random while and reconnects, syncing from its own cursors), steady
//! one-to-one and group traffic, and the server's resident memory and open file descriptors
//! sampled throughout. At the end every user syncs once more, and every acknowledged message
//! must have reached each of its recipients exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use natter::client::{ApiClient, Session, WsClient};
use natter_proto::frame::{ClientFrame, MessageFrame, ServerFrame};
use serde::Serialize;

use crate::Target;
use crate::cpu;
use crate::report::value_ticks;
use crate::setup::{befriend_pairs, progress_bar, register_users, seed_group};

/// Options of `natter-bench soak`.
#[derive(Debug, clap::Args)]
pub struct SoakOptions {
    /// Server and output.
    #[command(flatten)]
    pub target: Target,
    /// Users, in friend pairs, all members of one group.
    #[arg(long, default_value_t = 400)]
    pub users: usize,
    /// One-to-one messages per second each user sends its friend.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Group messages per second, all users together.
    #[arg(long, default_value_t = 2.0)]
    pub group_rate: f64,
    /// Connections dropped and made again per second, all users together.
    #[arg(long, default_value_t = 200.0)]
    pub churn: f64,
    /// How long the run lasts, in minutes.
    #[arg(long, default_value_t = 20)]
    pub minutes: u64,
    /// Seconds between samples of the server's memory and descriptors.
    #[arg(long, default_value_t = 5)]
    pub sample_seconds: u64,
    /// Seconds a user keeps an access token before refreshing it; below the server's token
    /// lifetime (`api.access_token_seconds`, 15 minutes by default), which a soak outlasts.
    #[arg(long, default_value_t = 600)]
    pub token_refresh_seconds: u64,
}

/// One sample of the server.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub seconds: f64,
    /// Resident memory of the server processes, summed.
    pub rss_bytes: u64,
    /// Open file descriptors of the server processes, summed.
    pub open_files: u64,
    /// Connections the generator holds now.
    pub connections: u64,
    /// Sends acknowledged so far.
    pub acknowledged: u64,
    /// Connections made so far (the first ones included).
    pub connects: u64,
}

/// What a soak showed.
#[derive(Debug, Serialize)]
pub struct SoakResults {
    /// The options, as run.
    pub users: usize,
    /// One-to-one messages per second per user.
    pub rate: f64,
    /// Group messages per second in all.
    pub group_rate: f64,
    /// Reconnections per second asked for.
    pub churn: f64,
    /// Seconds of load.
    pub seconds: f64,
    /// Connections made, reconnections included.
    pub connects: u64,
    /// Connection attempts that failed (and were retried).
    pub connect_failures: u64,
    /// One-to-one sends acknowledged.
    pub direct_acknowledged: u64,
    /// Group sends acknowledged.
    pub group_acknowledged: u64,
    /// Deliveries expected: each acknowledged message to each of its recipients.
    pub expected_deliveries: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Messages that arrived under two ids (a retry made a second message).
    pub duplicated: u64,
    /// The samples, oldest first.
    pub samples: Vec<Sample>,
}

/// What one user has received: each message once by (object, seq), and the bodies by id.
#[derive(Default)]
struct Inbox {
    seen: HashSet<(String, u64)>,
    /// Body → the message ids it arrived under.
    bodies: HashMap<String, HashSet<String>>,
    /// Highest seq held without a gap, per object.
    contiguous: BTreeMap<String, u64>,
}

impl Inbox {
    /// Records a message; returns the cursor to sync from when it leaves a gap behind it.
    fn record(&mut self, message: MessageFrame) -> Option<u64> {
        let key = (message.object.clone(), message.seq);
        if !self.seen.insert(key) {
            return None;
        }
        let cursor = self.contiguous.entry(message.object.clone()).or_insert(0);
        while self.seen.contains(&(message.object.clone(), *cursor + 1)) {
            *cursor += 1;
        }
        let gap = (message.seq > *cursor).then_some(*cursor);
        self.bodies
            .entry(message.body)
            .or_default()
            .insert(message.id);
        gap
    }
}

/// How long the final round may take: a user still waiting for answers then gives up, and
/// what it never had answered does not count as acknowledged.
const LAST_ROUND_LIMIT: Duration = Duration::from_secs(120);

/// Shared by every user's task.
struct Shared {
    api: ApiClient,
    ws: Vec<String>,
    group: String,
    deadline: Instant,
    session_mean: Duration,
    token_refresh: Duration,
    send_interval: Duration,
    group_interval: Duration,
    connections: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    acknowledged: AtomicU64,
}

/// One user's run: its sends acknowledged (to its friend, to the group) and what it received.
struct UserOutcome {
    direct: Vec<String>,
    group: Vec<String>,
    inbox: Inbox,
}

/// Upper bounds that keep a run within a shared machine.
const MAX_USERS: usize = 5_000;
const MAX_MINUTES: u64 = 120;

/// Runs the soak and returns what it measured.
pub async fn run(options: &SoakOptions) -> anyhow::Result<SoakResults> {
    if options.users < 2 || options.users > MAX_USERS || !options.users.is_multiple_of(2) {
        bail!("--users is an even number from 2 to {MAX_USERS}");
    }
    if options.minutes == 0 || options.minutes > MAX_MINUTES {
        bail!("--minutes is 1 to {MAX_MINUTES}");
    }
    if options.rate <= 0.0 || options.group_rate <= 0.0 || options.churn <= 0.0 {
        bail!("--rate, --group-rate and --churn are above zero");
    }
    let api = ApiClient::new(options.target.api.clone());
    let users = register_users(&api, options.users).await?;
    befriend_pairs(&api, &users).await?;
    let group = seed_group(&api, &users).await?;
    let shared = Arc::new(Shared {
        api: api.clone(),
        ws: options.target.ws.clone(),
        group: format!("group:{group}"),
        deadline: Instant::now() + Duration::from_secs(options.minutes * 60),
        session_mean: Duration::from_secs_f64(options.users as f64 / options.churn),
        token_refresh: Duration::from_secs(options.token_refresh_seconds),
        send_interval: Duration::from_secs_f64(1.0 / options.rate),
        group_interval: Duration::from_secs_f64(options.users as f64 / options.group_rate),
        connections: AtomicU64::new(0),
        connects: AtomicU64::new(0),
        connect_failures: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
    });
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    std::fs::create_dir_all(&options.target.out)?;
    let sampler = tokio::spawn(sample_server(
        Arc::clone(&shared),
        options.target.server_pids.clone(),
        Duration::from_secs(options.sample_seconds.max(1)),
        Arc::clone(&samples),
        (started, options.target.out.join("samples.csv")),
    ));
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(index, me)| {
            let friend = &users[index ^ 1];
            tokio::spawn(user(index, me.clone(), friend.user_id, Arc::clone(&shared)))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.context("a user's task failed")??);
    }
    sampler.abort();
    let seconds = started.elapsed().as_secs_f64();
    let samples = samples
        .lock()
        .map(|samples| samples.clone())
        .unwrap_or_default();
    Ok(tally(options, outcomes, &shared, seconds, samples))
}

/// Counts what arrived against what was acknowledged.
fn tally(
    options: &SoakOptions,
    outcomes: Vec<UserOutcome>,
    shared: &Shared,
    seconds: f64,
    samples: Vec<Sample>,
) -> SoakResults {
    let group_sent: Vec<&String> = outcomes.iter().flat_map(|outcome| &outcome.group).collect();
    let (mut expected, mut lost, mut duplicated) = (0u64, 0u64, 0u64);
    for (index, outcome) in outcomes.iter().enumerate() {
        let friend = &outcomes[index ^ 1];
        for body in friend.direct.iter().chain(group_sent.iter().copied()) {
            expected += 1;
            match outcome.inbox.bodies.get(body).map(HashSet::len) {
                None => lost += 1,
                Some(1) => {}
                Some(_) => duplicated += 1,
            }
        }
    }
    SoakResults {
        users: options.users,
        rate: options.rate,
        group_rate: options.group_rate,
        churn: options.churn,
        seconds,
        connects: shared.connects.load(Ordering::Relaxed),
        connect_failures: shared.connect_failures.load(Ordering::Relaxed),
        direct_acknowledged: outcomes
            .iter()
            .map(|outcome| outcome.direct.len() as u64)
            .sum(),
        group_acknowledged: group_sent.len() as u64,
        expected_deliveries: expected,
        lost,
        duplicated,
        samples,
    }
}

/// A send waiting for its `sent`.
struct Pending {
    cid: String,
    to: String,
    body: String,
    group: bool,
}

/// One user: connect, sync, chat for a random while, drop the connection, again, until the
/// deadline; then a last connection that syncs and answers every pending send.
async fn user(
    index: usize,
    mut me: Session,
    friend: i64,
    shared: Arc<Shared>,
) -> anyhow::Result<UserOutcome> {
    let mut token_since = Instant::now();
    let mut outcome = UserOutcome {
        direct: Vec::new(),
        group: Vec::new(),
        inbox: Inbox::default(),
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut number = 0u64;
    let mut connection = 0usize;
    // Spread the group sends: each user's first comes at a different time.
    let mut next_group = Instant::now() + shared.group_interval.mul_f64(rand::random::<f64>());
    let mut last_round = false;
    loop {
        if last_round && Instant::now() > shared.deadline + LAST_ROUND_LIMIT {
            return Ok(outcome);
        }
        if token_since.elapsed() > shared.token_refresh {
            match shared.api.refresh(&me).await {
                Ok(fresh) => {
                    me = fresh;
                    token_since = Instant::now();
                }
                Err(_) => {
                    shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let url = &shared.ws[(index + connection) % shared.ws.len()];
        connection += 1;
        let mut socket = match WsClient::connect(url, &me.access_token).await {
            Ok(socket) => socket,
            Err(_) => {
                shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        shared.connects.fetch_add(1, Ordering::Relaxed);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let ended = session(
            &mut socket,
            &shared,
            &mut outcome,
            &mut pending,
            SessionPlan {
                friend,
                last_round,
                next_group: &mut next_group,
                number: &mut number,
                index,
            },
        )
        .await;
        shared.connections.fetch_sub(1, Ordering::Relaxed);
        // Dropped without a goodbye, as a phone losing its network would.
        drop(socket);
        if last_round && ended.is_ok() && pending.is_empty() {
            return Ok(outcome);
        }
        if Instant::now() >= shared.deadline {
            last_round = true;
        }
    }
}

/// What a session needs besides the socket and the running totals.
struct SessionPlan<'a> {
    friend: i64,
    last_round: bool,
    next_group: &'a mut Instant,
    number: &'a mut u64,
    index: usize,
}

/// One connection's life: sync, resend what is pending, then send and receive until a random
/// end (or, in the last round, until everything pending is answered and nothing more comes).
async fn session(
    socket: &mut WsClient,
    shared: &Shared,
    outcome: &mut UserOutcome,
    pending: &mut Vec<Pending>,
    plan: SessionPlan<'_>,
) -> anyhow::Result<()> {
    let cursors = outcome.inbox.contiguous.clone();
    socket.send(&ClientFrame::Sync { cursors }).await?;
    for send in pending.iter() {
        socket.send(&frame_of(send)).await?;
    }
    let lifetime = shared
        .session_mean
        .mul_f64(-(1.0 - rand::random::<f64>()).max(1e-9).ln());
    let ends = Instant::now() + lifetime;
    let mut next_send = Instant::now() + shared.send_interval.mul_f64(rand::random::<f64>());
    let mut quiet_since = Instant::now();
    loop {
        let now = Instant::now();
        if plan.last_round {
            let quiet = now.duration_since(quiet_since) > Duration::from_secs(3);
            if (pending.is_empty() && quiet) || now > shared.deadline + LAST_ROUND_LIMIT {
                return Ok(());
            }
        } else if now >= ends || now >= shared.deadline {
            return Ok(());
        } else {
            if now >= next_send {
                next_send += shared.send_interval;
                *plan.number += 1;
                let send = Pending {
                    cid: format!("d{}", plan.number),
                    to: format!("user:{}", plan.friend),
                    body: format!("u{} d{}", plan.index, plan.number),
                    group: false,
                };
                socket.send(&frame_of(&send)).await?;
                pending.push(send);
            }
            if now >= *plan.next_group {
                *plan.next_group += shared.group_interval;
                *plan.number += 1;
                let send = Pending {
                    cid: format!("g{}", plan.number),
                    to: shared.group.clone(),
                    body: format!("u{} g{}", plan.index, plan.number),
                    group: true,
                };
                socket.send(&frame_of(&send)).await?;
                pending.push(send);
            }
        }
        let frame = match socket.next_frame(Duration::from_millis(50)).await {
            Ok(Some(frame)) => frame,
            Ok(None) => bail!("closed by the server"),
            // Nothing within the wait: go round (time to send, or to end).
            Err(_) => continue,
        };
        quiet_since = Instant::now();
        match frame {
            ServerFrame::Msg(message) => {
                let object = message.object.clone();
                let seq = message.seq;
                if let Some(cursor) = outcome.inbox.record(message) {
                    let cursors = BTreeMap::from([(object.clone(), cursor)]);
                    socket.send(&ClientFrame::Sync { cursors }).await?;
                }
                socket.send(&ClientFrame::Ack { object, seq }).await?;
            }
            ServerFrame::Sent { cid, .. } => {
                if let Some(position) = pending.iter().position(|send| send.cid == cid) {
                    let send = pending.swap_remove(position);
                    shared.acknowledged.fetch_add(1, Ordering::Relaxed);
                    if send.group {
                        outcome.group.push(send.body);
                    } else {
                        outcome.direct.push(send.body);
                    }
                }
            }
            // A refused send (rate, load) stays pending and goes again on the next
            // connection; events and the rest need nothing.
            _ => {}
        }
    }
}

fn frame_of(send: &Pending) -> ClientFrame {
    ClientFrame::Send {
        cid: send.cid.clone(),
        to: send.to.clone(),
        kind: "text".into(),
        body: send.body.clone(),
        reply_to: None,
    }
}

/// Samples the server's memory and descriptors until aborted, with a progress bar; each
/// sample is also appended to `csv` at once, so a run cut short keeps its figures.
async fn sample_server(
    shared: Arc<Shared>,
    pids: Vec<u32>,
    every: Duration,
    samples: Arc<Mutex<Vec<Sample>>>,
    (started, csv): (Instant, std::path::PathBuf),
) {
    let total = shared.deadline.duration_since(started).as_secs();
    let bar = progress_bar(total, "seconds of soak");
    let mut file = std::fs::File::create(&csv).ok();
    if let Some(file) = file.as_mut() {
        let _ = writeln!(
            file,
            "seconds,rss_bytes,open_files,connections,acknowledged,connects"
        );
    }
    loop {
        let sample = Sample {
            seconds: started.elapsed().as_secs_f64(),
            rss_bytes: pids
                .iter()
                .filter_map(|pid| cpu::resident_bytes(*pid))
                .sum(),
            open_files: pids.iter().map(|pid| open_files(*pid)).sum(),
            connections: shared.connections.load(Ordering::Relaxed),
            acknowledged: shared.acknowledged.load(Ordering::Relaxed),
            connects: shared.connects.load(Ordering::Relaxed),
        };
        bar.set_position((sample.seconds as u64).min(total));
        bar.set_message(format!(
            "{} MiB, {} fds, {} connections",
            sample.rss_bytes / (1024 * 1024),
            sample.open_files,
            sample.connections
        ));
        if let Some(file) = file.as_mut() {
            let _ = writeln!(
                file,
                "{:.1},{},{},{},{},{}",
                sample.seconds,
                sample.rss_bytes,
                sample.open_files,
                sample.connections,
                sample.acknowledged,
                sample.connects
            );
        }
        if let Ok(mut samples) = samples.lock() {
            samples.push(sample);
        }
        tokio::time::sleep(every).await;
    }
}

/// Open file descriptors of a process (0 if it cannot be read).
fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count() as u64)
        .unwrap_or(0)
}

/// The results as Markdown.
pub fn markdown(results: &SoakResults) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| users | one-to-one msg/s | group msg/s (x{} members) | reconnects/s asked | measured | minutes |",
        results.users
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|");
    let _ = writeln!(
        text,
        "| {} | {:.0} | {:.1} | {:.0} | {:.0} | {:.1} |",
        results.users,
        results.rate * results.users as f64,
        results.group_rate,
        results.churn,
        results.connects as f64 / results.seconds.max(1.0),
        results.seconds / 60.0
    );
    let _ = writeln!(
        text,
        "\n{} one-to-one and {} group sends acknowledged; {} deliveries expected, {} lost, {} duplicated; {} connections made ({} attempts failed and were retried).",
        results.direct_acknowledged,
        results.group_acknowledged,
        results.expected_deliveries,
        results.lost,
        results.duplicated,
        results.connects,
        results.connect_failures
    );
    if let (Some(first), Some(last)) = (results.samples.first(), results.samples.last()) {
        let warm = results
            .samples
            .iter()
            .find(|sample| sample.seconds >= last.seconds / 4.0)
            .unwrap_or(first);
        let _ = writeln!(
            text,
            "\nServer RSS: {} MiB at the start, {} MiB after warm-up (a quarter in), {} MiB at the end; open files {} / {} / {}.",
            first.rss_bytes / (1024 * 1024),
            warm.rss_bytes / (1024 * 1024),
            last.rss_bytes / (1024 * 1024),
            first.open_files,
            warm.open_files,
            last.open_files
        );
    }
    text
}

/// What one panel of the plot shows of a sample.
type SampleValue = dyn Fn(&Sample) -> f64;

/// The server's RSS (MiB) and open files over time, as a standalone SVG of two panels.
pub fn svg(results: &SoakResults) -> String {
    const WIDTH: f64 = 720.0;
    const PANEL: f64 = 200.0;
    const MARGIN: f64 = 60.0;
    let height = 2.0 * PANEL + 3.0 * MARGIN;
    let max_seconds = results
        .samples
        .last()
        .map_or(1.0, |sample| sample.seconds.max(1.0));
    let x = |seconds: f64| MARGIN + seconds / max_seconds * (WIDTH - 2.0 * MARGIN);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    let rss = |sample: &Sample| sample.rss_bytes as f64 / (1024.0 * 1024.0);
    let files = |sample: &Sample| sample.open_files as f64;
    let panels: [(&str, &str, &SampleValue); 2] = [
        ("server RSS (MiB)", "steelblue", &rss),
        ("open file descriptors", "darkorange", &files),
    ];
    for (panel, (title, colour, value)) in panels.iter().enumerate() {
        let top = MARGIN + panel as f64 * (PANEL + MARGIN);
        let bottom = top + PANEL;
        let max_value = results.samples.iter().map(value).fold(1.0, f64::max) * 1.1;
        let y = |v: f64| bottom - v / max_value * PANEL;
        let _ = writeln!(
            svg,
            r#"<text x="{MARGIN}" y="{:.1}" font-size="14">{title}, over {:.0} minutes of churn and chat</text>"#,
            top - 10.0,
            max_seconds / 60.0
        );
        let _ = writeln!(
            svg,
            r#"<path d="M{MARGIN} {top} V{bottom} H{:.1}" stroke="black" fill="none"/>"#,
            WIDTH - MARGIN
        );
        value_ticks(&mut svg, MARGIN, max_value, 0, y);
        for step in 0..=4 {
            let seconds = max_seconds * step as f64 / 4.0;
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0} min</text>"#,
                x(seconds),
                bottom + 16.0,
                seconds / 60.0
            );
        }
        let points: Vec<String> = results
            .samples
            .iter()
            .map(|sample| format!("{:.1},{:.1}", x(sample.seconds), y(value(sample))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" stroke="{colour}" stroke-width="2" fill="none"/>"#,
            points.join(" ")
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes results.json, summary.md and soak.svg into `folder`.
pub fn write(folder: &std::path::Path, results: &SoakResults) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder)?;
    std::fs::write(
        folder.join("results.json"),
        serde_json::to_string_pretty(results)?,
    )?;
    std::fs::write(folder.join("summary.md"), markdown(results))?;
    std::fs::write(folder.join("soak.svg"), svg(results))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(object: &str, seq: u64, id: &str, body: &str) -> MessageFrame {
        MessageFrame {
            object: object.into(),
            seq,
            id: id.into(),
            body: body.into(),
            ..MessageFrame::default()
        }
    }

    #[test]
    fn an_inbox_counts_each_message_once_and_names_the_cursor_before_a_gap() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.record(message("user:1", 1, "a", "one")), None);
        assert_eq!(inbox.record(message("user:1", 1, "a", "one")), None);
        assert_eq!(inbox.record(message("user:1", 3, "c", "three")), Some(1));
        assert_eq!(inbox.record(message("user:1", 2, "b", "two")), None);
        assert_eq!(inbox.contiguous["user:1"], 3);
        // The same body under a second id: a duplicate the tally counts.
        inbox.record(message("user:1", 4, "d", "one"));
        assert_eq!(inbox.bodies["one"].len(), 2);
    }
}
