//! Group chat end to end: membership through REST, messages over WebSocket, online lists
//! that follow joins and leaves without a reconnect.

use std::time::Duration;

use natter::client::{Session, WsClient};
use natter_proto::frame::{ClientFrame, MessageFrame, ServerFrame};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, WAIT, expect_silence, next_error, next_message};

/// A REST call that must succeed with `status`; returns its body.
async fn call(harness: &Harness, method: Method, path: &str, who: &Session, status: u16) -> Value {
    call_with(harness, method, path, who, None, status).await
}

async fn call_with(
    harness: &Harness,
    method: Method,
    path: &str,
    who: &Session,
    body: Option<Value>,
    status: u16,
) -> Value {
    let reply = harness
        .api
        .call(method, path, Some(&who.access_token), body)
        .await
        .expect("the API answers");
    assert_eq!(reply.status, status, "{path}: {}", reply.body);
    reply.body
}

/// Sends to a group and waits for the `sent` answer; returns the messages that arrived
/// meanwhile (the sender's own copy may come before the answer).
async fn send_to_group(
    socket: &mut WsClient,
    cid: &str,
    group: &str,
    body: &str,
) -> Vec<MessageFrame> {
    socket
        .send(&ClientFrame::Send {
            cid: cid.into(),
            to: format!("group:{group}"),
            kind: "text".into(),
            body: body.into(),
            reply_to: None,
        })
        .await
        .expect("send");
    let mut early = Vec::new();
    loop {
        match socket.next(WAIT).await.expect("a frame") {
            Some(ServerFrame::Sent { cid: got, .. }) if got == cid => return early,
            Some(ServerFrame::Error { code, message, .. }) => panic!("{cid}: {code} {message}"),
            Some(ServerFrame::Msg(message)) => early.push(message),
            Some(_) => {}
            None => panic!("closed while sending {cid}"),
        }
    }
}

/// The sender's own copy: among what came before the answer, or the next message.
async fn own_copy(socket: &mut WsClient, early: Vec<MessageFrame>) -> MessageFrame {
    match early.into_iter().next() {
        Some(message) => message,
        None => next_message(socket).await,
    }
}

