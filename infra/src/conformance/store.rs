//! The `Store` conformance suite.

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::random_id;
use crate::error::InfraError;
use crate::store::{FriendRequest, RefreshToken, Store, User};

fn user(id: i64) -> User {
    User {
        id,
        username: format!("conformance{id}"),
        nickname: format!("Conformance {id}"),
        avatar: None,
        created_at: 1_700_000_000_000,
    }
}

fn message(object: &ObjectId, seq: u64, body: &str) -> Message {
    Message {
        id: seq + 1000,
        object: object.to_string(),
        seq,
        sender: 1,
        peer: 2,
        kind: "text".into(),
        body: body.into(),
        ts: 1_700_000_000_000 + seq as i64,
        cid: format!("c{seq}"),
        target_kind: "user".into(),
        target_id: 2,
    }
}

/// Run every `Store` check.
pub async fn run(store: &dyn Store) {
    users_and_credentials(store).await;
    refresh_tokens(store).await;
    friendships(store).await;
    messages(store).await;
    cursors(store).await;
}

async fn users_and_credentials(store: &dyn Store) {
    let alice = user(random_id());
    store
        .create_user(&alice, "hash-a")
        .await
        .expect("create user");
    assert_eq!(
        store.user(alice.id).await.expect("user"),
        Some(alice.clone())
    );
    let (found, hash) = store
        .credentials(&alice.username)
        .await
        .expect("credentials")
        .expect("credentials exist");
    assert_eq!((found, hash.as_str()), (alice.clone(), "hash-a"));
    let mut twin = user(random_id());
    twin.username = alice.username.clone();
    assert!(
        matches!(
            store.create_user(&twin, "x").await,
            Err(InfraError::Conflict(_))
        ),
        "a duplicate username must be a conflict"
    );
    assert_eq!(store.user(twin.id).await.expect("user"), None);
    assert_eq!(
        store
            .credentials("conformance-nobody")
            .await
            .expect("credentials"),
        None
    );
}

async fn refresh_tokens(store: &dyn Store) {
    let hash = format!("conformance-token-{}", random_id());
    let token = RefreshToken {
        user_id: random_id(),
        expires_at: 1_900_000_000_000,
    };
    store
        .put_refresh_token(&hash, &token)
        .await
        .expect("put token");
    assert_eq!(
        store.take_refresh_token(&hash).await.expect("take"),
        Some(token)
    );
    assert_eq!(
        store.take_refresh_token(&hash).await.expect("take again"),
        None,
        "single use"
    );
}

async fn friendships(store: &dyn Store) {
    let (a, b, c) = (user(random_id()), user(random_id()), user(random_id()));
    for each in [&a, &b, &c] {
        store.create_user(each, "h").await.expect("create user");
    }
    let request = FriendRequest {
        from: a.id,
        to: b.id,
        note: "hello".into(),
        created_at: 1,
    };
    store.add_friend_request(&request).await.expect("request");
    let (incoming, _) = store.friend_requests(b.id).await.expect("requests of b");
    assert_eq!(incoming, vec![request.clone()]);
    let (_, outgoing) = store.friend_requests(a.id).await.expect("requests of a");
    assert_eq!(outgoing, vec![request.clone()]);
    assert!(
        matches!(
            store.add_friend_request(&request).await,
            Err(InfraError::Conflict(_))
        ),
        "a repeated request must be a conflict"
    );
    assert!(!store.are_friends(a.id, b.id).await.expect("are friends"));

    assert!(
        matches!(
            store.accept_friend_request(b.id, a.id, 5).await,
            Err(InfraError::NotFound(_))
        ),
        "only the asked side can accept"
    );
    store
        .accept_friend_request(a.id, b.id, 5)
        .await
        .expect("accept");
    assert!(store.are_friends(a.id, b.id).await.expect("a-b"));
    assert!(store.are_friends(b.id, a.id).await.expect("b-a"));
    assert!(!store.are_friends(a.id, c.id).await.expect("a-c"));
    let friends_of_a = store.friends(a.id).await.expect("friends");
    assert_eq!(friends_of_a.len(), 1);
    assert_eq!((friends_of_a[0].user.id, friends_of_a[0].since), (b.id, 5));
    assert_eq!(store.friends(b.id).await.expect("friends")[0].user, a);
    let (incoming, outgoing) = store.friend_requests(b.id).await.expect("requests");
    assert!(
        incoming.is_empty() && outgoing.is_empty(),
        "accepted requests are gone"
    );
    assert!(
        matches!(
            store.accept_friend_request(a.id, b.id, 6).await,
            Err(InfraError::NotFound(_))
        ),
        "accepting twice finds nothing"
    );
    let again = FriendRequest {
        from: b.id,
        to: a.id,
        note: String::new(),
        created_at: 7,
    };
    assert!(
        matches!(
            store.add_friend_request(&again).await,
            Err(InfraError::Conflict(_))
        ),
        "friends cannot ask again"
    );
}

async fn messages(store: &dyn Store) {
    let object = ObjectId::User(random_id());
    let batch: Vec<Message> = (1..=5)
        .map(|seq| message(&object, seq, &format!("m{seq}")))
        .collect();
    store.put_messages(&batch).await.expect("put");
    // The same (object, seq) again, with another body: the first stays.
    store
        .put_messages(&[message(&object, 3, "rewritten")])
        .await
        .expect("put again");
    let newest = store
        .messages_before(&object, u64::MAX, 10)
        .await
        .expect("history");
    assert_eq!(
        newest.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(newest[2].body, "m3");
    assert_eq!(newest[0], batch[4], "every field round-trips");
    let page = store.messages_before(&object, 4, 2).await.expect("page");
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 2]);
    let other = ObjectId::Group(random_id());
    assert!(
        store
            .messages_before(&other, u64::MAX, 10)
            .await
            .expect("empty")
            .is_empty()
    );
}

async fn cursors(store: &dyn Store) {
    let user_id = random_id();
    let object = ObjectId::User(user_id);
    assert_eq!(store.ack_cursor(user_id, &object).await.expect("cursor"), 0);
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 4)
            .await
            .expect("advance"),
        4
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 2)
            .await
            .expect("back"),
        4,
        "never back"
    );
    assert_eq!(store.ack_cursor(user_id, &object).await.expect("cursor"), 4);
    assert_eq!(
        store
            .ack_cursor(random_id(), &object)
            .await
            .expect("other user"),
        0
    );

    assert_eq!(store.delivered_cursor(&object).await.expect("delivered"), 0);
    store.set_delivered_cursor(&object, 9).await.expect("set");
    store
        .set_delivered_cursor(&object, 3)
        .await
        .expect("set back");
    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        9,
        "never back"
    );
}
