//! Opening the embedded SQLite database: WAL, a busy timeout, migrations applied, the old log
//! table folded into `messages`.

use std::path::Path;

use natter_proto::v1::Message;
use prost::Message as _;

use crate::error::{InfraError, InfraResult};
use crate::sql::{SqlDatabase, open_database, sqlite_url};

/// Older rows of the retired `log_entries` table folded into `messages` per round.
const FOLD_CHUNK: i64 = 1000;

/// Connections the embedded database keeps; SQLite has one writer, these serve readers.
const SQLITE_CONNECTIONS: u32 = 8;

/// Open (creating if needed) the SQLite database at `path` and apply pending migrations.
pub async fn open_sqlite(path: &Path) -> InfraResult<SqlDatabase> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent).await?;
    }
    let database = open_database(&sqlite_url(path), SQLITE_CONNECTIONS).await?;
    fold_log_entries(&database).await?;
    Ok(database)
}

/// Folds the retired `log_entries` table into `messages` and drops it. The log was kept there
/// (as encoded records) beside the store's rows until the log became the `messages` table;
/// entries whose row a crash kept out of `messages` are moved, a chunk at a time with its
/// progress logged, so none is lost. Idempotent: a fold cut short resumes where it stopped.
async fn fold_log_entries(database: &SqlDatabase) -> InfraResult<()> {
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
