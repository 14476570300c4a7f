//! `natter serve` as a process of its own, for tests that kill it or limit what it may open.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use natter::client::{ApiClient, Session, WsClient};
use natter_proto::frame::ServerFrame;

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// `natter serve` on `data` and the given loopback ports, with the send rate limit out of the
/// way (a test's burst is all in flight at once).
fn command(data: &std::path::Path, api: u16, ws: u16, program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env("NATTER_NODE__DATA_DIR", data)
        .env("NATTER_LISTEN__API", format!("127.0.0.1:{api}"))
        .env("NATTER_LISTEN__WS", format!("127.0.0.1:{ws}"))
        .env("NATTER_CONNECT__INBOUND_RATE", "100000")
        .env("NATTER_CONNECT__INBOUND_BURST", "100000")
        .env_remove("NATTER_CONFIG")
        .stdout(Stdio::null());
    command
}

/// A running `natter serve`, killed when dropped (a failed test leaves nothing behind).
pub struct Served(Child);

impl Served {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `natter serve` as its own process on `data`.
pub fn serve(data: &std::path::Path, api: u16, ws: u16) -> Served {
    serve_with(data, api, ws, &[])
}

/// `natter serve` as its own process on `data`, with these configuration variables too.
pub fn serve_with(
    data: &std::path::Path,
    api: u16,
    ws: u16,
    settings: &[(&str, String)],
) -> Served {
    let mut command = command(data, api, ws, env!("CARGO_BIN_EXE_natter"));
    for (name, value) in settings {
        command.env(name, value);
    }
    Served(
        command
            .arg("serve")
            .stderr(Stdio::null())
            .spawn()
            .expect("natter serve starts"),
    )
}

/// `natter serve` allowed at most `open_files` file descriptors, its log in `log`, and the
/// per-address handshake cap set to `per_address`.
pub fn serve_limited(
    data: &std::path::Path,
    api: u16,
    ws: u16,
    open_files: u32,
    per_address: u32,
    log: std::fs::File,
) -> Served {
    // The shell lowers its own limit, then becomes natter, which inherits it.
    let child = command(data, api, ws, "sh")
        .arg("-c")
        .arg("ulimit -n \"$1\" && exec \"$0\" serve")
        .arg(env!("CARGO_BIN_EXE_natter"))
        .arg(open_files.to_string())
        .env(
            "NATTER_LISTEN__HANDSHAKE__PER_ADDRESS",
            per_address.to_string(),
        )
        .stderr(log)
        .spawn()
        .expect("natter serve starts");
    Served(child)
}

/// Waits until `GET /healthz` answers 200, for at most 30 s.
pub async fn wait_until_up(api: &ApiClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = api
            .call(
                tokio_tungstenite::tungstenite::http::Method::GET,
                "/healthz",
                None,
                None,
            )
            .await
            && reply.status == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "natter serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection past its welcome frame.
pub async fn connected(url: &str, session: &Session) -> WsClient {
    let mut socket = WsClient::connect(url, &session.access_token)
        .await
        .expect("connect");
    match socket.next(Duration::from_secs(10)).await.expect("welcome") {
        Some(ServerFrame::Welcome { .. }) => socket,
        other => panic!("expected welcome, got {other:?}"),
    }
}
