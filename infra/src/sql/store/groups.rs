//! Groups and their members in SQL: the statements and the `GroupStore` implementation.

use super::*;

/// The groups statements, in the store's dialect.
#[derive(Debug)]
pub(super) struct GroupStatements {
    create_group: SqlStr,
    group: SqlStr,
    add_group_member: SqlStr,
    remove_group_member: SqlStr,
    is_group_member: SqlStr,
    user_groups: SqlStr,
    group_members: SqlStr,
    search_groups: SqlStr,
    update_group: SqlStr,
    group_member_ids: SqlStr,
    delete_group: SqlStr,
    delete_group_members: SqlStr,
    delete_group_invites: SqlStr,
    set_private: SqlStr,
    membership: SqlStr,
    set_role: SqlStr,
    set_muted: SqlStr,
    member_page: SqlStr,
    create_invite: SqlStr,
    invite: SqlStr,
    use_invite: SqlStr,
    group_invites: SqlStr,
    revoke_invite: SqlStr,
}

/// The invite columns in `InviteRow` order.
const INVITE_COLUMNS: &str = "code, group_id, created_by, created_at, expires_at, max_uses, uses";

type InviteRow = (String, i64, i64, i64, i64, i64, i64);

fn invite_from(row: InviteRow) -> Invite {
    let (code, group_id, created_by, created_at, expires_at, max_uses, uses) = row;
    Invite {
        code,
        group_id,
        created_by,
        created_at,
        expires_at,
        max_uses: max_uses.max(0) as u64,
        uses: uses.max(0) as u64,
    }
}

/// A role as stored, as one of the role constants (anything unknown is a plain member).
fn role_named(role: &str) -> &'static str {
    if role == ROLE_ADMIN {
        ROLE_ADMIN
    } else {
        ROLE_MEMBER
    }
}

impl GroupStatements {
    pub(super) fn new(dialect: Dialect) -> Self {
        let sql = |text: &str| dialect_sql(dialect, text);
        GroupStatements {
            create_group: sql(concat!(
                "INSERT INTO chat_groups (",
                group_columns!(),
                ", name_key) VALUES (?, ?, ?, ?, ?, ?, ?)"
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
            search_groups: sql(SEARCH_GROUPS_SQL),
            update_group: sql(
                "UPDATE chat_groups SET name = ?, name_key = ?, avatar = ? WHERE id = ?",
            ),
            group_member_ids: sql("SELECT user_id FROM group_members WHERE group_id = ?"),
            delete_group: sql("DELETE FROM chat_groups WHERE id = ?"),
            delete_group_members: sql("DELETE FROM group_members WHERE group_id = ?"),
            delete_group_invites: sql("DELETE FROM group_invites WHERE group_id = ?"),
            set_private: sql("UPDATE chat_groups SET is_private = ? WHERE id = ?"),
            membership: sql(
                "SELECT g.owner, m.role, m.muted_until FROM group_members m JOIN chat_groups g \
                 ON g.id = m.group_id WHERE m.group_id = ? AND m.user_id = ?",
            ),
            set_role: sql("UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?"),
            set_muted: sql(
                "UPDATE group_members SET muted_until = ? WHERE group_id = ? AND user_id = ?",
            ),
            member_page: sql(
                "SELECT users.id, users.username, users.nickname, users.avatar, \
                 users.created_at, chat_groups.owner, group_members.role, \
                 group_members.muted_until FROM group_members \
                 JOIN users ON users.id = group_members.user_id \
                 JOIN chat_groups ON chat_groups.id = group_members.group_id \
                 WHERE group_members.group_id = ? AND group_members.user_id > ? \
                 ORDER BY group_members.user_id LIMIT ?",
            ),
            create_invite: sql(&format!(
                "INSERT INTO group_invites ({INVITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )),
            invite: sql(&format!(
                "SELECT {INVITE_COLUMNS} FROM group_invites WHERE code = ?"
            )),
            // One statement decides: two joins racing for the last use cannot both win.
            use_invite: sql(
                "UPDATE group_invites SET uses = uses + 1 WHERE code = ? AND uses < max_uses \
                 AND expires_at > ?",
            ),
            group_invites: sql(&format!(
                "SELECT {INVITE_COLUMNS} FROM group_invites WHERE group_id = ? \
                 ORDER BY created_at DESC, code"
            )),
            revoke_invite: sql("DELETE FROM group_invites WHERE group_id = ? AND code = ?"),
        }
    }
}

impl SqlStore {
    async fn query_user_groups(&self, user: i64) -> InfraResult<Vec<i64>> {
        let found: Vec<(i64,)> = rows(&self.statements.groups.user_groups)
            .bind(user)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(|(group,)| group).collect())
    }
}

#[async_trait]
impl GroupStore for SqlStore {
    async fn create_group(&self, group: &Group) -> InfraResult<()> {
        let mut transaction = self
            .database
            .pool
            .begin_with(self.database.dialect.begin_write())
            .await?;
        statement(&self.statements.groups.create_group)
            .bind(group.id)
            .bind(&group.name)
            .bind(group.owner)
            .bind(&group.avatar)
            .bind(group.created_at)
            .bind(i64::from(group.private))
            .bind(folded(&group.name))
            .execute(&mut *transaction)
            .await
            .map_err(|error| conflict_or(error, "group id"))?;
        statement(&self.statements.groups.add_group_member)
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
        let row: Option<GroupRow> = rows(&self.statements.groups.group)
            .bind(id)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(group_from))
    }

    async fn add_group_member(&self, group: i64, user: i64, now: i64) -> InfraResult<bool> {
        let inserted = statement(&self.statements.groups.add_group_member)
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
        let removed = statement(&self.statements.groups.remove_group_member)
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
        let (count,): (i64,) = rows(&self.statements.groups.is_group_member)
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
        let found: Vec<UserRow> = rows(&self.statements.groups.group_members)
            .bind(group)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(user_from).collect())
    }

    async fn search_groups(&self, prefix: &str, after: i64, limit: u32) -> InfraResult<Vec<Group>> {
        let (low, high) = prefix_range(prefix);
        let found: Vec<GroupRow> = rows(&self.statements.groups.search_groups)
            .bind(&low)
            .bind(&high)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(group_from).collect())
    }

