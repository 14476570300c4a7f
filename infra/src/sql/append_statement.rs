//! PostgreSQL's one-trip commit of the partitioned log's numbering: a batch of appended rows and
//! the partition offset moves that go with them, as one statement.
//!
//! The general transaction ([`super::batch_insert::WriteBatch`]) is `BEGIN`, an insert per chunk
//! size, the partition rows' insert-unless-present, a move per partition and `COMMIT`: six to
//! eight trips for a usual batch. Under load each trip also waits for the database's process and
//! then the writer's to get a core back, so a commit cost 6–12 ms of every message's path. One
//! statement is its own transaction and all or nothing, so here the rows travel as one JSON
//! parameter and the moves as another, inside a single `WITH … INSERT … UPDATE`.
//!
//! A statement's parts all see the database as it was when the statement began: a partition
//! row inserted by one part is not there for another part's update to move. So this statement
//! only moves partitions whose row the writer already knows exists (rows are never deleted);
//! the first batch of a partition goes through the general transaction, which makes the row.
//! A move that finds the stored offset moved by another process sets it to -1, which fails the
//! `next_offset >= 0` check and with it the whole statement, as in the general transaction.

use sqlx::{AnyConnection, SqlStr};

use super::batch_insert::{Value, json_rows, sql_text};
use super::writer::PartitionAdvance;
use crate::error::{InfraError, InfraResult};

/// The one statement; it answers the count of moves it made, which must be the count asked for.
#[derive(Debug)]
pub(crate) struct AppendStatement {
    sql: SqlStr,
}

impl AppendStatement {
    /// The statement for rows going `INTO messages (…)` as `insert` says, whose columns have,
    /// in order, the PostgreSQL types `types`.
    pub(crate) fn new(insert: &str, types: &[&str]) -> AppendStatement {
        // `->>` reads each value as text; the cast gives it its column's type.
        let values: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(index, kind)| format!("(entry ->> {index})::{kind}"))
            .collect();
        let sql = format!(
            "WITH appended AS (\
                 INSERT {insert} \
                 SELECT {values} FROM jsonb_array_elements($1::jsonb) AS entry\
             ), moved AS (\
                 UPDATE log_partitions AS stored SET next_offset = CASE \
                     WHEN stored.next_offset = (advance ->> 1)::bigint \
                     THEN (advance ->> 2)::bigint ELSE -1 END \
                 FROM jsonb_array_elements($2::jsonb) AS advance \
                 WHERE stored.name = advance ->> 0 \
                 RETURNING 1\
             ) SELECT count(*) FROM moved",
            values = values.join(", "),
        );
        AppendStatement { sql: sql_text(sql) }
    }

    /// Inserts `rows` (each given as its columns by `columns`) and makes `advances`, in one
    /// statement on `connection`: all of it or, on error, none of it.
    pub(crate) async fn run<Row>(
        &self,
        connection: &mut AnyConnection,
        rows: &[Row],
        columns: impl for<'r> Fn(&'r Row, &mut Vec<Value<'r>>),
        advances: &[&PartitionAdvance],
    ) -> InfraResult<()> {
        let rows_json = json_rows(rows, &columns, &mut Vec::new());
        let advances_json = json_rows(
            advances,
            &|advance: &&PartitionAdvance, values: &mut Vec<Value<'_>>| {
                values.extend([
                    Value::Text(&advance.name),
                    Value::Int(advance.from),
                    Value::Int(advance.to),
                ]);
            },
            &mut Vec::new(),
        );
        let (moved,): (i64,) = sqlx::query_as(self.sql.clone())
            .bind(rows_json)
            .bind(advances_json)
            .fetch_one(&mut *connection)
            .await?;
        if usize::try_from(moved).ok() != Some(advances.len()) {
            // Only partitions whose row exists come here, and rows are never deleted.
            return Err(InfraError::Corrupt(format!(
                "{moved} of {} partition rows moved: a partition row went missing",
                advances.len()
            )));
        }
        Ok(())
    }
}
