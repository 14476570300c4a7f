//! Typing indicators: ephemeral, to friends and group members only, at most one a second.

use std::time::Duration;

use natter::client::WsClient;
use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, WAIT, expect_silence, next_error};

async fn typing(socket: &mut WsClient, to: String) {
    socket
        .send(&ClientFrame::Typing { to })
        .await
        .expect("send typing");
}

/// The next `typing` frame, skipping anything else.
async fn next_typing(socket: &mut WsClient) -> (String, String) {
    loop {
        match socket.next(WAIT).await.expect("a typing frame") {
            Some(ServerFrame::Typing { from, to }) => return (from, to),
            Some(_) => {}
            None => panic!("closed while waiting for typing"),
        }
    }
}

#[tokio::test]
async fn friends_and_members_see_typing_strangers_cannot_send_it_and_bursts_are_thinned() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;

    typing(&mut ada_socket, format!("user:{}", bob.user_id)).await;
    assert_eq!(
        next_typing(&mut bob_socket).await,
        (ada.user_id.to_string(), format!("user:{}", bob.user_id))
    );
    // A burst within the second is thinned to nothing more.
    for _ in 0..5 {
        typing(&mut ada_socket, format!("user:{}", bob.user_id)).await;
    }
    expect_silence(&mut bob_socket, Duration::from_millis(400)).await;

    // Carol is no friend of Ada's.
    typing(&mut carol_socket, format!("user:{}", ada.user_id)).await;
    assert_eq!(next_error(&mut carol_socket).await.0, "forbidden");

    // In a group, the other members see it, not the typist.
    let created = harness
        .api
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(&bob.access_token),
            Some(json!({"name": "g"})),
        )
        .await
        .expect("create");
    let group = created.body["id"].as_str().expect("id").to_string();
    let join = format!("/api/v1/groups/{group}/join");
    for member in [&ada, &carol] {
        let joined = harness
            .api
            .call(Method::POST, &join, Some(&member.access_token), None)
            .await
            .expect("join");
        assert_eq!(joined.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // past Ada's last indicator
    typing(&mut ada_socket, format!("group:{group}")).await;
    let expected = (ada.user_id.to_string(), format!("group:{group}"));
    assert_eq!(next_typing(&mut bob_socket).await, expected);
    assert_eq!(next_typing(&mut carol_socket).await, expected);
    expect_silence(&mut ada_socket, Duration::from_millis(300)).await;
}
