//! `Store` on SQLite, PostgreSQL or MySQL: one implementation, each statement built once per
//! dialect when the store is made.

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
    Conversation, Friend, FriendRequest, Group, RECALL_KIND, RECALLED_KIND, RefreshToken, Store,
    UNREAD_COUNT_CAP, Upload, User,
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
        "id, name, owner, avatar, created_at"
    };
}

/// The message columns in `MessageRow` order.
macro_rules! message_columns {
    () => {
        "object, seq, id, sender, peer, kind, body, ts, cid, target_kind, target_id"
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
    " FROM chat_groups WHERE name_key >= ? AND name_key < ? AND id > ? ORDER BY id LIMIT ?"
);

/// Every statement the store runs, in its database's dialect.
#[derive(Debug)]
struct Statements {
    create_group: SqlStr,
    group: SqlStr,
    add_group_member: SqlStr,
    remove_group_member: SqlStr,
    is_group_member: SqlStr,
    user_groups: SqlStr,
    group_members: SqlStr,
    create_user: SqlStr,
    user: SqlStr,
    credentials: SqlStr,
    put_refresh_token: SqlStr,
    find_refresh_token: SqlStr,
    delete_refresh_token: SqlStr,
    are_friends: SqlStr,
    add_friend_request: SqlStr,
    friend_requests: SqlStr,
    delete_friend_request: SqlStr,
    add_friendship: SqlStr,
    delete_friendship: SqlStr,
    set_nickname: SqlStr,
    friends: SqlStr,
    messages_before: SqlStr,
    conversation_before: SqlStr,
    search_users: SqlStr,
    search_groups: SqlStr,
    set_avatar: SqlStr,
    update_group: SqlStr,
    group_member_ids: SqlStr,
    delete_group: SqlStr,
    delete_group_members: SqlStr,
    put_upload: SqlStr,
    upload: SqlStr,
    share_upload: SqlStr,
    upload_audiences: SqlStr,
    read_cursor: SqlStr,
    read_cursors: SqlStr,
    inbox_peers: SqlStr,
    latest_with_peer: SqlStr,
    unread: SqlStr,
    message_copies: SqlStr,
    mark_recalled: SqlStr,
    ack_cursor: SqlStr,
    delivered_cursor: SqlStr,
}

impl Statements {
    fn new(dialect: Dialect) -> Statements {
        let sql =
            |text: &str| AssertSqlSafe(Arc::<str>::from(dialect.placeholders(text))).into_sql_str();
        Statements {
            create_group: sql(concat!(
                "INSERT INTO chat_groups (",
                group_columns!(),
                ", name_key) VALUES (?, ?, ?, ?, ?, ?)"
            )),
            group: sql(concat!(
                "SELECT ",
                group_columns!(),
                " FROM chat_groups WHERE id = ?"
            )),
            // A plain insert, not `insert_unless_present`: MySQL reports a row found by
            // ON DUPLICATE KEY as affected (sqlx connects with CLIENT_FOUND_ROWS), so only the
            // unique violation tells a new member from an existing one on every dialect. The
            // row comes from the group's own row, so a missing group inserts nothing.
            add_group_member: sql("INSERT INTO group_members (group_id, user_id, joined_at) \
                 SELECT id, ?, ? FROM chat_groups WHERE id = ?"),
            remove_group_member: sql(
                "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
            ),
            is_group_member: sql(
                "SELECT COUNT(*) FROM group_members WHERE group_id = ? AND user_id = ?",
            ),
            user_groups: sql(
                "SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id",
            ),
            // The primary key (group_id, user_id) gives this page in order.
            group_members: sql(
                "SELECT users.id, users.username, users.nickname, users.avatar, \
                 users.created_at FROM group_members JOIN users ON users.id = \
                 group_members.user_id WHERE group_members.group_id = ? AND \
                 group_members.user_id > ? ORDER BY group_members.user_id LIMIT ?",
            ),
            create_user: sql(
                "INSERT INTO users (id, username, nickname, avatar, password_hash, created_at, \
                 nickname_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ),
            user: sql(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE id = ?"
            )),
            credentials: sql(concat!(
                "SELECT ",
                user_columns!(),
                ", password_hash FROM users WHERE username = ?"
            )),
            put_refresh_token: sql(
                "INSERT INTO refresh_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
            ),
            find_refresh_token: sql(
                "SELECT user_id, expires_at FROM refresh_tokens WHERE token_hash = ?",
            ),
            delete_refresh_token: sql("DELETE FROM refresh_tokens WHERE token_hash = ?"),
            are_friends: sql(
                "SELECT COUNT(*) FROM friendships WHERE user_id = ? AND friend_id = ?",
            ),
            add_friend_request: sql(
                "INSERT INTO friend_requests (from_id, to_id, note, created_at) VALUES (?, ?, ?, ?)",
            ),
            friend_requests: sql(
                "SELECT from_id, to_id, note, created_at FROM friend_requests \
                 WHERE to_id = ? OR from_id = ? ORDER BY created_at, from_id",
            ),
            delete_friend_request: sql(
                "DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?",
            ),
            delete_friendship: sql("DELETE FROM friendships WHERE user_id = ? AND friend_id = ?"),
            set_nickname: sql("UPDATE users SET nickname = ?, nickname_key = ? WHERE id = ?"),
            add_friendship: sql(&dialect.insert_unless_present(
                "INTO friendships (user_id, friend_id, created_at) VALUES (?, ?, ?)",
                "user_id, friend_id",
            )),
            friends: sql(
                "SELECT u.id, u.username, u.nickname, u.avatar, u.created_at, f.created_at \
                 FROM friendships f JOIN users u ON u.id = f.friend_id \
                 WHERE f.user_id = ? ORDER BY f.created_at, u.id",
            ),
            messages_before: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE object = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
            )),
            conversation_before: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE object = ? AND peer = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
            )),
            search_users: sql(SEARCH_USERS_SQL),
            search_groups: sql(SEARCH_GROUPS_SQL),
            set_avatar: sql("UPDATE users SET avatar = ? WHERE id = ?"),
            update_group: sql(
                "UPDATE chat_groups SET name = ?, name_key = ?, avatar = ? WHERE id = ?",
            ),
            group_member_ids: sql("SELECT user_id FROM group_members WHERE group_id = ?"),
            delete_group: sql("DELETE FROM chat_groups WHERE id = ?"),
            delete_group_members: sql("DELETE FROM group_members WHERE group_id = ?"),
            put_upload: sql(
                "INSERT INTO uploads (id, owner, content_type, width, height, size, thumbnail, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            upload: sql(
                "SELECT id, owner, content_type, width, height, size, thumbnail, created_at \
                 FROM uploads WHERE id = ?",
            ),
            share_upload: sql(&dialect.insert_unless_present(
                "INTO upload_audiences (upload_id, audience) VALUES (?, ?)",
                "upload_id, audience",
            )),
            upload_audiences: sql(
                "SELECT audience FROM upload_audiences WHERE upload_id = ? ORDER BY audience",
            ),
            read_cursor: sql("SELECT seq FROM read_cursors WHERE user_id = ? AND conversation = ?"),
            read_cursors: sql("SELECT conversation, seq FROM read_cursors WHERE user_id = ?"),
            inbox_peers: sql("SELECT DISTINCT peer FROM messages WHERE object = ? AND peer <> 0"),
            latest_with_peer: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE object = ? AND peer = ? ORDER BY seq DESC LIMIT 1"
            )),
            // The inner LIMIT bounds the count's cost however far behind the reader is.
            unread: sql(
                "SELECT COUNT(*) FROM (SELECT 1 AS one FROM messages WHERE object = ? \
                 AND peer = ? AND seq > ? AND sender <> ? AND kind NOT IN (?, ?) LIMIT ?) unread",
            ),
            message_copies: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE id = ? ORDER BY object"
            )),
            mark_recalled: sql("UPDATE messages SET kind = ?, body = '' WHERE id = ?"),
            ack_cursor: sql("SELECT seq FROM ack_cursors WHERE user_id = ? AND object = ?"),
            delivered_cursor: sql("SELECT seq FROM delivered_cursors WHERE object = ?"),
        }
    }
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
        }
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
    /// writer).
    fn friendships(&self) -> Option<&FriendshipCache> {
        self.remembered
            .as_ref()
            .map(|remembered| &remembered.friendships)
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

    async fn query_ack_cursor(&self, user: i64, object: &str) -> InfraResult<u64> {
        let row: Option<(i64,)> = rows(&self.statements.ack_cursor)
            .bind(user)
            .bind(object)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map_or(0, |(seq,)| seq as u64))
    }

    async fn query_delivered_cursor(&self, object: &str) -> InfraResult<u64> {
        let row: Option<(i64,)> = rows(&self.statements.delivered_cursor)
            .bind(object)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map_or(0, |(seq,)| seq as u64))
    }

    async fn query_user_groups(&self, user: i64) -> InfraResult<Vec<i64>> {
        let found: Vec<(i64,)> = rows(&self.statements.user_groups)
            .bind(user)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(|(group,)| group).collect())
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
type GroupRow = (i64, String, i64, Option<String>, i64);
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
    let (id, name, owner, avatar, created_at) = row;
    Group {
        id,
        name,
        owner,
        avatar,
        created_at,
    }
}

