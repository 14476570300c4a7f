//! The `Store` conformance checks for search, group administration, uploads, read state and
//! recall (run as part of the `Store` suite).

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::random_id;
use crate::error::InfraError;
use crate::store::{Group, RECALL_KIND, RECALLED_KIND, Store, Upload, User};

/// Run every check of this part of the `Store` suite.
pub async fn run(store: &dyn Store) {
    search(store).await;
    group_administration(store).await;
    uploads(store).await;
    read_state(store).await;
    recall(store).await;
}

/// A user named from a tag unique to this run, so searches on a shared backend see only it.
fn named(tag: &str, username: &str, nickname: &str) -> User {
    User {
        id: random_id(),
        username: format!("{tag}{username}"),
        nickname: format!("{}{nickname}", tag.to_uppercase()),
        avatar: None,
        created_at: 1_700_000_000_000,
    }
}

/// A tag of letters no other run uses.
fn unique_tag() -> String {
    let mut number = random_id();
    let mut tag = String::from("q");
    while number > 0 {
        tag.push(char::from(b'a' + (number % 26) as u8));
        number /= 26;
    }
    tag
}

/// Users match by username or nickname prefix in any case, once each, paged by id.
async fn search(store: &dyn Store) {
    let tag = unique_tag();
    let mut users = vec![
        named(&tag, "alice", "Wonder"),
        named(&tag, "bob", "Alibi"),
        named(&tag, "carol", "Caroline"),
        named(&tag, "alfred", "Alfie"),
    ];
    for user in &users {
        store.create_user(user, "h").await.expect("create user");
    }
    users.sort_by_key(|user| user.id);
    let prefix = format!("{}AL", tag.to_uppercase());
    let found = store.search_users(&prefix, 0, 10).await.expect("search");
    let expected: Vec<User> = users
        .iter()
        .filter(|user| !user.username.ends_with("carol"))
        .cloned()
        .collect();
    assert_eq!(
        found, expected,
        "alice and alfred by username, bob by nickname, once each"
    );
    let first = store.search_users(&prefix, 0, 2).await.expect("page");
    let rest = store
        .search_users(&prefix, first[1].id, 2)
        .await
        .expect("next page");
    assert_eq!([first, rest].concat(), expected, "pages join up");
    // A renamed user is found by the new nickname and no longer by the old.
    let carol = users.iter().find(|user| user.username.ends_with("carol"));
    let carol = carol.expect("carol").id;
    store
        .set_nickname(carol, &format!("{tag}Zed"))
        .await
        .expect("rename");
    let zed = store
        .search_users(&format!("{tag}z"), 0, 10)
        .await
        .expect("search");
    assert_eq!(zed.iter().map(|user| user.id).collect::<Vec<_>>(), [carol]);
    let old = store
        .search_users(&format!("{tag}caroline"), 0, 10)
        .await
        .expect("search");
    assert!(old.is_empty(), "the old nickname is gone; found {old:?}");

    let owner = users[0].id;
    let mut groups = Vec::new();
    for name in ["Hikers", "hiking club", "Cyclists"] {
        let group = Group {
            id: random_id(),
            name: format!("{tag} {name}"),
            owner,
            avatar: None,
            created_at: 1,
        };
        store.create_group(&group).await.expect("create group");
        groups.push(group);
    }
    groups.sort_by_key(|group| group.id);
    let hik = store
        .search_groups(&format!("{} HIK", tag.to_uppercase()), 0, 10)
        .await
        .expect("search groups");
    let expected: Vec<Group> = groups
        .iter()
        .filter(|group| !group.name.ends_with("Cyclists"))
        .cloned()
        .collect();
    assert_eq!(hik, expected);
    let none = store
        .search_groups(&format!("{tag} x"), 0, 10)
        .await
        .expect("search groups");
    assert!(none.is_empty());
}

/// The owner's changes: rename and avatar, and disbanding, which ends every membership.
async fn group_administration(store: &dyn Store) {
    let (owner, member) = (random_id(), random_id());
    let id = random_id();
    let group = Group {
        id,
        name: "Before".into(),
        owner,
        avatar: None,
        created_at: 1,
    };
    store.create_group(&group).await.expect("create");
    assert!(store.add_group_member(id, member, 2).await.expect("join"));
    assert!(
        store
            .update_group(id, "After", Some("42"))
            .await
            .expect("update")
    );
    let changed = store.group(id).await.expect("read").expect("there");
    assert_eq!(
        (changed.name.as_str(), changed.avatar.as_deref()),
        ("After", Some("42"))
    );
    assert!(
        !store
            .update_group(random_id(), "x", None)
            .await
            .expect("no group")
    );
    let mut members = store.disband_group(id).await.expect("disband");
    members.sort_unstable();
    let mut expected = vec![owner, member];
    expected.sort_unstable();
    assert_eq!(members, expected, "disbanding reports who were members");
    assert_eq!(store.group(id).await.expect("read"), None);
    assert!(!store.is_group_member(id, member).await.expect("member?"));
    assert!(
        !store
            .user_groups(owner)
            .await
            .expect("groups")
            .contains(&id)
    );
    assert!(matches!(
        store.add_group_member(id, random_id(), 3).await,
        Err(InfraError::NotFound(_))
    ));
    assert!(store.disband_group(id).await.expect("again").is_empty());
}

