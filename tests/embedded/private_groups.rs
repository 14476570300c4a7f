//! Private groups, invites and roles: a private group is not found by search and is joined
//! only through a good invite or by being added; the owner and admins manage members within
//! their roles.

use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, event_where, expect, next_error, refused, send_text_to};

async fn create_group(harness: &Harness, owner: &natter::client::Session, body: Value) -> String {
    let created = expect(
        harness,
        Method::POST,
        "/api/v1/groups",
        Some(owner),
        Some(body),
        201,
    )
    .await;
    created["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn a_private_group_is_hidden_and_joined_only_through_a_good_invite() {
    let harness = Harness::start().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let group = create_group(
        &harness,
        &ada,
        json!({"name": "secret club", "private": true}),
    )
    .await;
    create_group(&harness, &ada, json!({"name": "secret public"})).await;

    let found = expect(
        &harness,
        Method::GET,
        "/api/v1/groups/search?q=secret",
        Some(&bob),
        None,
        200,
    )
    .await;
    let names: Vec<&str> = found["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|group| group["name"].as_str())
        .collect();
    assert_eq!(names, ["secret public"], "the private group is not found");
    let join = format!("/api/v1/groups/{group}/join");
    refused(
        &harness,
        Method::POST,
        &join,
        Some(&bob),
        None,
        404,
        "not_found",
    )
    .await;

    // An invite for one join.
    let invites = format!("/api/v1/groups/{group}/invites");
    let invite = expect(
        &harness,
        Method::POST,
        &invites,
        Some(&ada),
        Some(json!({"expires_in_seconds": 3600, "max_uses": 1})),
        201,
    )
    .await;
    let code = invite["code"].as_str().expect("a code").to_string();
    assert_eq!(code.len(), 32);
    assert_eq!(invite["url"], format!("/#/invite/{code}"));
    let preview = expect(
        &harness,
        Method::GET,
        &format!("/api/v1/invites/{code}"),
        Some(&bob),
        None,
        200,
    )
    .await;
    assert_eq!(preview["group"]["name"], "secret club");
    assert_eq!(preview["group"]["private"], true);
    let by_invite = format!("/api/v1/invites/{code}/join");
    let joined = expect(&harness, Method::POST, &by_invite, Some(&bob), None, 200).await;
    assert_eq!(joined["changed"], true);
    let again = expect(&harness, Method::POST, &by_invite, Some(&bob), None, 200).await;
    assert_eq!(again["changed"], false, "a member uses no join");
    refused(
        &harness,
        Method::POST,
        &by_invite,
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;
    let mine = expect(
        &harness,
        Method::GET,
        "/api/v1/groups",
        Some(&bob),
        None,
        200,
    )
    .await;
    assert_eq!(mine["groups"][0]["role"], "member");
    assert_eq!(mine["groups"][0]["private"], true);

    // Only the owner and admins see and revoke invites.
    refused(
        &harness,
        Method::GET,
        &invites,
        Some(&bob),
        None,
        403,
        "forbidden",
    )
    .await;
    refused(
        &harness,
        Method::GET,
        &invites,
        Some(&carol),
        None,
        403,
        "not_member",
    )
    .await;
    refused(
        &harness,
        Method::POST,
        &invites,
        Some(&bob),
        Some(json!({})),
        403,
        "forbidden",
    )
    .await;
    let second = expect(
        &harness,
        Method::POST,
        &invites,
        Some(&ada),
        Some(json!({})),
        201,
    )
    .await;
    let second_code = second["code"].as_str().expect("a code").to_string();
    let listed = expect(&harness, Method::GET, &invites, Some(&ada), None, 200).await;
    assert_eq!(listed["invites"].as_array().map(Vec::len), Some(2));
    let revoke = format!("{invites}/{second_code}");
    refused(
        &harness,
        Method::DELETE,
        &revoke,
        Some(&bob),
        None,
        403,
        "forbidden",
    )
    .await;
    expect(&harness, Method::DELETE, &revoke, Some(&ada), None, 204).await;
    let revoked_join = format!("/api/v1/invites/{second_code}/join");
    refused(
        &harness,
        Method::POST,
        &revoked_join,
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;

    // Bad invites and bad limits.
    for bad in [
        "nope",
        "0123456789abcdef0123456789ABCDEF",
        "00000000000000000000000000000000",
    ] {
        let path = format!("/api/v1/invites/{bad}/join");
        refused(
            &harness,
            Method::POST,
            &path,
            Some(&carol),
            None,
            404,
            "not_found",
        )
        .await;
    }
    refused(
        &harness,
        Method::POST,
        &by_invite,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    for limits in [json!({"max_uses": 0}), json!({"expires_in_seconds": 5})] {
        refused(
            &harness,
            Method::POST,
            &invites,
            Some(&ada),
            Some(limits),
            400,
            "invalid_input",
        )
        .await;
    }

    // The owner may make it public again: then it is found and joined like any other.
    let update = format!("/api/v1/groups/{group}");
    refused(
        &harness,
        Method::PATCH,
        &update,
        Some(&bob),
        Some(json!({"private": false})),
        403,
        "forbidden",
    )
    .await;
    let public = expect(
        &harness,
        Method::PATCH,
        &update,
        Some(&ada),
        Some(json!({"private": false})),
        200,
    )
    .await;
    assert_eq!(public["group"]["private"], false);
    expect(&harness, Method::POST, &join, Some(&carol), None, 200).await;
}

#[tokio::test]
async fn owners_and_admins_add_remove_and_mute_within_their_roles() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let (_, dave) = harness.friends("carol", "dave").await;
    harness.api.befriend(&bob, &dave).await.expect("befriend");
    let carol = harness.user("cara").await;
    let group = create_group(&harness, &ada, json!({"name": "crew", "private": true})).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut dave_socket, _) = harness.connect_synced(&dave).await;
    let members = format!("/api/v1/groups/{group}/members");

    // The owner adds a friend, who hears of it; not a stranger.
    let add = |user: &natter::client::Session| Some(json!({"user_id": user.user_id.to_string()}));
    let added = expect(&harness, Method::POST, &members, Some(&ada), add(&bob), 200).await;
    assert_eq!(added["changed"], true);
    let event = event_where(&mut bob_socket, "group_added", |frame| {
        matches!(frame, ServerFrame::GroupAdded { .. })
    })
    .await;
    assert_eq!(
        event,
        ServerFrame::GroupAdded {
            group_id: group.clone(),
            name: "crew".into(),
            by: ada.user_id.to_string()
        }
    );
    refused(
        &harness,
        Method::POST,
        &members,
        Some(&ada),
        add(&carol),
        403,
        "not_friends",
    )
    .await;

    // A plain member may do none of it.
    refused(
        &harness,
        Method::POST,
        &members,
        Some(&bob),
        add(&dave),
        403,
        "forbidden",
    )
    .await;
    let ada_member = format!("{members}/{}", ada.user_id);
    refused(
        &harness,
        Method::DELETE,
        &ada_member,
        Some(&bob),
        None,
        403,
        "forbidden",
    )
    .await;

    // The owner makes bob an admin; the members hear of it.
    let bob_member = format!("{members}/{}", bob.user_id);
    expect(
        &harness,
        Method::PATCH,
        &bob_member,
        Some(&ada),
        Some(json!({"role": "admin"})),
        200,
    )
    .await;
    let standing = event_where(&mut bob_socket, "group_member", |frame| {
        matches!(frame, ServerFrame::GroupMember { .. })
    })
    .await;
    assert!(
        matches!(&standing, ServerFrame::GroupMember { role, .. } if role == "admin"),
        "{standing:?}"
    );

    // The admin adds a friend of his and mutes him; muted, he cannot send.
    expect(
        &harness,
        Method::POST,
        &members,
        Some(&bob),
        add(&dave),
        200,
    )
    .await;
    let dave_member = format!("{members}/{}", dave.user_id);
    let later = natter_infra::now_millis() + 3_600_000;
    expect(
        &harness,
        Method::PATCH,
        &dave_member,
        Some(&bob),
        Some(json!({"muted_until": later})),
        200,
    )
    .await;
    dave_socket
        .send(&ClientFrame::Send {
            cid: "m1".into(),
            to: format!("group:{group}"),
            kind: "text".into(),
            body: "can I speak?".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    assert_eq!(next_error(&mut dave_socket).await.0, "muted");
    let page = expect(&harness, Method::GET, &members, Some(&dave), None, 200).await;
    let row = |id: i64| {
        page["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|member| member["id"].as_str() == Some(id.to_string().as_str()))
            .cloned()
            .expect("listed")
    };
    assert_eq!(row(ada.user_id)["role"], "owner");
    assert_eq!(row(bob.user_id)["role"], "admin");
    assert_eq!(row(dave.user_id)["muted_until"], later);
    expect(
        &harness,
        Method::PATCH,
        &dave_member,
        Some(&bob),
        Some(json!({"muted_until": 0})),
        200,
    )
    .await;
    send_text_to(&mut dave_socket, "m2", &format!("group:{group}"), "thanks").await;

    // An admin may not touch the owner, give roles or change privacy; the owner may.
    refused(
        &harness,
        Method::DELETE,
        &ada_member,
        Some(&bob),
        None,
        403,
        "forbidden",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &ada_member,
        Some(&bob),
        Some(json!({"muted_until": later})),
        403,
        "forbidden",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &dave_member,
        Some(&bob),
        Some(json!({"role": "admin"})),
        403,
        "forbidden",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &dave_member,
        Some(&ada),
        Some(json!({"role": "king"})),
        400,
        "invalid_input",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &ada_member,
        Some(&ada),
        Some(json!({"role": "member"})),
        403,
        "forbidden",
    )
    .await;
    expect(
        &harness,
        Method::PATCH,
        &bob_member,
        Some(&ada),
        Some(json!({"role": "member"})),
        200,
    )
    .await;
    refused(
        &harness,
        Method::DELETE,
        &dave_member,
        Some(&bob),
        None,
        403,
        "forbidden",
    )
    .await;
    let removed = expect(&harness, Method::DELETE, &bob_member, Some(&ada), None, 200).await;
    assert_eq!(removed["changed"], true);
}
