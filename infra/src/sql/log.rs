//! `MessageLog` on the SQL store: its `messages` table, keyed by (object, seq), is the log.
//!
//! The embedded log and store are one database, so an appended message is one row there:
//! appends go through the database's [`BatchWriter`](crate::sql::BatchWriter), which numbers
//! them and commits whatever arrived together in one transaction, and the store write that
//! follows an append finds its row and costs nothing. Reads near an object's end are answered
//! from the entries the writer remembers; older ones from the table. A recalled message is
//! read back emptied, as history shows it, followed by its `recall` entry.
//!
//! In the embedded deployment the rows live in the history store ([`crate::history`]) instead
//! of the table; the log reads them there.
//!
//! In a cluster with the partitioned Kafka log the same table holds what the task process
//! owning each partition numbered ([`SqlLog::append_from_partition`]); there the other
//! processes read it through [`SqlLog::reader`], which remembers nothing, since another
//! process writes.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;

use crate::error::{InfraError, InfraResult};
use crate::log::MessageLog;
use crate::sql::writer::PartitionAdvance;
use crate::sql::{Dialect, MessageRow, SqlDatabase, message_columns, message_from};

/// The durable log in the SQL store.
#[derive(Debug)]
pub struct SqlLog {
    database: SqlDatabase,
    /// Whether this process writes the log (so what its writer remembers is the truth) or
    /// only reads what another process writes.
    writes: bool,
    /// Reads of one object after a seq, in the database's dialect.
    read_after: sqlx::SqlStr,
}

impl SqlLog {
    /// The log of the process that writes it: the embedded deployment, or a task process
    /// numbering the partitions it owns.
    pub fn new(database: SqlDatabase) -> InfraResult<Self> {
        Ok(SqlLog::open(database, true))
    }

    /// A log another process writes: every read asks the database.
    pub fn reader(database: SqlDatabase) -> Self {
        SqlLog::open(database, false)
    }

    fn open(database: SqlDatabase, writes: bool) -> SqlLog {
        let read_after = crate::sql::sql_text(database.dialect.placeholders(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE object = ? AND seq > ? ORDER BY seq LIMIT ?"
        )));
        SqlLog {
            database,
            writes,
            read_after,
        }
    }

    /// A shared-log partition's first offset not numbered yet and first offset whose record
    /// may not be delivered yet (0 and 0 when none is known).
    pub async fn partition_offsets(&self, partition: &str) -> InfraResult<(i64, i64)> {
        let sql = self.database.dialect.placeholders(
            "SELECT next_offset, delivered_offset FROM log_partitions WHERE name = ?",
        );
        let found: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(partition)
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(found.unwrap_or((0, 0)))
    }

    /// Moves a partition's delivered offset forward to `offset` (never back): every record
    /// before it is delivered.
    pub async fn advance_delivered_offset(&self, partition: &str, offset: i64) -> InfraResult<()> {
        let sql = self.database.dialect.placeholders(
            "UPDATE log_partitions SET delivered_offset = ? \
             WHERE name = ? AND delivered_offset < ?",
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(offset)
            .bind(partition)
            .bind(offset)
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }

    /// The committed log ends of `objects` (0 for one with none), in one query.
    pub async fn committed_ends(&self, objects: &[ObjectId]) -> InfraResult<Vec<(ObjectId, u64)>> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        committed_ends(&self.database.pool, self.database.dialect, objects).await
    }

    /// Numbers and stores the records of a shared-log partition from offset `from` up to
    /// (not including) `to`, in one transaction with the partition's offset: committed only
    /// if the partition's stored offset is still `from`, so a second process numbering the
    /// same records fails instead of numbering them again. Returns each entry's seq.
    pub async fn append_from_partition(
        &self,
        partition: &str,
        from: i64,
        to: i64,
        entries: Vec<(ObjectId, Message)>,
    ) -> InfraResult<Vec<u64>> {
        let advance = PartitionAdvance {
            name: partition.to_owned(),
            from,
            to,
        };
        self.database
            .writer
            .append_advancing(entries, advance)
            .await
    }

    /// Forgets every remembered end and entry: this process may have missed writes by
    /// another (a partition owned elsewhere for a while).
    pub fn forget_remembered(&self) {
        self.database.writer.forget_remembered();
    }

    /// The stored message with `id` in `object`, if any: finds the seq of a record numbered
    /// earlier than what is remembered.
    pub async fn seq_of(&self, object: &ObjectId, id: u64) -> InfraResult<Option<u64>> {
        if let Some(history) = &self.database.history {
            let name = object.to_string();
            let copies = history.copies(id)?;
            return Ok(copies
                .into_iter()
                .find(|copy| copy.object == name)
                .map(|copy| copy.seq));
        }
        let sql = self
            .database
            .dialect
            .placeholders("SELECT seq FROM messages WHERE id = ? AND object = ?");
        let found: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(crate::sql::stored_seq(id))
            .bind(object.to_string())
            .fetch_optional(&self.database.pool)
            .await?;
        Ok(found.map(|(seq,)| seq.max(0) as u64))
    }
}

