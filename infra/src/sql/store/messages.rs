//! Stored messages (history) and the cursors kept on them: acknowledged, read, delivered in SQL:
//! the statements and the `MessageStore` implementation.

use super::*;
use natter_proto::frame::{EDIT_KIND, REACTION_KIND, REACTION_REMOVED_KIND};

/// The messages statements, in the store's dialect.
#[derive(Debug)]
pub(super) struct MessageStatements {
    messages_before: SqlStr,
    conversation_before: SqlStr,
    read_cursor: SqlStr,
    read_cursors: SqlStr,
    inbox_peers: SqlStr,
    latest_with_peer: SqlStr,
    unread: SqlStr,
    message_copies: SqlStr,
    copies_by_cid: SqlStr,
    newest_message_before: SqlStr,
    history_epoch: SqlStr,
    name_history_epoch: SqlStr,
    mark_recalled: SqlStr,
    ack_cursor: SqlStr,
    delivered_cursor: SqlStr,
    newest_per_sender: SqlStr,
    newest_from: SqlStr,
    newest_own_copies: SqlStr,
    readers: SqlStr,
    mark_edited: SqlStr,
    add_reaction: SqlStr,
    remove_reaction: SqlStr,
    reactions_of: SqlStr,
    unmute: SqlStr,
    mute: SqlStr,
    mutes: SqlStr,
}

/// Messages whose reactions one statement reads (unused places are bound to 0, no message).
const REACTIONS_PER_QUERY: usize = 50;

impl MessageStatements {
    pub(super) fn new(dialect: Dialect) -> Self {
        let sql = |text: &str| dialect_sql(dialect, text);
        MessageStatements {
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
            read_cursor: sql("SELECT seq FROM read_cursors WHERE user_id = ? AND conversation = ?"),
            read_cursors: sql("SELECT conversation, seq FROM read_cursors WHERE user_id = ?"),
            inbox_peers: sql("SELECT DISTINCT peer FROM messages WHERE object = ? AND peer <> 0"),
            latest_with_peer: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE object = ? AND peer = ? AND kind NOT IN (?, ?, ?) \
                 ORDER BY seq DESC LIMIT 1"
            )),
            // The inner LIMIT bounds the count's cost however far behind the reader is.
            unread: sql(
                "SELECT COUNT(*) FROM (SELECT 1 AS one FROM messages WHERE object = ? \
             AND peer = ? AND seq > ? AND sender <> ? AND kind NOT IN (?, ?, ?, ?, ?) LIMIT ?) \
             unread",
            ),
            message_copies: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE id = ? ORDER BY object"
            )),
            copies_by_cid: sql(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE sender = ? AND cid = ? AND ts >= ? ORDER BY object"
            )),
            // Ids grow with time, so the index on them finds the newest at once.
            newest_message_before: sql(
                "SELECT ts FROM messages WHERE id < ? ORDER BY id DESC LIMIT 1",
            ),
            history_epoch: sql("SELECT epoch FROM history_epoch WHERE id = 1"),
            name_history_epoch: sql("INSERT INTO history_epoch (id, epoch) VALUES (1, ?)"),
            mark_recalled: sql("UPDATE messages SET kind = ?, body = '' WHERE id = ?"),
            ack_cursor: sql("SELECT seq FROM ack_cursors WHERE user_id = ? AND object = ?"),
            delivered_cursor: sql("SELECT seq FROM delivered_cursors WHERE object = ?"),
            // One range of the primary key, grouped; then each sender's top row by its key.
            newest_per_sender: sql(
                "SELECT m.sender, m.id, m.seq FROM messages m JOIN (SELECT sender, MAX(seq) AS top \
                 FROM messages WHERE object = ? AND seq > ? AND seq <= ? AND sender <> 0 \
                 AND kind IN (?, ?) GROUP BY sender) newest ON m.seq = newest.top \
                 WHERE m.object = ?",
            ),
            // The newest per sender as above, then the sender's own copy of it by id: a
            // one-to-one message has two copies, this inbox's and the sender's.
            newest_own_copies: sql(
                "SELECT m.sender, own.seq FROM messages m JOIN (SELECT sender, MAX(seq) AS top \
                 FROM messages WHERE object = ? AND seq > ? AND seq <= ? AND sender <> 0 \
                 AND sender <> ? AND kind IN (?, ?) GROUP BY sender) newest ON m.seq = newest.top \
                 JOIN messages own ON own.id = m.id AND own.object <> m.object \
                 WHERE m.object = ?",
            ),
            newest_from: sql(
                "SELECT id FROM messages WHERE object = ? AND peer = ? AND sender = ? \
                 AND seq <= ? AND kind IN (?, ?) ORDER BY seq DESC LIMIT 1",
            ),
            readers: sql(
                "SELECT user_id FROM read_cursors WHERE conversation = ? AND seq >= ? \
                 AND user_id <> ?",
            ),
            mark_edited: sql(
                "UPDATE messages SET body = ?, edited_at = ? WHERE id = ? AND kind = 'text'",
            ),
            // A plain insert: a reaction already there fails on the key, which is how "nothing
            // changed" is told apart in every dialect (MySQL counts a no-op upsert's row as
            // affected).
            add_reaction: sql(
                "INSERT INTO reactions (message_id, user_id, emoji, ts) VALUES (?, ?, ?, ?)",
            ),
            remove_reaction: sql(
                "DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?",
            ),
            unmute: sql("DELETE FROM mutes WHERE user_id = ? AND conversation = ?"),
            mute: sql(&dialect.insert_or_replace(
                "INTO mutes (user_id, conversation, until_ms) VALUES (?, ?, ?)",
                "user_id, conversation",
                "until_ms",
            )),
            mutes: sql("SELECT conversation, until_ms FROM mutes WHERE user_id = ?"),
            reactions_of: sql(&format!(
                "SELECT message_id, user_id, emoji, ts FROM reactions WHERE message_id IN ({}) \
                 ORDER BY message_id, emoji, user_id",
                vec!["?"; REACTIONS_PER_QUERY].join(", ")
            )),
        }
    }
}

