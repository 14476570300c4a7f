//! Friend requests and friendships (each stored both ways round) in SQL: the statements and the
//! `FriendStore` implementation.

use super::*;

/// The friends statements, in the store's dialect.
#[derive(Debug)]
pub(super) struct FriendStatements {
    are_friends: SqlStr,
    add_friend_request: SqlStr,
    friend_requests: SqlStr,
    delete_friend_request: SqlStr,
    add_friendship: SqlStr,
    delete_friendship: SqlStr,
    friends: SqlStr,
    block: SqlStr,
    unblock: SqlStr,
    has_blocked: SqlStr,
    blocked_users: SqlStr,
}

impl FriendStatements {
    pub(super) fn new(dialect: Dialect) -> Self {
        let sql = |text: &str| dialect_sql(dialect, text);
        FriendStatements {
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
            add_friendship: sql(&dialect.insert_unless_present(
                "INTO friendships (user_id, friend_id, created_at) VALUES (?, ?, ?)",
                "user_id, friend_id",
            )),
            friends: sql(
                "SELECT u.id, u.username, u.nickname, u.avatar, u.created_at, f.created_at \
             FROM friendships f JOIN users u ON u.id = f.friend_id \
             WHERE f.user_id = ? ORDER BY f.created_at, u.id",
            ),
            block: sql(&dialect.insert_unless_present(
                "INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)",
                "user_id, blocked_id",
            )),
            unblock: sql("DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?"),
            has_blocked: sql("SELECT COUNT(*) FROM blocks WHERE user_id = ? AND blocked_id = ?"),
            blocked_users: sql(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE id IN (SELECT blocked_id FROM blocks WHERE user_id = ?) \
                 ORDER BY id"
            )),
        }
    }
}

impl SqlStore {
    /// Announces, when the transaction commits, that the friendship of `a` and `b` changed:
    /// on PostgreSQL every store following the announcements forgets the pair.
    async fn announce_friendship_change(
        &self,
        transaction: &mut sqlx::Transaction<'_, Any>,
        a: i64,
        b: i64,
    ) -> InfraResult<()> {
        if self.database.dialect == Dialect::Postgres {
            sqlx::query(AssertSqlSafe(
                super::super::friendship_notices::announcement(a, b),
            ))
            .persistent(false)
            .execute(&mut **transaction)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl FriendStore for SqlStore {
    async fn add_friend_request(&self, request: &FriendRequest) -> InfraResult<()> {
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        let (already,): (i64,) = rows(&self.statements.friends.are_friends)
            .bind(request.from)
            .bind(request.to)
            .fetch_one(&mut *transaction)
            .await?;
        if already > 0 {
            return Err(InfraError::Conflict("already friends".into()));
        }
        statement(&self.statements.friends.add_friend_request)
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
        let found: Vec<(i64, i64, String, i64)> = rows(&self.statements.friends.friend_requests)
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
        let removed = statement(&self.statements.friends.delete_friend_request)
            .bind(from)
            .bind(to)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(InfraError::NotFound("friend request".into()));
        }
        // A crossing request the other way is answered by this acceptance too.
        statement(&self.statements.friends.delete_friend_request)
            .bind(to)
            .bind(from)
            .execute(&mut *transaction)
            .await?;
        for (user, friend) in [(from, to), (to, from)] {
            statement(&self.statements.friends.add_friendship)
                .bind(user)
                .bind(friend)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        self.announce_friendship_change(&mut transaction, from, to)
            .await?;
        transaction.commit().await?;
        self.friendship_changed(from, to);
        Ok(())
    }

    async fn remove_friend_request(&self, from: i64, to: i64) -> InfraResult<bool> {
        let removed = statement(&self.statements.friends.delete_friend_request)
            .bind(from)
            .bind(to)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(removed > 0)
    }

    async fn friends(&self, user: i64) -> InfraResult<Vec<Friend>> {
        let cache = self.friendships();
        let generation = cache.map(|cache| cache.generation());
        let found: Vec<(i64, String, String, Option<String>, i64, i64)> =
            rows(&self.statements.friends.friends)
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
        let (count,): (i64,) = rows(&self.statements.friends.are_friends)
            .bind(a)
            .bind(b)
            .fetch_one(&self.database.pool)
            .await?;
        if let (Some(cache), Some(generation)) = (cache, generation) {
            cache.remember(a, b, count > 0, generation);
        }
        Ok(count > 0)
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
            removed += statement(&self.statements.friends.delete_friendship)
                .bind(user)
                .bind(friend)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
        }
        self.announce_friendship_change(&mut transaction, a, b)
            .await?;
        transaction.commit().await?;
        self.friendship_changed(a, b);
        Ok(removed > 0)
    }

    async fn block_user(&self, user: i64, blocked: i64, now: i64) -> InfraResult<bool> {
        if self.has_blocked(user, blocked).await? {
            return Ok(false);
        }
        statement(&self.statements.friends.block)
            .bind(user)
            .bind(blocked)
            .bind(now)
            .execute(&self.database.pool)
            .await?;
        Ok(true)
    }

    async fn unblock_user(&self, user: i64, blocked: i64) -> InfraResult<bool> {
        let removed = statement(&self.statements.friends.unblock)
            .bind(user)
            .bind(blocked)
            .execute(&self.database.pool)
            .await?;
        Ok(removed.rows_affected() > 0)
    }

    async fn has_blocked(&self, user: i64, other: i64) -> InfraResult<bool> {
        let (count,): (i64,) = rows(&self.statements.friends.has_blocked)
            .bind(user)
            .bind(other)
            .fetch_one(&self.database.pool)
            .await?;
        Ok(count > 0)
    }

    async fn blocked_users(&self, user: i64) -> InfraResult<Vec<User>> {
        let found: Vec<UserRow> = rows(&self.statements.friends.blocked_users)
            .bind(user)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(user_from).collect())
    }
}
