//! Friends and one-to-one chat through every layer.

use std::collections::BTreeMap;

use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::http::Method;

use natter::client::WsClient;

use crate::harness::{Harness, WAIT, metric, next_message, send_text, sync};

#[tokio::test]
async fn friend_requests_are_listed_accepted_and_guarded() {
    let harness = Harness::start().await;
    let erin = harness.user("erin").await;
    let frank = harness.user("frank").await;
    let asked = harness
        .api
        .call(
            Method::POST,
            "/api/v1/friends/requests",
            Some(&erin.access_token),
            Some(json!({"username": "frank", "note": "hi from erin"})),
        )
        .await
        .unwrap();
    assert_eq!(asked.status, 201, "{}", asked.body);

    let harness = &harness;
    let lists = |token: String| async move {
        harness
            .api
            .call(Method::GET, "/api/v1/friends/requests", Some(&token), None)
            .await
            .unwrap()
            .body
    };
    let franks = lists(frank.access_token.clone()).await;
    assert_eq!(franks["incoming"][0]["from"], erin.user_id.to_string());
    assert_eq!(franks["incoming"][0]["note"], "hi from erin");
    assert_eq!(
        lists(erin.access_token.clone()).await["outgoing"][0]["to"],
        frank.user_id.to_string()
    );

    // Only the one asked can accept.
    let wrong_side = harness
        .api
        .call(
            Method::POST,
            &format!("/api/v1/friends/requests/{}/accept", frank.user_id),
            Some(&erin.access_token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(wrong_side.status, 404);
    assert_eq!(wrong_side.code(), Some("not_found"));

    let accepted = harness
        .api
        .call(
            Method::POST,
            &format!("/api/v1/friends/requests/{}/accept", erin.user_id),
            Some(&frank.access_token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    for (session, friend) in [(&erin, &frank), (&frank, &erin)] {
        let list = harness
            .api
            .call(
                Method::GET,
                "/api/v1/friends",
                Some(&session.access_token),
                None,
            )
            .await
            .unwrap();
        assert_eq!(list.body["friends"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            list.body["friends"][0]["user"]["id"],
            friend.user_id.to_string()
        );
    }
    assert_eq!(
        lists(frank.access_token.clone()).await["incoming"],
        json!([])
    );

    let again = harness
        .api
        .call(
            Method::POST,
            "/api/v1/friends/requests",
            Some(&erin.access_token),
            Some(json!({"user_id": frank.user_id})),
        )
        .await
        .unwrap();
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), Some("conflict"));
    let myself = harness
        .api
        .call(
            Method::POST,
            "/api/v1/friends/requests",
            Some(&erin.access_token),
            Some(json!({"user_id": erin.user_id})),
        )
        .await
        .unwrap();
    assert_eq!(myself.code(), Some("invalid_input"));
}

#[tokio::test]
async fn a_message_reaches_every_device_of_both_parties() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut alice_phone, _) = harness.connect_synced(&alice).await;
    let (mut alice_laptop, _) = harness.connect_synced(&alice).await;
    let (mut bob_phone, _) = harness.connect_synced(&bob).await;
    let (mut bob_laptop, _) = harness.connect_synced(&bob).await;

    let (seq, _) = send_text(&mut alice_phone, "c1", bob.user_id, "hello bob").await;
    assert_eq!(seq, 1, "the sender's copy is the first in alice's inbox");

    let bob_object = format!("user:{}", bob.user_id);
    for device in [&mut bob_phone, &mut bob_laptop] {
        let message = next_message(device).await;
        assert_eq!(message.object, bob_object);
        assert_eq!(message.seq, 1);
        assert_eq!(message.from, alice.user_id.to_string());
        assert_eq!(message.body, "hello bob");
        assert_eq!(message.to, bob_object);
    }
    // Alice's other device sees her own message, in her inbox.
    let echo = next_message(&mut alice_laptop).await;
    assert_eq!(echo.object, format!("user:{}", alice.user_id));
    assert_eq!((echo.seq, echo.cid.as_str()), (1, "c1"));

    // Bob answers; both of alice's devices get it.
    let (seq, _) = send_text(&mut bob_laptop, "r1", alice.user_id, "hi alice").await;
    assert_eq!(
        seq, 2,
        "bob's inbox now holds alice's message and his answer"
    );
    let answer = next_message(&mut alice_laptop).await;
    assert_eq!((answer.seq, answer.body.as_str()), (2, "hi alice"));

    // An ack moves bob's stored cursor: a fresh sync from it brings nothing old.
    bob_phone
        .send(&ClientFrame::Ack {
            object: bob_object.clone(),
            seq: 2,
        })
        .await
        .unwrap();
    loop {
        match bob_phone.next(WAIT).await.unwrap() {
            Some(ServerFrame::Acked { object, seq }) => {
                assert_eq!((object.as_str(), seq), (bob_object.as_str(), 2));
                break;
            }
            Some(ServerFrame::Msg(_)) => {}
            other => panic!("expected acked, got {other:?}"),
        }
    }
    let (_, missed) = harness.connect_synced(&bob).await;
    assert!(
        missed.is_empty(),
        "acknowledged messages came back: {missed:?}"
    );
}

#[tokio::test]
async fn a_quiet_connection_gets_neither_its_own_echo_nor_acked() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let mut alice_phone = harness.connect_with(&alice, "echo=false&acked=false").await;
    assert!(sync(&mut alice_phone, BTreeMap::new()).await.is_empty());
    let (mut alice_laptop, _) = harness.connect_synced(&alice).await;
    let (mut bob_phone, _) = harness.connect_synced(&bob).await;
    let alice_object = format!("user:{}", alice.user_id);

    let (seq, _) = send_text(&mut alice_phone, "q1", bob.user_id, "quiet hello").await;
    assert_eq!(seq, 1);
    // Her other device and bob still get it.
    let echo = next_message(&mut alice_laptop).await;
    assert_eq!((echo.object.as_str(), echo.seq), (alice_object.as_str(), 1));
    assert_eq!(next_message(&mut bob_phone).await.body, "quiet hello");
    // Bob's answer is the next frame the sending connection gets: no echo came before it.
    send_text(&mut bob_phone, "r1", alice.user_id, "hi").await;
    let answer = next_message(&mut alice_phone).await;
    assert_eq!((answer.seq, answer.body.as_str()), (2, "hi"));

    // An ack is stored without an answer; a refused one is still answered.
    alice_phone
        .send(&ClientFrame::Ack {
            object: alice_object.clone(),
            seq: 2,
        })
        .await
        .unwrap();
    alice_phone
        .send(&ClientFrame::Ack {
            object: alice_object.clone(),
            seq: 99,
        })
        .await
        .unwrap();
    match alice_phone.next(WAIT).await.unwrap() {
        Some(ServerFrame::Error { code, .. }) => assert_eq!(code.as_str(), "bad_cursor"),
        other => panic!("expected only the refusal, got {other:?}"),
    }
    // The two acks may go in separate calls, so the stored cursor may follow the refusal.
    let mut missed = Vec::new();
    for _ in 0..50 {
        missed = harness.connect_synced(&alice).await.1;
        if missed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        missed.is_empty(),
        "the quiet ack was not stored: {missed:?}"
    );

    // A sync still returns the connection's own messages.
    let all = sync(&mut alice_phone, BTreeMap::from([(alice_object, 0)])).await;
    let seqs: Vec<u64> = all.iter().map(|message| message.seq).collect();
    assert_eq!(seqs, [1, 2]);
}