/// Uploads are recorded once and shared with audiences.
async fn uploads(store: &dyn Store) {
    let upload = Upload {
        id: random_id(),
        owner: random_id(),
        content_type: "image/png".into(),
        width: 1200,
        height: 800,
        size: 123_456,
        thumbnail: true,
        created_at: 5,
    };
    store.put_upload(&upload).await.expect("put");
    assert_eq!(
        store.upload(upload.id).await.expect("read"),
        Some(upload.clone())
    );
    assert!(matches!(
        store.put_upload(&upload).await,
        Err(InfraError::Conflict(_))
    ));
    assert_eq!(store.upload(random_id()).await.expect("read"), None);
    assert!(
        store
            .upload_audiences(upload.id)
            .await
            .expect("none")
            .is_empty()
    );
    store
        .share_upload(upload.id, "user:7")
        .await
        .expect("share");
    store
        .share_upload(upload.id, "everyone")
        .await
        .expect("share");
    store
        .share_upload(upload.id, "user:7")
        .await
        .expect("again");
    assert_eq!(
        store.upload_audiences(upload.id).await.expect("audiences"),
        ["everyone", "user:7"]
    );
}

/// A message for a conversation list check.
fn copy(object: &ObjectId, seq: u64, sender: i64, peer: i64, ts: i64) -> Message {
    Message {
        id: random_id() as u64,
        object: object.to_string(),
        seq,
        sender,
        peer,
        kind: "text".into(),
        body: format!("m{seq}"),
        ts,
        cid: String::new(),
        target_kind: "user".into(),
        target_id: peer,
    }
}

/// The conversation list: newest first, with last messages and unread counts that follow
/// the read cursors.
async fn read_state(store: &dyn Store) {
    let (me, ada, bob) = (random_id(), random_id(), random_id());
    let inbox = ObjectId::User(me);
    store
        .put_messages(&[
            copy(&inbox, 1, ada, ada, 100),
            copy(&inbox, 2, me, ada, 110),
            copy(&inbox, 3, bob, bob, 120),
            copy(&inbox, 4, ada, ada, 130),
            copy(&inbox, 5, ada, ada, 140),
        ])
        .await
        .expect("put");
    let group = random_id();
    store
        .create_group(&Group {
            id: group,
            name: "Read state".into(),
            owner: me,
            avatar: None,
            created_at: 1,
        })
        .await
        .expect("group");
    let group_log = ObjectId::Group(group);
    store
        .put_messages(&[copy(&group_log, 1, bob, group, 125)])
        .await
        .expect("put");
    let list = store.conversations(me, 10).await.expect("list");
    let summary: Vec<(String, u64, u64)> = list
        .iter()
        .map(|conversation| {
            let seq = conversation.last.as_ref().map_or(0, |last| last.seq);
            (conversation.key.clone(), seq, conversation.unread)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (format!("user:{ada}"), 5, 3),
            (format!("group:{group}"), 1, 1),
            (format!("user:{bob}"), 3, 1),
        ],
        "newest first; my own message is not unread"
    );
    assert_eq!(
        store
            .advance_read_cursor(me, &format!("user:{ada}"), 4)
            .await
            .expect("read"),
        4
    );
    assert_eq!(
        store
            .advance_read_cursor(me, &format!("user:{ada}"), 1)
            .await
            .expect("never back"),
        4
    );
    let list = store.conversations(me, 2).await.expect("list");
    assert_eq!(list.len(), 2, "the limit holds");
    assert_eq!((list[0].read, list[0].unread), (4, 1));
    assert_eq!(
        store
            .read_cursor(me, &format!("user:{ada}"))
            .await
            .expect("cursor"),
        4
    );
    assert_eq!(store.read_cursor(me, "user:1").await.expect("none"), 0);
    assert!(
        store
            .conversations(random_id(), 10)
            .await
            .expect("empty")
            .is_empty()
    );
}

/// Recall finds every copy by id and empties them; neither is counted unread.
async fn recall(store: &dyn Store) {
    let (sender, recipient) = (random_id(), random_id());
    let original = copy(&ObjectId::User(recipient), 1, sender, sender, 10);
    let own = Message {
        object: ObjectId::User(sender).to_string(),
        peer: recipient,
        ..original.clone()
    };
    store
        .put_messages(&[original.clone(), own.clone()])
        .await
        .expect("put");
    let copies = store.message_copies(original.id).await.expect("copies");
    assert_eq!(copies.len(), 2);
    assert_eq!(store.mark_recalled(original.id).await.expect("recall"), 2);
    for copy in store.message_copies(original.id).await.expect("copies") {
        assert_eq!(
            (copy.kind.as_str(), copy.body.as_str()),
            (RECALLED_KIND, "")
        );
    }
    let notice = Message {
        id: random_id() as u64,
        seq: 2,
        kind: RECALL_KIND.into(),
        body: original.id.to_string(),
        ..original.clone()
    };
    store.put_messages(&[notice]).await.expect("put");
    let list = store.conversations(recipient, 10).await.expect("list");
    assert_eq!(
        list[0].unread, 0,
        "neither a recalled message nor its recall is unread"
    );
    assert!(
        store
            .message_copies(random_id() as u64)
            .await
            .expect("none")
            .is_empty()
    );
}