/// The message a `messages` row holds.
pub(crate) fn message_from(row: MessageRow) -> Message {
    let (object, seq, id, sender, peer, kind, body, ts, cid, target_kind, target_id) = row;
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

#[async_trait]
impl Store for SqlStore {
    async fn create_group(&self, group: &Group) -> InfraResult<()> {
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        statement(&self.statements.create_group)
            .bind(group.id)
            .bind(&group.name)
            .bind(group.owner)
            .bind(&group.avatar)
            .bind(group.created_at)
            .bind(folded(&group.name))
            .execute(&mut *transaction)
            .await
            .map_err(|error| conflict_or(error, "group id"))?;
        statement(&self.statements.add_group_member)
            .bind(group.owner)
            .bind(group.created_at)
            .bind(group.id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| conflict_or(error, "group member"))?;
        transaction.commit().await?;
        self.membership_changed(group.owner);
        Ok(())
    }

    async fn group(&self, id: i64) -> InfraResult<Option<Group>> {
        let row: Option<GroupRow> = rows(&self.statements.group)
            .bind(id)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(group_from))
    }

    async fn add_group_member(&self, group: i64, user: i64, now: i64) -> InfraResult<bool> {
        let inserted = statement(&self.statements.add_group_member)
            .bind(user)
            .bind(now)
            .bind(group)
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "group member"));
        match inserted {
            Ok(done) if done.rows_affected() == 0 => Err(InfraError::NotFound("group".into())),
            Ok(_) => {
                self.membership_changed(user);
                Ok(true)
            }
            // Of two racing adds the second meets the first's row: already a member.
            Err(InfraError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn remove_group_member(&self, group: i64, user: i64) -> InfraResult<bool> {
        let removed = statement(&self.statements.remove_group_member)
            .bind(group)
            .bind(user)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        self.membership_changed(user);
        Ok(removed > 0)
    }

    async fn is_group_member(&self, group: i64, user: i64) -> InfraResult<bool> {
        if self.remembered.is_some() {
            return Ok(self.user_groups(user).await?.binary_search(&group).is_ok());
        }
        let (count,): (i64,) = rows(&self.statements.is_group_member)
            .bind(group)
            .bind(user)
            .fetch_one(&self.database.pool)
            .await?;
        Ok(count > 0)
    }

    async fn user_groups(&self, user: i64) -> InfraResult<Vec<i64>> {
        let Some(cache) = self
            .remembered
            .as_ref()
            .map(|remembered| &remembered.membership)
        else {
            return self.query_user_groups(user).await;
        };
        match cache.get(user) {
            Ok(groups) => Ok(groups.to_vec()),
            Err(generation) => {
                let groups = self.query_user_groups(user).await?;
                cache.remember(user, &groups, generation);
                Ok(groups)
            }
        }
    }

    async fn group_members(&self, group: i64, after: i64, limit: u32) -> InfraResult<Vec<User>> {
        let found: Vec<UserRow> = rows(&self.statements.group_members)
            .bind(group)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(user_from).collect())
    }

    async fn create_user(&self, user: &User, password_hash: &str) -> InfraResult<()> {
        statement(&self.statements.create_user)
            .bind(user.id)
            .bind(&user.username)
            .bind(&user.nickname)
            .bind(&user.avatar)
            .bind(password_hash)
            .bind(user.created_at)
            .bind(folded(&user.nickname))
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "username"))?;
        Ok(())
    }

    async fn user(&self, id: i64) -> InfraResult<Option<User>> {
        let row: Option<UserRow> = rows(&self.statements.user)
            .bind(id)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(user_from))
    }

    async fn credentials(&self, username: &str) -> InfraResult<Option<(User, String)>> {
        let row: Option<(i64, String, String, Option<String>, i64, String)> =
            rows(&self.statements.credentials)
                .bind(username)
                .fetch_optional(&self.database.pool)
                .await?;
        Ok(
            row.map(|(id, username, nickname, avatar, created_at, hash)| {
                (
                    user_from((id, username, nickname, avatar, created_at)),
                    hash,
                )
            }),
        )
    }

    async fn put_refresh_token(&self, hash: &str, token: &RefreshToken) -> InfraResult<()> {
        statement(&self.statements.put_refresh_token)
            .bind(hash)
            .bind(token.user_id)
            .bind(token.expires_at)
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "refresh token"))?;
        Ok(())
    }

    async fn take_refresh_token(&self, hash: &str) -> InfraResult<Option<RefreshToken>> {
        let row: Option<(i64, i64)> = rows(&self.statements.find_refresh_token)
            .bind(hash)
            .fetch_optional(&self.database.pool)
            .await?;
        let Some((user_id, expires_at)) = row else {
            return Ok(None);
        };
        // Whoever deletes the row owns the token: of two racing refreshes, one gets nothing.
        let deleted = statement(&self.statements.delete_refresh_token)
            .bind(hash)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok((deleted == 1).then_some(RefreshToken {
            user_id,
            expires_at,
        }))
    }

    async fn add_friend_request(&self, request: &FriendRequest) -> InfraResult<()> {
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        let (already,): (i64,) = rows(&self.statements.are_friends)
            .bind(request.from)
            .bind(request.to)
            .fetch_one(&mut *transaction)
            .await?;
        if already > 0 {
            return Err(InfraError::Conflict("already friends".into()));
        }
        statement(&self.statements.add_friend_request)
            .bind(request.from)
            .bind(request.to)
            .bind(&request.note)
            .bind(request.created_at)
            .execute(&mut *transaction)
            .await
            .map_err(|error| conflict_or(error, "friend request"))?;
        transaction.commit().await?;
        Ok(())
    }

    async fn friend_requests(
        &self,
        user: i64,
    ) -> InfraResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let found: Vec<(i64, i64, String, i64)> = rows(&self.statements.friend_requests)
            .bind(user)
            .bind(user)
            .fetch_all(&self.database.pool)
            .await?;
        let (incoming, outgoing) = found
            .into_iter()
            .map(|(from, to, note, created_at)| FriendRequest {
                from,
                to,
                note,
                created_at,
            })
            .partition(|request| request.to == user);
        Ok((incoming, outgoing))
    }

    async fn accept_friend_request(&self, from: i64, to: i64, now: i64) -> InfraResult<()> {
        self.friendship_changed(from, to);
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        let removed = statement(&self.statements.delete_friend_request)
            .bind(from)
            .bind(to)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(InfraError::NotFound("friend request".into()));
        }
        // A crossing request the other way is answered by this acceptance too.
        statement(&self.statements.delete_friend_request)
            .bind(to)
            .bind(from)
            .execute(&mut *transaction)
            .await?;
        for (user, friend) in [(from, to), (to, from)] {
            statement(&self.statements.add_friendship)
                .bind(user)
                .bind(friend)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        self.friendship_changed(from, to);
        Ok(())
    }

    async fn set_nickname(&self, user: i64, nickname: &str) -> InfraResult<bool> {
        let changed = statement(&self.statements.set_nickname)
            .bind(nickname)
            .bind(folded(nickname))
            .bind(user)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        // MySQL counts a row set to its own value as found (CLIENT_FOUND_ROWS), so this is
        // "the user exists" on every dialect.
        Ok(changed > 0)
    }

    async fn remove_friend_request(&self, from: i64, to: i64) -> InfraResult<bool> {
        let removed = statement(&self.statements.delete_friend_request)
            .bind(from)
            .bind(to)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(removed > 0)
    }

    async fn remove_friendship(&self, a: i64, b: i64) -> InfraResult<bool> {
        self.friendship_changed(a, b);
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        let mut removed = 0;
        for (user, friend) in [(a, b), (b, a)] {
            removed += statement(&self.statements.delete_friendship)
                .bind(user)
                .bind(friend)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
        }
        transaction.commit().await?;
        self.friendship_changed(a, b);
        Ok(removed > 0)
    }

    async fn friends(&self, user: i64) -> InfraResult<Vec<Friend>> {
        let cache = self.friendships();
        let generation = cache.map(|cache| cache.generation());
        let found: Vec<(i64, String, String, Option<String>, i64, i64)> =
            rows(&self.statements.friends)
                .bind(user)
                .fetch_all(&self.database.pool)
                .await?;
        // A user's friend list is read as they come online (to tell their friends): their
        // first sends then find each friendship remembered instead of querying it, which is
        // what made the first second after a restart slow.
        if let (Some(cache), Some(generation)) = (cache, generation) {
            for (friend, ..) in &found {
                cache.remember(user, *friend, true, generation);
            }
        }
        Ok(found
            .into_iter()
            .map(
                |(id, username, nickname, avatar, created_at, since)| Friend {
                    user: user_from((id, username, nickname, avatar, created_at)),
                    since,
                },
            )
            .collect())
    }

    async fn are_friends(&self, a: i64, b: i64) -> InfraResult<bool> {
        let cache = self.friendships();
        let generation = match cache.map(|cache| cache.get(a, b)) {
            Some(Ok(friends)) => return Ok(friends),
            Some(Err(generation)) => Some(generation),
            None => None,
        };
        let (count,): (i64,) = rows(&self.statements.are_friends)
            .bind(a)
            .bind(b)
            .fetch_one(&self.database.pool)
            .await?;
        if let (Some(cache), Some(generation)) = (cache, generation) {
            cache.remember(a, b, count > 0, generation);
        }
        Ok(count > 0)
    }

    async fn put_messages(&self, messages: &[Message]) -> InfraResult<()> {
        // Committed with whatever else is being written: concurrent sends share a transaction.
        self.database.writer.put_messages(messages.to_vec()).await
    }

    async fn messages_before(
        &self,
        object: &ObjectId,
        before: u64,
        limit: u32,
    ) -> InfraResult<Vec<Message>> {
        let found: Vec<MessageRow> = rows(&self.statements.messages_before)
            .bind(object.to_string())
            .bind(stored_seq(before))
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(message_from).collect())
    }

    async fn conversation_before(
        &self,
        user: i64,
        peer: i64,
        before: u64,
        limit: u32,
    ) -> InfraResult<Vec<Message>> {
        let found: Vec<MessageRow> = rows(&self.statements.conversation_before)
            .bind(ObjectId::User(user).to_string())
            .bind(peer)
            .bind(stored_seq(before))
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(message_from).collect())
    }

    async fn ack_cursor(&self, user: i64, object: &ObjectId) -> InfraResult<u64> {
        let object = object.to_string();
        let writer = &self.database.writer;
        let pending = writer
            .pending_cursor(CursorKind::Acknowledged, user, &object)
            .unwrap_or(0);
        let Some(remembered) = &self.remembered else {
            return Ok(self.query_ack_cursor(user, &object).await?.max(pending));
        };
        let key = (user, object);
        if let Some(seq) = remembered.ack_cursors.get(&key) {
            return Ok(seq.max(pending));
        }
        let stored = self.query_ack_cursor(user, &key.1).await?;
        Ok(remembered.ack_cursors.raise(key, stored.max(pending)))
    }

    async fn advance_ack_cursor(&self, user: i64, object: &ObjectId, seq: u64) -> InfraResult<u64> {
        // Written with the next flush, the newest per (user, object); a raise lost to a crash
        // only makes the client receive those messages again.
        let name = object.to_string();
        self.database
            .writer
            .raise_cursor(CursorKind::Acknowledged, user, &name, seq);
        let Some(remembered) = &self.remembered else {
            // Other processes write too: answer with what this one has seen (at least `seq`)
            // rather than read the row back on every acknowledgement.
            let pending = self
                .database
                .writer
                .pending_cursor(CursorKind::Acknowledged, user, &name)
                .unwrap_or(0);
            return Ok(self
                .acknowledged_floors
                .raise((user, name), seq.max(pending)));
        };
        let key = (user, name);
        if remembered.ack_cursors.get(&key).is_some() {
            return Ok(remembered.ack_cursors.raise(key, seq));
        }
        self.ack_cursor(user, object).await
    }

    async fn delivered_cursor(&self, object: &ObjectId) -> InfraResult<u64> {
        let name = object.to_string();
        let pending = self.database.writer.pending_delivered(&name).unwrap_or(0);
        let remembered = match &self.remembered {
            Some(remembered) => &remembered.delivered,
            None => &*self.delivered_floors,
        };
        if let Some(seq) = remembered.get(&name) {
            return Ok(seq.max(pending));
        }
        let stored = self.query_delivered_cursor(&name).await?;
        Ok(remembered.raise(name, stored.max(pending)))
    }

    async fn set_delivered_cursor(&self, object: &ObjectId, seq: u64) -> InfraResult<()> {
        // Written with the next flush; one lost to a crash means a redelivery, which clients
        // drop by (object, seq).
        let name = object.to_string();
        self.database.writer.raise_delivered(&name, seq);
        // Only a remembered cursor is raised: one not remembered is read when first asked.
        let remembered = match &self.remembered {
            Some(remembered) => &remembered.delivered,
            None => &*self.delivered_floors,
        };
        if remembered.get(&name).is_some() {
            remembered.raise(name, seq);
        }
        Ok(())
    }

    async fn search_users(&self, prefix: &str, after: i64, limit: u32) -> InfraResult<Vec<User>> {
        let (low, high) = prefix_range(prefix);
        let found: Vec<UserRow> = rows(&self.statements.search_users)
            .bind(&low)
            .bind(&high)
            .bind(after)
            .bind(&low)
            .bind(&high)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(user_from).collect())
    }

    async fn search_groups(&self, prefix: &str, after: i64, limit: u32) -> InfraResult<Vec<Group>> {
        let (low, high) = prefix_range(prefix);
        let found: Vec<GroupRow> = rows(&self.statements.search_groups)
            .bind(&low)
            .bind(&high)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(group_from).collect())
    }

    async fn set_avatar(&self, user: i64, avatar: Option<&str>) -> InfraResult<bool> {
        let changed = statement(&self.statements.set_avatar)
            .bind(avatar)
            .bind(user)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn update_group(
        &self,
        group: i64,
        name: &str,
        avatar: Option<&str>,
    ) -> InfraResult<bool> {
        let changed = statement(&self.statements.update_group)
            .bind(name)
            .bind(folded(name))
            .bind(avatar)
            .bind(group)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn disband_group(&self, group: i64) -> InfraResult<Vec<i64>> {
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        // The group row goes first: from then on no member can be added (an add copies the
        // group's row), so the members read next are all there are.
        statement(&self.statements.delete_group)
            .bind(group)
            .execute(&mut *transaction)
            .await?;
        let members: Vec<(i64,)> = rows(&self.statements.group_member_ids)
            .bind(group)
            .fetch_all(&mut *transaction)
            .await?;
        statement(&self.statements.delete_group_members)
            .bind(group)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        let members: Vec<i64> = members.into_iter().map(|(user,)| user).collect();
        for member in &members {
            self.membership_changed(*member);
        }
        Ok(members)
    }

    async fn put_upload(&self, upload: &Upload) -> InfraResult<()> {
        statement(&self.statements.put_upload)
            .bind(upload.id)
            .bind(upload.owner)
            .bind(&upload.content_type)
            .bind(i64::from(upload.width))
            .bind(i64::from(upload.height))
            .bind(stored_seq(upload.size))
            .bind(i64::from(upload.thumbnail))
            .bind(upload.created_at)
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "upload id"))?;
        Ok(())
    }

    async fn upload(&self, id: i64) -> InfraResult<Option<Upload>> {
        let row: Option<(i64, i64, String, i64, i64, i64, i64, i64)> =
            rows(&self.statements.upload)
                .bind(id)
                .fetch_optional(&self.database.pool)
                .await?;
        Ok(row.map(
            |(id, owner, content_type, width, height, size, thumbnail, created_at)| Upload {
                id,
                owner,
                content_type,
                width: u32::try_from(width).unwrap_or(0),
                height: u32::try_from(height).unwrap_or(0),
                size: u64::try_from(size).unwrap_or(0),
                thumbnail: thumbnail != 0,
                created_at,
            },
        ))
    }

    async fn share_upload(&self, id: i64, audience: &str) -> InfraResult<()> {
        statement(&self.statements.share_upload)
            .bind(id)
            .bind(audience)
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }

    async fn upload_audiences(&self, id: i64) -> InfraResult<Vec<String>> {
        let found: Vec<(String,)> = rows(&self.statements.upload_audiences)
            .bind(id)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(|(audience,)| audience).collect())
    }

    async fn read_cursor(&self, user: i64, conversation: &str) -> InfraResult<u64> {
        // The pending raise first: a flush forgets it only once it is committed, so read in
        // this order one of the two always holds it (the other order can miss both).
        let pending = self
            .database
            .writer
            .pending_cursor(CursorKind::Read, user, conversation)
            .unwrap_or(0);
        let row: Option<(i64,)> = rows(&self.statements.read_cursor)
            .bind(user)
            .bind(conversation)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map_or(0, |(seq,)| seq.max(0) as u64).max(pending))
    }

    async fn advance_read_cursor(
        &self,
        user: i64,
        conversation: &str,
        seq: u64,
    ) -> InfraResult<u64> {
        // Written with the next flush, like acknowledgements.
        self.database
            .writer
            .raise_cursor(CursorKind::Read, user, conversation, seq);
        self.read_cursor(user, conversation).await
    }

    async fn conversations(&self, user: i64, limit: u32) -> InfraResult<Vec<Conversation>> {
        let inbox = ObjectId::User(user).to_string();
        let peers: Vec<(i64,)> = rows(&self.statements.inbox_peers)
            .bind(&inbox)
            .fetch_all(&self.database.pool)
            .await?;
        // Each conversation is one (object, peer) range of the messages_by_peer index: a
        // group's copies carry the group as their peer.
        let mut places: Vec<(String, String, i64)> = peers
            .into_iter()
            .map(|(peer,)| (format!("user:{peer}"), inbox.clone(), peer))
            .collect();
        for group in self.user_groups(user).await? {
            let object = ObjectId::Group(group).to_string();
            places.push((object.clone(), object, group));
        }
        let mut found = Vec::with_capacity(places.len());
        for (key, object, peer) in places {
            let last: Option<MessageRow> = rows(&self.statements.latest_with_peer)
                .bind(&object)
                .bind(peer)
                .fetch_optional(&self.database.pool)
                .await?;
            found.push((key, object, peer, last.map(message_from)));
        }
        // Most recent first; groups with nothing said yet last, newest group first.
        found.sort_by_key(|(_, _, peer, last)| {
            std::cmp::Reverse((last.as_ref().map_or(0, |message| message.ts), *peer))
        });
        found.truncate(limit as usize);
        // Raised but not yet written cursors count too. They are taken before the table is
        // read: a flush forgets a raise only once it is committed, so one of the two holds it.
        let pending = self
            .database
            .writer
            .pending_cursors_of(CursorKind::Read, user);
        let mut read: std::collections::HashMap<String, i64> =
            rows::<(String, i64)>(&self.statements.read_cursors)
                .bind(user)
                .fetch_all(&self.database.pool)
                .await?
                .into_iter()
                .collect();
        for (conversation, seq) in pending {
            let entry = read.entry(conversation).or_insert(0);
            *entry = (*entry).max(stored_seq(seq));
        }
        let mut conversations = Vec::with_capacity(found.len());
        for (key, object, peer, last) in found {
            let read = read.get(&key).copied().unwrap_or(0);
            let unread = match &last {
                Some(message) if message.seq as i64 > read => {
                    let (count,): (i64,) = rows(&self.statements.unread)
                        .bind(&object)
                        .bind(peer)
                        .bind(read)
                        .bind(user)
                        .bind(RECALL_KIND)
                        .bind(RECALLED_KIND)
                        .bind(UNREAD_COUNT_CAP as i64)
                        .fetch_one(&self.database.pool)
                        .await?;
                    count as u64
                }
                _ => 0,
            };
            conversations.push(Conversation {
                key,
                last,
                read: read as u64,
                unread,
            });
        }
        Ok(conversations)
    }

    async fn message_copies(&self, id: u64) -> InfraResult<Vec<Message>> {
        let found: Vec<MessageRow> = rows(&self.statements.message_copies)
            .bind(id as i64)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(message_from).collect())
    }

    async fn mark_recalled(&self, id: u64) -> InfraResult<u64> {
        let changed = statement(&self.statements.mark_recalled)
            .bind(RECALLED_KIND)
            .bind(id as i64)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        if changed > 0 && self.database.dialect == Dialect::Sqlite {
            // The embedded log reads from this table; its remembered newest entries would
            // still hold the text, so the objects holding a copy are read afresh.
            for copy in self.message_copies(id).await? {
                if let Ok(object) = copy.object.parse() {
                    self.database.writer.tail().forget(&object);
                }
            }
        }
        Ok(changed)
    }
}
