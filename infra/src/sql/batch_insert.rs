//! Inserting many rows of one table in as few statements as the dialect allows, and a whole
//! transaction of such inserts in as few trips to the database as it allows.
//!
//! Every statement is a trip from the writer's task to the database and back, and on SQLite
//! each trip waits for sqlx's connection thread and then for the runtime to poll the writer
//! again, which under load means behind every task the previous batch's answers woke. So
//! SQLite gets all of a batch's rows of a table in one statement, as one JSON parameter
//! unpacked by `jsonb_each` (its placeholder limit would otherwise cut a batch into many
//! statements), and the whole transaction, `BEGIN` to `COMMIT`, as one script in one trip
//! (sqlx runs a query's statements in turn on its connection thread, binding the parameters
//! in order). PostgreSQL and MySQL get multi-row `VALUES` in a few fixed sizes, each prepared
//! once, inside an ordinary transaction.
//!
//! Inside a transaction SQLite gives a multi-row statement that may fail half-way a statement
//! journal: every page the statement is first to touch is copied aside so that the statement
//! alone can be undone. Any function call (each `->>` that unpacks a JSON row) and any
//! constraint that aborts only the statement make it one that may fail half-way. The batch
//! is all or nothing anyway, so for the inserts into large tables ([`BatchInsert::staged`])
//! SQLite unpacks the rows into a small temporary table first and inserts from there with
//! `INSERT OR ROLLBACK`: that statement calls no function and any failure ends the whole
//! transaction, so the pages it touches all over the table's B-trees are not copied.

use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Executor, SqlSafeStr, SqlStr};

use super::database::Dialect;
use crate::error::InfraResult;

/// Rows per multi-row statement, largest first; a batch is cut greedily into these sizes.
const CHUNK_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// One column's value in a row to insert.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    Int(i64),
}

/// How a table's rows go in, in one dialect.
#[derive(Debug)]
enum Shape {
    /// `(rows, statement)`, largest first, as [`CHUNK_SIZES`].
    Chunks(Vec<(usize, SqlStr)>),
    /// One statement taking every row as a JSON array of arrays (SQLite).
    Json(SqlStr),
    /// SQLite, in three statements: empty the staging table, unpack the JSON rows into it,
    /// insert from it (see the module's comment).
    Staged {
        clear: SqlStr,
        unpack: SqlStr,
        insert: SqlStr,
    },
}

/// The statements that insert rows of one table.
#[derive(Debug)]
pub(crate) struct BatchInsert {
    shape: Shape,
    columns: usize,
}

impl BatchInsert {
    /// `make(source)` builds the whole statement, beginning `INSERT `, around its row source:
    /// `VALUES (…), …` or, on SQLite, a `SELECT` from `jsonb_each` (with `WHERE true`, which
    /// SQLite needs before an `ON CONFLICT` clause).
    pub(crate) fn new(
        dialect: Dialect,
        columns: usize,
        make: impl Fn(&str) -> String,
    ) -> BatchInsert {
        if dialect != Dialect::Sqlite {
            return BatchInsert::for_server(dialect, columns, make);
        }
        let source = format!("{} WHERE true", unpack_json(columns));
        BatchInsert {
            shape: Shape::Json(sql_text(make(&source))),
            columns,
        }
    }

    /// As [`BatchInsert::new`], for a statement that calls no function: on SQLite its rows go
    /// through a staging table, which spares the statement journal (see the module's comment).
    /// The writer's connection needs [`BatchInsert::setup`] run once first.
    pub(crate) fn staged(
        dialect: Dialect,
        columns: usize,
        make: impl Fn(&str) -> String,
    ) -> BatchInsert {
        if dialect != Dialect::Sqlite {
            return BatchInsert::for_server(dialect, columns, make);
        }
        let table = staging_table(columns);
        let insert = make(&format!("SELECT * FROM {table} WHERE true"));
        // A constraint failure then rolls back the whole transaction instead of only this
        // statement; the batch fails whole either way.
        let insert = match insert.strip_prefix("INSERT ") {
            Some(rest) => format!("INSERT OR ROLLBACK {rest}"),
            None => insert,
        };
        let shape = Shape::Staged {
            clear: sql_text(format!("DELETE FROM {table}")),
            unpack: sql_text(format!("INSERT INTO {table} {}", unpack_json(columns))),
            insert: sql_text(insert),
        };
        BatchInsert { shape, columns }
    }