#[tokio::test]
async fn a_lone_quiet_connection_is_spared_the_push_of_its_own_messages() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let mut alice_phone = harness.connect_with(&alice, "echo=false").await;
    assert!(sync(&mut alice_phone, BTreeMap::new()).await.is_empty());
    let (mut bob_phone, _) = harness.connect_synced(&bob).await;
    let spared_before = metric(&harness.metrics().await, "natter_pushes_spared_total");

    for (index, cid) in ["s1", "s2", "s3"].into_iter().enumerate() {
        let (seq, _) = send_text(&mut alice_phone, cid, bob.user_id, "quiet").await;
        assert_eq!(seq, index as u64 + 1);
        assert_eq!(next_message(&mut bob_phone).await.body, "quiet");
    }
    // Her inbox's delivery went on past her own copies: bob's answer is pushed to her next.
    send_text(&mut bob_phone, "r1", alice.user_id, "hi").await;
    let answer = next_message(&mut alice_phone).await;
    assert_eq!((answer.seq, answer.body.as_str()), (4, "hi"));
    // Her own copies were never pushed to her node at all: no connection there wanted them.
    let spared = metric(&harness.metrics().await, "natter_pushes_spared_total") - spared_before;
    assert!(spared >= 1.0, "no push was spared ({spared})");
    // A device connecting later still finds them.
    let (_, missed) = harness.connect_synced(&alice).await;
    let seqs: Vec<u64> = missed.iter().map(|message| message.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[tokio::test]
async fn an_unknown_connection_option_is_refused() {
    let harness = Harness::start().await;
    let alice = harness.user("alice").await;
    let url = format!("{}?echo=maybe", harness.ws_url);
    let error = WsClient::connect(&url, &alice.access_token)
        .await
        .expect_err("the upgrade is refused");
    assert!(format!("{error:#}").contains("400"), "{error:#}");
}

#[tokio::test]
async fn a_retried_send_is_answered_not_repeated() {
    let harness = Harness::start().await;
    let (alice, bob) = harness.friends("alice", "bob").await;
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    let (first, _) = send_text(&mut alice_socket, "same-cid", bob.user_id, "once").await;
    let (second, _) = send_text(&mut alice_socket, "same-cid", bob.user_id, "once").await;
    assert_eq!(first, second);
    // Over REST too, the same cid answers with the same message.
    let rest = harness
        .api
        .call(
            Method::POST,
            "/api/v1/messages",
            Some(&alice.access_token),
            Some(json!({"cid": "same-cid", "to": format!("user:{}", bob.user_id), "kind": "text", "body": "once"})),
        )
        .await
        .unwrap();
    assert_eq!(rest.status, 201, "{}", rest.body);
    assert_eq!(rest.body["seq"], first);

    let (mut bob_socket, messages) = harness.connect_synced(&bob).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let more = sync(
        &mut bob_socket,
        BTreeMap::from([(format!("user:{}", bob.user_id), 0)]),
    )
    .await;
    assert_eq!(more.len(), 1);
}
