//! Opening the embedded SQLite database: WAL, a busy timeout, migrations applied.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::InfraResult;

/// Open (creating if needed) the SQLite database at `path` and apply pending migrations.
pub async fn open_sqlite(path: &Path) -> InfraResult<SqlitePool> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent).await?;
    }
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL survives a process crash; only a power loss can drop the newest
        // commits, the trade every embedded chat store makes for write speed.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Apply the embedded schema's pending migrations.
pub async fn migrate(pool: &SqlitePool) -> InfraResult<()> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await?;
    Ok(())
}