    /// What a connection must run once before this insert's first batch on it: the staging
    /// table, where there is one.
    pub(crate) fn setup(&self) -> Option<SqlStr> {
        match self.shape {
            Shape::Staged { .. } => {
                let columns: Vec<String> = (0..self.columns)
                    .map(|column| format!("c{column}"))
                    .collect();
                Some(sql_text(format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {} ({})",
                    staging_table(self.columns),
                    columns.join(", ")
                )))
            }
            Shape::Json(_) | Shape::Chunks(_) => None,
        }
    }

    /// PostgreSQL and MySQL: multi-row `VALUES` in the sizes of [`CHUNK_SIZES`].
    fn for_server(dialect: Dialect, columns: usize, make: impl Fn(&str) -> String) -> BatchInsert {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let by_size = CHUNK_SIZES
            .iter()
            .map(|&size| {
                let values = vec![row.as_str(); size].join(", ");
                let source = format!("VALUES {values}");
                (size, sql_text(dialect.placeholders(&make(&source))))
            })
            .collect();
        BatchInsert {
            shape: Shape::Chunks(by_size),
            columns,
        }
    }

    /// Inserts `rows`, each given as its columns by `columns`, as part of `batch`.
    pub(crate) async fn run<Row>(
        &self,
        batch: &mut WriteBatch<'_>,
        rows: &[Row],
        columns: impl for<'r> Fn(&'r Row, &mut Vec<Value<'r>>),
    ) -> InfraResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut values = Vec::with_capacity(self.columns);
        match &self.shape {
            Shape::Json(sql) => {
                let json = json_rows(rows, &columns, &mut values);
                batch.execute(sql, &[Value::Text(&json)]).await?;
            }
            Shape::Staged {
                clear,
                unpack,
                insert,
            } => {
                let json = json_rows(rows, &columns, &mut values);
                batch.execute(clear, &[]).await?;
                batch.execute(unpack, &[Value::Text(&json)]).await?;
                batch.execute(insert, &[]).await?;
            }
            Shape::Chunks(by_size) => {
                let WriteBatch::Transaction(transaction) = batch else {
                    // Both follow the dialect, so this is a programming error.
                    return Err(crate::error::InfraError::Config(
                        "multi-row VALUES inserts need an open transaction".into(),
                    ));
                };
                let mut rest = rows;
                while let Some((size, sql)) = by_size.iter().find(|(size, _)| *size <= rest.len()) {
                    let (chunk, after) = rest.split_at(*size);
                    let mut query = sqlx::query(sql.clone());
                    for row in chunk {
                        values.clear();
                        columns(row, &mut values);
                        for value in values.drain(..) {
                            query = bind(query, value);
                        }
                    }
                    query.execute(&mut **transaction).await?;
                    rest = after;
                }
            }
        }
        Ok(())
    }
}

/// One transaction's inserts: run as they come inside an open transaction, or gathered into
/// one script that travels to the database once, at [`WriteBatch::commit`].
pub(crate) enum WriteBatch<'c> {
    /// An open transaction (PostgreSQL, MySQL).
    Transaction(sqlx::Transaction<'c, Any>),
    /// A script from `BEGIN` on, with its parameters in order (SQLite).
    Script {
        connection: &'c mut AnyConnection,
        sql: String,
        arguments: Vec<String>,
    },
}

