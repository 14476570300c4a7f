//! Opening the embedded SQLite database: WAL, a busy timeout, migrations applied, the old log
//! table folded into `messages`.

use std::path::Path;

use crate::error::InfraResult;
use crate::sql::{SqlDatabase, open_database, sqlite_url};

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
    super::sqlite_log::fold_log_entries(&database).await?;
    Ok(database)
}
