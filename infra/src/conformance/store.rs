//! The `Store` conformance suite.

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::random_id;
use crate::error::InfraError;
use crate::store::{FriendRequest, Group, RefreshToken, Store, User};

fn user(id: i64) -> User {
    User {
        id,
        username: format!("conformance{id}"),
        nickname: format!("Conformance {id}"),
        avatar: None,
        created_at: 1_700_000_000_000,
    }
}

fn group(id: i64, owner: i64) -> Group {
    Group {
        id,
        name: format!("Conformance group {id}"),
        owner,
        avatar: None,
        created_at: 1_700_000_000_000 + id,
    }
}

fn message(object: &ObjectId, seq: u64, body: &str) -> Message {
    Message {
        // Random, so a shared backend that keeps message ids unique never sees a repeat.
        id: random_id() as u64,
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
    groups(store).await;
    messages(store).await;
    cursors(store).await;
    racing_friend_requests(store).await;
    profile_and_endings(store).await;
    conversations(store).await;
    member_pages(store).await;
    super::social::run(store).await;
}

/// A group's members page in id order, and only members are listed.
async fn member_pages(store: &dyn Store) {
    let mut members: Vec<User> = (0..5).map(|_| user(random_id())).collect();
    for member in &members {
        store.create_user(member, "h").await.expect("create user");
    }
    let outsider = user(random_id());
    store
        .create_user(&outsider, "h")
        .await
        .expect("create user");
    let owner = members[0].id;
    let id = random_id();
    store
        .create_group(&group(id, owner))
        .await
        .expect("create group");
    for member in &members[1..] {
        store
            .add_group_member(id, member.id, 3)
            .await
            .expect("join");
    }
    members.sort_by_key(|member| member.id);
    let first = store.group_members(id, 0, 3).await.expect("first page");
    assert_eq!(first, members[..3].to_vec(), "the first page, by id");
    let after = first.last().map_or(0, |member| member.id);
    let rest = store.group_members(id, after, 3).await.expect("next page");
    assert_eq!(rest, members[3..].to_vec(), "the rest");
    assert!(!rest.contains(&outsider));
    assert!(
        store
            .group_members(random_id(), 0, 3)
            .await
            .expect("no group")
            .is_empty()
    );
}

/// A one-to-one conversation is the inbox copies with one peer, paged newest first.
async fn conversations(store: &dyn Store) {
    let (me, ada, bob) = (random_id(), random_id(), random_id());
    let inbox = ObjectId::User(me);
    let copies: Vec<Message> = (1..=9)
        .map(|seq| Message {
            // Ada on odd seqs, Bob on even ones, interleaved as they would be.
            peer: if seq % 2 == 1 { ada } else { bob },
            ..message(&inbox, seq, &format!("m{seq}"))
        })
        .collect();
    store.put_messages(&copies).await.expect("put");
    let newest = store
        .conversation_before(me, ada, u64::MAX, 3)
        .await
        .expect("page");
    assert_eq!(seqs(&newest), vec![9, 7, 5], "only Ada's, newest first");
    let older = store
        .conversation_before(me, ada, 5, 10)
        .await
        .expect("next page");
    assert_eq!(seqs(&older), vec![3, 1], "the page before seq 5");
    let bobs = store
        .conversation_before(me, bob, u64::MAX, 10)
        .await
        .expect("bob");
    assert_eq!(seqs(&bobs), vec![8, 6, 4, 2]);
    let strangers = store
        .conversation_before(random_id(), ada, u64::MAX, 10)
        .await
        .expect("another inbox");
    assert!(strangers.is_empty(), "another user's inbox is not mine");
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

async fn users_and_credentials(store: &dyn Store) {
    let alice = user(random_id());
    store
        .create_user(&alice, "hash-a")
        .await
        .expect("create user");
    assert_eq!(
        store.user(alice.id).await.expect("user"),
        Some(alice.clone()),
        "user() returns the user as created"
    );
    let (found, hash) = store
        .credentials(&alice.username)
        .await
        .expect("credentials")
        .expect("credentials of a created user exist");
    assert_eq!(
        (found, hash.as_str()),
        (alice.clone(), "hash-a"),
        "credentials() returns the user and their password hash"
    );

    // An avatar, when set, round-trips too.
    let mut pictured = user(random_id());
    pictured.avatar = Some(format!("upload-{}", random_id()));
    store
        .create_user(&pictured, "hash-p")
        .await
        .expect("create user with avatar");
    assert_eq!(
        store.user(pictured.id).await.expect("user"),
        Some(pictured),
        "the avatar round-trips"
    );

    let mut twin = user(random_id());
    twin.username = alice.username.clone();
    let duplicate = store.create_user(&twin, "x").await;
    assert!(
        matches!(duplicate, Err(InfraError::Conflict(_))),
        "a duplicate username must be a Conflict, got {duplicate:?}"
    );
    assert_eq!(
        store.user(twin.id).await.expect("user"),
        None,
        "a rejected user is not stored"
    );
    let (kept, kept_hash) = store
        .credentials(&alice.username)
        .await
        .expect("credentials")
        .expect("still there");
    assert_eq!(
        (kept.id, kept_hash.as_str()),
        (alice.id, "hash-a"),
        "a rejected duplicate leaves the first user untouched"
    );

    assert_eq!(
        store.user(random_id()).await.expect("unknown user"),
        None,
        "an unknown id is None"
    );
    assert_eq!(
        store
            .credentials(&format!("conformance-nobody-{}", random_id()))
            .await
            .expect("credentials"),
        None,
        "an unknown username is None"
    );
}

async fn refresh_tokens(store: &dyn Store) {
    let hash = format!("conformance-token-{}", random_id());
    let token = RefreshToken {
        user_id: random_id(),
        expires_at: 1_900_000_000_000,
    };
    assert_eq!(
        store
            .take_refresh_token(&format!("conformance-never-{}", random_id()))
            .await
            .expect("take unknown"),
        None,
        "an unknown token is None"
    );
    store
        .put_refresh_token(&hash, &token)
        .await
        .expect("put token");
    assert_eq!(
        store.take_refresh_token(&hash).await.expect("take"),
        Some(token),
        "a stored token is returned once"
    );
    assert_eq!(
        store.take_refresh_token(&hash).await.expect("take again"),
        None,
        "refresh tokens are single use"
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

async fn messages(store: &dyn Store) {
    let object = ObjectId::User(random_id());
    let batch: Vec<Message> = (1..=5)
        .map(|seq| message(&object, seq, &format!("m{seq}")))
        .collect();
    store.put_messages(&batch).await.expect("put");
    // Another object with the same seqs must not mix in.
    let neighbour = ObjectId::Group(random_id());
    let theirs: Vec<Message> = (1..=3)
        .map(|seq| message(&neighbour, seq, &format!("n{seq}")))
        .collect();
    store.put_messages(&theirs).await.expect("put neighbour");
    // The same (object, seq) again, with another body: the first stays.
    store
        .put_messages(&[message(&object, 3, "rewritten")])
        .await
        .expect("putting a stored (object, seq) again is not an error");
    // And a whole batch again (a redelivery) changes nothing either.
    store
        .put_messages(&batch)
        .await
        .expect("putting a stored batch again is not an error");

    let newest = store
        .messages_before(&object, u64::MAX, 10)
        .await
        .expect("history");
    assert_eq!(
        seqs(&newest),
        vec![5, 4, 3, 2, 1],
        "messages_before is newest first, one per (object, seq)"
    );
    assert_eq!(
        newest[2].body, "m3",
        "the first message stored at a seq is kept"
    );
    assert_eq!(newest[0], batch[4], "every field round-trips");
    assert_eq!(newest[4], batch[0], "every field round-trips");
    let page = store.messages_before(&object, 4, 2).await.expect("page");
    assert_eq!(
        seqs(&page),
        vec![3, 2],
        "`before` is exclusive, `limit` caps"
    );
    let past_end = store.messages_before(&object, 6, 3).await.expect("page");
    assert_eq!(seqs(&past_end), vec![5, 4, 3], "`before` past the end");
    assert!(
        store
            .messages_before(&object, 1, 10)
            .await
            .expect("before the first")
            .is_empty(),
        "nothing is before seq 1"
    );
    let neighbours = store
        .messages_before(&neighbour, u64::MAX, 10)
        .await
        .expect("neighbour history");
    assert_eq!(seqs(&neighbours), vec![3, 2, 1], "objects are kept apart");
    assert_eq!(neighbours[0].body, "n3");
    let other = ObjectId::Group(random_id());
    assert!(
        store
            .messages_before(&other, u64::MAX, 10)
            .await
            .expect("empty")
            .is_empty(),
        "an unknown object has no history"
    );
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|message| message.seq).collect()
}

async fn cursors(store: &dyn Store) {
    let user_id = random_id();
    let object = ObjectId::User(random_id());
    assert_eq!(
        store.ack_cursor(user_id, &object).await.expect("cursor"),
        0,
        "an unset ack cursor is 0"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 4)
            .await
            .expect("advance"),
        4,
        "advancing returns the new value"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 2)
            .await
            .expect("back"),
        4,
        "the ack cursor never moves back; the stored value is returned"
    );
    assert_eq!(
        store.ack_cursor(user_id, &object).await.expect("cursor"),
        4,
        "never back"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 4)
            .await
            .expect("same"),
        4,
        "advancing to the same value keeps it"
    );
    assert_eq!(
        store
            .advance_ack_cursor(user_id, &object, 11)
            .await
            .expect("forward"),
        11,
        "the ack cursor moves forward"
    );
    assert_eq!(
        store.ack_cursor(user_id, &object).await.expect("cursor"),
        11
    );
    assert_eq!(
        store
            .ack_cursor(random_id(), &object)
            .await
            .expect("other user"),
        0,
        "ack cursors are per user"
    );
    assert_eq!(
        store
            .ack_cursor(user_id, &ObjectId::Group(random_id()))
            .await
            .expect("other object"),
        0,
        "ack cursors are per object"
    );

    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        0,
        "an unset delivered cursor is 0"
    );
    store.set_delivered_cursor(&object, 9).await.expect("set");
    assert_eq!(store.delivered_cursor(&object).await.expect("delivered"), 9);
    store
        .set_delivered_cursor(&object, 3)
        .await
        .expect("set back");
    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        9,
        "the delivered cursor never moves back"
    );
    store
        .set_delivered_cursor(&object, 12)
        .await
        .expect("set forward");
    assert_eq!(
        store.delivered_cursor(&object).await.expect("delivered"),
        12,
        "the delivered cursor moves forward"
    );
    assert_eq!(
        store
            .delivered_cursor(&ObjectId::Group(random_id()))
            .await
            .expect("other object"),
        0,
        "delivered cursors are per object"
    );
}

