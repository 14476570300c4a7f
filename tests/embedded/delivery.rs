//! Offline delivery, the sync/live seam, restarts, redelivery and the metrics that show them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use natter::client::{Session, WsClient};
use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{
    Harness, WAIT, expect_silence, metric, next_error, next_message, send_text, sync,
};

/// Send `count` texts from `from` to `to` over REST, numbering bodies from `first`.
async fn send_many(harness: &Harness, token: &str, to: i64, first: usize, count: usize) {
    for number in first..first + count {
        let reply = harness
            .api
            .call(
                Method::POST,
                "/api/v1/messages",
                Some(token),
                Some(json!({"cid": format!("m{number}"), "to": format!("user:{to}"), "kind": "text", "body": format!("message {number}")})),
            )
            .await
            .expect("send");
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

#[tokio::test]
async fn offline_messages_arrive_once_in_order_and_live_ones_follow_without_a_seam() {
    // Small sync pages, so the sync takes several round trips while live sends race it.
    let harness = Harness::start_with(|config| config.logic.sync_page_max = 7).await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    send_many(&harness, &alice.access_token, bob.user_id, 0, 40).await;

    let mut bob_socket = harness.connect(&bob).await;
    bob_socket
        .send(&ClientFrame::Sync {
            cursors: BTreeMap::new(),
        })
        .await
        .unwrap();
    // Live messages sent while bob's sync is running.
    let racing = {
        let api = harness.api.clone();
        let token = alice.access_token.clone();
        let to = bob.user_id;
        tokio::spawn(async move {
            for number in 40..80 {
                let body = json!({"cid": format!("m{number}"), "to": format!("user:{to}"), "kind": "text", "body": format!("message {number}")});
                let reply = api
                    .call(Method::POST, "/api/v1/messages", Some(&token), Some(body))
                    .await
                    .expect("send");
                assert_eq!(reply.status, 201);
            }
        })
    };
    let mut seqs = Vec::new();
    let mut synced_seen = false;
    while seqs.len() < 80 {
        match bob_socket.next(WAIT).await.expect("frames") {
            Some(ServerFrame::Msg(message)) => {
                assert_eq!(message.object, format!("user:{}", bob.user_id));
                assert_eq!(message.body, format!("message {}", message.seq - 1));
                seqs.push(message.seq);
            }
            Some(ServerFrame::Synced { .. }) => synced_seen = true,
            other => panic!("unexpected frame {other:?}"),
        }
    }
    racing.await.unwrap();
    assert!(synced_seen);
    // Exactly once and in order, with no de-duplication needed on the client.
    assert_eq!(seqs, (1..=80).collect::<Vec<u64>>());
    expect_silence(&mut bob_socket, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_restart_loses_no_acknowledged_message() {
    let mut harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    for number in 0..10 {
        send_text(
            &mut alice_socket,
            &format!("r{number}"),
            bob.user_id,
            &format!("before {number}"),
        )
        .await;
    }
    alice_socket.close().await;
    harness.restart().await;
    // Tokens survive the restart: the signing secret is kept in the data folder.
    let (_, messages) = harness.connect_synced(&bob).await;
    let bodies: Vec<_> = messages
        .iter()
        .map(|message| message.body.clone())
        .collect();
    let expected: Vec<_> = (0..10).map(|number| format!("before {number}")).collect();
    assert_eq!(bodies, expected);
    assert_eq!(
        messages
            .iter()
            .map(|message| message.seq)
            .collect::<Vec<_>>(),
        (1..=10).collect::<Vec<u64>>()
    );
}

#[tokio::test]
async fn an_unconfirmed_push_is_pushed_again_after_the_lock_expires() {
    let harness = Harness::start_with(|config| {
        config.connect.hold_push_locks = true;
        config.task.lock_ttl_ms = 200;
    })
    .await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let before = metric(&harness.metrics().await, "natter_redeliveries_total");

    send_many(&harness, &alice.access_token, bob.user_id, 0, 1).await;
    // Collect what bob's socket receives over several lock lifetimes.
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
    while tokio::time::Instant::now() < deadline {
        match bob_socket.next(Duration::from_millis(100)).await {
            Ok(Some(ServerFrame::Msg(message))) => received.push((message.object, message.seq)),
            Ok(other) => panic!("unexpected frame {other:?}"),
            Err(_) => {}
        }
    }
    let after_text = harness.metrics().await;
    let after = metric(&after_text, "natter_redeliveries_total");
    assert!(
        after - before >= 2.0,
        "task should have pushed again at least twice, redeliveries went {before} → {after}"
    );
    // De-duplicated by (object, seq), bob has the message exactly once.
    let unique: BTreeSet<_> = received.iter().cloned().collect();
    assert_eq!(unique.len(), 1, "{received:?}");
    assert_eq!(
        received.len(),
        1,
        "the connection itself drops repeats: {received:?}"
    );
}

#[tokio::test]
async fn a_resync_after_a_lost_connection_fills_exactly_the_gap() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    send_many(&harness, &alice.access_token, bob.user_id, 0, 5).await;
    let mut held = 0;
    for _ in 0..5 {
        held = next_message(&mut bob_socket).await.seq;
    }
    // Bob read 5 but acknowledged only 3 before his connection died.
    bob_socket
        .send(&ClientFrame::Ack {
            object: format!("user:{}", bob.user_id),
            seq: 3,
        })
        .await
        .unwrap();
    assert!(matches!(
        bob_socket.next(WAIT).await.unwrap(),
        Some(ServerFrame::Acked { seq: 3, .. })
    ));
    bob_socket.close().await;
    send_many(&harness, &alice.access_token, bob.user_id, 5, 3).await;

    // With his local cursor he gets only what he lacks; from the stored cursor, 4 onwards.
    let mut socket = harness.connect(&bob).await;
    let object = format!("user:{}", bob.user_id);
    let lacking = sync(&mut socket, BTreeMap::from([(object.clone(), held)])).await;
    assert_eq!(
        lacking.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    let (_, from_stored) = harness.connect_synced(&bob).await;
    assert_eq!(
        from_stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8]
    );
}

#[tokio::test]
async fn metrics_show_connections_messages_pushes_redeliveries_latency_and_history_size() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    send_many(&harness, &alice.access_token, bob.user_id, 0, 1).await;
    next_message(&mut bob_socket).await;
    let text = harness.metrics().await;
    for name in [
        "natter_connections_open",
        "natter_messages_accepted_total",
        "natter_pushes_total",
        "natter_redeliveries_total",
        "natter_push_latency_seconds_count",
        "natter_push_latency_seconds_bucket",
        "natter_history_disk_bytes",
        "natter_history_journal_bytes",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(name)),
            "{name} missing from /metrics"
        );
    }
    assert!(metric(&text, "natter_connections_open") >= 1.0);
    assert!(metric(&text, "natter_messages_accepted_total") >= 1.0);
    assert!(metric(&text, "natter_push_latency_seconds_count") >= 1.0);
    assert!(metric(&text, "natter_history_disk_bytes") > 0.0);
}

