//! Starts an embedded natter on free loopback ports with its data in a temporary folder.

use std::collections::BTreeMap;
use std::time::Duration;

use natter::client::{ApiClient, Session, WsClient};
use natter::config::NatterConfig;
use natter::system::RunningSystem;
use natter_proto::frame::{ClientFrame, MessageFrame, ServerFrame};
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::http::Method;

/// How long any single expected frame may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A password every check accepts.
pub const PASSWORD: &str = "correct horse battery";

/// One running natter and what a test needs to talk to it.
pub struct Harness {
    pub system: Option<RunningSystem>,
    pub api: ApiClient,
    pub ws_url: String,
    pub config: NatterConfig,
    _data: TempDir,
}

fn test_config(data: &TempDir) -> NatterConfig {
    let mut config = NatterConfig::default();
    config.node.data_dir = data.path().to_path_buf();
    config.listen.api = "127.0.0.1:0".into();
    config.listen.ws = "127.0.0.1:0".into();
    config
}

impl Harness {
    /// natter with the test defaults.
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    /// natter with the test defaults changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut NatterConfig)) -> Harness {
        let data = tempfile::tempdir().expect("temporary folder");
        let mut config = test_config(&data);
        adjust(&mut config);
        let system = RunningSystem::start(&config).await.expect("natter starts");
        Harness {
            api: ApiClient::new(format!("http://{}", system.api_addr)),
            ws_url: format!("ws://{}/ws", system.ws_addr),
            system: Some(system),
            config,
            _data: data,
        }
    }

    /// Stop natter and start it again on the same data.
    pub async fn restart(&mut self) {
        if let Some(system) = self.system.take() {
            system.shutdown().await;
        }
        let system = RunningSystem::start(&self.config)
            .await
            .expect("natter restarts");
        self.api = ApiClient::new(format!("http://{}", system.api_addr));
        self.ws_url = format!("ws://{}/ws", system.ws_addr);
        self.system = Some(system);
    }

    /// Register a user with a name unique to this test run.
    pub async fn user(&self, name: &str) -> Session {
        self.api.register(name, PASSWORD).await.expect("register")
    }

    /// Two registered users who are friends.
    pub async fn friends(&self, first: &str, second: &str) -> (Session, Session) {
        let first = self.user(first).await;
        let second = self.user(second).await;
        self.api.befriend(&first, &second).await.expect("befriend");
        (first, second)
    }

    /// A connection that has seen `welcome`.
    pub async fn connect(&self, session: &Session) -> WsClient {
        self.connect_with(session, "").await
    }

    /// A connection upgraded with `query` (`echo=false`, say) that has seen `welcome`.
    pub async fn connect_with(&self, session: &Session, query: &str) -> WsClient {
        let url = match query {
            "" => self.ws_url.clone(),
            query => format!("{}?{query}", self.ws_url),
        };
        let mut socket = WsClient::connect(&url, &session.access_token)
            .await
            .expect("connect");
        match socket.next(WAIT).await.expect("welcome") {
            Some(ServerFrame::Welcome { user_id, .. }) => {
                assert_eq!(user_id, session.user_id.to_string())
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        socket
    }

    /// A connection after a sync from the stored cursors; returns the synced messages.
    pub async fn connect_synced(&self, session: &Session) -> (WsClient, Vec<MessageFrame>) {
        let mut socket = self.connect(session).await;
        let messages = sync(&mut socket, BTreeMap::new()).await;
        (socket, messages)
    }

    /// The current `/metrics` text.
    pub async fn metrics(&self) -> String {
        let reply = reqwest::get(format!("{}/metrics", self.api_base()))
            .await
            .expect("metrics");
        reply.text().await.expect("metrics text")
    }

    /// The API's base URL.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.system.as_ref().expect("running").api_addr)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(system) = self.system.take() {
            // Tests usually end without an explicit stop; stop it in the background.
            tokio::spawn(system.shutdown());
        }
    }
}

/// Send `sync` and collect messages until `synced`.
pub async fn sync(socket: &mut WsClient, cursors: BTreeMap<String, u64>) -> Vec<MessageFrame> {
    socket
        .send(&ClientFrame::Sync { cursors })
        .await
        .expect("send sync");
    let mut messages = Vec::new();
    loop {
        match socket.next(WAIT).await.expect("sync frames") {
            Some(ServerFrame::Msg(message)) => messages.push(message),
            Some(ServerFrame::Synced { .. }) => return messages,
            Some(ServerFrame::Acked { .. } | ServerFrame::Sent { .. }) => {}
            other => panic!("unexpected frame during sync: {other:?}"),
        }
    }
}

/// Send a text message over the socket and return its `sent` frame's seq; frames that arrive
/// meanwhile (own echoes, other messages) are returned too.
pub async fn send_text(
    socket: &mut WsClient,
    cid: &str,
    to: i64,
    body: &str,
) -> (u64, Vec<ServerFrame>) {
    send_text_to(socket, cid, &format!("user:{to}"), body).await
}

