//! The `Store` port: users, credentials, friendships, groups, stored messages and cursors.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;

use crate::error::InfraResult;

/// A registered user as others may see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Snowflake id.
    pub id: i64,
    /// Unique, lower-case login name.
    pub username: String,
    /// Display name (defaults to the username).
    pub nickname: String,
    /// Upload id of the avatar image, if set.
    pub avatar: Option<String>,
    /// Registration time, ms since the Unix epoch.
    pub created_at: i64,
}

/// A pending friend request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendRequest {
    /// Who asked.
    pub from: i64,
    /// Who was asked.
    pub to: i64,
    /// Optional note from the requester.
    pub note: String,
    /// When, ms since the Unix epoch.
    pub created_at: i64,
}

/// A friendship as seen from one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Friend {
    /// The friend.
    pub user: User,
    /// When the friendship began, ms since the Unix epoch.
    pub since: i64,
}

/// A group chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Snowflake id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// The user who created it (and may rename it, remove members, disband it).
    pub owner: i64,
    /// Upload id of the avatar image, if set.
    pub avatar: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at: i64,
}

/// A stored refresh token (only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// Whose token.
    pub user_id: i64,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: i64,
}

/// Durable relational state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create a group with its owner as its first member (one transaction); `Conflict` if the
    /// id exists.
    async fn create_group(&self, group: &Group) -> InfraResult<()>;
    /// A group by id.
    async fn group(&self, id: i64) -> InfraResult<Option<Group>>;
    /// Add a member (joined at `now`); false if they were one already, `NotFound` if the group
    /// does not exist.
    async fn add_group_member(&self, group: i64, user: i64, now: i64) -> InfraResult<bool>;
    /// Remove a member; false if they were not one (or the group does not exist).
    async fn remove_group_member(&self, group: i64, user: i64) -> InfraResult<bool>;
    /// Whether a user is a member of a group.
    async fn is_group_member(&self, group: i64, user: i64) -> InfraResult<bool>;
    /// The ids of the groups a user is a member of, ascending.
    async fn user_groups(&self, user: i64) -> InfraResult<Vec<i64>>;
    /// A page of a group's members with ids above `after`, ascending by id.
    async fn group_members(&self, group: i64, after: i64, limit: u32) -> InfraResult<Vec<User>>;

    /// Change a user's display name; false if there is no such user.
    async fn set_nickname(&self, user: i64, nickname: &str) -> InfraResult<bool>;
    /// Withdraw or turn down the request `from` made to `to`; false if there was none.
    async fn remove_friend_request(&self, from: i64, to: i64) -> InfraResult<bool>;
    /// End a friendship, both sides at once; false if they were not friends.
    async fn remove_friendship(&self, a: i64, b: i64) -> InfraResult<bool>;

    /// Register a user; `Conflict` if the username exists.
    async fn create_user(&self, user: &User, password_hash: &str) -> InfraResult<()>;
    /// A user by id.
    async fn user(&self, id: i64) -> InfraResult<Option<User>>;
    /// A user and their password hash by username.
    async fn credentials(&self, username: &str) -> InfraResult<Option<(User, String)>>;

    /// Keep a refresh token's hash.
    async fn put_refresh_token(&self, hash: &str, token: &RefreshToken) -> InfraResult<()>;
    /// Remove and return a refresh token (each is used once).
    async fn take_refresh_token(&self, hash: &str) -> InfraResult<Option<RefreshToken>>;

    /// Ask `to` for friendship; `Conflict` if asked already or already friends.
    async fn add_friend_request(&self, request: &FriendRequest) -> InfraResult<()>;
    /// Requests to `user` (incoming) and from `user` (outgoing).
    async fn friend_requests(
        &self,
        user: i64,
    ) -> InfraResult<(Vec<FriendRequest>, Vec<FriendRequest>)>;
    /// Turn the request `from` → `to` into a friendship; `NotFound` if there is none.
    async fn accept_friend_request(&self, from: i64, to: i64, now: i64) -> InfraResult<()>;
    /// A user's friends, oldest friendship first.
    async fn friends(&self, user: i64) -> InfraResult<Vec<Friend>>;
    /// Whether the two are friends.
    async fn are_friends(&self, a: i64, b: i64) -> InfraResult<bool>;

    /// Store messages; a message already stored at its (object, seq) is left as it is.
    async fn put_messages(&self, messages: &[Message]) -> InfraResult<()>;
    /// Stored messages of an object with seq below `before`, newest first.
    async fn messages_before(
        &self,
        object: &ObjectId,
        before: u64,
        limit: u32,
    ) -> InfraResult<Vec<Message>>;

    /// Stored messages of `user`'s inbox exchanged with `peer` (a one-to-one conversation),
    /// with seq below `before`, newest first.
    async fn conversation_before(
        &self,
        user: i64,
        peer: i64,
        before: u64,
        limit: u32,
    ) -> InfraResult<Vec<Message>>;

    /// The last seq a user acknowledged in an object (0 if none).
    async fn ack_cursor(&self, user: i64, object: &ObjectId) -> InfraResult<u64>;
    /// Move a user's acknowledged cursor forward (never back); returns the stored value.
    async fn advance_ack_cursor(&self, user: i64, object: &ObjectId, seq: u64) -> InfraResult<u64>;

    /// The last seq task delivered for an object (0 if none).
    async fn delivered_cursor(&self, object: &ObjectId) -> InfraResult<u64>;
    /// Record task's delivered cursor for an object (never moves back).
    async fn set_delivered_cursor(&self, object: &ObjectId, seq: u64) -> InfraResult<()>;
}
