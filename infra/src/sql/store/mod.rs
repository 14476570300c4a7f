//! `Store` on SQLite, PostgreSQL or MySQL: one implementation, each statement built once per
//! dialect when the store is made. One file per entity holds its statements beside its trait's
//! implementation; this one holds the store, what it remembers, and the row helpers they share.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;
use std::sync::Arc;

use sqlx::any::AnyArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, FromRow};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::database::{Dialect, SqlDatabase, stored_seq};
use super::friendship_cache::FriendshipCache;
use super::membership_cache::MembershipCache;
use super::writer::CursorKind;
use crate::error::{InfraError, InfraResult};
use crate::positions::PositionCache;
use crate::store::{
    AUTHORED_KINDS, Conversation, Friend, FriendRequest, FriendStore, Group, GroupMember,
    GroupStore, Invite, Membership, MessageStore, RECALL_KIND, RECALLED_KIND, ROLE_ADMIN,
    ROLE_MEMBER, ROLE_OWNER, Reaction, Readers, RefreshToken, SenderNewest, UNREAD_COUNT_CAP,
    Upload, UploadStore, User, UserStore,
};

/// The relational store on any of natter's SQL dialects.
#[derive(Debug)]
pub struct SqlStore {
    database: SqlDatabase,
    statements: Statements,
    /// What a store that is its database's only writer remembers instead of querying.
    remembered: Option<Remembered>,
    /// Ack cursors as far as this process has seen them raised, for a store that shares its
    /// database with other writers: a floor of the stored value, which answers a raise
    /// without reading the row back.
    acknowledged_floors: Arc<PositionCache<(i64, String)>>,
    /// Delivered cursors as far as this process has set or read them, for a shared store. In
    /// a cluster only the task process owning an object delivers it, so its own floor is the
    /// stored value; after ownership moves away and back it may be behind, which costs a
    /// redelivery that clients drop by (object, seq), never a lost message.
    delivered_floors: Arc<PositionCache<String>>,
    /// Friendships remembered by a shared store on PostgreSQL, told of every change by the
    /// database ([`SqlStore::following_friendships`]).
    notified_friendships: Option<NotifiedFriendships>,
}

/// Friendships remembered as the database announces their changes, with the task keeping
/// them told, which is stopped with the store.
#[derive(Debug)]
struct NotifiedFriendships {
    cache: Arc<FriendshipCache>,
    follower: tokio::task::AbortHandle,
}

impl Drop for NotifiedFriendships {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// The memory of a sole-writer store.
#[derive(Debug, Default)]
struct Remembered {
    /// Each user's groups.
    membership: MembershipCache,
    /// Who is friends with whom.
    friendships: FriendshipCache,
    /// Read cursors by (user, object).
    ack_cursors: PositionCache<(i64, String)>,
    /// Delivered cursors by object.
    delivered: PositionCache<String>,
}

/// The user columns in `UserRow` order, as a literal so statements can be spelled out whole.
macro_rules! user_columns {
    () => {
        "id, username, nickname, avatar, created_at"
    };
}

/// The group columns in `GroupRow` order.
macro_rules! group_columns {
    () => {
        "id, name, owner, avatar, created_at, is_private"
    };
}

/// The message columns in `MessageRow` order.
macro_rules! message_columns {
    () => {
        "object, seq, id, sender, peer, kind, body, ts, cid, target_kind, target_id, ref_id, \
         ref_sender, ref_snippet, edited_at"
    };
}
pub(crate) use message_columns;

/// User search (with `?` placeholders): each arm is one range of its own index, and the
/// union drops a user found by both. Binds: low, high, after (twice), then the limit.
pub const SEARCH_USERS_SQL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE username >= ? AND username < ? AND id > ? UNION SELECT ",
    user_columns!(),
    " FROM users WHERE nickname_key >= ? AND nickname_key < ? AND id > ? ORDER BY id LIMIT ?"
);

/// Group search (with `?` placeholders). Binds: low, high, after, limit.
pub const SEARCH_GROUPS_SQL: &str = concat!(
    "SELECT ",
    group_columns!(),
    " FROM chat_groups WHERE name_key >= ? AND name_key < ? AND id > ? AND is_private = 0 \
     ORDER BY id LIMIT ?"
);

// After the column macros, which the entity files use.
mod friends;
mod groups;
mod messages;
mod uploads;
mod users;

/// Every statement the store runs, in its database's dialect, by entity.
#[derive(Debug)]
struct Statements {
    users: users::UserStatements,
    friends: friends::FriendStatements,
    groups: groups::GroupStatements,
    messages: messages::MessageStatements,
    uploads: uploads::UploadStatements,
}

impl Statements {
    fn new(dialect: Dialect) -> Statements {
        Statements {
            users: users::UserStatements::new(dialect),
            friends: friends::FriendStatements::new(dialect),
            groups: groups::GroupStatements::new(dialect),
            messages: messages::MessageStatements::new(dialect),
            uploads: uploads::UploadStatements::new(dialect),
        }
    }
}

