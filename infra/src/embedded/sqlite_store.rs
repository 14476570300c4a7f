//! `Store` on SQLite.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;
use sqlx::SqlitePool;

use crate::error::{InfraError, InfraResult};
use crate::store::{Friend, FriendRequest, RefreshToken, Store, User};

/// The relational store in the embedded SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// A store on an opened pool (see [`super::open_sqlite`]).
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore { pool }
    }
}

type UserRow = (i64, String, String, Option<String>, i64);
type MessageRow = (
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

/// The user columns in `UserRow` order, as a literal so queries stay static strings.
macro_rules! user_columns {
    () => {
        "id, username, nickname, avatar, created_at"
    };
}

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

fn message_from(row: MessageRow) -> Message {
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

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, user: &User, password_hash: &str) -> InfraResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, nickname, avatar, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.nickname)
        .bind(&user.avatar)
        .bind(password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|error| conflict_or(error, "username"))?;
        Ok(())
    }

    async fn user(&self, id: i64) -> InfraResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(user_from))
    }

    async fn credentials(&self, username: &str) -> InfraResult<Option<(User, String)>> {
        let row: Option<(i64, String, String, Option<String>, i64, String)> =
            sqlx::query_as(concat!(
                "SELECT ",
                user_columns!(),
                ", password_hash FROM users WHERE username = ?"
            ))
            .bind(username)
            .fetch_optional(&self.pool)
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
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
        )
        .bind(hash)
        .bind(token.user_id)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|error| conflict_or(error, "refresh token"))?;
        Ok(())
    }

    async fn take_refresh_token(&self, hash: &str) -> InfraResult<Option<RefreshToken>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "DELETE FROM refresh_tokens WHERE token_hash = ? RETURNING user_id, expires_at",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(user_id, expires_at)| RefreshToken {
            user_id,
            expires_at,
        }))
    }

    async fn add_friend_request(&self, request: &FriendRequest) -> InfraResult<()> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let already: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?")
                .bind(request.from)
                .bind(request.to)
                .fetch_optional(&mut *transaction)
                .await?;
        if already.is_some() {
            return Err(InfraError::Conflict("already friends".into()));
        }
        sqlx::query(
            "INSERT INTO friend_requests (from_id, to_id, note, created_at) VALUES (?, ?, ?, ?)",
        )
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
        let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT from_id, to_id, note, created_at FROM friend_requests \
             WHERE to_id = ? OR from_id = ? ORDER BY created_at, from_id",
        )
        .bind(user)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let (incoming, outgoing) = rows
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
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let removed = sqlx::query("DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?")
            .bind(from)
            .bind(to)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(InfraError::NotFound("friend request".into()));
        }
        // A crossing request the other way is answered by this acceptance too.
        sqlx::query("DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?")
            .bind(to)
            .bind(from)
            .execute(&mut *transaction)
            .await?;
        for (user, friend) in [(from, to), (to, from)] {
            sqlx::query(
                "INSERT OR IGNORE INTO friendships (user_id, friend_id, created_at) VALUES (?, ?, ?)",
            )
            .bind(user)
            .bind(friend)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn friends(&self, user: i64) -> InfraResult<Vec<Friend>> {
        let rows: Vec<(i64, String, String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT u.id, u.username, u.nickname, u.avatar, u.created_at, f.created_at \
             FROM friendships f JOIN users u ON u.id = f.friend_id \
             WHERE f.user_id = ? ORDER BY f.created_at, u.id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
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
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?")
                .bind(a)
                .bind(b)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    async fn put_messages(&self, messages: &[Message]) -> InfraResult<()> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for message in messages {
            sqlx::query(
                "INSERT OR IGNORE INTO messages (object, seq, id, sender, peer, kind, body, ts, \
                 cid, target_kind, target_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&message.object)
            .bind(message.seq as i64)
            .bind(message.id as i64)
            .bind(message.sender)
            .bind(message.peer)
            .bind(&message.kind)
            .bind(&message.body)
            .bind(message.ts)
            .bind(&message.cid)
            .bind(&message.target_kind)
            .bind(message.target_id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn messages_before(
        &self,
        object: &ObjectId,
        before: u64,
        limit: u32,
    ) -> InfraResult<Vec<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT object, seq, id, sender, peer, kind, body, ts, cid, target_kind, target_id \
             FROM messages WHERE object = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(object.to_string())
        .bind(before.min(i64::MAX as u64) as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(message_from).collect())
    }

    async fn ack_cursor(&self, user: i64, object: &ObjectId) -> InfraResult<u64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM ack_cursors WHERE user_id = ? AND object = ?")
                .bind(user)
                .bind(object.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |(seq,)| seq as u64))
    }

    async fn advance_ack_cursor(&self, user: i64, object: &ObjectId, seq: u64) -> InfraResult<u64> {
        let (stored,): (i64,) = sqlx::query_as(
            "INSERT INTO ack_cursors (user_id, object, seq) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, object) DO UPDATE SET seq = MAX(seq, excluded.seq) \
             RETURNING seq",
        )
        .bind(user)
        .bind(object.to_string())
        .bind(seq as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok(stored as u64)
    }

    async fn delivered_cursor(&self, object: &ObjectId) -> InfraResult<u64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM delivered_cursors WHERE object = ?")
                .bind(object.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |(seq,)| seq as u64))
    }

    async fn set_delivered_cursor(&self, object: &ObjectId, seq: u64) -> InfraResult<()> {
        sqlx::query(
            "INSERT INTO delivered_cursors (object, seq) VALUES (?, ?) \
             ON CONFLICT (object) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        )
        .bind(object.to_string())
        .bind(seq as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
