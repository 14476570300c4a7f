//! `MessageLog` on SQLite: a table of (object, seq, payload) in the embedded database.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;
use prost::Message as _;
use tokio::sync::Mutex;

use crate::error::{InfraError, InfraResult};
use crate::log::MessageLog;
use crate::positions::PositionCache;
use crate::sql::{Dialect, SqlDatabase};

/// The embedded durable log.
#[derive(Debug)]
pub struct SqliteLog {
    pool: sqlx::AnyPool,
    /// Appends compute `MAX(seq) + 1`; SQLite has one writer anyway, and taking turns here
    /// avoids busy retries when two appends race to upgrade their read to a write.
    append_turn: Mutex<()>,
    /// Each object's end, when every append goes through this handle (see
    /// [`SqliteLog::sole_writer`]): a read from the end then needs no query.
    ends: Option<PositionCache<ObjectId>>,
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
        Ok(SqliteLog {
            pool: database.pool,
            append_turn: Mutex::new(()),
            ends: None,
        })
    }

    /// A log whose every append goes through this handle (the embedded deployment), so it
    /// may remember each object's end: a reader that is up to date costs no query.
    pub fn sole_writer(database: SqlDatabase) -> InfraResult<Self> {
        Ok(SqliteLog {
            ends: Some(PositionCache::default()),
            ..SqliteLog::new(database)?
        })
    }

    async fn query_end(&self, object: &ObjectId) -> InfraResult<u64> {
        let (end,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM log_entries WHERE object = ?")
                .bind(object.to_string())
                .fetch_one(&self.pool)
                .await?;
        Ok(end as u64)
    }
}

#[async_trait]
impl MessageLog for SqliteLog {
    async fn append(&self, object: &ObjectId, message: &Message) -> InfraResult<u64> {
        let mut record = message.clone();
        record.object = String::new();
        record.seq = 0;
        let payload = record.encode_to_vec();
        let _turn = self.append_turn.lock().await;
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO log_entries (object, seq, payload) \
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2 FROM log_entries WHERE object = ?1 \
             RETURNING seq",
        )
        .bind(object.to_string())
        .bind(payload)
        .fetch_one(&self.pool)
        .await?;
        if let Some(ends) = &self.ends {
            ends.raise(*object, seq as u64);
        }
        Ok(seq as u64)
    }

    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        if self.ends.is_some() && after >= self.end(object).await? {
            // Up to date: nothing to read, and no query to find that out.
            return Ok(Vec::new());
        }
        let name = object.to_string();
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, payload FROM log_entries WHERE object = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(&name)
        .bind(after.min(i64::MAX as u64) as i64)
        .bind(max.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
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
        let Some(ends) = &self.ends else {
            return self.query_end(object).await;
        };
        if let Some(end) = ends.get(object) {
            return Ok(end);
        }
        let end = self.query_end(object).await?;
        Ok(ends.raise(*object, end))
    }

    async fn objects(&self) -> InfraResult<Vec<ObjectId>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT object FROM log_entries")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(name,)| {
                name.parse()
                    .map_err(|_| InfraError::Corrupt(format!("object name {name:?}")))
            })
            .collect()
    }
}
