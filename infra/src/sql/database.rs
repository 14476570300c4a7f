//! Opening a relational database by URL: the dialect, the pool, and that dialect's migrations.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use super::checkpointer;
use super::writer::BatchWriter;
use crate::error::{InfraError, InfraResult};
use crate::history::History;

/// The SQL dialects natter's schema exists in; the URL's scheme picks one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded file database (`sqlite://PATH`).
    Sqlite,
    /// PostgreSQL (`postgres://…`).
    Postgres,
    /// MySQL or MariaDB (`mysql://…`).
    MySql,
}

impl Dialect {
    /// The dialect a database URL names.
    pub fn of_url(url: &str) -> InfraResult<Dialect> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Dialect::Sqlite),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            _ => Err(InfraError::Config(format!(
                "database URL scheme {scheme:?}: expected sqlite, postgres or mysql"
            ))),
        }
    }

    /// `sql` (written with `?` placeholders) in this dialect's placeholder style.
    pub fn placeholders(self, sql: &str) -> String {
        if self != Dialect::Postgres {
            return sql.to_owned();
        }
        // natter's statements never hold a literal `?`, so every one is a parameter.
        let mut numbered = String::with_capacity(sql.len() + 8);
        let mut next = 1;
        for character in sql.chars() {
            if character == '?' {
                numbered.push('$');
                numbered.push_str(&next.to_string());
                next += 1;
            } else {
                numbered.push(character);
            }
        }
        numbered
    }

    /// An insert (`INTO table (columns) VALUES (…)`) that leaves a row with the same `key` alone.
    pub fn insert_unless_present(self, into: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres => {
                format!("INSERT {into} ON CONFLICT ({key}) DO NOTHING")
            }
            // A no-op update rather than INSERT IGNORE, which would also hide other errors.
            Dialect::MySql => {
                let column = key.split(',').next().unwrap_or(key).trim();
                format!("INSERT {into} ON DUPLICATE KEY UPDATE {column} = {column}")
            }
        }
    }

    /// An insert (`INTO table (columns) VALUES (…)`) that, on a row with the same `key`, keeps
    /// the greater of the stored and the new `column` — a cursor that never moves back.
    pub fn insert_or_raise(self, table: &str, into: &str, key: &str, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "INSERT {into} ON CONFLICT ({key}) DO UPDATE \
                 SET {column} = MAX({table}.{column}, excluded.{column})"
            ),
            Dialect::Postgres => format!(
                "INSERT {into} ON CONFLICT ({key}) DO UPDATE \
                 SET {column} = GREATEST({table}.{column}, EXCLUDED.{column})"
            ),
            Dialect::MySql => format!(
                "INSERT {into} ON DUPLICATE KEY UPDATE {column} = GREATEST({column}, VALUES({column}))"
            ),
        }
    }

    /// An insert (`INTO table (columns) VALUES (…)`) that, on a row with the same `key`, sets
    /// `column` to the new value — the newest choice stands.
    pub fn insert_or_replace(self, into: &str, key: &str, column: &str) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres => format!(
                "INSERT {into} ON CONFLICT ({key}) DO UPDATE SET {column} = EXCLUDED.{column}"
            ),
            Dialect::MySql => {
                format!("INSERT {into} ON DUPLICATE KEY UPDATE {column} = VALUES({column})")
            }
        }
    }

    /// The statement that opens a transaction which will write.
    pub fn begin_write(self) -> &'static str {
        match self {
            // A deferred SQLite transaction that reads first fails with SQLITE_BUSY when it
            // later upgrades to a write beside another writer; IMMEDIATE waits its turn instead.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres | Dialect::MySql => "BEGIN",
        }
    }
}

/// A seq as the signed 64-bit integer every dialect stores.
pub(crate) fn stored_seq(seq: u64) -> i64 {
    seq.min(i64::MAX as u64) as i64
}

/// An open pool on one of the dialects, with its migrations applied.
#[derive(Clone, Debug)]
pub struct SqlDatabase {
    /// The connections.
    pub pool: AnyPool,
    /// Which SQL they speak.
    pub dialect: Dialect,
    /// The group-commit writer every log and store handle of this database writes through.
    pub writer: BatchWriter,
    /// Where messages are stored instead of the `messages` table (the embedded deployment).
    pub history: Option<Arc<History>>,
}

/// The `sqlite://` URL of a database file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Open the database at `url` (sqlite, postgres or mysql) and apply pending migrations.
pub async fn open_database(url: &str, max_connections: u32) -> InfraResult<SqlDatabase> {
    open_database_with(url, max_connections, None).await
}

/// [`open_database`], keeping messages in `history` instead of the `messages` table when given.
pub(crate) async fn open_database_with(
    url: &str,
    max_connections: u32,
    history: Option<Arc<History>>,
) -> InfraResult<SqlDatabase> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::of_url(url)?;
    if dialect == Dialect::Sqlite {
        super::sqlite_process::install();
    }
    let options: AnyConnectOptions = url.parse()?;
    let mut pool_options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10));
    if dialect == Dialect::Sqlite {
        // Every connection is opened at start and kept: opening one takes file descriptors,
        // and a process that has run out of them must still reach its own database.
        pool_options = pool_options
            .min_connections(max_connections.max(1))
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let pool = pool_options
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // In WAL mode NORMAL survives a process crash; only a power loss can drop
                    // the newest commits, the trade every embedded chat store makes for speed.
                    // Statement journals stay in memory: a batch's multi-row inserts would
                    // otherwise write each touched page to a temporary file as well.
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                             PRAGMA temp_store = MEMORY;",
                        )
                        .await?;
                    connection
                        .execute(checkpointer::NO_AUTOMATIC_CHECKPOINT)
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    let writer = BatchWriter::start(pool.clone(), dialect, history.clone());
    let database = SqlDatabase {
        pool,
        dialect,
        writer,
        history,
    };
    database.migrate().await?;
    Ok(database)
}

impl SqlDatabase {
    /// Writes what the writer holds back (raised cursors), then closes the connections.
    pub async fn close(&self) {
        if let Err(error) = self.writer.close().await {
            tracing::warn!(%error, "writing the last cursors before closing failed");
        }
        self.pool.close().await;
    }

    /// Apply this dialect's pending migrations.
    pub async fn migrate(&self) -> InfraResult<()> {
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
            Dialect::MySql => sqlx::migrate!("./migrations/mysql"),
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_picks_the_dialect() {
        assert_eq!(Dialect::of_url("sqlite://a.db").unwrap(), Dialect::Sqlite);
        assert_eq!(
            Dialect::of_url("postgres://u@h/db").unwrap(),
            Dialect::Postgres
        );
        assert_eq!(Dialect::of_url("mysql://u@h/db").unwrap(), Dialect::MySql);
        assert!(Dialect::of_url("oracle://x").is_err());
        assert!(Dialect::of_url("no scheme").is_err());
    }

    #[test]
    fn postgres_numbers_its_placeholders() {
        let sql = "SELECT a FROM t WHERE b = ? AND c < ? LIMIT ?";
        assert_eq!(
            Dialect::Postgres.placeholders(sql),
            "SELECT a FROM t WHERE b = $1 AND c < $2 LIMIT $3"
        );
        assert_eq!(Dialect::MySql.placeholders(sql), sql);
    }
}
