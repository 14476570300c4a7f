//! Blocking and muting: a block cuts every one-to-one path between two people (messages,
//! requests, presence) either way; a mute only silences a conversation on one's own devices.

use std::time::Duration;

use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{
    Harness, conversations, entry, event_where, expect, next_error, no_event_where, refused,
    send_text,
};

#[tokio::test]
async fn a_block_ends_messages_requests_and_presence_both_ways() {
    let harness = Harness::start_with(|config| config.logic.presence_grace_ms = 200).await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;

    let block_bob = format!("/api/v1/blocks/{}", bob.user_id);
    expect(&harness, Method::PUT, &block_bob, Some(&ada), None, 204).await;
    let removed = event_where(&mut bob_socket, "friend_removed", |frame| {
        matches!(frame, ServerFrame::FriendRemoved { .. })
    })
    .await;
    assert_eq!(
        removed,
        ServerFrame::FriendRemoved {
            user_id: ada.user_id.to_string()
        }
    );
    let blocked = event_where(&mut ada_socket, "blocked", |frame| {
        matches!(frame, ServerFrame::Blocked { .. })
    })
    .await;
    assert_eq!(
        blocked,
        ServerFrame::Blocked {
            user_id: bob.user_id.to_string(),
            blocked: true
        }
    );
    let listed = expect(
        &harness,
        Method::GET,
        "/api/v1/blocks",
        Some(&ada),
        None,
        200,
    )
    .await;
    assert_eq!(listed["users"][0]["id"], bob.user_id.to_string());

    // No messages either way.
    for (socket, to) in [
        (&mut bob_socket, ada.user_id),
        (&mut ada_socket, bob.user_id),
    ] {
        socket
            .send(&ClientFrame::Send {
                cid: "after-block".into(),
                to: format!("user:{to}"),
                kind: "text".into(),
                body: "hello?".into(),
                reply_to: None,
            })
            .await
            .expect("send");
        assert_eq!(next_error(socket).await.0, "not_friends");
    }
    // No requests either way.
    let requests = "/api/v1/friends/requests";
    for (from, to) in [(&bob, &ada), (&ada, &bob)] {
        let ask = Some(json!({"user_id": to.user_id.to_string()}));
        refused(
            &harness,
            Method::POST,
            requests,
            Some(from),
            ask,
            403,
            "forbidden",
        )
        .await;
    }
    // No presence: bob going (for longer than the grace) and coming back is not news to ada.
    drop(bob_socket);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_bob_again, _) = harness.connect_synced(&bob).await;
    no_event_where(
        &mut ada_socket,
        Duration::from_millis(800),
        "presence",
        |frame| matches!(frame, ServerFrame::Presence { .. }),
    )
    .await;

    // Who may not, and bad paths.
    let self_block = format!("/api/v1/blocks/{}", ada.user_id);
    refused(
        &harness,
        Method::PUT,
        &self_block,
        Some(&ada),
        None,
        400,
        "invalid_input",
    )
    .await;
    refused(
        &harness,
        Method::PUT,
        "/api/v1/blocks/4242",
        Some(&ada),
        None,
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::PUT,
        &block_bob,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    let carol_path = format!("/api/v1/blocks/{}", carol.user_id);
    refused(
        &harness,
        Method::DELETE,
        &carol_path,
        Some(&ada),
        None,
        404,
        "not_found",
    )
    .await;

    // Unblocked: a request may be made again (the friendship is not restored by itself).
    expect(&harness, Method::DELETE, &block_bob, Some(&ada), None, 204).await;
    let ask = Some(json!({"user_id": ada.user_id.to_string()}));
    expect(&harness, Method::POST, requests, Some(&bob), ask, 201).await;
    let listed = expect(
        &harness,
        Method::GET,
        "/api/v1/blocks",
        Some(&ada),
        None,
        200,
    )
    .await;
    assert_eq!(listed["users"], json!([]));
}

#[tokio::test]
async fn a_muted_conversation_still_counts_unread_and_follows_every_device() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_phone, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let bob_key = format!("user:{}", bob.user_id);

    let mute = format!("/api/v1/conversations/user/{}/mute", bob.user_id);
    let view = expect(
        &harness,
        Method::PUT,
        &mute,
        Some(&ada),
        Some(json!({})),
        200,
    )
    .await;
    assert_eq!(view, json!({"conversation": bob_key, "muted": true}));
    let event = event_where(&mut ada_phone, "muted", |frame| {
        matches!(frame, ServerFrame::Muted { .. })
    })
    .await;
    assert_eq!(
        event,
        ServerFrame::Muted {
            conversation: bob_key.clone(),
            muted: true,
            until: None
        }
    );
    send_text(&mut bob_socket, "m1", ada.user_id, "are you there?").await;
    let list = conversations(&harness, &ada).await;
    assert_eq!(entry(&list, &bob_key)["muted"], true);
    assert_eq!(entry(&list, &bob_key)["unread"], 1, "muted is not read");
    let bobs = conversations(&harness, &bob).await;
    assert_eq!(
        entry(&bobs, &format!("user:{}", ada.user_id))["muted"],
        false,
        "a mute is one side's"
    );

    // For a while; then unmuted.
    let later = natter_infra::now_millis() + 3_600_000;
    let view = expect(
        &harness,
        Method::PUT,
        &mute,
        Some(&ada),
        Some(json!({"until": later})),
        200,
    )
    .await;
    assert_eq!(view["until"], later);
    assert_eq!(
        entry(&conversations(&harness, &ada).await, &bob_key)["muted_until"],
        later
    );
    let view = expect(&harness, Method::DELETE, &mute, Some(&ada), None, 200).await;
    assert_eq!(view["muted"], false);
    assert_eq!(
        entry(&conversations(&harness, &ada).await, &bob_key)["muted"],
        false
    );

    // Who may not, and what may not be.
    let past = Some(json!({"until": 1}));
    refused(
        &harness,
        Method::PUT,
        &mute,
        Some(&ada),
        past,
        400,
        "invalid_input",
    )
    .await;
    refused(
        &harness,
        Method::PUT,
        &mute,
        None,
        Some(json!({})),
        401,
        "unauthorized",
    )
    .await;
    let created = expect(
        &harness,
        Method::POST,
        "/api/v1/groups",
        Some(&ada),
        Some(json!({"name": "quiet"})),
        201,
    )
    .await;
    let group_mute = format!(
        "/api/v1/conversations/group/{}/mute",
        created["id"].as_str().expect("id")
    );
    refused(
        &harness,
        Method::PUT,
        &group_mute,
        Some(&carol),
        Some(json!({})),
        403,
        "not_member",
    )
    .await;
    expect(
        &harness,
        Method::PUT,
        &group_mute,
        Some(&ada),
        Some(json!({})),
        200,
    )
    .await;
}
