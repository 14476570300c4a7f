//! The cluster tests: natter processes from `deployments/local/` on the real servers
//! `scripts/deps.sh` starts, on the partitioned log (the default topology) and on one topic per
//! object.
//!
//! - Six processes (1 api, 1 logic, 2 task, 2 connect): clients on both connect nodes chat
//!   one-to-one and in a group under steady load while a connect node and a task node are
//!   killed with SIGKILL and the broker restarts; every recipient must end with every
//!   acknowledged message exactly once, in order. A friend left on the killed connect node
//!   with no other connection must be announced offline.
//! - Two logic processes appending to one group at once, one of them killed mid-send: the
//!   group's seqs stay gap-free, every member sees one order, and nothing acknowledged is lost.
//!
//! Needs the `NATTER_TEST_*` variables of `scripts/deps.sh env` and `NATTER_DEPS_DIR` (to
//! restart the broker); without them it fails saying so.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod conversation;
mod faults;
mod partition;
mod traces;

use futures_util::{SinkExt, StreamExt};
use natter::client::{ApiClient, Session, WsClient};
use natter_proto::frame::{ClientFrame, MessageFrame, ServerFrame};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Method;

const PASSWORD: &str = "correct horse battery";
const API: &str = "http://127.0.0.1:8080";
const CONNECT_URLS: [&str; 2] = ["ws://127.0.0.1:8391/ws", "ws://127.0.0.1:8392/ws"];
/// The processes of `deployments/local/`, by config file name, with their layer and HTTP port.
const PROCESSES: [(&str, &str, u16); 7] = [
    ("logic-1", "logic", 8181),
    ("logic-2", "logic", 8182),
    ("task-1", "task", 8281),
    ("task-2", "task", 8282),
    ("connect-1", "connect", 8381),
    ("connect-2", "connect", 8382),
    ("api-1", "api", 8080),
];
/// The HTTP port (`/healthz`, `/metrics`) of the process called `name`.
fn http_port(name: &str) -> u16 {
    PROCESSES
        .iter()
        .find(|(known, _, _)| *known == name)
        .map(|(_, _, port)| *port)
        .expect("a known process")
}

/// The six processes of `scripts/cluster.sh`: one logic process.
const SIX: [&str; 6] = [
    "logic-1",
    "task-1",
    "task-2",
    "connect-1",
    "connect-2",
    "api-1",
];

/// The configuration file of the process called `name` (`deployments/local/NAME.toml`).
fn config_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deployments/local")
        .join(format!("{name}.toml"))
}

/// The ports the process called `name` listens on: every `127.0.0.1:PORT` of the
/// `[listen]` section of its file.
fn listen_ports(name: &str) -> Vec<u16> {
    std::fs::read_to_string(config_path(name))
        .expect("the process's configuration")
        .lines()
        .skip_while(|line| line.trim() != "[listen]")
        .take_while(|line| !line.starts_with('[') || line.trim() == "[listen]")
        .filter_map(|line| line.split("\"127.0.0.1:").nth(1))
        .filter_map(|rest| rest.trim_end_matches('"').parse().ok())
        .collect()
}

/// The tests share ports and servers, so they take turns.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn required(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: the cluster test needs the real servers. Run \
             `scripts/deps.sh up && eval \"$(scripts/deps.sh env)\"`, or scripts/test.sh"
        )
    })
}

