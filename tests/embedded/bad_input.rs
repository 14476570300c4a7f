//! Bad input gets a documented error and harms nobody else.

use std::collections::BTreeMap;
use std::time::Duration;

use natter::client::WsClient;
use natter_proto::frame::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, WAIT, expect_silence, metric, next_error, next_message, send_text};

async fn ping(socket: &mut WsClient) {
    socket.send(&ClientFrame::Ping {}).await.unwrap();
    loop {
        match socket.next(WAIT).await.unwrap() {
            Some(ServerFrame::Pong) => return,
            Some(_) => {}
            None => panic!("closed instead of pong"),
        }
    }
}

/// The HTTP status of a refused WebSocket upgrade.
async fn upgrade_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_lives_on() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let carol = harness.user("carol").await;
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;

    let refusals: [(&str, &str); 5] = [
        ("{", "bad_frame"),
        ("[1,2,3]", "bad_frame"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (r#"{"type":"ack","object":"user:1"}"#, "bad_frame"),
        (
            r#"{"type":"send","cid":"x","to":"user:abc","kind":"text","body":"hi"}"#,
            "invalid_input",
        ),
    ];
    for (raw, code) in refusals {
        alice_socket.send_raw(raw).await.unwrap();
        assert_eq!(next_error(&mut alice_socket).await.0, code, "for {raw}");
    }
    // Larger than the frame limit, but within what the socket reads: an error, not a close.
    let oversize = format!(
        r#"{{"type":"send","cid":"big","to":"user:{}","kind":"text","body":"{}"}}"#,
        bob.user_id,
        "x".repeat(70 * 1024)
    );
    alice_socket.send_raw(&oversize).await.unwrap();
    assert_eq!(next_error(&mut alice_socket).await.0, "frame_too_large");

    let send = |cid: &str, to: String, kind: &str, body: String| ClientFrame::Send {
        cid: cid.into(),
        to,
        kind: kind.into(),
        body,
        reply_to: None,
    };
    let bob_target = format!("user:{}", bob.user_id);
    let refused_sends = [
        (
            send("s1", format!("user:{}", carol.user_id), "text", "hi".into()),
            "not_friends",
        ),
        (
            send("s2", format!("user:{}", alice.user_id), "text", "me".into()),
            "not_friends",
        ),
        (
            send("s3", bob_target.clone(), "text", "   ".into()),
            "invalid_input",
        ),
        (
            send("s4", bob_target.clone(), "text", "y".repeat(4001)),
            "invalid_input",
        ),
        (
            send("s5", bob_target.clone(), "image", "upload".into()),
            "invalid_input",
        ),
        (
            send("s7", bob_target.clone(), "image", "12345".into()),
            "not_found",
        ),
        (
            send("s6", bob_target.clone(), "video", "clip".into()),
            "unsupported_kind",
        ),
        (
            // Kinds the server writes itself are not for clients to send.
            send("s6r", bob_target.clone(), "recall", "1".into()),
            "unsupported_kind",
        ),
        (
            send("", bob_target.clone(), "text", "no cid".into()),
            "invalid_input",
        ),
        (
            send("s8", "group:5".into(), "text", "hi".into()),
            "not_member",
        ),
    ];
    for (frame, code) in refused_sends {
        let cid = match &frame {
            ClientFrame::Send { cid, .. } => cid.clone(),
            _ => unreachable!(),
        };
        alice_socket.send(&frame).await.unwrap();
        let (got, got_cid) = next_error(&mut alice_socket).await;
        assert_eq!(got, code, "for {frame:?}");
        assert_eq!(got_cid.as_deref(), Some(cid.as_str()));
    }
    alice_socket
        .send(&ClientFrame::Ack {
            object: format!("user:{}", alice.user_id),
            seq: 99,
        })
        .await
        .unwrap();
    assert_eq!(next_error(&mut alice_socket).await.0, "bad_cursor");
    alice_socket
        .send(&ClientFrame::Ack {
            object: format!("user:{}", carol.user_id),
            seq: 0,
        })
        .await
        .unwrap();
    assert_eq!(next_error(&mut alice_socket).await.0, "forbidden");
    alice_socket
        .send(&ClientFrame::Sync {
            cursors: BTreeMap::from([(format!("user:{}", bob.user_id), 0)]),
        })
        .await
        .unwrap();
    assert_eq!(next_error(&mut alice_socket).await.0, "forbidden");

    // Nothing refused reached anyone, and everyone still chats.
    expect_silence(&mut bob_socket, Duration::from_millis(200)).await;
    let (seq, _) = send_text(&mut alice_socket, "ok", bob.user_id, "still here").await;
    assert_eq!(seq, 1);
    assert_eq!(next_message(&mut bob_socket).await.body, "still here");
    ping(&mut carol_socket).await;
}

#[tokio::test]
async fn a_frame_beyond_the_socket_limit_closes_only_that_connection() {
    let harness =
        Harness::start_with(|config| config.connect.hard_max_frame_bytes = 256 * 1024).await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut offender, _) = harness.connect_synced(&alice).await;
    let (mut alice_other, _) = harness.connect_synced(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    offender.send_raw(&"z".repeat(300 * 1024)).await.unwrap();
    let (code, reason) = offender.next_close(WAIT).await.unwrap();
    assert_eq!((code, reason.as_str()), (1009, "frame_too_large"));
    send_text(&mut alice_other, "after", bob.user_id, "unharmed").await;
    assert_eq!(next_message(&mut bob_socket).await.body, "unharmed");
}

#[tokio::test]
async fn upgrades_without_a_valid_token_are_refused() {
    let harness = Harness::start().await;
    let dave = harness.user("dave").await;
    let base = harness.ws_url.clone();
    assert_eq!(upgrade_status(&base).await, 401);
    assert_eq!(upgrade_status(&format!("{base}?token=garbage")).await, 401);
    let tokens = &harness.system.as_ref().unwrap().tokens;
    let expired = tokens.issue_expired(dave.user_id, 10).unwrap();
    assert_eq!(
        upgrade_status(&format!("{base}?token={expired}")).await,
        401
    );
    let wrong_path = base.replace("/ws", "/elsewhere");
    assert_eq!(
        upgrade_status(&format!("{wrong_path}?token={}", dave.access_token)).await,
        404
    );
    // The query-string token works as well as the header.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{base}?token={}", dave.access_token))
            .await
            .expect("upgrade with a query token");
    use futures_util::StreamExt;
    let first = socket.next().await.unwrap().unwrap();
    assert!(first.into_text().unwrap().contains("\"welcome\""));
}

#[tokio::test]
async fn a_flooding_client_is_warned_then_closed_and_others_carry_on() {
    let harness = Harness::start_with(|config| {
        config.connect.inbound_rate = 1;
        config.connect.inbound_burst = 3;
        config.connect.inbound_strikes = 5;
    })
    .await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let mut flooder = harness.connect(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    for _ in 0..20 {
        if flooder.send(&ClientFrame::Ping {}).await.is_err() {
            break;
        }
    }
    let mut limited = 0;
    loop {
        match flooder.next(WAIT).await {
            Ok(Some(ServerFrame::Error { code, .. })) => {
                assert_eq!(code.as_str(), "rate_limited");
                limited += 1;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert!(limited >= 1, "the flooder was never warned");
    ping(&mut bob_socket).await;
}

#[tokio::test]
async fn every_send_of_a_burst_past_the_rate_is_answered_by_its_cid() {
    let harness = Harness::start_with(|config| {
        config.connect.inbound_rate = 5;
        config.connect.inbound_burst = 10;
        config.connect.inbound_strikes = 1000;
    })
    .await;
    let (alice, bob) = harness.friends("burst-alice", "burst-bob").await;
    let (mut socket, _) = harness.connect_synced(&alice).await;
    const SENDS: usize = 40;
    for number in 0..SENDS {
        socket
            .send(&ClientFrame::Send {
                cid: format!("burst-{number}"),
                to: format!("user:{}", bob.user_id),
                kind: "text".into(),
                body: format!("burst {number}"),
                reply_to: None,
            })
            .await
            .expect("send");
    }
    // Each send is answered by name: `sent`, or `rate_limited` with its cid so the client
    // knows which to send again; none is left waiting.
    let mut answered = std::collections::BTreeSet::new();
    let mut limited = 0;
    while answered.len() < SENDS {
        match socket.next(WAIT).await.expect("an answer") {
            Some(ServerFrame::Sent { cid, .. }) => {
                answered.insert(cid);
            }
            Some(ServerFrame::Error { code, cid, .. }) => {
                assert_eq!(code.as_str(), "rate_limited");
                let cid = cid.expect("a refused send names its cid");
                answered.insert(cid);
                limited += 1;
            }
            Some(_) => {}
            None => panic!("closed with {} of {SENDS} sends answered", answered.len()),
        }
    }
    assert!(limited > 0, "the burst went past the rate");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_heartbeat_timeout() {
    let harness = Harness::start_with(|config| {
        config.connect.heartbeat_interval_ms = 5_000;
        config.connect.heartbeat_timeout_ms = 300;
    })
    .await;
    let erin = harness.user("erin").await;
    let mut socket = harness.connect(&erin).await;
    let (code, reason) = socket.next_close(WAIT).await.unwrap();
    assert_eq!((code, reason.as_str()), (4002, "heartbeat_timeout"));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_slow_and_others_carry_on() {
    let harness = Harness::start_with(|config| {
        config.connect.outbound_queue = 8;
        config.connect.send_buffer_bytes = 4096;
        config.connect.inbound_rate = 10_000;
        config.connect.inbound_burst = 10_000;
    })
    .await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let carol = harness.user("carol").await;
    harness
        .api
        .befriend(&alice, &carol)
        .await
        .expect("befriend");
    // Bob syncs, then never reads again. Alice sends over REST: a socket of hers would get
    // an echo of every send, and with a queue this small she would be the slow one.
    let (mut stalled, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let body = "x".repeat(4000);
    let send = |cid: String, to: i64, body: String| {
        let api = harness.api.clone();
        let token = alice.access_token.clone();
        async move {
            let message = serde_json::json!({
                "cid": cid, "to": format!("user:{to}"), "kind": "text", "body": body,
            });
            let reply = api
                .call(
                    Method::POST,
                    "/api/v1/messages",
                    Some(&token),
                    Some(message),
                )
                .await
                .expect("send over REST");
            assert_eq!(reply.status, 201, "{}", reply.body);
        }
    };
    let mut sent = 0;
    while metric(
        &harness.metrics().await,
        "natter_connections_closed_slow_total",
    ) < 1.0
    {
        assert!(sent < 2_000, "bob's node never gave up on him");
        for _ in 0..20 {
            send(format!("b{sent}"), bob.user_id, body.clone()).await;
            sent += 1;
        }
    }
    // Nobody else waits on bob: carol gets hers at once.
    send("c1".into(), carol.user_id, "still here".into()).await;
    assert_eq!(next_message(&mut carol_socket).await.body, "still here");
    // Bob, reading at last, finds what the kernel held, then the end of the connection (a
    // 4000 close frame if it fit, or the socket cut after the goodbye timed out).
    let mut frames = 0;
    while let Ok(Some(_)) = stalled.next(WAIT).await {
        frames += 1;
    }
    assert!(
        frames < sent,
        "bob got all {sent} messages; he was not cut off"
    );
    // His messages are not lost: a new connection syncs every one of them.
    let (_, synced) = harness.connect_synced(&bob).await;
    assert_eq!(synced.len(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_has_one_spelling_and_others_are_refused() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("spell-alice", "spell-bob").await;
    let (mut socket, _) = harness.connect_synced(&alice).await;
    for to in [
        format!("user:0{}", bob.user_id),
        format!("user:+{}", bob.user_id),
        format!("user: {}", bob.user_id),
    ] {
        socket
            .send(&ClientFrame::Send {
                cid: "spelt".into(),
                to: to.clone(),
                kind: "text".into(),
                body: "hello".into(),
                reply_to: None,
            })
            .await
            .expect("send");
        let (code, _) = next_error(&mut socket).await;
        assert_eq!(code, "invalid_input", "{to}");
    }
    for path in [
        format!("/api/v1/users/0{}", bob.user_id),
        format!("/api/v1/users/+{}", bob.user_id),
        "/api/v1/users/search?q=spell&after=-1".to_string(),
        "/api/v1/users/search?q=spell&after=007".to_string(),
    ] {
        let reply = harness
            .api
            .call(Method::GET, &path, Some(&alice.access_token), None)
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
        assert_eq!(reply.body["code"], "invalid_input", "{path}");
    }
    // The one spelling works.
    let reply = harness
        .api
        .call(
            Method::GET,
            &format!("/api/v1/users/{}", bob.user_id),
            Some(&alice.access_token),
            None,
        )
        .await
        .expect("answer");
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_protocol_allows_is_accepted_however_it_is_spelt() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("allow-alice", "allow-bob").await;
    // Authentication schemes are case-insensitive (RFC 9110 §11.1).
    let reply = reqwest::Client::new()
        .get(format!("{}/api/v1/me", harness.api_base()))
        .header("authorization", format!("bearer {}", alice.access_token))
        .send()
        .await
        .expect("answer");
    assert_eq!(reply.status().as_u16(), 200);
    // A cid is printable ASCII, and a space is printable.
    let (mut socket, _) = harness.connect_synced(&alice).await;
    send_text(&mut socket, "with a space", bob.user_id, "hello").await;
    // A ping with a field it does not have is refused like any other frame.
    socket
        .send_raw(r#"{"type":"ping","extra":1}"#)
        .await
        .expect("send");
    let (code, _) = next_error(&mut socket).await;
    assert_eq!(code, "bad_frame");
}