/// The epoch a fresh connection's `welcome` carries.
async fn welcome_epoch(harness: &Harness, session: &Session) -> String {
    let mut socket = WsClient::connect(&harness.ws_url, &session.access_token)
        .await
        .expect("connect");
    match socket.next(WAIT).await.expect("welcome") {
        Some(ServerFrame::Welcome { epoch, .. }) => epoch,
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_beyond_the_end_is_refused_and_does_not_silence_live_delivery() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("beyond-alice", "beyond-bob").await;
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    send_text(
        &mut alice_socket,
        "before",
        bob.user_id,
        "before the bad sync",
    )
    .await;
    assert_eq!(
        next_message(&mut bob_socket).await.body,
        "before the bad sync"
    );

    // Cursors kept from another history: far past the end of Bob's inbox.
    let inbox = format!("user:{}", bob.user_id);
    bob_socket
        .send(&ClientFrame::Sync {
            cursors: BTreeMap::from([(inbox.clone(), 1_000_000)]),
        })
        .await
        .expect("sync");
    let (code, cid) = next_error(&mut bob_socket).await;
    assert_eq!((code.as_str(), cid), ("bad_cursor", None));

    // Live delivery goes on from where it was.
    send_text(
        &mut alice_socket,
        "after",
        bob.user_id,
        "after the bad sync",
    )
    .await;
    let message = next_message(&mut bob_socket).await;
    assert_eq!(message.body, "after the bad sync");
    assert_eq!(message.object, inbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_epoch_is_the_same_across_restarts_and_differs_between_histories() {
    let mut harness = Harness::start().await;
    let alice = harness.user("epoch-alice").await;
    let first = welcome_epoch(&harness, &alice).await;
    assert!(!first.is_empty());
    harness.restart().await;
    assert_eq!(
        welcome_epoch(&harness, &alice).await,
        first,
        "same data, same epoch"
    );

    let other = Harness::start().await;
    let someone = other.user("epoch-other").await;
    assert_ne!(
        welcome_epoch(&other, &someone).await,
        first,
        "another history has another epoch"
    );
}
