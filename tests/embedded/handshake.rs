//! Sockets that never finish their handshake: thousands of them, from one address, on both
//! ports, do not keep a real client from connecting and chatting, and every one is closed
//! within the handshake deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_connect::HandshakeLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{Harness, WAIT, metric, next_message, send_text, sync};

/// The deadline the tests set; short, so the test does not wait long for it.
const DEADLINE: Duration = Duration::from_millis(1500);

/// A connection from 127.0.0.2 (a loopback address of its own, so the cap on it is not the
/// real client's), already established by the kernel.
async fn half_open(target: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("address"))
        .expect("bind 127.0.0.2");
    socket.connect(target).await.expect("connect")
}

/// Waits for the server to close `stream` (end of stream or reset) and returns when it did,
/// or `None` if it is still open at `until`.
async fn closed_by(mut stream: TcpStream, until: Instant) -> Option<Instant> {
    let mut buffer = [0u8; 256];
    loop {
        match tokio::time::timeout_at(until.into(), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            // A refusal or an HTTP error answer: the close follows.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_silent_sockets_neither_lock_out_a_client_nor_outlive_the_deadline() {
    let harness = Harness::start_with(|config| {
        config.listen.handshake = HandshakeLimits {
            timeout_ms: DEADLINE.as_millis() as u64,
            per_address: 32,
        };
    })
    .await;
    let system = harness.system.as_ref().expect("running");
    let (api, ws) = (system.api_addr, system.ws_addr);
    let opened = Instant::now();
    let mut silent = Vec::new();
    for index in 0..3000 {
        let target = if index % 2 == 0 { api } else { ws };
        let mut stream = half_open(target).await;
        if index % 10 == 0 {
            // Some trickle a request instead of sending nothing.
            stream
                .write_all(b"GET / HTTP/1.1\r\n")
                .await
                .expect("write");
        }
        silent.push(stream);
    }

    // A real client, from another address, registers, connects and chats meanwhile.
    let (alice, bob) = harness.friends("hs-alice", "hs-bob").await;
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    send_text(&mut alice_socket, "c1", bob.user_id, "through the crowd").await;
    let message = next_message(&mut bob_socket).await;
    assert_eq!(message.body, "through the crowd");

    // Every silent socket is closed within the deadline of its accept (plus slack for a
    // loaded machine); the ones over the cap were closed at once.
    let until = opened + DEADLINE + WAIT;
    let closes =
        futures_util::future::join_all(silent.into_iter().map(|stream| closed_by(stream, until)))
            .await;
    let still_open = closes.iter().filter(|closed| closed.is_none()).count();
    assert_eq!(still_open, 0, "sockets past the deadline still open");

    let metrics = harness.metrics().await;
    assert!(
        metric(
            &metrics,
            "natter_handshakes_refused_total{reason=\"per_address\"}"
        ) > 0.0,
        "the cap turned sockets away: {metrics}"
    );
    assert!(
        metric(
            &metrics,
            "natter_handshakes_refused_total{reason=\"timeout\"}"
        ) > 0.0
    );
    // The real client's connections survived it all.
    let _ = sync(&mut alice_socket, Default::default()).await;
}
