//! The `Store` conformance suite: friend requests and friendships, and their endings.

use super::super::random_id;
use super::user;
use crate::error::InfraError;
use crate::store::{FriendRequest, Store, User};

/// Run every check of this part of the `Store` suite.
pub async fn run(store: &dyn Store) {
    friendships(store).await;
    racing_friend_requests(store).await;
    profile_and_endings(store).await;
    blocks(store).await;
}

/// A block is one way, kept once, listed, and taken back.
async fn blocks(store: &dyn Store) {
    let (a, b, c) = (user(random_id()), user(random_id()), user(random_id()));
    for each in [&a, &b, &c] {
        store.create_user(each, "h").await.expect("create user");
    }
    assert!(store.block_user(a.id, b.id, 5).await.expect("block"));
    assert!(
        !store.block_user(a.id, b.id, 6).await.expect("again"),
        "once"
    );
    assert!(store.block_user(a.id, c.id, 7).await.expect("block"));
    assert!(store.has_blocked(a.id, b.id).await.expect("has"));
    assert!(!store.has_blocked(b.id, a.id).await.expect("one way"));
    let mut expected = vec![b.id, c.id];
    expected.sort_unstable();
    let listed: Vec<i64> = store
        .blocked_users(a.id)
        .await
        .expect("list")
        .iter()
        .map(|blocked| blocked.id)
        .collect();
    assert_eq!(listed, expected);
    assert!(store.unblock_user(a.id, b.id).await.expect("unblock"));
    assert!(!store.unblock_user(a.id, b.id).await.expect("again"));
    assert!(!store.has_blocked(a.id, b.id).await.expect("gone"));
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
    let (incoming, outgoing) = store.friend_requests(b.id).await.expect("requests of b");
    assert_eq!(
        incoming,
        vec![request.clone()],
        "the request is incoming for `to`"
    );
    assert!(outgoing.is_empty(), "`to` has no outgoing: {outgoing:?}");
    let (incoming, outgoing) = store.friend_requests(a.id).await.expect("requests of a");
    assert_eq!(
        outgoing,
        vec![request.clone()],
        "the request is outgoing for `from`"
    );
    assert!(incoming.is_empty(), "`from` has no incoming: {incoming:?}");
    let (incoming, outgoing) = store.friend_requests(c.id).await.expect("requests of c");
    assert!(
        incoming.is_empty() && outgoing.is_empty(),
        "a bystander sees no requests"
    );
    let repeated = store.add_friend_request(&request).await;
    assert!(
        matches!(repeated, Err(InfraError::Conflict(_))),
        "a repeated request must be a Conflict, got {repeated:?}"
    );
    assert!(
        !store.are_friends(a.id, b.id).await.expect("are friends"),
        "a request alone is no friendship"
    );

    let wrong_side = store.accept_friend_request(b.id, a.id, 5).await;
    assert!(
        matches!(wrong_side, Err(InfraError::NotFound(_))),
        "only the asked side can accept, got {wrong_side:?}"
    );
    let missing = store.accept_friend_request(a.id, c.id, 5).await;
    assert!(
        matches!(missing, Err(InfraError::NotFound(_))),
        "accepting a request never made must be NotFound, got {missing:?}"
    );
    store
        .accept_friend_request(a.id, b.id, 5)
        .await
        .expect("accept");
    assert!(store.are_friends(a.id, b.id).await.expect("a-b"), "a-b");
    assert!(store.are_friends(b.id, a.id).await.expect("b-a"), "b-a");
    assert!(!store.are_friends(a.id, c.id).await.expect("a-c"), "a-c");
    assert!(!store.are_friends(c.id, a.id).await.expect("c-a"), "c-a");
    let friends_of_a = store.friends(a.id).await.expect("friends of a");
    assert_eq!(friends_of_a.len(), 1, "{friends_of_a:?}");
    assert_eq!(friends_of_a[0].user, b, "a's friend is b");
    assert_eq!(friends_of_a[0].since, 5, "the friendship starts at `now`");
    let friends_of_b = store.friends(b.id).await.expect("friends of b");
    assert_eq!(friends_of_b.len(), 1, "{friends_of_b:?}");
    assert_eq!(friends_of_b[0].user, a, "b's friend is a");
    assert_eq!(friends_of_b[0].since, 5, "the friendship starts at `now`");
    assert!(store.friends(c.id).await.expect("friends of c").is_empty());
    for side in [a.id, b.id] {
        let (incoming, outgoing) = store.friend_requests(side).await.expect("requests");
        assert!(
            incoming.is_empty() && outgoing.is_empty(),
            "an accepted request is gone: {incoming:?} {outgoing:?}"
        );
    }
    let twice = store.accept_friend_request(a.id, b.id, 6).await;
    assert!(
        matches!(twice, Err(InfraError::NotFound(_))),
        "accepting twice finds nothing, got {twice:?}"
    );
    for (from, to) in [(b.id, a.id), (a.id, b.id)] {
        let again = FriendRequest {
            from,
            to,
            note: String::new(),
            created_at: 7,
        };
        let outcome = store.add_friend_request(&again).await;
        assert!(
            matches!(outcome, Err(InfraError::Conflict(_))),
            "friends cannot ask again ({from} -> {to}), got {outcome:?}"
        );
    }
    let (incoming, _) = store.friend_requests(a.id).await.expect("requests");
    assert!(incoming.is_empty(), "a refused request is not stored");
}