/// A statement's text in `dialect`, built once when the store is made.
fn dialect_sql(dialect: Dialect, text: &str) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(dialect.placeholders(text))).into_sql_str()
}

impl SqlStore {
    /// A store on an opened database (see [`super::open_database`]).
    pub fn new(database: SqlDatabase) -> Self {
        SqlStore {
            statements: Statements::new(database.dialect),
            database,
            remembered: None,
            acknowledged_floors: Arc::default(),
            delivered_floors: Arc::default(),
            notified_friendships: None,
        }
    }

    /// This store, remembering friendships as the PostgreSQL database at `url` announces
    /// their changes (every store on PostgreSQL announces its own): a one-to-one send then
    /// pays no query for them. Remembers nothing on another dialect, which cannot announce.
    pub fn following_friendships(mut self, url: &str) -> Self {
        if self.database.dialect != Dialect::Postgres {
            return self;
        }
        let cache = Arc::new(FriendshipCache::untrusted());
        let follower = tokio::spawn(super::friendship_notices::follow(
            url.to_owned(),
            Arc::clone(&cache),
        ));
        self.notified_friendships = Some(NotifiedFriendships {
            cache,
            follower: follower.abort_handle(),
        });
        self
    }

    /// A store that is the only writer of its database (the embedded deployment), and so
    /// may remember each user's groups and the cursors instead of querying them every time.
    pub fn sole_writer(database: SqlDatabase) -> Self {
        SqlStore {
            remembered: Some(Remembered::default()),
            ..SqlStore::new(database)
        }
    }

    /// The remembered friendships, if this store remembers them (it is its database's only
    /// writer, or follows the database's announcements).
    fn friendships(&self) -> Option<&FriendshipCache> {
        self.remembered
            .as_ref()
            .map(|remembered| &remembered.friendships)
            .or(self
                .notified_friendships
                .as_ref()
                .map(|notified| &*notified.cache))
    }

    /// Forgets a remembered friendship; called before a change and again once it is
    /// committed, so no answer read while it was under way is remembered.
    fn friendship_changed(&self, a: i64, b: i64) {
        if let Some(cache) = self.friendships() {
            cache.forget(a, b);
        }
    }

    /// Forgets a user's remembered groups after a change to them.
    fn membership_changed(&self, user: i64) {
        if let Some(remembered) = &self.remembered {
            remembered.membership.forget(user);
        }
    }
}

/// A statement to execute.
fn statement<'q>(sql: &SqlStr) -> Query<'q, Any, AnyArguments> {
    sqlx::query(sql.clone())
}

/// A statement whose rows become `Row`.
fn rows<'q, Row>(sql: &SqlStr) -> QueryAs<'q, Any, Row, AnyArguments>
where
    Row: for<'row> FromRow<'row, sqlx::any::AnyRow>,
{
    sqlx::query_as(sql.clone())
}

type UserRow = (i64, String, String, Option<String>, i64);
type GroupRow = (i64, String, i64, Option<String>, i64, i64);
/// A `messages` row, in [`message_columns`] order.
pub(crate) type MessageRow = (
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
);

fn user_from(row: UserRow) -> User {
    let (id, username, nickname, avatar, created_at) = row;
    User {
        id,
        username,
        nickname,
        avatar,
        created_at,
    }
}

fn group_from(row: GroupRow) -> Group {
    let (id, name, owner, avatar, created_at, private) = row;
    Group {
        id,
        name,
        owner,
        avatar,
        created_at,
        private: private != 0,
    }
}

/// The message a `messages` row holds.
pub(crate) fn message_from(row: MessageRow) -> Message {
    let (
        object,
        seq,
        id,
        sender,
        peer,
        kind,
        body,
        ts,
        cid,
        target_kind,
        target_id,
        ref_id,
        ref_sender,
        ref_snippet,
        edited_at,
    ) = row;
    Message {
        id: id as u64,
        object,
        seq: seq as u64,
        sender,
        peer,
        kind,
        body,
        ts,
        cid,
        target_kind,
        target_id,
        ref_id: ref_id as u64,
        ref_sender,
        ref_snippet,
        edited_at,
        // The store keeps no trace, nor who wanted no echo: a stored message is read long
        // after its trace ended and its sender's connection closed.
        ..Message::default()
    }
}

/// Maps a unique-key violation to `Conflict`, everything else to `Database`.
fn conflict_or(error: sqlx::Error, what: &str) -> InfraError {
    match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => {
            InfraError::Conflict(what.to_string())
        }
        _ => InfraError::Database(error),
    }
}

/// A name as search compares it.
fn folded(name: &str) -> String {
    name.to_lowercase()
}

/// The half-open range of folded keys that start with `prefix`: every such key is at least
/// the prefix and below the prefix followed by the greatest character.
fn prefix_range(prefix: &str) -> (String, String) {
    let low = folded(prefix);
    let mut high = low.clone();
    high.push(char::MAX);
    (low, high)
}
