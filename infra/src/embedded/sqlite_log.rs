//! `MessageLog` on SQLite: a table of (object, seq, payload) in the embedded database.
//!
//! Appends go through the database's [`BatchWriter`](crate::sql::BatchWriter), which numbers
//! them and commits whatever arrived together in one transaction, together with the messages'
//! rows in the store's `messages` table (the embedded store lives in the same database), so
//! the store write that follows an append finds them there and costs nothing. Reads near an
//! object's end are answered from the entries the writer remembers; older ones from the table.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;
use prost::Message as _;

use crate::error::{InfraError, InfraResult};
use crate::log::MessageLog;
use crate::sql::{Dialect, SqlDatabase};

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
        "SELECT key, (SELECT COALESCE(MAX(seq), 0) FROM log_entries WHERE object = value) \
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
        let name = object.to_string();
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, payload FROM log_entries WHERE object = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(&name)
        .bind(after.min(i64::MAX as u64) as i64)
        .bind(max.min(i64::MAX as usize) as i64)
        .fetch_all(&self.database.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, payload)| {
                let mut message = Message::decode(payload.as_slice())
                    .map_err(|error| InfraError::Corrupt(format!("{name}@{seq}: {error}")))?;
                message.object = name.clone();
                message.seq = seq as u64;
                Ok(message)
            })
            .collect()
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
        let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT object FROM log_entries")
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