/// Requests between different users, made at the same moment, must all succeed: busy
/// backends wait or retry rather than fail.
async fn racing_friend_requests(store: &dyn Store) {
    let (asked, lanes) = (user(random_id()), 4);
    store.create_user(&asked, "h").await.expect("create user");
    let mut askers = Vec::new();
    for _ in 0..lanes * 5 {
        let asker = user(random_id());
        store.create_user(&asker, "h").await.expect("create user");
        askers.push(asker.id);
    }
    let lane = |number: usize| {
        let askers: Vec<i64> = askers.iter().copied().skip(number).step_by(lanes).collect();
        let asked = asked.id;
        async move {
            for from in askers {
                let request = FriendRequest {
                    from,
                    to: asked,
                    note: String::new(),
                    created_at: 2,
                };
                let outcome = store.add_friend_request(&request).await;
                assert!(
                    outcome.is_ok(),
                    "racing friend requests must all succeed, got {outcome:?}"
                );
            }
        }
    };
    tokio::join!(lane(0), lane(1), lane(2), lane(3));
    let (incoming, _) = store.friend_requests(asked.id).await.expect("requests");
    let mut from: Vec<i64> = incoming.iter().map(|request| request.from).collect();
    from.sort_unstable();
    askers.sort_unstable();
    assert_eq!(from, askers, "every racing request is stored");
}

/// Nicknames change; requests are withdrawn or turned down; friendships end on both sides.
async fn profile_and_endings(store: &dyn Store) {
    let (a, b, c) = (user(random_id()), user(random_id()), user(random_id()));
    for each in [&a, &b, &c] {
        store.create_user(each, "h").await.expect("create user");
    }
    assert!(store.set_nickname(a.id, "Ada").await.expect("set nickname"));
    let stored = store.user(a.id).await.expect("read").expect("exists");
    assert_eq!(stored.nickname, "Ada");
    assert_eq!(stored.username, a.username, "only the nickname changes");
    assert!(
        store
            .set_nickname(a.id, "Ada")
            .await
            .expect("same nickname")
    );
    assert!(
        !store
            .set_nickname(random_id(), "Nobody")
            .await
            .expect("unknown user")
    );

    let request = |from: &User, to: &User| FriendRequest {
        from: from.id,
        to: to.id,
        note: String::new(),
        created_at: 1,
    };
    store
        .add_friend_request(&request(&a, &b))
        .await
        .expect("request");
    assert!(
        !store
            .remove_friend_request(b.id, a.id)
            .await
            .expect("wrong way")
    );
    assert!(
        store
            .remove_friend_request(a.id, b.id)
            .await
            .expect("withdraw")
    );
    assert!(
        !store
            .remove_friend_request(a.id, b.id)
            .await
            .expect("again")
    );
    let (incoming, _) = store.friend_requests(b.id).await.expect("requests");
    assert!(
        incoming.is_empty(),
        "a withdrawn request is gone: {incoming:?}"
    );
    // Asking again after a withdrawal is allowed.
    store
        .add_friend_request(&request(&a, &b))
        .await
        .expect("ask again");

    store
        .add_friend_request(&request(&a, &c))
        .await
        .expect("request");
    store
        .accept_friend_request(a.id, c.id, 2)
        .await
        .expect("accept");
    assert!(
        !store
            .remove_friendship(a.id, b.id)
            .await
            .expect("not friends")
    );
    assert!(store.remove_friendship(c.id, a.id).await.expect("end it"));
    assert!(!store.are_friends(a.id, c.id).await.expect("a side"));
    assert!(!store.are_friends(c.id, a.id).await.expect("c side"));
    assert!(store.friends(a.id).await.expect("friends").is_empty());
    assert!(
        !store
            .remove_friendship(a.id, c.id)
            .await
            .expect("already ended")
    );
}
