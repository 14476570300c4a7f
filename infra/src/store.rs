//! The `Store` port: one trait per entity (users, friends, groups, messages and cursors,
//! uploads) under the `Store` supertrait, and the records they hold.

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
    /// Private: not found by search, joined only through an invite or by being added.
    pub private: bool,
}

/// A member's standing in a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// [`ROLE_OWNER`], [`ROLE_ADMIN`] or [`ROLE_MEMBER`].
    pub role: &'static str,
    /// Muted (may not send to the group) until then, ms since the Unix epoch; 0 if not.
    pub muted_until: i64,
}

/// The group's owner (there is one: `Group::owner`).
pub const ROLE_OWNER: &str = "owner";
/// An admin: adds, removes and mutes members.
pub const ROLE_ADMIN: &str = "admin";
/// Everyone else.
pub const ROLE_MEMBER: &str = "member";

/// A member as a group's member list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// The user.
    pub user: User,
    /// Their standing.
    pub membership: Membership,
}

/// An invite link to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The random code the link carries.
    pub code: String,
    /// The group it joins.
    pub group_id: i64,
    /// Who made it.
    pub created_by: i64,
    /// When, ms since the Unix epoch.
    pub created_at: i64,
    /// Good until then, ms since the Unix epoch.
    pub expires_at: i64,
    /// At most this many joins.
    pub max_uses: u64,
    /// Joins so far.
    pub uses: u64,
}

/// A stored refresh token (only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// Whose token.
    pub user_id: i64,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: i64,
}

/// An uploaded image (its bytes are in `Blobs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Snowflake id; the blob key is derived from it.
    pub id: i64,
    /// Who uploaded it.
    pub owner: i64,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub content_type: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the original in bytes.
    pub size: u64,
    /// Whether a smaller copy was made for previews.
    pub thumbnail: bool,
    /// Upload time, ms since the Unix epoch.
    pub created_at: i64,
}

/// Everyone signed in may fetch an upload shared with this audience (avatars).
pub const AUDIENCE_EVERYONE: &str = "everyone";

/// One conversation of a user, for the conversation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// `user:<peer>` or `group:<id>`.
    pub key: String,
    /// The newest stored message, if any.
    pub last: Option<Message>,
    /// The user's read cursor (a seq of the inbox or the group's log).
    pub read: u64,
    /// Messages from others after the read cursor (recalls and recalled ones aside), counted
    /// up to [`UNREAD_COUNT_CAP`].
    pub unread: u64,
}

/// One user's reaction to a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// The message reacted to.
    pub message_id: u64,
    /// Who reacted.
    pub user_id: i64,
    /// With what.
    pub emoji: String,
    /// When, ms since the Unix epoch.
    pub ts: i64,
}

/// A sender's newest message in a range of an object's seqs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderNewest {
    /// The author.
    pub sender: i64,
    /// The message id.
    pub id: u64,
    /// Its seq in the object.
    pub seq: u64,
}

/// Who has read a message: derived from read cursors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readers {
    /// How many.
    pub count: u64,
    /// The first of them by id (as many as asked for).
    pub users: Vec<i64>,
}

/// The message kinds people write (the others are written by the server about them).
pub const AUTHORED_KINDS: [&str; 2] = ["text", "image"];

/// Unread counts stop at this, so a long-neglected conversation costs a bounded count.
pub const UNREAD_COUNT_CAP: u64 = 1000;

/// The kind of a message that recalls an earlier one (its body is the recalled id).
pub use natter_proto::frame::RECALL_KIND;

/// The kind a recalled message's stored copies take (their body is emptied).
pub const RECALLED_KIND: &str = "recalled";

