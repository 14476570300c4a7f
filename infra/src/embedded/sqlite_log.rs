//! `MessageLog` on SQLite: the store's `messages` table, keyed by (object, seq), is the log.
//!
//! The embedded log and store are one database, so an appended message is one row there:
//! appends go through the database's [`BatchWriter`](crate::sql::BatchWriter), which numbers
//! them and commits whatever arrived together in one transaction, and the store write that
//! follows an append finds its row and costs nothing. Reads near an object's end are answered
//! from the entries the writer remembers; older ones from the table. A recalled message is
//! read back emptied, as history shows it, followed by its `recall` entry.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;
use prost::Message as _;

use crate::error::{InfraError, InfraResult};
use crate::log::MessageLog;
use crate::sql::{Dialect, MessageRow, SqlDatabase, message_columns, message_from};

/// Older rows of the retired `log_entries` table folded into `messages` per round.
const FOLD_CHUNK: i64 = 1000;

/// The embedded durable log.
#[derive(Debug)]
pub struct SqliteLog {
    database: SqlDatabase,
}

impl SqliteLog {
    /// A log in an opened SQLite database (see [`super::open_sqlite`]); its statements are
    /// SQLite's, so another dialect is refused.
    pub fn new(database: SqlDatabase) -> InfraResult<Self> {
        if database.dialect != Dialect::Sqlite {
            return Err(InfraError::Config(format!(
                "the embedded log needs SQLite, not {:?}",
                database.dialect
            )));
        }
        Ok(SqliteLog { database })
    }
}

/// The committed ends of several objects' logs (0 for unknown ones), in one query.
pub(crate) async fn committed_ends<'e, E>(
    executor: E,
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
    let ends: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT key, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE object = value) \
         FROM json_each(?)",
    )
    .bind(json)
    .fetch_all(executor)
    .await?;
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
impl MessageLog for SqliteLog {
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
        // Knowing the end lets the remembered entries answer a reader that is up to date.
        self.end(object).await?;
        if let Some(recent) = self.database.writer.tail().read(object, after, max) {
            return Ok(recent);
        }
        let rows: Vec<MessageRow> = sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE object = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(object.to_string())
        .bind(after.min(i64::MAX as u64) as i64)
        .bind(max.min(i64::MAX as usize) as i64)
        .fetch_all(&self.database.pool)
        .await?;
        Ok(rows.into_iter().map(message_from).collect())
    }

    async fn end(&self, object: &ObjectId) -> InfraResult<u64> {
        let tail = self.database.writer.tail();
        if let Some(end) = tail.end(object) {
            return Ok(end);
        }
        let end = committed_ends(&self.database.pool, std::slice::from_ref(object))
            .await?
            .first()
            .map_or(0, |(_, end)| *end);
        Ok(tail.learn_end(*object, end))
    }

    async fn objects(&self) -> InfraResult<Vec<ObjectId>> {
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

/// Folds the retired `log_entries` table into `messages` and drops it. The log was kept there
/// (as encoded records) beside the store's rows until the log became the `messages` table;
/// entries whose row a crash kept out of `messages` are moved, a chunk at a time with its
/// progress logged, so none is lost. Idempotent: a fold cut short resumes where it stopped.
pub(crate) async fn fold_log_entries(database: &SqlDatabase) -> InfraResult<()> {
    let table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'log_entries'",
    )
    .fetch_optional(&database.pool)
    .await?;
    if table.is_none() {
        return Ok(());
    }
    macro_rules! missing_entries {
        () => {
            " FROM log_entries AS entry WHERE NOT EXISTS (SELECT 1 FROM messages \
             WHERE messages.object = entry.object AND messages.seq = entry.seq)"
        };
    }
    let (missing,): (i64,) = sqlx::query_as(concat!("SELECT COUNT(*)", missing_entries!()))
        .fetch_one(&database.pool)
        .await?;
    let mut folded = 0i64;
    while folded < missing {
        let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(concat!(
            "SELECT entry.object, entry.seq, entry.payload",
            missing_entries!(),
            " LIMIT ?"
        ))
        .bind(FOLD_CHUNK)
        .fetch_all(&database.pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        let messages = rows
            .into_iter()
            .map(|(object, seq, payload)| {
                let mut message = Message::decode(payload.as_slice())
                    .map_err(|error| InfraError::Corrupt(format!("{object}@{seq}: {error}")))?;
                message.object = object;
                message.seq = seq.max(0) as u64;
                Ok(message)
            })
            .collect::<InfraResult<Vec<Message>>>()?;
        folded += messages.len() as i64;
        database.writer.put_messages(messages).await?;
        tracing::info!(folded, missing, "folding the old log table into messages");
    }
    sqlx::query("DROP TABLE log_entries")
        .execute(&database.pool)
        .await?;
    if missing > 0 {
        tracing::info!(folded, "the old log table is folded into messages");
    }
    Ok(())
}