impl<'c> WriteBatch<'c> {
    /// Starts a batch on `connection`, in its dialect's way of beginning a write.
    pub(crate) async fn begin(
        connection: &'c mut AnyConnection,
        dialect: Dialect,
    ) -> InfraResult<WriteBatch<'c>> {
        Ok(match dialect {
            Dialect::Sqlite => WriteBatch::Script {
                connection,
                sql: format!("{};\n", dialect.begin_write()),
                arguments: Vec::new(),
            },
            Dialect::Postgres | Dialect::MySql => WriteBatch::Transaction(
                sqlx::Connection::begin_with(connection, dialect.begin_write()).await?,
            ),
        })
    }

    /// Runs one statement with `values` as its parameters, as part of the batch.
    pub(crate) async fn execute(&mut self, sql: &SqlStr, values: &[Value<'_>]) -> InfraResult<()> {
        match self {
            WriteBatch::Script {
                sql: script,
                arguments,
                ..
            } => {
                script.push_str(sql.as_str());
                script.push_str(";\n");
                arguments.extend(values.iter().map(|value| match value {
                    Value::Text(text) => (*text).to_owned(),
                    Value::Int(number) => number.to_string(),
                }));
            }
            WriteBatch::Transaction(transaction) => {
                let mut query = sqlx::query(sql.clone());
                for value in values {
                    query = bind(query, *value);
                }
                query.execute(&mut **transaction).await?;
            }
        }
        Ok(())
    }

    /// Commits everything the batch holds; on failure nothing of it is written.
    pub(crate) async fn commit(self) -> InfraResult<()> {
        match self {
            WriteBatch::Transaction(transaction) => transaction.commit().await?,
            WriteBatch::Script {
                connection,
                mut sql,
                arguments,
            } => {
                sql.push_str("COMMIT;");
                let mut query = sqlx::query(sql_text(sql));
                for argument in arguments {
                    query = query.bind(argument);
                }
                if let Err(error) = query.execute(&mut *connection).await {
                    // The script stops at its first error, inside its transaction: end it,
                    // or the connection's next batch would begin inside this one. Fails
                    // harmlessly when the error came before the transaction began.
                    let _ = connection.execute("ROLLBACK").await;
                    return Err(error.into());
                }
            }
        }
        Ok(())
    }
}

/// A statement built at run time from natter's own fragments, never from input.
pub(crate) fn sql_text(text: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(text)).into_sql_str()
}

fn bind<'q>(query: Query<'q, Any, AnyArguments>, value: Value<'q>) -> Query<'q, Any, AnyArguments> {
    match value {
        Value::Text(text) => query.bind(text),
        Value::Int(number) => query.bind(number),
    }
}

/// A `SELECT` of `columns` values from each row of a JSON array of arrays, the one parameter.
fn unpack_json(columns: usize) -> String {
    let values: Vec<String> = (0..columns)
        .map(|column| format!("value ->> {column}"))
        .collect();
    // `jsonb_each` hands each row over as binary JSON, which `->>` reads in place; `json_each`
    // would render every row back to text for `->>` to parse again.
    format!("SELECT {} FROM jsonb_each(?)", values.join(", "))
}

/// The temporary table that stages rows of `columns` values (one per connection).
fn staging_table(columns: usize) -> String {
    format!("temp.batch_rows_{columns}")
}

/// `rows` as one JSON array of arrays, each row's values given by `columns`.
pub(crate) fn json_rows<'r, Row>(
    rows: &'r [Row],
    columns: &impl Fn(&'r Row, &mut Vec<Value<'r>>),
    values: &mut Vec<Value<'r>>,
) -> String {
    let mut json = String::with_capacity(rows.len() * 64 * values.capacity().max(1));
    json.push('[');
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        values.clear();
        columns(row, values);
        push_json_row(&mut json, values);
    }
    json.push(']');
    json
}

/// Appends one row as a JSON array.
fn push_json_row(json: &mut String, values: &[Value<'_>]) {
    json.push('[');
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        match value {
            Value::Text(text) => push_json_string(json, text),
            Value::Int(number) => json.push_str(itoa::Buffer::new().format(*number)),
        }
    }
    json.push(']');
}

