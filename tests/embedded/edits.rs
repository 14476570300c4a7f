//! Edits, replies and reactions end to end: each travels through the message's own logs, so
//! an online device sees it live and an offline one converges when it syncs; history shows
//! the latest text, the quote and the reaction counts.

use natter_proto::frame::{ClientFrame, MessageFrame, ServerFrame};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{
    Harness, WAIT, conversations, entry, expect, next_message, refused, send_text, send_text_to,
};

/// The `id` of the message the sender's own `sent` answer names, read from their echo.
async fn sent_id(socket: &mut natter::client::WsClient, cid: &str, to: i64, body: &str) -> String {
    let (_, _) = send_text(socket, cid, to, body).await;
    next_message(socket).await.id
}

/// The next message of `kind`, skipping others.
async fn next_of_kind(socket: &mut natter::client::WsClient, kind: &str) -> MessageFrame {
    loop {
        let message = next_message(socket).await;
        if message.kind == kind {
            return message;
        }
    }
}

/// A conversation's history page as `who` sees it, newest first.
async fn history(harness: &Harness, who: &natter::client::Session, path: &str) -> Vec<Value> {
    let page = expect(harness, Method::GET, path, Some(who), None, 200).await;
    page["messages"].as_array().expect("messages").clone()
}

#[tokio::test]
async fn an_edit_reaches_online_and_offline_devices_and_history_shows_the_latest_text() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let id = sent_id(&mut ada_socket, "e1", bob.user_id, "see you at 5").await;
    assert_eq!(next_message(&mut bob_socket).await.body, "see you at 5");

    let path = format!("/api/v1/messages/{id}");
    let edited = expect(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        Some(json!({"body": "see you at 6"})),
        200,
    )
    .await;
    assert_eq!(edited["id"], id.as_str());
    let edited_at = edited["edited_at"].as_i64().expect("edited_at");
    for socket in [&mut bob_socket, &mut ada_socket] {
        let event = next_of_kind(socket, "edit").await;
        assert_eq!(event.refers_to.as_deref(), Some(id.as_str()));
        assert_eq!(event.body, "see you at 6");
        assert_eq!(event.edited_at, Some(edited_at));
        assert_eq!(event.from, ada.user_id.to_string());
    }

    // History, on both sides, shows the latest text and when it was edited.
    for (who, peer) in [(&ada, bob.user_id), (&bob, ada.user_id)] {
        let page = history(
            &harness,
            who,
            &format!("/api/v1/conversations/user/{peer}/messages"),
        )
        .await;
        let original = page
            .iter()
            .find(|message| message["id"] == id.as_str())
            .expect("the original in history");
        assert_eq!(original["body"], "see you at 6");
        assert_eq!(original["edited_at"], edited_at);
    }
    // A device that was offline converges: the edit is in the log after the message.
    let (_, missed) = harness.connect_synced(&bob).await;
    let event = missed
        .iter()
        .find(|message| message.kind == "edit")
        .expect("the edit is synced");
    assert_eq!(event.refers_to.as_deref(), Some(id.as_str()));
    // The edit is not a new message in the list: no unread, the original is the last.
    let list = conversations(&harness, &bob).await;
    let with_ada = entry(&list, &format!("user:{}", ada.user_id));
    assert_eq!(with_ada["last"]["id"], id.as_str());

    // Who may not, and what may not be.
    let change = Some(json!({"body": "mine now"}));
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&bob),
        change.clone(),
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&carol),
        change.clone(),
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &path,
        None,
        change.clone(),
        401,
        "unauthorized",
    )
    .await;
    let blank = Some(json!({"body": "   "}));
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        blank,
        400,
        "invalid_input",
    )
    .await;
    let unknown = Some(json!({"body": "x", "kind": "text"}));
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        unknown,
        400,
        "bad_frame",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        "/api/v1/messages/01",
        Some(&ada),
        change,
        400,
        "invalid_input",
    )
    .await;
}

#[tokio::test]
async fn a_reply_quotes_what_it_answers_in_the_same_conversation_only() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    harness.api.befriend(&ada, &carol).await.expect("befriend");
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let long = "a question that goes on and on ".repeat(10);
    let id = sent_id(&mut ada_socket, "q1", bob.user_id, &long).await;
    next_message(&mut bob_socket).await;

    bob_socket
        .send(&ClientFrame::Send {
            cid: "a1".into(),
            to: format!("user:{}", ada.user_id),
            kind: "text".into(),
            body: "an answer".into(),
            reply_to: Some(id.clone()),
        })
        .await
        .expect("send");
    let reply = next_of_kind(&mut ada_socket, "text").await;
    let quoted = reply.reply_to.expect("a quote");
    assert_eq!(quoted.id, id);
    assert_eq!(quoted.from, ada.user_id.to_string());
    assert_eq!(
        quoted.snippet.chars().count(),
        100,
        "the quote is the text's start"
    );
    assert!(long.starts_with(&quoted.snippet));
    let page = history(
        &harness,
        &ada,
        &format!("/api/v1/conversations/user/{}/messages", bob.user_id),
    )
    .await;
    assert_eq!(page[0]["reply_to"]["id"], id.as_str(), "{}", page[0]);

    // A message from another conversation, a bad id, or none at all: refused, nothing sent.
    let refused_reply = |cid: &str, to: i64, reply_to: &str| ClientFrame::Send {
        cid: cid.into(),
        to: format!("user:{to}"),
        kind: "text".into(),
        body: "hm".into(),
        reply_to: Some(reply_to.into()),
    };
    for (frame, code) in [
        (refused_reply("x1", carol.user_id, &id), "not_found"),
        (refused_reply("x2", bob.user_id, "01"), "invalid_input"),
        (refused_reply("x3", bob.user_id, "12345"), "not_found"),
    ] {
        ada_socket.send(&frame).await.expect("send");
        loop {
            match ada_socket.next(WAIT).await.expect("an answer") {
                Some(ServerFrame::Error { code: got, .. }) => {
                    assert_eq!(got.as_str(), code, "{frame:?}");
                    break;
                }
                Some(ServerFrame::Sent { .. }) => panic!("{frame:?} was accepted"),
                Some(_) => {}
                None => panic!("closed"),
            }
        }
    }

    // Over REST and in a group too.
    let created = expect(
        &harness,
        Method::POST,
        "/api/v1/groups",
        Some(&ada),
        Some(json!({"name": "quoters"})),
        201,
    )
    .await;
    let group = format!("group:{}", created["id"].as_str().expect("an id"));
    let (_, _) = send_text_to(&mut ada_socket, "g1", &group, "group question").await;
    let asked = next_of_kind(&mut ada_socket, "text").await;
    let answered = expect(
        &harness,
        Method::POST,
        "/api/v1/messages",
        Some(&ada),
        Some(
            json!({"cid": "g2", "to": group, "kind": "text", "body": "self-answer",
                    "reply_to": asked.id}),
        ),
        201,
    )
    .await;
    let echo = next_of_kind(&mut ada_socket, "text").await;
    assert_eq!(echo.id, answered["id"].as_str().expect("id"));
    assert_eq!(
        echo.reply_to.map(|quote| quote.snippet),
        Some("group question".into())
    );
}