/// Lets `audience` fetch `upload` if `owner` made it. False, sharing nothing, if the upload
/// is missing or someone else's (callers answer both alike, so ids are not a way to probe).
pub async fn share_own_upload(
    store: &dyn Store,
    owner: i64,
    upload: i64,
    audience: &str,
) -> InfraResult<bool> {
    match store.upload(upload).await? {
        Some(found) if found.owner == owner => {
            store.share_upload(upload, audience).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The receipt state of `user`'s conversation with `peer`, for a client that
/// (re)loads it: how far the peer got with the user's messages, as seqs of the user's inbox.
pub async fn one_to_one_receipts(
    store: &dyn Store,
    user: i64,
    peer: i64,
) -> InfraResult<(u64, u64)> {
    let peer_inbox = ObjectId::User(peer);
    let acknowledged = store.ack_cursor(peer, &peer_inbox).await?;
    let read = store.read_cursor(peer, &format!("user:{user}")).await?;
    let delivered_seq = own_copy_seq(store, user, &peer_inbox, acknowledged.max(read)).await?;
    let read_seq = own_copy_seq(store, user, &peer_inbox, read).await?;
    Ok((delivered_seq, read_seq))
}

/// The seq in `user`'s inbox of the newest message `user` wrote to `peer` whose copy in the
/// peer's inbox is at or below `upto`; 0 if none.
async fn own_copy_seq(
    store: &dyn Store,
    user: i64,
    peer_inbox: &ObjectId,
    upto: u64,
) -> InfraResult<u64> {
    if upto == 0 {
        return Ok(0);
    }
    let Some(id) = store.newest_from(peer_inbox, user, user, upto).await? else {
        return Ok(0);
    };
    let own = ObjectId::User(user).to_string();
    Ok(store
        .message_copies(id)
        .await?
        .into_iter()
        .find(|copy| copy.object == own)
        .map_or(0, |copy| copy.seq))
}

/// The copy among a message's `copies` that `user` sees, and the conversation it is in: their
/// own inbox's copy (the conversation with its peer), or the group's if they are a member.
pub async fn copy_seen_by(
    store: &dyn Store,
    user: i64,
    copies: &[Message],
) -> InfraResult<Option<(ObjectId, Message)>> {
    let own_inbox = ObjectId::User(user).to_string();
    for copy in copies {
        match copy.object.parse::<ObjectId>() {
            Ok(ObjectId::User(_)) if copy.object == own_inbox => {
                return Ok(Some((ObjectId::User(copy.peer), copy.clone())));
            }
            Ok(ObjectId::Group(group)) => {
                let member = store.is_group_member(group, user).await?;
                return Ok(member.then(|| (ObjectId::Group(group), copy.clone())));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Durable relational state: every entity's store, one trait each. Implemented by anything
/// that implements all five.
pub trait Store: UserStore + FriendStore + GroupStore + MessageStore + UploadStore {}

impl<T: UserStore + FriendStore + GroupStore + MessageStore + UploadStore> Store for T {}

/// Users, their credentials and refresh tokens, and their profiles.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
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
    /// Change a user's display name; false if there is no such user.
    async fn set_nickname(&self, user: i64, nickname: &str) -> InfraResult<bool>;
    /// Set or clear a user's avatar (an upload id); false if there is no such user.
    async fn set_avatar(&self, user: i64, avatar: Option<&str>) -> InfraResult<bool>;
    /// Users whose username or nickname starts with `prefix` (compared in lower case), ids
    /// above `after`, ascending by id.
    async fn search_users(&self, prefix: &str, after: i64, limit: u32) -> InfraResult<Vec<User>>;
}

/// Friend requests and friendships.
#[async_trait]
pub trait FriendStore: Send + Sync + 'static {
    /// Ask `to` for friendship; `Conflict` if asked already or already friends.
    async fn add_friend_request(&self, request: &FriendRequest) -> InfraResult<()>;
    /// Requests to `user` (incoming) and from `user` (outgoing).
    async fn friend_requests(
        &self,
        user: i64,
    ) -> InfraResult<(Vec<FriendRequest>, Vec<FriendRequest>)>;
    /// Turn the request `from` → `to` into a friendship; `NotFound` if there is none.
    async fn accept_friend_request(&self, from: i64, to: i64, now: i64) -> InfraResult<()>;
    /// Withdraw or turn down the request `from` made to `to`; false if there was none.
    async fn remove_friend_request(&self, from: i64, to: i64) -> InfraResult<bool>;
    /// A user's friends, oldest friendship first.
    async fn friends(&self, user: i64) -> InfraResult<Vec<Friend>>;
    /// Whether the two are friends.
    async fn are_friends(&self, a: i64, b: i64) -> InfraResult<bool>;
    /// End a friendship, both sides at once; false if they were not friends.
    async fn remove_friendship(&self, a: i64, b: i64) -> InfraResult<bool>;
    /// `user` blocks `blocked`; false if they had already.
    async fn block_user(&self, user: i64, blocked: i64, now: i64) -> InfraResult<bool>;
    /// `user` unblocks `blocked`; false if they had not blocked them.
    async fn unblock_user(&self, user: i64, blocked: i64) -> InfraResult<bool>;
    /// Whether `user` has blocked `other`.
    async fn has_blocked(&self, user: i64, other: i64) -> InfraResult<bool>;
    /// The users `user` has blocked, the earliest first.
    async fn blocked_users(&self, user: i64) -> InfraResult<Vec<User>>;
}

/// Groups and their members.
#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
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
    /// Groups whose name starts with `prefix` (compared in lower case), ids above `after`,
    /// ascending by id.
    async fn search_groups(&self, prefix: &str, after: i64, limit: u32) -> InfraResult<Vec<Group>>;
    /// Set a group's name and avatar; false if there is no such group.
    async fn update_group(&self, group: i64, name: &str, avatar: Option<&str>)
    -> InfraResult<bool>;
    /// Delete a group and its memberships (one transaction); returns who were members.
    async fn disband_group(&self, group: i64) -> InfraResult<Vec<i64>>;
    /// Make a group private or public; false if there is no such group.
    async fn set_group_private(&self, group: i64, private: bool) -> InfraResult<bool>;
    /// A member's standing (the owner's role is [`ROLE_OWNER`]); None if not a member.
    async fn membership(&self, group: i64, user: i64) -> InfraResult<Option<Membership>>;
    /// Set a member's role ([`ROLE_ADMIN`] or [`ROLE_MEMBER`]); false if not a member.
    async fn set_member_role(&self, group: i64, user: i64, role: &str) -> InfraResult<bool>;
    /// Mute a member until `until` (ms; 0 unmutes); false if not a member.
    async fn set_member_muted(&self, group: i64, user: i64, until: i64) -> InfraResult<bool>;
    /// A page of members by id with their standing, after `after`.
    async fn group_member_page(
        &self,
        group: i64,
        after: i64,
        limit: u32,
    ) -> InfraResult<Vec<GroupMember>>;
    /// Store a new invite.
    async fn create_invite(&self, invite: &Invite) -> InfraResult<()>;
    /// An invite by its code, used up or expired or not.
    async fn invite(&self, code: &str) -> InfraResult<Option<Invite>>;
    /// Count one use of an invite if it is still good at `now` (not expired, uses left);
    /// returns it then, None otherwise.
    async fn use_invite(&self, code: &str, now: i64) -> InfraResult<Option<Invite>>;
    /// A group's invites, newest first.
    async fn group_invites(&self, group: i64) -> InfraResult<Vec<Invite>>;
    /// Delete an invite of `group`; false if there was none.
    async fn revoke_invite(&self, group: i64, code: &str) -> InfraResult<bool>;
}

/// Stored messages (history) and the cursors kept on them: acknowledged, read, delivered.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
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
    /// Every stored copy of a message.
    async fn message_copies(&self, id: u64) -> InfraResult<Vec<Message>>;
    /// Every stored copy of the messages `sender` sent with client id `cid` at or after
    /// `since` (unix ms): what a retried send finds when its de-duplication record is gone.
    async fn copies_by_cid(&self, sender: i64, cid: &str, since: i64) -> InfraResult<Vec<Message>>;
    /// The history's epoch: a name given once, when the database first serves, that changes
    /// only if the history starts afresh; clients compare it to know their cursors still apply.
    async fn history_epoch(&self) -> InfraResult<String>;
    /// The time (unix ms) of the newest stored message with an id below `id`, if any.
    async fn newest_message_before(&self, id: u64) -> InfraResult<Option<i64>>;
    /// Empty every stored copy of a message and mark it recalled; returns how many copies.
    async fn mark_recalled(&self, id: u64) -> InfraResult<u64>;
    /// Rewrite the text of every stored copy of a text message and stamp when; returns how
    /// many copies changed (0: no such text message).
    async fn mark_edited(&self, id: u64, body: &str, edited_at: i64) -> InfraResult<u64>;
    /// Add (`present`) or take back a user's reaction to a message; false if it was already so.
    async fn set_reaction(&self, reaction: &Reaction, present: bool) -> InfraResult<bool>;
    /// Every reaction to these messages.
    async fn reactions(&self, messages: &[u64]) -> InfraResult<Vec<Reaction>>;
    /// Mute a conversation of `user` until `until` (ms; 0 until unmuted), or unmute it (None).
    async fn set_mute(&self, user: i64, conversation: &str, until: Option<i64>) -> InfraResult<()>;
    /// Every muted conversation of `user`, with its `until` (expired ones included).
    async fn mutes(&self, user: i64) -> InfraResult<Vec<(String, i64)>>;
    /// The newest text or image message of each sender (system messages aside) among `object`'s
    /// seqs in `(after, upto]`: who a receipt for that range goes to, and about which message.
    async fn newest_per_sender(
        &self,
        object: &ObjectId,
        after: u64,
        upto: u64,
    ) -> InfraResult<Vec<SenderNewest>>;
    /// For `user`'s inbox seqs in `(after, upto]`: each other sender's newest one-to-one
    /// message there, as (sender, the seq of the sender's own copy in their inbox) — what a
    /// delivery receipt tells each sender, in one query.
    async fn newest_own_copies(
        &self,
        user: i64,
        after: u64,
        upto: u64,
    ) -> InfraResult<Vec<(i64, u64)>>;
    /// The id of the newest text or image message `sender` wrote in `object` with `peer` at or
    /// below seq `upto`.
    async fn newest_from(
        &self,
        object: &ObjectId,
        peer: i64,
        sender: i64,
        upto: u64,
    ) -> InfraResult<Option<u64>>;
    /// The users other than `excluding` whose read cursor on `conversation` reached `seq`:
    /// how many, and the first `limit` of them by id.
    async fn readers(
        &self,
        conversation: &str,
        seq: u64,
        excluding: i64,
        limit: u32,
    ) -> InfraResult<Readers>;
    /// A user's one-to-one conversations (from their inbox) and groups, the most recently
    /// active first, at most `limit`.
    async fn conversations(&self, user: i64, limit: u32) -> InfraResult<Vec<Conversation>>;
    /// The last seq a user acknowledged in an object (0 if none).
    async fn ack_cursor(&self, user: i64, object: &ObjectId) -> InfraResult<u64>;
    /// Move a user's acknowledged cursor forward (never back); returns the stored value, or for
    /// a store sharing its database with other writers the value as far as this process has
    /// seen it (never less than `seq`).
    async fn advance_ack_cursor(&self, user: i64, object: &ObjectId, seq: u64) -> InfraResult<u64>;
    /// How far a user has read a conversation (`user:<peer>` or `group:<id>`); 0 if never.
    async fn read_cursor(&self, user: i64, conversation: &str) -> InfraResult<u64>;
    /// Move a read cursor forward (never back); returns the stored value.
    async fn advance_read_cursor(
        &self,
        user: i64,
        conversation: &str,
        seq: u64,
    ) -> InfraResult<u64>;
    /// The last seq task delivered for an object (0 if none); a store shared with other
    /// writers may answer from what this process set, which can be behind another's.
    async fn delivered_cursor(&self, object: &ObjectId) -> InfraResult<u64>;
    /// Record task's delivered cursor for an object (never moves back).
    async fn set_delivered_cursor(&self, object: &ObjectId, seq: u64) -> InfraResult<()>;
}

/// Uploaded images: who owns them and who may fetch them.
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    /// Record an upload; `Conflict` if the id exists.
    async fn put_upload(&self, upload: &Upload) -> InfraResult<()>;
    /// An upload by id.
    async fn upload(&self, id: i64) -> InfraResult<Option<Upload>>;
    /// Let `audience` (`everyone`, `user:<id>` or `group:<id>`) fetch an upload too.
    async fn share_upload(&self, id: i64, audience: &str) -> InfraResult<()>;
    /// Who besides its owner may fetch an upload.
    async fn upload_audiences(&self, id: i64) -> InfraResult<Vec<String>>;
}