impl SqlStore {
    /// After `changed` stored copies of message `id` were rewritten in place: the embedded log
    /// reads from this table, and its remembered newest entries would still hold the old
    /// text, so the objects holding a copy are read afresh.
    async fn forget_rewritten(&self, id: u64, changed: u64) -> InfraResult<()> {
        if changed > 0 && self.database.dialect == Dialect::Sqlite {
            for copy in self.message_copies(id).await? {
                if let Ok(object) = copy.object.parse() {
                    self.database.writer.tail().forget(&object);
                }
            }
        }
        Ok(())
    }

    async fn query_ack_cursor(&self, user: i64, object: &str) -> InfraResult<u64> {
        let row: Option<(i64,)> = rows(&self.statements.messages.ack_cursor)
            .bind(user)
            .bind(object)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map_or(0, |(seq,)| seq as u64))
    }

    async fn query_delivered_cursor(&self, object: &str) -> InfraResult<u64> {
        let row: Option<(i64,)> = rows(&self.statements.messages.delivered_cursor)
            .bind(object)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map_or(0, |(seq,)| seq as u64))
    }
}

#[async_trait]
impl MessageStore for SqlStore {
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
        if let Some(history) = &self.database.history {
            return history.before(*object, before, limit as usize);
        }
        let found: Vec<MessageRow> = rows(&self.statements.messages.messages_before)
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
        if let Some(history) = &self.database.history {
            return history.with_peer_before(ObjectId::User(user), peer, before, limit as usize);
        }
        let found: Vec<MessageRow> = rows(&self.statements.messages.conversation_before)
            .bind(ObjectId::User(user).to_string())
            .bind(peer)
            .bind(stored_seq(before))
            .bind(i64::from(limit))
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(message_from).collect())
    }

    async fn message_copies(&self, id: u64) -> InfraResult<Vec<Message>> {
        if let Some(history) = &self.database.history {
            return history.copies(id);
        }
        let found: Vec<MessageRow> = rows(&self.statements.messages.message_copies)
            .bind(id as i64)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(message_from).collect())
    }

    async fn copies_by_cid(&self, sender: i64, cid: &str, since: i64) -> InfraResult<Vec<Message>> {
        if let Some(history) = &self.database.history {
            return history.copies_by_cid(sender, cid, since);
        }
        let found: Vec<MessageRow> = rows(&self.statements.messages.copies_by_cid)
            .bind(sender)
            .bind(cid)
            .bind(since)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found.into_iter().map(message_from).collect())
    }

    async fn history_epoch(&self) -> InfraResult<String> {
        let select = || rows::<(String,)>(&self.statements.messages.history_epoch);
        if let Some((epoch,)) = select().fetch_optional(&self.database.pool).await? {
            return Ok(epoch);
        }
        let fresh = format!("{:016x}", rand::random::<u64>());
        let named = statement(&self.statements.messages.name_history_epoch)
            .bind(&fresh)
            .execute(&self.database.pool)
            .await;
        match named.map_err(|error| conflict_or(error, "history epoch")) {
            // Another process named it first: theirs stands.
            Ok(_) | Err(InfraError::Conflict(_)) => {}
            Err(other) => return Err(other),
        }
        let (epoch,) = select().fetch_one(&self.database.pool).await?;
        Ok(epoch)
    }

    async fn newest_message_before(&self, id: u64) -> InfraResult<Option<i64>> {
        if let Some(history) = &self.database.history {
            return history.newest_time_before(id);
        }
        let row: Option<(i64,)> = rows(&self.statements.messages.newest_message_before)
            .bind(id as i64)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(row.map(|(ts,)| ts))
    }

    async fn mark_recalled(&self, id: u64) -> InfraResult<u64> {
        if let Some(history) = &self.database.history {
            let changed = history.rewrite(id, |copy| {
                copy.kind = RECALLED_KIND.to_owned();
                copy.body.clear();
                true
            })?;
            self.forget_rewritten(id, changed).await?;
            return Ok(changed);
        }
        let changed = statement(&self.statements.messages.mark_recalled)
            .bind(RECALLED_KIND)
            .bind(id as i64)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        self.forget_rewritten(id, changed).await?;
        Ok(changed)
    }

    async fn mark_edited(&self, id: u64, body: &str, edited_at: i64) -> InfraResult<u64> {
        if let Some(history) = &self.database.history {
            let changed = history.rewrite(id, |copy| {
                let text = copy.kind == "text";
                if text {
                    body.clone_into(&mut copy.body);
                    copy.edited_at = edited_at;
                }
                text
            })?;
            self.forget_rewritten(id, changed).await?;
            return Ok(changed);
        }
        let changed = statement(&self.statements.messages.mark_edited)
            .bind(body)
            .bind(edited_at)
            .bind(id as i64)
            .execute(&self.database.pool)
            .await?
            .rows_affected();
        self.forget_rewritten(id, changed).await?;
        Ok(changed)
    }

    async fn set_reaction(&self, reaction: &Reaction, present: bool) -> InfraResult<bool> {
        if present {
            let added = statement(&self.statements.messages.add_reaction)
                .bind(reaction.message_id as i64)
                .bind(reaction.user_id)
                .bind(reaction.emoji.as_str())
                .bind(reaction.ts)
                .execute(&self.database.pool)
                .await;
            return match added.map_err(|error| conflict_or(error, "reaction")) {
                Ok(_) => Ok(true),
                Err(InfraError::Conflict(_)) => Ok(false),
                Err(other) => Err(other),
            };
        }
        let removed = statement(&self.statements.messages.remove_reaction)
            .bind(reaction.message_id as i64)
            .bind(reaction.user_id)
            .bind(reaction.emoji.as_str())
            .execute(&self.database.pool)
            .await?;
        Ok(removed.rows_affected() > 0)
    }

    async fn set_mute(&self, user: i64, conversation: &str, until: Option<i64>) -> InfraResult<()> {
        // One statement either way, no transaction: on MySQL a delete-then-insert of a missing
        // row takes gap locks that deadlock against a neighbour's.
        let query = match until {
            Some(until) => statement(&self.statements.messages.mute)
                .bind(user)
                .bind(conversation)
                .bind(until),
            None => statement(&self.statements.messages.unmute)
                .bind(user)
                .bind(conversation),
        };
        query.execute(&self.database.pool).await?;
        Ok(())
    }

    async fn mutes(&self, user: i64) -> InfraResult<Vec<(String, i64)>> {
        Ok(rows::<(String, i64)>(&self.statements.messages.mutes)
            .bind(user)
            .fetch_all(&self.database.pool)
            .await?)
    }

    async fn reactions(&self, messages: &[u64]) -> InfraResult<Vec<Reaction>> {
        let mut found = Vec::new();
        for chunk in messages.chunks(REACTIONS_PER_QUERY) {
            let mut query = rows::<(i64, i64, String, i64)>(&self.statements.messages.reactions_of);
            for place in 0..REACTIONS_PER_QUERY {
                query = query.bind(chunk.get(place).map_or(0, |id| *id as i64));
            }
            let rows = query.fetch_all(&self.database.pool).await?;
            found.extend(
                rows.into_iter()
                    .map(|(message_id, user_id, emoji, ts)| Reaction {
                        message_id: message_id as u64,
                        user_id,
                        emoji,
                        ts,
                    }),
            );
        }
        Ok(found)
    }

    async fn newest_per_sender(
        &self,
        object: &ObjectId,
        after: u64,
        upto: u64,
    ) -> InfraResult<Vec<SenderNewest>> {
        if upto <= after {
            return Ok(Vec::new());
        }
        if let Some(history) = &self.database.history {
            return history.newest_per_sender(*object, after, upto, None);
        }
        let name = object.to_string();
        let [text, image] = AUTHORED_KINDS;
        let found: Vec<(i64, i64, i64)> = rows(&self.statements.messages.newest_per_sender)
            .bind(&name)
            .bind(stored_seq(after))
            .bind(stored_seq(upto))
            .bind(text)
            .bind(image)
            .bind(&name)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found
            .into_iter()
            .map(|(sender, id, seq)| SenderNewest {
                sender,
                id: id as u64,
                seq: seq.max(0) as u64,
            })
            .collect())
    }

    async fn newest_own_copies(
        &self,
        user: i64,
        after: u64,
        upto: u64,
    ) -> InfraResult<Vec<(i64, u64)>> {
        if upto <= after {
            return Ok(Vec::new());
        }
        if let Some(history) = &self.database.history {
            let inbox = ObjectId::User(user);
            let mut found = Vec::new();
            for newest in history.newest_per_sender(inbox, after, upto, Some(user))? {
                if let Some(seq) = history.other_copy_seq(newest.id, inbox)? {
                    found.push((newest.sender, seq));
                }
            }
            return Ok(found);
        }
        let inbox = ObjectId::User(user).to_string();
        let [text, image] = AUTHORED_KINDS;
        let found: Vec<(i64, i64)> = rows(&self.statements.messages.newest_own_copies)
            .bind(&inbox)
            .bind(stored_seq(after))
            .bind(stored_seq(upto))
            .bind(user)
            .bind(text)
            .bind(image)
            .bind(&inbox)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(found
            .into_iter()
            .map(|(sender, seq)| (sender, seq.max(0) as u64))
            .collect())
    }

    async fn newest_from(
        &self,
        object: &ObjectId,
        peer: i64,
        sender: i64,
        upto: u64,
    ) -> InfraResult<Option<u64>> {
        if let Some(history) = &self.database.history {
            return history.newest_from(*object, peer, sender, upto);
        }
        let [text, image] = AUTHORED_KINDS;
        let found: Option<(i64,)> = rows(&self.statements.messages.newest_from)
            .bind(object.to_string())
            .bind(peer)
            .bind(sender)
            .bind(stored_seq(upto))
            .bind(text)
            .bind(image)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(found.map(|(id,)| id as u64))
    }

    async fn readers(
        &self,
        conversation: &str,
        seq: u64,
        excluding: i64,
        limit: u32,
    ) -> InfraResult<Readers> {
        // Raised but unwritten cursors first, for the same reason as in `read_cursor`.
        let pending = self
            .database
            .writer
            .pending_cursors_named(CursorKind::Read, conversation);
        let stored: Vec<(i64,)> = rows(&self.statements.messages.readers)
            .bind(conversation)
            .bind(stored_seq(seq))
            .bind(excluding)
            .fetch_all(&self.database.pool)
            .await?;
        let mut users: std::collections::BTreeSet<i64> =
            stored.into_iter().map(|(user,)| user).collect();
        users.extend(
            pending
                .into_iter()
                .filter(|(user, raised)| *raised >= seq && *user != excluding)
                .map(|(user, _)| user),
        );
        Ok(Readers {
            count: users.len() as u64,
            users: users.into_iter().take(limit as usize).collect(),
        })
    }

    async fn conversations(&self, user: i64, limit: u32) -> InfraResult<Vec<Conversation>> {
        let inbox = ObjectId::User(user);
        let history = self.database.history.as_deref();
        let peers = match history {
            Some(history) => history.peers(inbox)?,
            None => rows::<(i64,)>(&self.statements.messages.inbox_peers)
                .bind(inbox.to_string())
                .fetch_all(&self.database.pool)
                .await?
                .into_iter()
                .map(|(peer,)| peer)
                .collect(),
        };
        // Each conversation is one (object, peer) range of the messages_by_peer index: a
        // group's copies carry the group as their peer.
        let mut places: Vec<(String, ObjectId, i64)> = peers
            .into_iter()
            .map(|peer| (format!("user:{peer}"), inbox, peer))
            .collect();
        for group in self.user_groups(user).await? {
            let object = ObjectId::Group(group);
            places.push((object.to_string(), object, group));
        }
        let not_last = [EDIT_KIND, REACTION_KIND, REACTION_REMOVED_KIND];
        let mut found = Vec::with_capacity(places.len());
        for (key, object, peer) in places {
            let last = match history {
                Some(history) => history.latest_with_peer(object, peer, &not_last)?,
                None => rows::<MessageRow>(&self.statements.messages.latest_with_peer)
                    .bind(object.to_string())
                    .bind(peer)
                    .bind(not_last[0])
                    .bind(not_last[1])
                    .bind(not_last[2])
                    .fetch_optional(&self.database.pool)
                    .await?
                    .map(message_from),
            };
            found.push((key, object, peer, last));
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
            rows::<(String, i64)>(&self.statements.messages.read_cursors)
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
            let not_unread = [
                RECALL_KIND,
                RECALLED_KIND,
                EDIT_KIND,
                REACTION_KIND,
                REACTION_REMOVED_KIND,
            ];
            let unread = match (&last, history) {
                (Some(message), Some(history)) if message.seq as i64 > read => history
                    .count_unread(
                        object,
                        peer,
                        read.max(0) as u64,
                        user,
                        &not_unread,
                        UNREAD_COUNT_CAP,
                    )?,
                (Some(message), None) if message.seq as i64 > read => {
                    let mut count = rows::<(i64,)>(&self.statements.messages.unread)
                        .bind(object.to_string())
                        .bind(peer)
                        .bind(read)
                        .bind(user);
                    for kind in not_unread {
                        count = count.bind(kind);
                    }
                    let (count,) = count
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

    async fn read_cursor(&self, user: i64, conversation: &str) -> InfraResult<u64> {
        // The pending raise first: a flush forgets it only once it is committed, so read in
        // this order one of the two always holds it (the other order can miss both).
        let pending = self
            .database
            .writer
            .pending_cursor(CursorKind::Read, user, conversation)
            .unwrap_or(0);
        let row: Option<(i64,)> = rows(&self.statements.messages.read_cursor)
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
}
