//! System notifications through the admin API: its own credential, ephemeral notices to
//! online connections, persisted messages that wait in the logs.

use std::time::Duration;

use natter_proto::frame::ServerFrame;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, WAIT, expect_silence};

const ADMIN_TOKEN: &str = "admin secret for the tests";

async fn admin_push(harness: &Harness, token: Option<&str>, body: Value) -> (u16, Value) {
    let reply = harness
        .api
        .call(Method::POST, "/api/v1/admin/push", token, Some(body))
        .await
        .expect("the API answers");
    (reply.status, reply.body)
}

/// The next `notice`, skipping anything else.
async fn next_notice(socket: &mut natter::client::WsClient) -> String {
    loop {
        match socket.next(WAIT).await.expect("a notice") {
            Some(ServerFrame::Notice { body, .. }) => return body,
            Some(_) => {}
            None => panic!("closed while waiting for a notice"),
        }
    }
}

#[tokio::test]
async fn back_ends_push_notices_to_everyone_a_group_or_users_and_persist_for_the_offline() {
    let harness = Harness::start_with(|config| config.api.admin_token = ADMIN_TOKEN.into()).await;
    let alice = harness.user("alice").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let (mut alice_socket, _) = harness.connect_synced(&alice).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;

    // To everyone online: both get it at once, as a notice.
    let (status, accepted) = admin_push(
        &harness,
        Some(ADMIN_TOKEN),
        json!({"to": "all", "body": "maintenance at noon"}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["reached"], 2);
    assert_eq!(next_notice(&mut alice_socket).await, "maintenance at noon");
    assert_eq!(next_notice(&mut bob_socket).await, "maintenance at noon");

    // To one user: only that user.
    let to_bob = json!({"to": [format!("user:{}", bob.user_id)], "body": "hi bob"});
    let (status, _) = admin_push(&harness, Some(ADMIN_TOKEN), to_bob).await;
    assert_eq!(status, 202);
    assert_eq!(next_notice(&mut bob_socket).await, "hi bob");
    expect_silence(&mut alice_socket, Duration::from_millis(300)).await;

    // Persisted for an offline user: it waits in her log and arrives on sync, from "0".
    let to_carol = json!({
        "to": [format!("user:{}", carol.user_id)],
        "body": "your invoice is ready",
        "persist": true,
    });
    let (status, _) = admin_push(&harness, Some(ADMIN_TOKEN), to_carol).await;
    assert_eq!(status, 202);
    let (mut carol_socket, synced) = harness.connect_synced(&carol).await;
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0].body, "your invoice is ready");
    assert_eq!(synced[0].from, "0");

    // To a group: its online members, not Carol.
    let created = harness
        .api
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(&alice.access_token),
            Some(json!({"name": "crew"})),
        )
        .await
        .expect("create a group");
    let group = created.body["id"].as_str().expect("a group id").to_string();
    let joined = harness
        .api
        .call(
            Method::POST,
            &format!("/api/v1/groups/{group}/join"),
            Some(&bob.access_token),
            None,
        )
        .await
        .expect("join");
    assert_eq!(joined.status, 200);
    let to_group = json!({"to": format!("group:{group}"), "body": "crew call at five"});
    let (status, accepted) = admin_push(&harness, Some(ADMIN_TOKEN), to_group).await;
    assert_eq!((status, accepted["reached"].as_u64()), (202, Some(2)));
    assert_eq!(next_notice(&mut alice_socket).await, "crew call at five");
    assert_eq!(next_notice(&mut bob_socket).await, "crew call at five");
    expect_silence(&mut carol_socket, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_admin_api_wants_its_own_credential_and_good_input() {
    let off = Harness::start().await;
    let (status, problem) =
        admin_push(&off, Some("anything"), json!({"to": "all", "body": "x"})).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));

    let harness = Harness::start_with(|config| config.api.admin_token = ADMIN_TOKEN.into()).await;
    let alice = harness.user("alice").await;
    let body = json!({"to": "all", "body": "x"});
    for (token, answer) in [
        (None, (401, Some("unauthorized"))),
        (Some("wrong"), (401, Some("invalid_token"))),
        // A user's own token is a credential, just not this one.
        (Some(alice.access_token.as_str()), (403, Some("forbidden"))),
    ] {
        let (status, problem) = admin_push(&harness, token, body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), answer, "{token:?}");
    }
    for bad in [
        json!({"to": "everyone", "body": "x"}),
        json!({"to": ["group:5"], "body": "x"}),
        json!({"to": "all", "body": ""}),
        json!({"to": "all", "body": "x", "persist": true}),
        json!({"to": [], "body": "x"}),
    ] {
        let (status, problem) = admin_push(&harness, Some(ADMIN_TOKEN), bad.clone()).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_input")),
            "{bad}"
        );
    }
    let (status, problem) = admin_push(
        &harness,
        Some(ADMIN_TOKEN),
        json!({"to": ["user:424242"], "body": "x"}),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}