#[tokio::test]
async fn reactions_are_counted_per_emoji_and_reach_both_sides() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let id = sent_id(&mut ada_socket, "r1", bob.user_id, "good news").await;
    next_message(&mut bob_socket).await;

    let path = format!("/api/v1/messages/{id}/reactions");
    let thumbs = Some(json!({"emoji": "👍"}));
    let added = expect(
        &harness,
        Method::POST,
        &path,
        Some(&bob),
        thumbs.clone(),
        200,
    )
    .await;
    assert_eq!(added["changed"], true);
    for (socket, conversation) in [
        (&mut ada_socket, bob.user_id),
        (&mut bob_socket, ada.user_id),
    ] {
        let event = next_of_kind(socket, "reaction").await;
        assert_eq!(event.refers_to.as_deref(), Some(id.as_str()));
        assert_eq!(
            (event.body.as_str(), event.from.clone()),
            ("👍", bob.user_id.to_string())
        );
        if event.from != conversation.to_string() {
            // In the reactor's own inbox the event is addressed to the other side.
            assert_eq!(event.to, format!("user:{conversation}"));
        }
    }
    let again = expect(
        &harness,
        Method::POST,
        &path,
        Some(&bob),
        thumbs.clone(),
        200,
    )
    .await;
    assert_eq!(
        again["changed"], false,
        "a second identical reaction is the same one"
    );
    expect(&harness, Method::POST, &path, Some(&ada), thumbs, 200).await;
    expect(
        &harness,
        Method::POST,
        &path,
        Some(&ada),
        Some(json!({"emoji": "🎉"})),
        200,
    )
    .await;

    let page = history(
        &harness,
        &bob,
        &format!("/api/v1/conversations/user/{}/messages", ada.user_id),
    )
    .await;
    let original = page
        .iter()
        .find(|message| message["id"] == id.as_str())
        .expect("in history");
    assert_eq!(original["reactions"][0]["emoji"], "👍");
    assert_eq!(original["reactions"][0]["count"], 2);
    assert_eq!(original["reactions"][0]["mine"], true);
    assert_eq!(original["reactions"][1]["emoji"], "🎉");
    assert_eq!(original["reactions"][1]["mine"], false, "ada's, not bob's");
    let who = expect(&harness, Method::GET, &path, Some(&ada), None, 200).await;
    assert_eq!(who["reactions"][0]["count"], 2);
    assert_eq!(
        who["reactions"][0]["users"].as_array().map(Vec::len),
        Some(2)
    );

    let removed = format!("{path}/%F0%9F%91%8D");
    let taken = expect(&harness, Method::DELETE, &removed, Some(&bob), None, 200).await;
    assert_eq!(taken["changed"], true);
    let event = next_of_kind(&mut ada_socket, "reaction_removed").await;
    assert_eq!(event.from, bob.user_id.to_string());
    let list = conversations(&harness, &ada).await;
    let with_bob = entry(&list, &format!("user:{}", bob.user_id));
    assert_eq!(
        with_bob["last"]["id"],
        id.as_str(),
        "reactions are not the last message"
    );
    assert_eq!(with_bob["unread"], 0, "nor unread");

    // Who may not: a stranger, anyone without a token; bad emoji; an ex-friend.
    let smile = Some(json!({"emoji": "🙂"}));
    refused(
        &harness,
        Method::POST,
        &path,
        Some(&carol),
        smile.clone(),
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::GET,
        &path,
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::POST,
        &path,
        None,
        smile.clone(),
        401,
        "unauthorized",
    )
    .await;
    for bad in ["", "a", "👍 👍", "🙂🙂🙂🙂🙂🙂🙂🙂🙂"] {
        refused(
            &harness,
            Method::POST,
            &path,
            Some(&bob),
            Some(json!({"emoji": bad})),
            400,
            "invalid_input",
        )
        .await;
    }
    let unfriend = format!("/api/v1/friends/{}", ada.user_id);
    expect(&harness, Method::DELETE, &unfriend, Some(&bob), None, 204).await;
    refused(
        &harness,
        Method::POST,
        &path,
        Some(&bob),
        smile,
        403,
        "forbidden",
    )
    .await;
}