/// The six processes, each its own `natter serve <layer>`.
struct Cluster {
    children: HashMap<&'static str, Child>,
    environment: Vec<(String, String)>,
    logs: tempfile::TempDir,
    /// The process run in a network namespace of its own, and that namespace.
    isolated: Option<(&'static str, partition::Isolation)>,
}

impl Cluster {
    /// A cluster whose log has `topology` (`partitioned` or `per-object`).
    fn new(topology: &str) -> Cluster {
        let run = rand::random::<u32>();
        let environment = vec![
            ("NATTER_CLUSTER__NAME", format!("test-{run}")),
            ("NATTER_CLUSTER__ETCD", required("NATTER_TEST_ETCD_URL")),
            (
                "NATTER_CLUSTER__DATABASE_URL",
                required("NATTER_TEST_POSTGRES_URL"),
            ),
            (
                "NATTER_CLUSTER__REDIS_URL",
                required("NATTER_TEST_REDIS_URL"),
            ),
            (
                "NATTER_CLUSTER__KAFKA__BOOTSTRAP",
                required("NATTER_TEST_KAFKA_URL"),
            ),
            // Runs may share a broker (a developer's own, say): each keeps to its own topics.
            ("NATTER_CLUSTER__KAFKA__TOPIC_PREFIX", format!("test-{run}")),
            ("NATTER_CLUSTER__KAFKA__TOPOLOGY", topology.to_string()),
            // Short enough that a dead process's lease and locks run out within the test.
            ("NATTER_CLUSTER__LEASE_TTL_MS", "2000".to_string()),
            ("NATTER_TASK__LOCK_TTL_MS", "2000".to_string()),
            ("RUST_LOG", "info,rskafka=warn".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        Cluster {
            children: HashMap::new(),
            environment,
            logs: tempfile::tempdir().expect("log folder"),
            isolated: None,
        }
    }

    /// Runs the connect node `name` (not yet started) in a network namespace of its own,
    /// whose link to Redis and etcd can be cut (see [`partition::Isolation`]).
    fn isolate(&mut self, name: &'static str) {
        let port_of = |variable: &str| -> u16 {
            let url = required(variable);
            let digits: String = url
                .trim_end_matches('/')
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("no port in {variable}={url}"))
        };
        // Every port of the logic processes, which it calls (their gRPC ports among them).
        let logic: Vec<u16> = ["logic-1", "logic-2"]
            .into_iter()
            .flat_map(listen_ports)
            .collect();
        let isolation = partition::Isolation::new(
            &[
                port_of("NATTER_TEST_REDIS_URL"),
                port_of("NATTER_TEST_ETCD_URL"),
            ],
            &logic,
            &listen_ports(name),
        );
        self.isolated = Some((name, isolation));
    }

    /// Sets (or replaces) an environment variable of the processes started from now on.
    fn set(&mut self, variable: &str, value: &str) {
        self.environment.retain(|(name, _)| name != variable);
        self.environment
            .push((variable.to_string(), value.to_string()));
    }

    /// The cluster's name (`cluster.name`), under which it registers in etcd.
    fn name(&self) -> &str {
        self.environment
            .iter()
            .find(|(name, _)| name == "NATTER_CLUSTER__NAME")
            .map(|(_, value)| value.as_str())
            .expect("a cluster name")
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.logs.path().join(format!("{name}.log"))
    }

    fn start(&mut self, name: &'static str) {
        let (_, layer, _) = PROCESSES
            .iter()
            .find(|(known, _, _)| *known == name)
            .expect("a known process");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("log file");
        let config = config_path(name);
        let program = Path::new(env!("CARGO_BIN_EXE_natter"));
        let mut command = match &self.isolated {
            Some((isolated, isolation)) if *isolated == name => isolation.command(program),
            _ => Command::new(program),
        };
        let child = command
            .args(["serve", layer, "--config"])
            .arg(config)
            .envs(self.environment.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start natter");
        self.children.insert(name, child);
    }

    /// SIGTERM, as a deploy stops a process: it says goodbye (1001 to its clients) and
    /// deregisters; waits until it has exited.
    fn terminate(&mut self, name: &str) {
        let mut child = self.children.remove(name).expect("a running process");
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(signalled.success(), "SIGTERM to {name}");
        let _ = child.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`) to a running process.
    fn signal(&self, name: &str, signal: &str) {
        let child = self.children.get(name).expect("a running process");
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIG{signal} to {name}");
    }

    /// SIGKILL: no goodbye, no deregistration, locks left held.
    fn kill(&mut self, name: &str) {
        let mut child = self.children.remove(name).expect("a running process");
        child.kill().expect("kill -9");
        let _ = child.wait();
    }

    /// Starts `names` and waits until each answers.
    async fn start_all(&mut self, names: &[&'static str]) {
        for name in names {
            self.start(name);
        }
        for name in names {
            self.wait_healthy(name).await;
        }
    }

    async fn wait_healthy(&mut self, name: &str) {
        let port = http_port(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{port}/healthz");
        loop {
            if let Ok(reply) = reqwest::get(&url).await
                && reply.status().is_success()
            {
                return;
            }
            if let Some(child) = self.children.get_mut(name)
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{name} exited with {status}:\n{}", self.log_tail(name));
            }
            assert!(
                Instant::now() < deadline,
                "{name} not healthy in 60 s:\n{}",
                self.log_tail(name)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn all_logs(&self) -> String {
        PROCESSES
            .iter()
            .map(|(name, _, _)| format!("==> {name}\n{}", self.log_tail(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What one chatting user has seen and had acknowledged.
#[derive(Default)]
struct Ledger {
    /// Every message received, by (object, seq): duplicates collapse here.
    received: BTreeMap<(String, u64), MessageFrame>,
    /// How many message frames arrived in all: the user's own sends (their inbox holds
    /// them too) and duplicates included.
    frames: usize,
    /// Reconnections after the first connection.
    reconnects: usize,
    /// Error answers to sends, by code.
    errors: BTreeMap<String, usize>,
    /// Connections given up because a send on them went unanswered too long.
    unanswered_timeouts: usize,
}

/// How long a send may go without any answer before the client takes its connection for
/// broken, reconnects and resends it, as `docs/protocol.md` advises clients to.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A send waiting for its `sent`.
struct Outgoing {
    cid: String,
    to: String,
    body: String,
    done: oneshot::Sender<()>,
}

/// A user that stays connected: on a broken connection it reconnects to the other connect
/// node, syncs from where it was, and resends unanswered sends with the same cid.
struct Chatter {
    session: Session,
    ledger: Arc<Mutex<Ledger>>,
    outgoing: mpsc::Sender<Outgoing>,
}

impl Chatter {
    fn spawn(session: Session, first_node: usize) -> Chatter {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (outgoing, commands) = mpsc::channel(16);
        tokio::spawn(stay_connected(
            session.access_token.clone(),
            first_node,
            Arc::clone(&ledger),
            commands,
        ));
        Chatter {
            session,
            ledger,
            outgoing,
        }
    }

    /// Send to `to` (`user:<id>` or `group:<id>`) and wait until the server acknowledged it
    /// (however many reconnections it take), for at most `patience`.
    async fn send(&self, to: String, cid: String, body: String, patience: Duration) -> bool {
        let (done, acknowledged) = oneshot::channel();
        let outgoing = Outgoing {
            cid,
            to,
            body,
            done,
        };
        if self.outgoing.send(outgoing).await.is_err() {
            return false;
        }
        tokio::time::timeout(patience, acknowledged)
            .await
            .is_ok_and(|answer| answer.is_ok())
    }

    /// The bodies received from `sender`, in seq order, after de-duplication: by (object,
    /// seq) for a frame delivered twice, and by message id for a message the log holds twice
    /// (a produce retried after a lost answer is stored again under a new seq).
    fn received_from(&self, sender: i64) -> Vec<String> {
        let ledger = self.ledger.lock().expect("ledger");
        let mut seen = std::collections::HashSet::new();
        ledger
            .received
            .values()
            .filter(|message| message.from == sender.to_string())
            .filter(|message| seen.insert(message.id.clone()))
            .map(|message| message.body.clone())
            .collect()
    }
}

async fn stay_connected(
    token: String,
    mut node: usize,
    ledger: Arc<Mutex<Ledger>>,
    mut commands: mpsc::Receiver<Outgoing>,
) {
    let mut unanswered: Vec<Outgoing> = Vec::new();
    let mut first = true;
    loop {
        let Ok(mut request) = CONNECT_URLS[node].into_client_request() else {
            return;
        };
        if let Ok(value) = format!("Bearer {token}").parse() {
            request.headers_mut().insert("authorization", value);
        }
        let Ok(Ok((socket, _))) = tokio::time::timeout(
            Duration::from_secs(3),
            tokio_tungstenite::connect_async(request),
        )
        .await
        else {
            node = 1 - node;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if !first {
            ledger.lock().expect("ledger").reconnects += 1;
        }
        first = false;
        let (mut sink, mut stream) = socket.split();
        // Sync from the highest contiguous seq held per object.
        let cursors: BTreeMap<String, u64> = {
            let ledger = ledger.lock().expect("ledger");
            let mut cursors = BTreeMap::new();
            for (object, seq) in ledger.received.keys() {
                let cursor = cursors.entry(object.clone()).or_insert(0);
                if *seq == *cursor + 1 {
                    *cursor = *seq;
                }
            }
            cursors
        };
        let frame =
            |frame: &ClientFrame| WsMessage::text(serde_json::to_string(frame).unwrap_or_default());
        if sink
            .send(frame(&ClientFrame::Sync { cursors }))
            .await
            .is_err()
        {
            continue;
        }
        // Sends wait for an answer on this connection from now on.
        let mut asked_at = Instant::now();
        for pending in &unanswered {
            let resend = ClientFrame::Send {
                cid: pending.cid.clone(),
                to: pending.to.clone(),
                kind: "text".into(),
                body: pending.body.clone(),
                reply_to: None,
            };
            let _ = sink.send(frame(&resend)).await;
        }
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = check.tick() => {
                    if !unanswered.is_empty() && asked_at.elapsed() > ANSWER_TIMEOUT {
                        ledger.lock().expect("ledger").unanswered_timeouts += 1;
                        break;
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    if unanswered.is_empty() {
                        asked_at = Instant::now();
                    }
                    let send = ClientFrame::Send {
                        cid: command.cid.clone(),
                        to: command.to.clone(),
                        kind: "text".into(),
                        body: command.body.clone(), reply_to: None, };
                    unanswered.push(command);
                    if sink.send(frame(&send)).await.is_err() {
                        break;
                    }
                }
                incoming = tokio::time::timeout(Duration::from_secs(5), stream.next()) => {
                    let Ok(Some(Ok(message))) = incoming else { break };
                    let WsMessage::Text(text) = message else {
                        if matches!(message, WsMessage::Close(_)) { break; }
                        continue;
                    };
                    let Ok(server_frame) = serde_json::from_str::<ServerFrame>(text.as_str()) else {
                        continue;
                    };
                    match server_frame {
                        ServerFrame::Msg(message) => {
                            let object = message.object.clone();
                            let ack = ClientFrame::Ack { object: object.clone(), seq: message.seq };
                            // A seq past a gap: what came between was missed (pushed while
                            // this connection was unknown to the cluster, say); sync it, as
                            // docs/protocol.md asks of clients.
                            let gap_from = {
                                let mut ledger = ledger.lock().expect("ledger");
                                ledger.frames += 1;
                                let seq = message.seq;
                                ledger.received.insert((object.clone(), seq), message);
                                let held = |seq: u64| ledger.received.contains_key(&(object.clone(), seq));
                                let mut cursor = seq;
                                while cursor > 0 && held(cursor) {
                                    cursor -= 1;
                                }
                                (cursor > 0).then(|| {
                                    let mut contiguous = 0;
                                    while held(contiguous + 1) {
                                        contiguous += 1;
                                    }
                                    contiguous
                                })
                            };
                            if let Some(cursor) = gap_from {
                                let sync = ClientFrame::Sync {
                                    cursors: BTreeMap::from([(object.clone(), cursor)]),
                                };
                                if sink.send(frame(&sync)).await.is_err() {
                                    break;
                                }
                            }
                            if sink.send(frame(&ack)).await.is_err() {
                                break;
                            }
                        }
                        ServerFrame::Sent { cid, .. } => {
                            if let Some(position) = unanswered.iter().position(|pending| pending.cid == cid) {
                                let _ = unanswered.swap_remove(position).done.send(());
                            }
                            asked_at = Instant::now();
                        }
                        // An error (the broker restarting, say): send again after a pause.
                        ServerFrame::Error { cid: Some(cid), code, .. } => {
                            *ledger
                                .lock()
                                .expect("ledger")
                                .errors
                                .entry(code.as_str().to_string())
                                .or_default() += 1;
                            asked_at = Instant::now();
                            if let Some(pending) = unanswered.iter().find(|pending| pending.cid == cid) {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                let resend = ClientFrame::Send {
                                    cid: pending.cid.clone(),
                                    to: pending.to.clone(),
                                    kind: "text".into(),
                                    body: pending.body.clone(), reply_to: None, };
                                if sink.send(frame(&resend)).await.is_err() {
                                    break;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        // Broken: try the other node next.
        node = 1 - node;
    }
}

/// `sender` sends numbered messages to `recipient` (an object) one after another until `stop`;
/// returns the bodies the server acknowledged, in order.
/// A connection of `session` to `url` past its first sync.
async fn synced_client(session: &Session, url: &str) -> WsClient {
    let mut client = WsClient::connect(url, &session.access_token)
        .await
        .expect("connect");
    client
        .send(&ClientFrame::Sync {
            cursors: BTreeMap::new(),
        })
        .await
        .expect("sync");
    loop {
        match client.next(Duration::from_secs(30)).await.expect("a frame") {
            Some(ServerFrame::Synced { .. }) => return client,
            Some(_) => {}
            None => panic!("closed before syncing"),
        }
    }
}

/// Reads a connection until it ends (answering the server's pings meanwhile).
async fn read_until_closed(mut client: WsClient) {
    while let Ok(Some(_)) = client.next_frame(Duration::from_secs(300)).await {}
}

/// The presence events a connection of `session` sees, as (user id, online), kept by a
/// reader that also drains everything else.
async fn watch_presence(session: &Session, url: &str) -> Arc<Mutex<Vec<(String, bool)>>> {
    let mut client = synced_client(session, url).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            match client.next_frame(Duration::from_secs(300)).await {
                Ok(Some(ServerFrame::Presence { user_id, online })) => {
                    kept.lock().expect("presence").push((user_id, online));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    });
    seen
}

/// Waits (up to a minute) until `user` was seen with this `online` state.
async fn wait_for_presence(
    seen: &Arc<Mutex<Vec<(String, bool)>>>,
    user: &str,
    online: bool,
    cluster: &Cluster,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = seen.lock().expect("presence").clone();
        if events
            .iter()
            .any(|event| event.0 == user && event.1 == online)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no presence {online} for {user}; saw {events:?}\n{}",
            cluster.all_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one sender's steady load did.
#[derive(Default)]
struct Load {
    /// The bodies the server acknowledged, in order.
    acknowledged: Vec<String>,
    /// Every body sent, acknowledged or not.
    attempted: Vec<String>,
    /// The longest one send took to be acknowledged (or given up), retries included.
    longest_wait: Duration,
    /// When each acknowledged body was acknowledged, in the same order.
    acknowledged_at: Vec<Instant>,
}

/// `sender` sends numbered messages to `recipient` (an object) one after another until `stop`,
/// giving up on one after `patience`.
async fn steady_load(
    sender: Arc<Chatter>,
    recipient: String,
    label: String,
    stop: tokio::sync::watch::Receiver<bool>,
    patience: Duration,
) -> Load {
    let mut load = Load::default();
    let mut number = 0u32;
    while !*stop.borrow() {
        number += 1;
        let body = format!("{label} {number:05}");
        load.attempted.push(body.clone());
        let started = Instant::now();
        let acknowledged = sender
            .send(
                recipient.clone(),
                format!("{label}-{number}"),
                body.clone(),
                patience,
            )
            .await;
        load.longest_wait = load.longest_wait.max(started.elapsed());
        if acknowledged {
            load.acknowledged.push(body);
            load.acknowledged_at.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load
}

/// Creates a group owned by `owner` and has `members` join it; returns its id.
async fn create_group(api: &ApiClient, owner: &Session, members: &[&Session]) -> String {
    let created = api
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(&owner.access_token),
            Some(serde_json::json!({ "name": "cluster test" })),
        )
        .await
        .expect("create a group");
    assert_eq!(created.status, 201, "{}", created.body);
    let group = created.body["id"].as_str().expect("a group id").to_string();
    for member in members {
        let path = format!("/api/v1/groups/{group}/join");
        let joined = api
            .call(Method::POST, &path, Some(&member.access_token), None)
            .await
            .expect("join the group");
        assert_eq!(joined.status, 200, "{}", joined.body);
    }
    group
}

/// Starts `names` and waits until each answers.
async fn start_cluster(topology: &str, names: &[&'static str]) -> Cluster {
    let mut cluster = Cluster::new(topology);
    cluster.start_all(names).await;
    cluster
}

/// How long the first test's senders keep retrying one message: through a broker restart.
const THROUGH_FAILURES: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_partitioned_cluster_survives_killed_processes_and_a_broker_restart() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    survives_killed_processes_and_a_broker_restart("partitioned").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_object_cluster_survives_killed_processes_and_a_broker_restart() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    survives_killed_processes_and_a_broker_restart("per-object").await;
}

async fn survives_killed_processes_and_a_broker_restart(topology: &str) {
    let deps_dir = required("NATTER_DEPS_DIR");
    let mut cluster = start_cluster(topology, &SIX).await;

    let api = ApiClient::new(API);
    let run = rand::random::<u32>();
    let alice = api
        .register(&format!("alice{run}"), PASSWORD)
        .await
        .expect("register alice");
    let bob = api
        .register(&format!("bob{run}"), PASSWORD)
        .await
        .expect("register bob");
    let carol = api
        .register(&format!("carol{run}"), PASSWORD)
        .await
        .expect("register carol");
    api.befriend(&alice, &bob).await.expect("befriend");
    // A group of all three: Alice owns it, Bob and Carol join.
    let group = create_group(&api, &alice, &[&bob, &carol]).await;
    // Dan, Alice's friend, sits on connect-2 and will not come back when it dies; a second
    // device of Alice's on connect-1 watches for his presence.
    let dan = api
        .register(&format!("dan{run}"), PASSWORD)
        .await
        .expect("register dan");
    api.befriend(&alice, &dan).await.expect("befriend dan");
    let presence = watch_presence(&alice, CONNECT_URLS[0]).await;
    let dan_socket = synced_client(&dan, CONNECT_URLS[1]).await;
    let dan_id = dan.user_id.to_string();
    let dan_reader = tokio::spawn(read_until_closed(dan_socket));
    wait_for_presence(&presence, &dan_id, true, &cluster).await;
    // Erin, another friend of Alice's on connect-1, stays through the Redis restart and
    // leaves after it: her going offline must still be announced.
    let erin = api
        .register(&format!("erin{run}"), PASSWORD)
        .await
        .expect("register erin");
    api.befriend(&alice, &erin).await.expect("befriend erin");
    let erin_socket = synced_client(&erin, CONNECT_URLS[0]).await;
    let erin_id = erin.user_id.to_string();
    wait_for_presence(&presence, &erin_id, true, &cluster).await;

    // Alice on connect-1, Bob and Carol on connect-2, so the group spans both nodes.
    let alice = Arc::new(Chatter::spawn(alice, 0));
    let bob = Arc::new(Chatter::spawn(bob, 1));
    let carol = Arc::new(Chatter::spawn(carol, 1));
    let (alice_id, bob_id) = (alice.session.user_id, bob.session.user_id);
    let carol_id = carol.session.user_id;
    assert!(
        alice
            .send(
                format!("user:{bob_id}"),
                "hello-1".into(),
                "hello bob".into(),
                THROUGH_FAILURES
            )
            .await,
        "the first message is acknowledged:\n{}",
        cluster.all_logs()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while bob.received_from(alice_id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "bob on connect-2 never got alice's message from connect-1:\n{}",
            cluster.all_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (stop, stopping) = tokio::sync::watch::channel(false);
    let alice_load = tokio::spawn(steady_load(
        Arc::clone(&alice),
        format!("user:{bob_id}"),
        "a2b".into(),
        stopping.clone(),
        THROUGH_FAILURES,
    ));
    let bob_load = tokio::spawn(steady_load(
        Arc::clone(&bob),
        format!("user:{alice_id}"),
        "b2a".into(),
        stopping.clone(),
        THROUGH_FAILURES,
    ));
    let carol_load = tokio::spawn(steady_load(
        Arc::clone(&carol),
        format!("group:{group}"),
        "c2g".into(),
        stopping,
        THROUGH_FAILURES,
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.kill("connect-2");
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.kill("task-1");
    tokio::time::sleep(Duration::from_secs(6)).await;
    restart_server(&deps_dir, "kafka");
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Redis loses everything: sessions, locks, de-duplication records, presence. The connect
    // nodes notice and register their connections again; delivery goes on.
    restart_server(&deps_dir, "redis");
    tokio::time::sleep(Duration::from_secs(6)).await;

    stop.send_replace(true);
    let alice_sent = alice_load.await.expect("alice's load").acknowledged;
    let bob_sent = bob_load.await.expect("bob's load").acknowledged;
    let carol_sent = carol_load.await.expect("carol's load").acknowledged;
    assert!(
        alice_sent.len() > 50 && bob_sent.len() > 50 && carol_sent.len() > 50,
        "the load kept going through the failures: {}, {} and {} acknowledged\n{}",
        alice_sent.len(),
        bob_sent.len(),
        carol_sent.len(),
        cluster.all_logs()
    );

    // Everything acknowledged arrives, once, in order.
    let mut expected_bob = vec!["hello bob".to_string()];
    expected_bob.extend(alice_sent);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bob_has = bob.received_from(alice_id);
        let alice_has = alice.received_from(bob_id);
        // Carol's group messages, as each other member received them.
        let group_alice = alice.received_from(carol_id);
        let group_bob = bob.received_from(carol_id);
        if bob_has == expected_bob
            && alice_has == bob_sent
            && group_alice == carol_sent
            && group_bob == carol_sent
        {
            break;
        }
        if Instant::now() > deadline {
            let missing = |expected: &[String], has: &[String]| -> Vec<String> {
                expected
                    .iter()
                    .filter(|body| !has.contains(body))
                    .take(10)
                    .cloned()
                    .collect()
            };
            panic!(
                "after 60 s: bob has {} of {} (missing e.g. {:?}; in order: {}), alice has {} \
                 of {} (missing e.g. {:?}; in order: {}); of carol's {} group messages alice \
                 has {} (missing e.g. {:?}) and bob {} (missing e.g. {:?})\n{}",
                bob_has.len(),
                expected_bob.len(),
                missing(&expected_bob, &bob_has),
                bob_has.is_sorted(),
                alice_has.len(),
                bob_sent.len(),
                missing(&bob_sent, &alice_has),
                alice_has.is_sorted(),
                carol_sent.len(),
                group_alice.len(),
                missing(&carol_sent, &group_alice),
                group_bob.len(),
                missing(&carol_sent, &group_bob),
                cluster.all_logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dan_reader.is_finished(),
        "dan's connection ended with connect-2"
    );
    // Connect-2 could not say Dan left; its removal from the registry did.
    wait_for_presence(&presence, &dan_id, false, &cluster).await;
    // Presence and online counts are right again after Redis lost them: Erin's leaving is
    // announced, and the group counts its three connected members.
    drop(erin_socket);
    wait_for_presence(&presence, &erin_id, false, &cluster).await;
    wait_for_group_online(&api, &alice.session, &group, 3, &cluster).await;
    retried_cid_survives_a_redis_restart(&api, &alice.session, &bob.session, &deps_dir).await;
    let bob_ledger = bob.ledger.lock().expect("ledger");
    assert!(
        bob_ledger.reconnects >= 1,
        "bob's node was killed, so bob reconnected to the other one"
    );
    eprintln!(
        "cluster test ({topology}): bob got {} messages from alice ({} frames in all, {} reconnects); alice \
         got {} from bob; alice and bob each got carol's {} group messages",
        expected_bob.len(),
        bob_ledger.frames,
        bob_ledger.reconnects,
        bob_sent.len(),
        carol_sent.len()
    );
}

/// Waits until a group's online count, as a member asks for it, is `expected`.
async fn wait_for_group_online(
    api: &ApiClient,
    member: &Session,
    group: &str,
    expected: u64,
    cluster: &Cluster,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = api
            .call(
                Method::GET,
                &format!("/api/v1/groups/{group}/online"),
                Some(&member.access_token),
                None,
            )
            .await
            .expect("online count");
        if reply.body["online"] == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} counts {} online, not {expected}\n{}",
            reply.body,
            cluster.all_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Restarts one of the suite's servers (`kafka` keeps its data; `redis` loses all of it).
fn restart_server(deps_dir: &str, name: &str) {
    let restarted = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deps.sh"))
        .args(["restart", name])
        .env("NATTER_DEPS_DIR", deps_dir)
        .status()
        .unwrap_or_else(|error| panic!("run scripts/deps.sh restart {name}: {error}"));
    assert!(restarted.success(), "{name} restarted");
}

/// A send answered before Redis lost everything (and with it the de-duplication record) and
/// retried after: the retry gets the first answer, and the recipient has the message once.
async fn retried_cid_survives_a_redis_restart(
    api: &ApiClient,
    sender: &Session,
    recipient: &Session,
    deps_dir: &str,
) {
    let send = || async {
        let body = serde_json::json!({
            "cid": "across-redis-restart",
            "to": format!("user:{}", recipient.user_id),
            "kind": "text",
            "body": "sent once across a redis restart",
        });
        // Redis coming back: the send may be refused as unavailable for a moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = api
                .call(
                    Method::POST,
                    "/api/v1/messages",
                    Some(&sender.access_token),
                    Some(body.clone()),
                )
                .await
                .expect("send over REST");
            if reply.status == 201 {
                return reply.body;
            }
            assert!(
                Instant::now() < deadline,
                "the send was never accepted: {} {}",
                reply.status,
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let first = send().await;
    restart_server(deps_dir, "redis");
    let retried = send().await;
    assert_eq!(
        (&retried["id"], &retried["seq"]),
        (&first["id"], &first["seq"]),
        "the retry after Redis lost its de-duplication record got another answer"
    );
    let history = api
        .call(
            Method::GET,
            &format!(
                "/api/v1/conversations/user/{}/messages?limit=100",
                sender.user_id
            ),
            Some(&recipient.access_token),
            None,
        )
        .await
        .expect("history");
    let copies = history.body["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|message| message["body"] == "sent once across a redis restart")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(copies, 1, "the recipient's history: {}", history.body);
}

/// The value of an unlabelled counter on a process's `/metrics` (0 when it is not there yet).
async fn counter(port: u16, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("/metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Whether `wanted` appears in `has` in the same order (other items may come between).
fn in_order_within(wanted: &[String], has: &[String]) -> bool {
    let mut rest = has.iter();
    wanted
        .iter()
        .all(|item| rest.any(|candidate| candidate == item))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_logic_processes_share_a_group_and_one_is_killed_mid_send() {
    /// How long a member waits for one send before moving on.
    const PATIENCE: Duration = Duration::from_secs(10);
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let names = [
        "logic-1",
        "logic-2",
        "task-1",
        "task-2",
        "connect-1",
        "connect-2",
        "api-1",
    ];
    let mut cluster = start_cluster("partitioned", &names).await;
    let api = ApiClient::new(API);
    let run = rand::random::<u32>();
    let mut sessions = Vec::new();
    for index in 0..4 {
        sessions.push(
            api.register(&format!("member{index}x{run}"), PASSWORD)
                .await
                .expect("register"),
        );
    }
    let others: Vec<&Session> = sessions[1..].iter().collect();
    let group = create_group(&api, &sessions[0], &others).await;
    let object = format!("group:{group}");
    // Connect nodes pass sends to the logic processes in turn, so each member's sends, and
    // the group's appends, are split between the two.
    let members: Vec<Arc<Chatter>> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, session)| Arc::new(Chatter::spawn(session, index % 2)))
        .collect();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let loads: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            tokio::spawn(steady_load(
                Arc::clone(member),
                object.clone(),
                format!("m{index}"),
                stopping.clone(),
                // A send caught in the killed process stays claimed there for a while; the
                // sender moves on rather than wait for the claim to expire.
                PATIENCE,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = "natter_messages_accepted_total";
    let (first, second) = (counter(8181, accepted).await, counter(8182, accepted).await);
    assert!(
        first > 10.0 && second > 10.0,
        "both logic processes appended to the group ({first} and {second} messages)"
    );
    let killed_at = Instant::now();
    cluster.kill("logic-2");
    // Long enough for a member whose send was caught in the killed process to give up on it
    // and send on for a while.
    tokio::time::sleep(PATIENCE + Duration::from_secs(5)).await;
    stop.send_replace(true);
    let mut sent = Vec::new();
    for load in loads {
        sent.push(load.await.expect("a member's load"));
    }
    for (index, load) in sent.iter().enumerate() {
        let after_kill = load
            .acknowledged_at
            .iter()
            .filter(|at| **at > killed_at)
            .count();
        let ledger = {
            let ledger = members[index].ledger.lock().expect("ledger");
            format!(
                "{} reconnects, {} given up unanswered, errors {:?}",
                ledger.reconnects, ledger.unanswered_timeouts, ledger.errors
            )
        };
        assert!(
            after_kill >= 3,
            "member {index}'s sends went on after logic-2 died: {after_kill} acknowledged after \
             it, {} in all of {} attempted, the longest wait {:?}; its connection: {ledger}\n{}",
            load.acknowledged.len(),
            load.attempted.len(),
            load.longest_wait,
            cluster.all_logs()
        );
    }

    // Every member ends with every acknowledged message, in the order sent; a message whose
    // sender was never answered (its logic process died) may be there too, as it was logged.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let complete = members.iter().all(|member| {
            members.iter().zip(&sent).all(|(sender, load)| {
                let has = member.received_from(sender.session.user_id);
                in_order_within(&load.acknowledged, &has)
                    && has.iter().all(|body| load.attempted.contains(body))
            })
        });
        if complete {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s a member still lacks acknowledged group messages, or has one never \
             sent\n{}",
            cluster.all_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One order for everyone: the group's seqs run 1, 2, 3… with no gap, and each seq is the
    // same message on every member's screen.
    let orders: Vec<Vec<String>> = members
        .iter()
        .map(|member| {
            let ledger = member.ledger.lock().expect("ledger");
            let numbered: Vec<(u64, String)> = ledger
                .received
                .iter()
                .filter(|((received_object, _), _)| *received_object == object)
                .map(|((_, seq), message)| (*seq, message.id.clone()))
                .collect();
            for (index, (seq, _)) in numbered.iter().enumerate() {
                assert_eq!(*seq, index as u64 + 1, "the group's seqs are gap-free");
            }
            numbered.into_iter().map(|(_, id)| id).collect()
        })
        .collect();
    let longest = orders.iter().map(Vec::len).max().unwrap_or(0);
    for order in &orders {
        let common = order.len().min(orders[0].len());
        assert_eq!(
            order[..common],
            orders[0][..common],
            "every member saw one order"
        );
    }
    eprintln!(
        "cluster test (two logic processes): {longest} group messages, acknowledged {:?}",
        sent.iter()
            .map(|load| load.acknowledged.len())
            .collect::<Vec<_>>()
    );
}