    async fn update_group(
        &self,
        group: i64,
        name: &str,
        avatar: Option<&str>,
    ) -> InfraResult<bool> {
        let changed = statement(&self.statements.groups.update_group)
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
        statement(&self.statements.groups.delete_group)
            .bind(group)
            .execute(&mut *transaction)
            .await?;
        let members: Vec<(i64,)> = rows(&self.statements.groups.group_member_ids)
            .bind(group)
            .fetch_all(&mut *transaction)
            .await?;
        statement(&self.statements.groups.delete_group_members)
            .bind(group)
            .execute(&mut *transaction)
            .await?;
        statement(&self.statements.groups.delete_group_invites)
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

    async fn set_group_private(&self, group: i64, private: bool) -> InfraResult<bool> {
        let changed = statement(&self.statements.groups.set_private)
            .bind(i64::from(private))
            .bind(group)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn membership(&self, group: i64, user: i64) -> InfraResult<Option<Membership>> {
        let row: Option<(i64, String, i64)> = rows(&self.statements.groups.membership)
            .bind(group)
            .bind(user)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(|(owner, role, muted_until)| Membership {
            role: if owner == user {
                ROLE_OWNER
            } else {
                role_named(&role)
            },
            muted_until,
        }))
    }

    async fn set_member_role(&self, group: i64, user: i64, role: &str) -> InfraResult<bool> {
        let changed = statement(&self.statements.groups.set_role)
            .bind(role_named(role))
            .bind(group)
            .bind(user)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn set_member_muted(&self, group: i64, user: i64, until: i64) -> InfraResult<bool> {
        let changed = statement(&self.statements.groups.set_muted)
            .bind(until)
            .bind(group)
            .bind(user)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn group_member_page(
        &self,
        group: i64,
        after: i64,
        limit: u32,
    ) -> InfraResult<Vec<GroupMember>> {
        type Row = (i64, String, String, Option<String>, i64, i64, String, i64);
        let found: Vec<Row> = rows(&self.statements.groups.member_page)
            .bind(group)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found
            .into_iter()
            .map(
                |(id, username, nickname, avatar, created_at, owner, role, muted_until)| {
                    GroupMember {
                        membership: Membership {
                            role: if owner == id {
                                ROLE_OWNER
                            } else {
                                role_named(&role)
                            },
                            muted_until,
                        },
                        user: user_from((id, username, nickname, avatar, created_at)),
                    }
                },
            )
            .collect())
    }

    async fn create_invite(&self, invite: &Invite) -> InfraResult<()> {
        statement(&self.statements.groups.create_invite)
            .bind(&invite.code)
            .bind(invite.group_id)
            .bind(invite.created_by)
            .bind(invite.created_at)
            .bind(invite.expires_at)
            .bind(invite.max_uses as i64)
            .bind(invite.uses as i64)
            .execute(&self.database.pool)
            .await
            .map_err(|error| conflict_or(error, "invite code"))?;
        Ok(())
    }

    async fn invite(&self, code: &str) -> InfraResult<Option<Invite>> {
        let row: Option<InviteRow> = rows(&self.statements.groups.invite)
            .bind(code)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(invite_from))
    }

    async fn use_invite(&self, code: &str, now: i64) -> InfraResult<Option<Invite>> {
        let used = statement(&self.statements.groups.use_invite)
            .bind(code)
            .bind(now)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        if used == 0 {
            return Ok(None);
        }
        self.invite(code).await
    }

    async fn group_invites(&self, group: i64) -> InfraResult<Vec<Invite>> {
        let found: Vec<InviteRow> = rows(&self.statements.groups.group_invites)
            .bind(group)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(invite_from).collect())
    }

    async fn revoke_invite(&self, group: i64, code: &str) -> InfraResult<bool> {
        let removed = statement(&self.statements.groups.revoke_invite)
            .bind(group)
            .bind(code)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        Ok(removed > 0)
    }
}
