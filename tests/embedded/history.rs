//! History: conversations paged back from the newest, for the parties and members only.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, send_text};

async fn get(harness: &Harness, path: &str, token: Option<&str>) -> (u16, Value) {
    let reply = harness
        .api
        .call(Method::GET, path, token, None)
        .await
        .expect("the API answers");
    (reply.status, reply.body)
}

fn bodies(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|message| message["body"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_conversation_pages_back_newest_first_and_only_its_parties_see_it() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    harness.api.befriend(&ada, &carol).await.expect("befriend");
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    for number in 1..=6 {
        send_text(
            &mut ada_socket,
            &format!("a{number}"),
            bob.user_id,
            &format!("ada {number}"),
        )
        .await;
    }
    send_text(&mut bob_socket, "b1", ada.user_id, "bob 1").await;
    send_text(&mut ada_socket, "c1", carol.user_id, "to carol").await;

    let path = format!("/api/v1/conversations/user/{}/messages", bob.user_id);
    let token = Some(ada.access_token.as_str());
    let (status, first) = get(&harness, &format!("{path}?limit=4"), token).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(bodies(&first), ["bob 1", "ada 6", "ada 5", "ada 4"]);
    let before = first["next_before"].as_u64().expect("an older page exists");
    let (_, second) = get(&harness, &format!("{path}?limit=4&before={before}"), token).await;
    assert_eq!(bodies(&second), ["ada 3", "ada 2", "ada 1"]);
    assert!(second["next_before"].is_null(), "the oldest page says so");

    // Bob sees the same conversation from his side; Carol's is another one.
    let bobs = format!("/api/v1/conversations/user/{}/messages", ada.user_id);
    let (_, his) = get(&harness, &bobs, Some(bob.access_token.as_str())).await;
    assert_eq!(bodies(&his).len(), 7);
    let (_, carols) = get(&harness, &bobs, Some(carol.access_token.as_str())).await;
    assert_eq!(bodies(&carols), ["to carol"]);

    for bad in [
        format!("{path}?limit=0"),
        format!("{path}?limit=201"),
        format!("{path}?before=soon"),
        "/api/v1/conversations/channel/5/messages".to_string(),
        "/api/v1/conversations/user/abc/messages".to_string(),
    ] {
        let (status, problem) = get(&harness, &bad, token).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_input")),
            "{bad}"
        );
    }
    assert_eq!(get(&harness, &path, None).await.0, 401);
}

#[tokio::test]
async fn a_group_history_is_for_members() {
    let harness = Harness::start().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let created = harness
        .api
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(&ada.access_token),
            Some(json!({"name": "g"})),
        )
        .await
        .expect("create");
    let group = created.body["id"].as_str().expect("id").to_string();
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    ada_socket
        .send(&natter_proto::frame::ClientFrame::Send {
            cid: "g1".into(),
            to: format!("group:{group}"),
            kind: "text".into(),
            body: "first in the group".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    let path = format!("/api/v1/conversations/group/{group}/messages");
    // Wait for the send to be stored: the history shows it once it is.
    let mut page = Value::Null;
    for _ in 0..100 {
        page = get(&harness, &path, Some(ada.access_token.as_str()))
            .await
            .1;
        if !bodies(&page).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(bodies(&page), ["first in the group"]);
    let (status, problem) = get(&harness, &path, Some(bob.access_token.as_str())).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("not_member"))
    );
}