#[tokio::test]
async fn members_get_each_group_message_once_and_lists_follow_joins_and_leaves_live() {
    let harness = Harness::start().await;
    let alice = harness.user("alice").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let dave = harness.user("dave").await;
    // Everyone is online before any group exists: joining must not need a reconnect.
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let (mut dave_socket, _) = harness.connect_synced(&dave).await;

    let created = call_with(
        &harness,
        Method::POST,
        "/api/v1/groups",
        &alice,
        Some(json!({"name": "  climbers  "})),
        201,
    )
    .await;
    assert_eq!(created["name"], "climbers");
    assert_eq!(created["owner"], alice.user_id.to_string());
    let group = created["id"].as_str().expect("an id").to_string();
    let join = format!("/api/v1/groups/{group}/join");
    assert_eq!(
        call(&harness, Method::POST, &join, &bob, 200).await["changed"],
        true
    );
    assert_eq!(
        call(&harness, Method::POST, &join, &bob, 200).await["changed"],
        false
    );
    call(&harness, Method::POST, &join, &carol, 200).await;

    let early = send_to_group(&mut alice_socket, "g1", &group, "first").await;
    let alices = own_copy(&mut alice_socket, early).await;
    assert_eq!(alices.body, "first");
    for socket in [&mut bob_socket, &mut carol_socket] {
        let message = next_message(socket).await;
        assert_eq!(message.body, "first");
        assert_eq!(message.object, format!("group:{group}"));
        assert_eq!(message.from, alice.user_id.to_string());
    }
    // Not a member: refused, and nothing arrives.
    dave_socket
        .send(&ClientFrame::Send {
            cid: "d1".into(),
            to: format!("group:{group}"),
            kind: "text".into(),
            body: "let me in".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    assert_eq!(
        next_error(&mut dave_socket).await,
        ("not_member".into(), Some("d1".into()))
    );
    expect_silence(&mut dave_socket, Duration::from_millis(300)).await;

    // Carol leaves and Dave joins, both while online.
    let leave = format!("/api/v1/groups/{group}/leave");
    assert_eq!(
        call(&harness, Method::POST, &leave, &carol, 200).await["changed"],
        true
    );
    call(&harness, Method::POST, &join, &dave, 200).await;
    let early = send_to_group(&mut bob_socket, "g2", &group, "second").await;
    assert_eq!(own_copy(&mut bob_socket, early).await.body, "second");
    for socket in [&mut alice_socket, &mut dave_socket] {
        assert_eq!(next_message(socket).await.body, "second");
    }
    expect_silence(&mut carol_socket, Duration::from_millis(300)).await;
    // Carol's devices were told she left (other events, such as online counts, may come first).
    loop {
        match carol_socket.next_event(WAIT).await.expect("an event") {
            Some(ServerFrame::GroupRemoved { group_id, reason }) => {
                assert_eq!((group_id, reason.as_str()), (group.clone(), "left"));
                break;
            }
            Some(_) => {}
            None => panic!("closed before the group_removed event"),
        }
    }
    // The owner cannot walk away from the group.
    call(&harness, Method::POST, &leave, &alice, 403).await;

    // Members page by id, for members only.
    let members = format!("/api/v1/groups/{group}/members");
    let page = call(
        &harness,
        Method::GET,
        &format!("{members}?limit=2"),
        &alice,
        200,
    )
    .await;
    let mut expected = [alice.user_id, bob.user_id, dave.user_id];
    expected.sort_unstable();
    let ids = |page: &Value| -> Vec<String> {
        page["members"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .map(|m| m["id"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        ids(&page),
        [expected[0].to_string(), expected[1].to_string()]
    );
    let after = page["next_after"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = call(
        &harness,
        Method::GET,
        &format!("{members}?after={after}"),
        &bob,
        200,
    )
    .await;
    assert_eq!(ids(&rest), [expected[2].to_string()]);
    assert!(rest["next_after"].is_null());
    call(&harness, Method::GET, &members, &carol, 403).await;
    call(
        &harness,
        Method::GET,
        &format!("{members}?limit=0"),
        &alice,
        400,
    )
    .await;

    // Each member's list of groups.
    let mine = call(&harness, Method::GET, "/api/v1/groups", &dave, 200).await;
    assert_eq!(mine["groups"][0]["id"], group.as_str());
    let none = call(&harness, Method::GET, "/api/v1/groups", &carol, 200).await;
    assert_eq!(none["groups"].as_array().map(Vec::len), Some(0));

    // A reconnecting member syncs from their cursor: nothing twice, nothing missed. Dave
    // joined after "first", so he starts at "second".
    drop(dave_socket);
    let (_, synced) = harness.connect_synced(&dave).await;
    let bodies: Vec<&str> = synced.iter().map(|message| message.body.as_str()).collect();
    assert_eq!(bodies, ["second"]);
}

#[tokio::test]
async fn bad_group_requests_get_problem_responses() {
    let harness = Harness::start().await;
    let alice = harness.user("alice").await;
    for name in ["", "   ", &"x".repeat(65), "tab\there"] {
        let body = Some(json!({ "name": name }));
        let problem = call_with(&harness, Method::POST, "/api/v1/groups", &alice, body, 400).await;
        assert_eq!(problem["code"], "invalid_input");
    }
    let missing = call(
        &harness,
        Method::POST,
        "/api/v1/groups/12345/join",
        &alice,
        404,
    )
    .await;
    assert_eq!(missing["code"], "not_found");
    let bad = call(
        &harness,
        Method::POST,
        "/api/v1/groups/abc/join",
        &alice,
        400,
    )
    .await;
    assert_eq!(bad["code"], "invalid_input");
    let anonymous = harness
        .api
        .call(Method::GET, "/api/v1/groups", None, None)
        .await
        .expect("the API answers");
    assert_eq!(anonymous.status, 401);
}
