//! The `Store` conformance suite: groups, their members and the owner's changes.

use super::super::random_id;
use super::{group, user};
use crate::error::InfraError;
use crate::store::{Group, Invite, Membership, ROLE_ADMIN, ROLE_MEMBER, ROLE_OWNER, Store, User};

/// Run every check of this part of the `Store` suite.
pub async fn run(store: &dyn Store) {
    groups(store).await;
    member_pages(store).await;
    group_administration(store).await;
    roles_privacy_and_invites(store).await;
}

/// Roles and mutes per member, privacy hiding a group from search, and invites that run out
/// by time and by uses, even when joins race for the last one.
async fn roles_privacy_and_invites(store: &dyn Store) {
    let (owner, member) = (random_id(), random_id());
    for id in [owner, member] {
        store
            .create_user(&user(id), "h")
            .await
            .expect("create user");
    }
    let tag = format!("q{}", random_id());
    let mut hidden = group(random_id(), owner);
    hidden.name = format!("{tag} hidden");
    hidden.private = true;
    store.create_group(&hidden).await.expect("create");
    assert!(
        store
            .group(hidden.id)
            .await
            .expect("read")
            .expect("there")
            .private
    );
    assert!(
        store
            .search_groups(&tag, 0, 10)
            .await
            .expect("search")
            .is_empty(),
        "a private group is not found"
    );
    assert!(
        store
            .set_group_private(hidden.id, false)
            .await
            .expect("public")
    );
    assert_eq!(
        store
            .search_groups(&tag, 0, 10)
            .await
            .expect("search")
            .len(),
        1
    );

    assert!(
        store
            .add_group_member(hidden.id, member, 2)
            .await
            .expect("join")
    );
    let standing = |user| async move {
        store
            .membership(hidden.id, user)
            .await
            .expect("standing")
            .expect("a member")
    };
    assert_eq!(standing(owner).await.role, ROLE_OWNER);
    assert_eq!(standing(member).await.role, ROLE_MEMBER);
    assert!(
        store
            .set_member_role(hidden.id, member, ROLE_ADMIN)
            .await
            .expect("role")
    );
    assert!(
        store
            .set_member_muted(hidden.id, member, 99)
            .await
            .expect("mute")
    );
    assert_eq!(
        standing(member).await,
        Membership {
            role: ROLE_ADMIN,
            muted_until: 99
        }
    );
    assert!(
        store
            .membership(hidden.id, random_id())
            .await
            .expect("none")
            .is_none()
    );
    assert!(
        !store
            .set_member_role(hidden.id, random_id(), ROLE_ADMIN)
            .await
            .expect("no one")
    );
    let page = store
        .group_member_page(hidden.id, 0, 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    assert!(
        page.iter()
            .any(|listed| listed.user.id == owner && listed.membership.role == ROLE_OWNER)
    );

    let invite = Invite {
        code: format!("{:032x}", random_id()),
        group_id: hidden.id,
        created_by: owner,
        created_at: 10,
        expires_at: 1_000,
        max_uses: 3,
        uses: 0,
    };
    store.create_invite(&invite).await.expect("invite");
    assert!(matches!(
        store.create_invite(&invite).await,
        Err(InfraError::Conflict(_))
    ));
    assert_eq!(
        store.invite(&invite.code).await.expect("read"),
        Some(invite.clone())
    );
    assert!(
        store
            .use_invite(&invite.code, 2_000)
            .await
            .expect("late")
            .is_none(),
        "expired"
    );
    // Five joins race for three uses: exactly three win.
    let races = (0..5).map(|_| store.use_invite(&invite.code, 500));
    let won = futures_util::future::join_all(races)
        .await
        .into_iter()
        .filter(|outcome| matches!(outcome, Ok(Some(_))))
        .count();
    assert_eq!(won, 3);
    assert_eq!(
        store
            .invite(&invite.code)
            .await
            .expect("read")
            .map(|found| found.uses),
        Some(3)
    );
    assert_eq!(store.group_invites(hidden.id).await.expect("list").len(), 1);
    assert!(
        !store
            .revoke_invite(random_id(), &invite.code)
            .await
            .expect("other group")
    );
    assert!(
        store
            .revoke_invite(hidden.id, &invite.code)
            .await
            .expect("revoke")
    );
    assert!(store.invite(&invite.code).await.expect("gone").is_none());
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
        private: false,
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