/// The committed ends of several objects' logs (0 for unknown ones), in one query.
pub(crate) async fn committed_ends<'e, E>(
    executor: E,
    dialect: Dialect,
    objects: &[ObjectId],
) -> InfraResult<Vec<(ObjectId, u64)>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let mut json = String::from("[");
    for (index, object) in objects.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        crate::sql::push_json_string(&mut json, &object.to_string());
    }
    json.push(']');
    // The objects travel as one JSON array, unpacked with their positions by each dialect's
    // own table function.
    let sql = match dialect {
        Dialect::Sqlite => {
            "SELECT key, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE object = value) \
             FROM json_each(?)"
        }
        Dialect::Postgres => {
            "SELECT (item.position - 1)::BIGINT, \
             (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE object = item.value)::BIGINT \
             FROM json_array_elements_text($1::json) WITH ORDINALITY AS item(value, position)"
        }
        Dialect::MySql => {
            "SELECT CAST(item.position - 1 AS SIGNED), \
             CAST((SELECT COALESCE(MAX(seq), 0) FROM messages WHERE object = item.value) AS SIGNED) \
             FROM JSON_TABLE(?, '$[*]' COLUMNS (position FOR ORDINALITY, \
             value VARCHAR(255) PATH '$')) AS item"
        }
    };
    let ends: Vec<(i64, i64)> = sqlx::query_as(sql).bind(json).fetch_all(executor).await?;
    ends.into_iter()
        .map(|(index, end)| {
            let object = usize::try_from(index)
                .ok()
                .and_then(|index| objects.get(index))
                .ok_or_else(|| InfraError::Corrupt(format!("no object at index {index}")))?;
            Ok((*object, end.max(0) as u64))
        })
        .collect()
}

#[async_trait]
impl MessageLog for SqlLog {
    async fn append(&self, object: &ObjectId, message: &Message) -> InfraResult<u64> {
        let seqs = self
            .database
            .writer
            .append(vec![(*object, message.clone())])
            .await?;
        seqs.first()
            .copied()
            .ok_or_else(|| InfraError::Corrupt("an append was answered without a seq".into()))
    }

    async fn append_many(&self, entries: &[(ObjectId, Message)]) -> Vec<InfraResult<u64>> {
        // One job, so one transaction: every entry is written or none is.
        match self.database.writer.append(entries.to_vec()).await {
            Ok(seqs) if seqs.len() == entries.len() => seqs.into_iter().map(Ok).collect(),
            Ok(_) => entries
                .iter()
                .map(|_| Err(InfraError::Corrupt("an append lost its seqs".into())))
                .collect(),
            Err(error) => {
                let message = error.to_string();
                let mut outcomes = vec![Err(error)];
                outcomes.extend(entries.iter().skip(1).map(|_| {
                    Err(InfraError::Unavailable(format!(
                        "appended with the first: {message}"
                    )))
                }));
                outcomes
            }
        }
    }

    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        if self.writes {
            // Knowing the end lets the remembered entries answer a reader that is up to date.
            self.end(object).await?;
            if let Some(recent) = self.database.writer.tail().read(object, after, max) {
                return Ok(recent);
            }
        }
        if let Some(history) = &self.database.history {
            return history.after(*object, after, max);
        }
        let rows: Vec<MessageRow> = sqlx::query_as(self.read_after.clone())
            .bind(object.to_string())
            .bind(after.min(i64::MAX as u64) as i64)
            .bind(max.min(i64::MAX as usize) as i64)
            .fetch_all(&self.database.pool)
            .await?;
        Ok(rows.into_iter().map(message_from).collect())
    }

    async fn end(&self, object: &ObjectId) -> InfraResult<u64> {
        let tail = self.database.writer.tail();
        if self.writes
            && let Some(end) = tail.end(object)
        {
            return Ok(end);
        }
        let end = match &self.database.history {
            Some(history) => history.end(*object)?,
            None => committed_ends(
                &self.database.pool,
                self.database.dialect,
                std::slice::from_ref(object),
            )
            .await?
            .first()
            .map_or(0, |(_, end)| *end),
        };
        if !self.writes {
            return Ok(end);
        }
        Ok(tail.learn_end(*object, end))
    }

    async fn ends(&self, objects: &[ObjectId]) -> InfraResult<Vec<(ObjectId, u64)>> {
        if self.writes || self.database.history.is_some() {
            // Answered from what this process wrote, or from the history's index, without a
            // query for most objects.
            return crate::log::each_end(self, objects).await;
        }
        self.committed_ends(objects).await
    }

    fn stores_messages(&self) -> bool {
        true
    }

    async fn objects(&self) -> InfraResult<Vec<ObjectId>> {
        if let Some(history) = &self.database.history {
            return history.objects();
        }
        let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT object FROM messages")
            .fetch_all(&self.database.pool)
            .await?;
        rows.into_iter()
            .map(|(name,)| {
                name.parse()
                    .map_err(|_| InfraError::Corrupt(format!("object name {name:?}")))
            })
            .collect()
    }
}