async fn groups(store: &dyn Store) {
    let (owner, member, outsider) = (random_id(), random_id(), random_id());

    let mut pictured = group(random_id(), owner);
    pictured.avatar = Some(format!("upload-{}", random_id()));
    store
        .create_group(&pictured)
        .await
        .expect("create group with avatar");
    assert_eq!(
        store.group(pictured.id).await.expect("group"),
        Some(pictured.clone()),
        "group() returns the group as created, avatar included"
    );
    let plain = group(random_id(), owner);
    store.create_group(&plain).await.expect("create group");
    assert_eq!(
        store.group(plain.id).await.expect("group"),
        Some(plain.clone()),
        "a group without an avatar round-trips"
    );
    for created in [&pictured, &plain] {
        assert!(
            store
                .is_group_member(created.id, owner)
                .await
                .expect("is member"),
            "the owner is a member of the group they created"
        );
        assert!(
            !store
                .is_group_member(created.id, member)
                .await
                .expect("is member"),
            "a new group has no member but its owner"
        );
    }
    let mut owned = vec![pictured.id, plain.id];
    owned.sort_unstable();
    assert_eq!(
        store.user_groups(owner).await.expect("groups of owner"),
        owned,
        "the owner's groups, ascending"
    );

    let twin = Group {
        name: "Conformance twin".into(),
        owner: member,
        ..pictured.clone()
    };
    let duplicate = store.create_group(&twin).await;
    assert!(
        matches!(duplicate, Err(InfraError::Conflict(_))),
        "a duplicate group id must be a Conflict, got {duplicate:?}"
    );
    assert_eq!(
        store.group(pictured.id).await.expect("group"),
        Some(pictured.clone()),
        "a rejected duplicate leaves the first group untouched"
    );
    assert!(
        !store
            .is_group_member(pictured.id, member)
            .await
            .expect("is member"),
        "a rejected group does not make its owner a member"
    );
    assert!(
        store
            .user_groups(member)
            .await
            .expect("groups of member")
            .is_empty(),
        "a rejected group leaves no membership behind"
    );

    assert!(
        store
            .add_group_member(plain.id, member, 5)
            .await
            .expect("add member"),
        "adding a new member is true"
    );
    assert!(
        !store
            .add_group_member(plain.id, member, 6)
            .await
            .expect("add member again"),
        "adding an existing member is false, not an error"
    );
    assert!(
        store
            .is_group_member(plain.id, member)
            .await
            .expect("is member"),
        "an added member is a member"
    );
    assert!(
        !store
            .is_group_member(plain.id, outsider)
            .await
            .expect("is member"),
        "an outsider is not a member"
    );
    assert!(
        !store
            .is_group_member(pictured.id, member)
            .await
            .expect("is member"),
        "membership is per group"
    );

    // Joined in an order other than their ids', to show the list is sorted, not insertion order.
    let mut joined = vec![plain.id];
    let mut others = Vec::new();
    for _ in 0..3 {
        let other = group(random_id(), outsider);
        store.create_group(&other).await.expect("create group");
        others.push(other.id);
    }
    others.sort_unstable_by(|a, b| b.cmp(a));
    for &other in &others {
        assert!(
            store
                .add_group_member(other, member, 7)
                .await
                .expect("add member"),
            "joining another group is true"
        );
        joined.push(other);
    }
    joined.sort_unstable();
    assert_eq!(
        store.user_groups(member).await.expect("groups of member"),
        joined,
        "a member's groups, ascending"
    );

    let left = others[1];
    assert!(
        store
            .remove_group_member(left, member)
            .await
            .expect("remove member"),
        "removing a member is true"
    );
    assert!(
        !store
            .remove_group_member(left, member)
            .await
            .expect("remove member again"),
        "removing a former member is false"
    );
    assert!(
        !store
            .is_group_member(left, member)
            .await
            .expect("is member"),
        "a removed member is no longer a member"
    );
    joined.retain(|&id| id != left);
    assert_eq!(
        store.user_groups(member).await.expect("groups of member"),
        joined,
        "a group left is no longer listed"
    );
    assert!(
        store
            .is_group_member(left, outsider)
            .await
            .expect("is member"),
        "removing one member leaves the others"
    );
    assert!(
        !store
            .remove_group_member(plain.id, outsider)
            .await
            .expect("remove outsider"),
        "removing someone who never joined is false"
    );

    let unknown = random_id();
    let missing = store.add_group_member(unknown, member, 8).await;
    assert!(
        matches!(missing, Err(InfraError::NotFound(_))),
        "adding to a group that does not exist must be NotFound, got {missing:?}"
    );
    assert!(
        !store
            .is_group_member(unknown, member)
            .await
            .expect("is member"),
        "a refused add stores no membership"
    );
    assert_eq!(
        store.user_groups(member).await.expect("groups of member"),
        joined,
        "a refused add lists no group"
    );
    assert_eq!(
        store.group(unknown).await.expect("unknown group"),
        None,
        "an unknown group id is None"
    );
    assert!(
        store
            .user_groups(random_id())
            .await
            .expect("groups of nobody")
            .is_empty(),
        "a user in no group has no groups"
    );

    // Two adds of the same member at once: exactly one of them adds.
    for _ in 0..3 {
        let racer = random_id();
        let (first, second) = tokio::join!(
            store.add_group_member(plain.id, racer, 9),
            store.add_group_member(plain.id, racer, 9)
        );
        let (first, second) = (first.expect("racing add"), second.expect("racing add"));
        assert!(
            first != second,
            "of two racing adds exactly one is true, got {first} and {second}"
        );
        assert!(
            store
                .is_group_member(plain.id, racer)
                .await
                .expect("is member"),
            "the racing member was added"
        );
    }
}
