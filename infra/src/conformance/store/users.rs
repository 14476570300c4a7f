//! The `Store` conformance suite: users, credentials, refresh tokens and search.

use super::super::random_id;
use super::user;
use crate::error::InfraError;
use crate::store::{Group, RefreshToken, Store, User};

/// Run every check of this part of the `Store` suite.
pub async fn run(store: &dyn Store) {
    users_and_credentials(store).await;
    refresh_tokens(store).await;
    search(store).await;
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
            private: false,
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
