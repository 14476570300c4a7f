//! Users, their credentials and refresh tokens, and their profiles in SQL: the statements and the
//! `UserStore` implementation.

use super::*;

/// The users statements, in the store's dialect.
#[derive(Debug)]
pub(super) struct UserStatements {
    create_user: SqlStr,
    user: SqlStr,
    credentials: SqlStr,
    put_refresh_token: SqlStr,
    find_refresh_token: SqlStr,
    delete_refresh_token: SqlStr,
    set_nickname: SqlStr,
    search_users: SqlStr,
    set_avatar: SqlStr,
}

impl UserStatements {
    pub(super) fn new(dialect: Dialect) -> Self {
        let sql = |text: &str| dialect_sql(dialect, text);
        UserStatements {
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
            set_nickname: sql("UPDATE users SET nickname = ?, nickname_key = ? WHERE id = ?"),
            search_users: sql(SEARCH_USERS_SQL),
            set_avatar: sql("UPDATE users SET avatar = ? WHERE id = ?"),
        }
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, user: &User, password_hash: &str) -> InfraResult<()> {
        statement(&self.statements.users.create_user)
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
        let row: Option<UserRow> = rows(&self.statements.users.user)
            .bind(id)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(user_from))
    }

    async fn credentials(&self, username: &str) -> InfraResult<Option<(User, String)>> {
        let row: Option<(i64, String, String, Option<String>, i64, String)> =
            rows(&self.statements.users.credentials)
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
        statement(&self.statements.users.put_refresh_token)
            .bind(hash)
            .bind(token.user_id)
            .bind(token.expires_at)
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "refresh token"))?;
        Ok(())
    }

    async fn take_refresh_token(&self, hash: &str) -> InfraResult<Option<RefreshToken>> {
        let row: Option<(i64, i64)> = rows(&self.statements.users.find_refresh_token)
            .bind(hash)
            .fetch_optional(&self.database.pool)
            .await?;
        let Some((user_id, expires_at)) = row else {
            return Ok(None);
        };
        // Whoever deletes the row owns the token: of two racing refreshes, one gets nothing.
        let deleted = statement(&self.statements.users.delete_refresh_token)
            .bind(hash)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok((deleted == 1).then_some(RefreshToken {
            user_id,
            expires_at,
        }))
    }

    async fn set_nickname(&self, user: i64, nickname: &str) -> InfraResult<bool> {
        let changed = statement(&self.statements.users.set_nickname)
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

    async fn set_avatar(&self, user: i64, avatar: Option<&str>) -> InfraResult<bool> {
        let changed = statement(&self.statements.users.set_avatar)
            .bind(avatar)
            .bind(user)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn search_users(&self, prefix: &str, after: i64, limit: u32) -> InfraResult<Vec<User>> {
        let (low, high) = prefix_range(prefix);
        let found: Vec<UserRow> = rows(&self.statements.users.search_users)
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
}
