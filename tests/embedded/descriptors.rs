//! Out of file descriptors: a `natter serve` allowed few of them, flooded with idle sockets
//! until accepting fails, goes on serving the connections it has, and accepts new ones as soon
//! as some close.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use natter::client::{ApiClient, WsClient};
use natter_proto::frame::ClientFrame;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{PASSWORD, WAIT, next_message, send_text, sync};
use crate::process::{connected, free_port, serve_limited, wait_until_up};

/// The descriptors natter may hold: enough to start and serve two clients, few enough to run
/// out of quickly.
const OPEN_FILES: u32 = 256;

/// Idle sockets opened at it, from an address of their own: well past its descriptors.
const FLOOD: usize = 600;

/// Sends in flight at once while natter is out of descriptors.
const BURST: usize = 50;

/// A socket from 127.0.0.3, established by the kernel whether natter accepts it or not.
async fn idle_socket(port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.3:0".parse().expect("address"))
        .expect("bind 127.0.0.3");
    socket
        .connect(format!("127.0.0.1:{port}").parse().expect("address"))
        .await
        .expect("connect")
}

/// The body of the next message on `socket` from `sender`, skipping one's own copies.
async fn next_from(socket: &mut WsClient, sender: i64) -> String {
    let from = sender.to_string();
    loop {
        let message = next_message(socket).await;
        if message.from == from {
            return message.body;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_stops_neither_serving_nor_accepting_once_some_close() {
    let data = tempfile::tempdir().expect("data folder");
    let log_path = data.path().join("natter.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (api_port, ws_port) = (free_port(), free_port());
    let api = ApiClient::new(format!("http://127.0.0.1:{api_port}"));
    let ws_url = format!("ws://127.0.0.1:{ws_port}/ws");
    // The per-address cap is lifted so the flood reaches the descriptor limit, not the cap.
    let mut server = serve_limited(data.path(), api_port, ws_port, OPEN_FILES, 100_000, log);
    wait_until_up(&api).await;
    let alice = api.register("fdalice", PASSWORD).await.expect("alice");
    let bob = api.register("fdbob", PASSWORD).await.expect("bob");
    api.befriend(&alice, &bob).await.expect("friends");
    let mut alice_socket = connected(&ws_url, &alice).await;
    let mut bob_socket = connected(&ws_url, &bob).await;
    sync(&mut alice_socket, BTreeMap::new()).await;
    sync(&mut bob_socket, BTreeMap::new()).await;

    let mut flood = Vec::with_capacity(FLOOD);
    for index in 0..FLOOD {
        let port = if index % 2 == 0 { api_port } else { ws_port };
        flood.push(idle_socket(port).await);
    }
    // natter has run out: its log says an accept failed for want of descriptors.
    let deadline = Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("accept failed") && log.contains("Too many open files") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flood never exhausted natter's descriptors; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The connections it has still chat, both ways (each also gets its own copy back).
    let log_tail = || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| !line.contains("accept failed"))
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    let chat = async {
        // A burst, all in flight at once: the server works on several sends together, as
        // under real load, and needs more than one database connection for it.
        for number in 0..BURST {
            alice_socket
                .send(&ClientFrame::Send {
                    cid: format!("fd-burst-{number}"),
                    to: format!("user:{}", bob.user_id),
                    kind: "text".into(),
                    body: format!("burst {number}"),
                    reply_to: None,
                })
                .await
                .expect("send");
        }
        for number in 0..BURST {
            assert_eq!(
                next_from(&mut bob_socket, alice.user_id).await,
                format!("burst {number}")
            );
        }
        send_text(&mut alice_socket, "fd-1", bob.user_id, "while out of files").await;
        assert_eq!(
            next_from(&mut bob_socket, alice.user_id).await,
            "while out of files"
        );
        send_text(&mut bob_socket, "fd-2", alice.user_id, "still here").await;
        assert_eq!(
            next_from(&mut alice_socket, bob.user_id).await,
            "still here"
        );
    };
    if tokio::time::timeout(WAIT / 2, chat).await.is_err() {
        panic!(
            "the connections natter had stopped chatting when it ran out of files; its log:\n{}",
            log_tail()
        );
    }

    // Once the flood goes, new connections are accepted on both ports.
    drop(flood);
    let healthy = tokio::time::timeout(WAIT, async {
        loop {
            match api.call(Method::GET, "/healthz", None, None).await {
                Ok(reply) if reply.status == 200 => return,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert!(
        healthy.is_ok(),
        "/healthz did not answer after the flood closed"
    );
    let mut second = tokio::time::timeout(WAIT, connected(&ws_url, &bob))
        .await
        .expect("a new WebSocket connection is accepted after the flood closed");
    let history = sync(&mut second, BTreeMap::new()).await;
    assert!(
        history
            .iter()
            .any(|message| message.body == "while out of files"),
        "the new connection syncs what was sent while natter was out of files"
    );

    server.kill();
}
