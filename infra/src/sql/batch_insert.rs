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
}

/// The statements that insert rows of one table.
#[derive(Debug)]
pub(crate) struct BatchInsert {
    shape: Shape,
    columns: usize,
}

impl BatchInsert {
    /// `make(source)` builds the whole statement around its row source: `VALUES (…), …` or,
    /// on SQLite, a `SELECT` from `jsonb_each` (with `WHERE true`, which SQLite needs before an
    /// `ON CONFLICT` clause).
    pub(crate) fn new(
        dialect: Dialect,
        columns: usize,
        make: impl Fn(&str) -> String,
    ) -> BatchInsert {
        let shape = match dialect {
            Dialect::Sqlite => {
                let values: Vec<String> = (0..columns)
                    .map(|column| format!("value ->> {column}"))
                    .collect();
                // `jsonb_each` hands each row over as binary JSON, which `->>` reads in place;
                // `json_each` would render every row back to text for `->>` to parse again.
                let source = format!("SELECT {} FROM jsonb_each(?) WHERE true", values.join(", "));
                Shape::Json(sql_text(make(&source)))
            }
            Dialect::Postgres | Dialect::MySql => {
                let row = format!("({})", vec!["?"; columns].join(", "));
                let by_size = CHUNK_SIZES
                    .iter()
                    .map(|&size| {
                        let values = vec![row.as_str(); size].join(", ");
                        let source = format!("VALUES {values}");
                        (size, sql_text(dialect.placeholders(&make(&source))))
                    })
                    .collect();
                Shape::Chunks(by_size)
            }
        };
        BatchInsert { shape, columns }
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
                let mut json = String::with_capacity(rows.len() * 64 * self.columns);
                json.push('[');
                for (index, row) in rows.iter().enumerate() {
                    if index > 0 {
                        json.push(',');
                    }
                    values.clear();
                    columns(row, &mut values);
                    push_json_row(&mut json, &values);
                }
                json.push(']');
                match batch {
                    WriteBatch::Script {
                        sql: script,
                        arguments,
                        ..
                    } => {
                        script.push_str(sql.as_str());
                        script.push_str(";\n");
                        arguments.push(json);
                    }
                    WriteBatch::Transaction(transaction) => {
                        sqlx::query(sql.clone())
                            .bind(json)
                            .execute(&mut **transaction)
                            .await?;
                    }
                }
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
    /// next batch starts a transaction of its own (the first one was ended, not left open).
    #[tokio::test]
    async fn a_batch_that_fails_half_way_writes_nothing_and_the_next_one_commits() {
        sqlx::any::install_default_drivers();
        let mut connection = <AnyConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        connection
            .execute("CREATE TABLE pairs (key INTEGER PRIMARY KEY, value TEXT NOT NULL)")
            .await
            .unwrap();
        let insert = BatchInsert::new(Dialect::Sqlite, 2, |source| {
            format!("INSERT INTO pairs (key, value) {source}")
        });
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
