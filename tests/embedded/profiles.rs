//! Profiles (and their changes reaching others live), and friendships that end: requests withdrawn or turned down, friends removed.

use std::time::Duration;

use natter::client::Session;
use natter_proto::frame::ServerFrame;
use serde_json::json;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, call, event_where, next_error, no_event_where, send_text};

#[tokio::test]
async fn people_rename_themselves_and_see_each_other() {
    let harness = Harness::start().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let change = Some(json!({"nickname": "  Ada L.  "}));
    let (status, me) = call(&harness, Method::PATCH, "/api/v1/me", Some(&ada), change).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["nickname"], "Ada L.");
    let path = format!("/api/v1/users/{}", ada.user_id);
    let (status, seen) = call(&harness, Method::GET, &path, Some(&bob), None).await;
    assert_eq!((status, seen["nickname"].as_str()), (200, Some("Ada L.")));
    assert_eq!(seen["username"], "ada");

    for (bad, code) in [
        (json!({"nickname": ""}), "invalid_input"),
        (json!({"nickname": "a\nb"}), "invalid_input"),
        (json!({"nick": "x"}), "bad_frame"),
    ] {
        let (status, problem) = call(
            &harness,
            Method::PATCH,
            "/api/v1/me",
            Some(&ada),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some(code)),
            "{bad}"
        );
    }
    let (status, _) = call(&harness, Method::GET, &path, None, None).await;
    assert_eq!(status, 401, "profiles are for signed-in users");
    let (status, problem) = call(
        &harness,
        Method::GET,
        "/api/v1/users/4242",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn requests_are_withdrawn_or_turned_down_and_removed_friends_cannot_chat() {
    let harness = Harness::start().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let ask = |to: &Session| Some(json!({"user_id": to.user_id.to_string()}));
    let requests = "/api/v1/friends/requests";

    // Withdrawn by the asker.
    let (status, _) = call(&harness, Method::POST, requests, Some(&ada), ask(&bob)).await;
    assert_eq!(status, 201);
    let withdraw = format!("{requests}/{}", bob.user_id);
    assert_eq!(
        call(&harness, Method::DELETE, &withdraw, Some(&ada), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&harness, Method::DELETE, &withdraw, Some(&ada), None)
            .await
            .0,
        404
    );
    let (_, lists) = call(&harness, Method::GET, requests, Some(&bob), None).await;
    assert_eq!(lists["incoming"].as_array().map(Vec::len), Some(0));

    // Turned down by the one asked; only they can.
    call(&harness, Method::POST, requests, Some(&ada), ask(&bob)).await;
    let reject = format!("{requests}/{}/reject", ada.user_id);
    assert_eq!(
        call(&harness, Method::POST, &reject, Some(&ada), None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(&harness, Method::POST, &reject, Some(&bob), None)
            .await
            .0,
        204
    );

    // Befriended, then removed: one-to-one sending ends.
    harness.api.befriend(&ada, &bob).await.expect("befriend");
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    send_text(&mut ada_socket, "before", bob.user_id, "still friends").await;
    let remove = format!("/api/v1/friends/{}", ada.user_id);
    assert_eq!(
        call(&harness, Method::DELETE, &remove, Some(&bob), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&harness, Method::DELETE, &remove, Some(&bob), None)
            .await
            .0,
        404
    );
    ada_socket
        .send(&natter_proto::frame::ClientFrame::Send {
            cid: "after".into(),
            to: format!("user:{}", bob.user_id),
            kind: "text".into(),
            body: "hello?".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    assert_eq!(
        next_error(&mut ada_socket).await,
        ("not_friends".into(), Some("after".into()))
    );
    let (_, friends) = call(&harness, Method::GET, "/api/v1/friends", Some(&ada), None).await;
    assert_eq!(friends["friends"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_new_name_reaches_friends_fellow_members_and_other_devices_live() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let dave = harness.user("dave").await;
    let (status, created) = call(
        &harness,
        Method::POST,
        "/api/v1/groups",
        Some(&carol),
        Some(json!({"name": "walkers"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let join = format!(
        "/api/v1/groups/{}/join",
        created["id"].as_str().expect("id")
    );
    assert_eq!(
        call(&harness, Method::POST, &join, Some(&ada), None)
            .await
            .0,
        200
    );
    let (mut ada_laptop, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let (mut dave_socket, _) = harness.connect_synced(&dave).await;

    let change = Some(json!({"nickname": "Ada Lovelace"}));
    let (status, _) = call(&harness, Method::PATCH, "/api/v1/me", Some(&ada), change).await;
    assert_eq!(status, 200);
    let expected = ServerFrame::Profile {
        user_id: ada.user_id.to_string(),
        nickname: "Ada Lovelace".into(),
        avatar: None,
    };
    let is_profile = |frame: &ServerFrame| matches!(frame, ServerFrame::Profile { .. });
    for (who, socket) in [
        ("a friend", &mut bob_socket),
        ("a fellow member", &mut carol_socket),
        ("her other device", &mut ada_laptop),
    ] {
        let frame = event_where(socket, "profile", is_profile).await;
        assert_eq!(frame, expected, "{who}");
    }
    no_event_where(
        &mut dave_socket,
        Duration::from_millis(300),
        "profile",
        is_profile,
    )
    .await;
}
