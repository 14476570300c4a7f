//! Opening the embedded SQLite database: WAL, a busy timeout, migrations applied, its history
//! store beside it, and what older versions kept in tables (the log's `log_entries`, the
//! `messages` rows) moved into that store.

use std::path::Path;
use std::sync::Arc;

use natter_proto::v1::Message;
use prost::Message as _;

use crate::error::{InfraError, InfraResult};
use crate::history::{Existing, History};
use crate::sql::{
    MessageRow, SqlDatabase, message_columns, message_from, open_database_with, sqlite_url,
};

/// Older rows of the retired `log_entries` table folded into `messages` per round.
const FOLD_CHUNK: i64 = 1000;

/// `messages` rows moved into the history store per round.
const MOVE_CHUNK: i64 = 5000;

/// Connections the embedded database keeps; SQLite has one writer, these serve readers.
const SQLITE_CONNECTIONS: u32 = 8;

/// Open (creating if needed) the SQLite database at `path` and apply pending migrations; its
/// messages live in the history store in the folder beside it (`natter.db` → `natter.history`).
pub async fn open_sqlite(path: &Path) -> InfraResult<SqlDatabase> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent).await?;
    }
    let folder = path.with_extension("history");
    let history =
        on_blocking_thread("opening the history", move || History::open_shared(&folder)).await?;
    let database = open_database_with(
        &sqlite_url(path),
        SQLITE_CONNECTIONS,
        Some(Arc::clone(&history)),
    )
    .await?;
    fold_log_entries(&database).await?;
    move_messages_table(&database, &history).await?;
    History::report_metrics_periodically(&history);
    Ok(database)
}

/// Runs a call into the history store off the runtime's threads (it reads and writes files);
/// `what` names it should the thread die.
async fn on_blocking_thread<T: Send + 'static>(
    what: &str,
    call: impl FnOnce() -> InfraResult<T> + Send + 'static,
) -> InfraResult<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|error| InfraError::Unavailable(format!("{what} stopped: {error}")))?
}

/// Moves the rows of the `messages` table, where messages were stored before the history
/// store, into the history store, a chunk at a time with its progress logged, then empties
/// the table. Idempotent: a move cut short starts over and skips what it already moved.
async fn move_messages_table(database: &SqlDatabase, history: &Arc<History>) -> InfraResult<()> {
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(&database.pool)
        .await?;
    if rows == 0 {
        return Ok(());
    }
    tracing::info!(rows, "moving stored messages into the history store");
    let mut after = (String::new(), 0i64);
    let mut moved = 0i64;
    loop {
        let chunk: Vec<MessageRow> = sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE (object, seq) > (?, ?) ORDER BY object, seq LIMIT ?"
        ))
        .bind(&after.0)
        .bind(after.1)
        .bind(MOVE_CHUNK)
        .fetch_all(&database.pool)
        .await?;
        let Some(last) = chunk.last() else {
            break;
        };
        after = (last.0.clone(), last.1);
        let copies: Vec<Message> = chunk.into_iter().map(message_from).collect();
        moved += copies.len() as i64;
        let history = Arc::clone(history);
        on_blocking_thread("moving messages", move || {
            history.write(&copies, Existing::Skip)
        })
        .await?;
        tracing::info!(moved, rows, "moving stored messages into the history store");
    }
    sqlx::query("DELETE FROM messages")
        .execute(&database.pool)
        .await?;
    tracing::info!(moved, "the stored messages are in the history store");
    Ok(())
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
    // Walked in key order from where the last round stopped: a folded entry goes wherever the
    // writer stores messages, which may not be the table the `NOT EXISTS` looks in.
    let mut after = (String::new(), 0i64);
    while folded < missing {
        let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(concat!(
            "SELECT entry.object, entry.seq, entry.payload",
            missing_entries!(),
            " AND (entry.object, entry.seq) > (?, ?) ORDER BY entry.object, entry.seq LIMIT ?"
        ))
        .bind(&after.0)
        .bind(after.1)
        .bind(FOLD_CHUNK)
        .fetch_all(&database.pool)
        .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = (last.0.clone(), last.1);
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