/// Appends `text` as a JSON string.
pub(crate) fn push_json_string(json: &mut String, text: &str) {
    json.push('"');
    // Runs that need no escape (nearly all text) are copied whole.
    let mut plain_from = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            control if control < 0x20 => "",
            _ => continue,
        };
        json.push_str(&text[plain_from..index]);
        if escape.is_empty() {
            let _ = write!(json, "\\u{:04x}", byte);
        } else {
            json.push_str(escape);
        }
        plain_from = index + 1;
    }
    json.push_str(&text[plain_from..]);
    json.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_json_that_round_trips() {
        let mut json = String::new();
        let text = "quote \" back \\ line\nbell\u{7} é 🎉";
        push_json_row(
            &mut json,
            &[Value::Text(text), Value::Int(-5), Value::Int(i64::MIN)],
        );
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed[0], text);
        assert_eq!(parsed[1], -5);
        assert_eq!(parsed[2], i64::MIN);
    }

    /// A batch whose second insert conflicts writes none of its rows, and the connection's
    /// next batch starts a transaction of its own (the first one was ended, not left open):
    /// with the rows unpacked in the insert, and staged.
    #[tokio::test]
    async fn a_batch_that_fails_half_way_writes_nothing_and_the_next_one_commits() {
        let direct = BatchInsert::new(Dialect::Sqlite, 2, |source| {
            format!("INSERT INTO pairs (key, value) {source}")
        });
        fails_half_way_then_commits(direct).await;
        let staged = BatchInsert::staged(Dialect::Sqlite, 2, |source| {
            format!("INSERT INTO pairs (key, value) {source}")
        });
        assert!(staged.setup().is_some(), "SQLite stages its rows");
        fails_half_way_then_commits(staged).await;
    }

    /// Staged rows reach the table with their types, and a staging table left with rows (by a
    /// batch that failed before its transaction) adds none of them to the next batch.
    #[tokio::test]
    async fn staged_rows_arrive_typed_and_only_once() {
        let mut connection = pairs_database().await;
        let staged = BatchInsert::staged(Dialect::Sqlite, 2, |source| {
            format!("INSERT INTO pairs (key, value) {source}")
        });
        connection.execute(staged.setup().unwrap()).await.unwrap();
        connection
            .execute("INSERT INTO temp.batch_rows_2 VALUES (9, 'left over')")
            .await
            .unwrap();
        write_batch(&mut connection, &staged, &[&[(1, "a")], &[(2, "b")]])
            .await
            .unwrap();
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT key, value, typeof(value) FROM pairs ORDER BY key")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        assert_eq!(
            rows,
            [
                (1, "a".to_owned(), "text".to_owned()),
                (2, "b".to_owned(), "text".to_owned())
            ]
        );
    }

    async fn fails_half_way_then_commits(insert: BatchInsert) {
        let mut connection = pairs_database().await;
        if let Some(setup) = insert.setup() {
            connection.execute(setup).await.unwrap();
        }
        let conflicting = [&[(1, "a"), (2, "b")][..], &[(3, "c"), (1, "again")]];
        assert!(
            write_batch(&mut connection, &insert, &conflicting)
                .await
                .is_err(),
            "a conflicting key fails the batch"
        );
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pairs")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(count, 0, "nothing of a failed batch is written");

        write_batch(&mut connection, &insert, &[&[(1, "a"), (2, "b")]])
            .await
            .unwrap();
        let values: Vec<String> = sqlx::query_scalar("SELECT value FROM pairs ORDER BY key")
            .fetch_all(&mut connection)
            .await
            .unwrap();
        assert_eq!(values, ["a", "b"]);
    }

    /// A fresh in-memory database with a `pairs (key, value)` table.
    async fn pairs_database() -> AnyConnection {
        sqlx::any::install_default_drivers();
        crate::sql::sqlite_process::install();
        let mut connection = <AnyConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        connection
            .execute("CREATE TABLE pairs (key INTEGER PRIMARY KEY, value TEXT NOT NULL)")
            .await
            .unwrap();
        connection
    }

    /// Writes each row set with `insert`, all in one batch, and commits it.
    async fn write_batch(
        connection: &mut AnyConnection,
        insert: &BatchInsert,
        row_sets: &[&[(i64, &'static str)]],
    ) -> InfraResult<()> {
        let mut batch = WriteBatch::begin(connection, Dialect::Sqlite).await?;
        for rows in row_sets {
            insert
                .run(&mut batch, rows, |pair, values| {
                    values.push(Value::Int(pair.0));
                    values.push(Value::Text(pair.1));
                })
                .await?;
        }
        batch.commit().await
    }
}