/// [`send_text`] to any target (`user:<id>` or `group:<id>`).
pub async fn send_text_to(
    socket: &mut WsClient,
    cid: &str,
    to: &str,
    body: &str,
) -> (u64, Vec<ServerFrame>) {
    socket
        .send(&ClientFrame::Send {
            cid: cid.into(),
            to: to.into(),
            kind: "text".into(),
            body: body.into(),
            reply_to: None,
        })
        .await
        .expect("send");
    let mut others = Vec::new();
    loop {
        match socket.next(WAIT).await.expect("sent frame") {
            Some(ServerFrame::Sent { cid: got, seq, .. }) if got == cid => return (seq, others),
            Some(ServerFrame::Error { code, message, .. }) => {
                panic!("send {cid} refused: {code} {message}")
            }
            Some(frame) => others.push(frame),
            None => panic!("closed while sending {cid}"),
        }
    }
}

/// The next frame that is a message, skipping acknowledgements.
pub async fn next_message(socket: &mut WsClient) -> MessageFrame {
    loop {
        match socket.next(WAIT).await.expect("a message") {
            Some(ServerFrame::Msg(message)) => return message,
            Some(ServerFrame::Acked { .. } | ServerFrame::Sent { .. }) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The next error frame, skipping everything else.
pub async fn next_error(socket: &mut WsClient) -> (String, Option<String>) {
    loop {
        match socket.next(WAIT).await.expect("an error frame") {
            Some(ServerFrame::Error { code, cid, .. }) => return (code.as_str().to_string(), cid),
            Some(_) => {}
            None => panic!("closed instead of an error frame"),
        }
    }
}

/// Nothing more arrives within `quiet` (besides pings, which the client answers itself).
pub async fn expect_silence(socket: &mut WsClient, quiet: Duration) {
    if let Ok(frame) = socket.next(quiet).await {
        panic!("expected no frame, got {frame:?}");
    }
}

/// Any REST call with a raw bearer token (`None`: no credential); the status and JSON body.
pub async fn call_with_token(
    harness: &Harness,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let reply = harness
        .api
        .call(method, path, token, body)
        .await
        .expect("the API answers");
    (reply.status, reply.body)
}

/// Any REST call as `who` (`None`: no credential); the status and JSON body.
pub async fn call(
    harness: &Harness,
    method: Method,
    path: &str,
    who: Option<&Session>,
    body: Option<Value>,
) -> (u16, Value) {
    let token = who.map(|session| session.access_token.as_str());
    call_with_token(harness, method, path, token, body).await
}

/// A metric's value in Prometheus text (summed over labels), 0 if absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A REST call that must answer `status`; returns the body.
pub async fn expect(
    harness: &Harness,
    method: Method,
    path: &str,
    who: Option<&Session>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (got, reply) = call(harness, method.clone(), path, who, body).await;
    assert_eq!(got, status, "{method} {path}: {reply}");
    reply
}

/// A REST call that must fail with `status` and problem `code`.
pub async fn refused(
    harness: &Harness,
    method: Method,
    path: &str,
    who: Option<&Session>,
    body: Option<Value>,
    status: u16,
    code: &str,
) {
    let problem = expect(harness, method.clone(), path, who, body, status).await;
    assert_eq!(problem["code"], code, "{method} {path}: {problem}");
}

/// The next event for which `wanted` holds, skipping other events; fails after [`WAIT`].
pub async fn event_where(
    socket: &mut WsClient,
    what: &str,
    wanted: impl Fn(&ServerFrame) -> bool,
) -> ServerFrame {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.next_event(left).await {
            Ok(Some(frame)) if wanted(&frame) => return frame,
            Ok(Some(_)) => {}
            Ok(None) => panic!("closed while waiting for {what}"),
            Err(error) => panic!("no {what} in time: {error}"),
        }
    }
}

/// No event for which `unwanted` holds arrives within `quiet`.
pub async fn no_event_where(
    socket: &mut WsClient,
    quiet: Duration,
    what: &str,
    unwanted: impl Fn(&ServerFrame) -> bool,
) {
    let deadline = Instant::now() + quiet;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match socket.next_event(left).await {
            Ok(Some(frame)) if unwanted(&frame) => panic!("expected no {what}, got {frame:?}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("closed while watching for {what}"),
            Err(_) => return,
        }
    }
}

/// The conversation list as `who` sees it.
pub async fn conversations(harness: &Harness, who: &Session) -> Vec<Value> {
    let list = expect(
        harness,
        Method::GET,
        "/api/v1/conversations",
        Some(who),
        None,
        200,
    )
    .await;
    list["conversations"]
        .as_array()
        .unwrap_or_else(|| panic!("no conversations in {list}"))
        .clone()
}

/// The entry for `conversation` in a conversation list.
pub fn entry<'a>(list: &'a [Value], conversation: &str) -> &'a Value {
    list.iter()
        .find(|item| item["conversation"] == conversation)
        .unwrap_or_else(|| panic!("no {conversation} in {list:?}"))
}
