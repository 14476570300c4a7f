//! Delivery and read receipts: a sender learns, live and on reload, that a friend's device got
//! their messages and that the friend read them; in a group, how many read a message and who.

use std::time::Duration;

use natter::client::WsClient;
use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{
    Harness, conversations, entry, event_where, expect, next_message, no_event_where, refused,
    send_text, send_text_to,
};

/// The next receipt about `conversation`.
async fn receipt(socket: &mut WsClient, conversation: &str) -> ServerFrame {
    event_where(socket, "receipt", |frame| {
        matches!(frame, ServerFrame::Receipt { conversation: about, .. } if about == conversation)
    })
    .await
}

fn is_receipt(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Receipt { .. })
}

#[tokio::test]
async fn one_to_one_messages_go_from_sent_to_delivered_to_read() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let bob_key = format!("user:{}", bob.user_id);

    let (first, _) = send_text(&mut ada_socket, "r1", bob.user_id, "one").await;
    let (second, _) = send_text(&mut ada_socket, "r2", bob.user_id, "two").await;
    let list = conversations(&harness, &ada).await;
    assert_eq!(
        entry(&list, &bob_key)["peer_delivered"],
        0,
        "bob is offline"
    );
    assert_eq!(entry(&list, &bob_key)["peer_read"], 0);

    // Bob's device gets both and acknowledges them: ada learns they were delivered.
    let (mut bob_socket, missed) = harness.connect_synced(&bob).await;
    assert_eq!(missed.len(), 2, "{missed:?}");
    bob_socket
        .send(&ClientFrame::Ack {
            object: bob_key.clone(),
            seq: missed[1].seq,
        })
        .await
        .expect("ack");
    assert_eq!(
        receipt(&mut ada_socket, &bob_key).await,
        ServerFrame::Receipt {
            conversation: bob_key.clone(),
            delivered: Some(second),
            read: None,
            read_count: None,
        },
        "the receipt names ada's own copy of the newest message bob's device got"
    );
    let list = conversations(&harness, &ada).await;
    assert_eq!(entry(&list, &bob_key)["peer_delivered"], second);
    assert_eq!(entry(&list, &bob_key)["peer_read"], 0);

    // Bob reads the first: ada learns it was read, and the list says so on reload.
    let ada_key = format!("user:{}", ada.user_id);
    bob_socket
        .send(&ClientFrame::Read {
            conversation: ada_key.clone(),
            seq: missed[0].seq,
        })
        .await
        .expect("read");
    assert_eq!(
        receipt(&mut ada_socket, &bob_key).await,
        ServerFrame::Receipt {
            conversation: bob_key.clone(),
            delivered: None,
            read: Some(first),
            read_count: None,
        }
    );
    bob_socket
        .send(&ClientFrame::Read {
            conversation: ada_key.clone(),
            seq: missed[1].seq,
        })
        .await
        .expect("read");
    let read_all = receipt(&mut ada_socket, &bob_key).await;
    assert!(
        matches!(read_all, ServerFrame::Receipt { read: Some(seq), .. } if seq == second),
        "{read_all:?}"
    );
    let list = conversations(&harness, &ada).await;
    assert_eq!(entry(&list, &bob_key)["peer_read"], second);
    assert_eq!(entry(&list, &bob_key)["peer_delivered"], second);
    // Bob's side of the conversation has his own state, about his messages: none yet.
    let bobs = conversations(&harness, &bob).await;
    assert_eq!(entry(&bobs, &ada_key)["peer_read"], 0);

    // Receipts go to the author only: not to the reader, not to anyone else.
    let quiet = Duration::from_millis(300);
    no_event_where(&mut bob_socket, quiet, "receipt", is_receipt).await;
    no_event_where(&mut carol_socket, quiet, "receipt", is_receipt).await;

    // Bob's own message is not a receipt for ada when bob acknowledges it.
    let (_, _) = send_text(&mut bob_socket, "b1", ada.user_id, "three").await;
    let echo = next_message(&mut bob_socket).await;
    bob_socket
        .send(&ClientFrame::Ack {
            object: bob_key.clone(),
            seq: echo.seq,
        })
        .await
        .expect("ack");
    no_event_where(&mut ada_socket, quiet, "receipt", |frame| {
        matches!(
            frame,
            ServerFrame::Receipt {
                delivered: Some(_),
                ..
            }
        )
    })
    .await;
}

#[tokio::test]
async fn group_messages_count_their_readers_and_members_may_ask_who() {
    let harness = Harness::start().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let dave = harness.user("dave").await;
    let created = expect(
        &harness,
        Method::POST,
        "/api/v1/groups",
        Some(&ada),
        Some(json!({"name": "readers"})),
        201,
    )
    .await;
    let group = created["id"].as_str().expect("an id").to_string();
    for member in [&bob, &carol] {
        let join = format!("/api/v1/groups/{group}/join");
        expect(&harness, Method::POST, &join, Some(member), None, 200).await;
    }
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let group_key = format!("group:{group}");
    let (seq, _) = send_text_to(&mut ada_socket, "g1", &group_key, "who reads this?").await;

    for (reader, count) in [(&bob, 1), (&carol, 2)] {
        let path = format!("/api/v1/conversations/group/{group}/read");
        expect(
            &harness,
            Method::POST,
            &path,
            Some(reader),
            Some(json!({"seq": seq})),
            200,
        )
        .await;
        assert_eq!(
            receipt(&mut ada_socket, &group_key).await,
            ServerFrame::Receipt {
                conversation: group_key.clone(),
                delivered: None,
                read: Some(seq),
                read_count: Some(count),
            }
        );
    }

    let readers_path = format!("/api/v1/conversations/group/{group}/messages/{seq}/readers");
    let readers = expect(&harness, Method::GET, &readers_path, Some(&bob), None, 200).await;
    assert_eq!(readers["read_count"], 2);
    assert_eq!(readers["seq"], seq);
    let mut ids: Vec<String> = readers["readers"]
        .as_array()
        .expect("readers")
        .iter()
        .map(|reader| reader["id"].as_str().expect("an id").to_string())
        .collect();
    ids.sort();
    let mut expected = vec![bob.user_id.to_string(), carol.user_id.to_string()];
    expected.sort();
    assert_eq!(ids, expected, "the author is not among the readers");
    let limited = format!("{readers_path}?limit=1");
    let one = expect(&harness, Method::GET, &limited, Some(&ada), None, 200).await;
    assert_eq!(one["read_count"], 2);
    assert_eq!(one["readers"].as_array().map(Vec::len), Some(1));

    // Who may not, and bad paths.
    refused(
        &harness,
        Method::GET,
        &readers_path,
        Some(&dave),
        None,
        403,
        "not_member",
    )
    .await;
    refused(
        &harness,
        Method::GET,
        &readers_path,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    for bad in ["0", "01", "x", "-1"] {
        let path = format!("/api/v1/conversations/group/{group}/messages/{bad}/readers");
        refused(
            &harness,
            Method::GET,
            &path,
            Some(&ada),
            None,
            400,
            "invalid_input",
        )
        .await;
    }
    let missing = format!("/api/v1/conversations/group/{group}/messages/999/readers");
    refused(
        &harness,
        Method::GET,
        &missing,
        Some(&ada),
        None,
        404,
        "not_found",
    )
    .await;
}
