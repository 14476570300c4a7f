//! The relational store on SQLite (embedded), PostgreSQL or MySQL (cluster), chosen by URL.
//!
//! One implementation serves all three through sqlx's `Any` driver: the few places the dialects
//! differ (placeholders, insert-unless-present, raising a cursor, how a write transaction
//! begins) are answered by [`Dialect`], and each dialect has its own migrations folder.
//! Messages and cursors are written through [`BatchWriter`], which commits what concurrent
//! callers wrote together.

mod append_statement;
mod batch_insert;
mod checkpointer;
mod database;
mod friendship_cache;
mod friendship_notices;
mod log;
mod membership_cache;
mod sqlite_process;
mod store;
pub mod writer;

pub(crate) use batch_insert::{push_json_string, sql_text};
pub(crate) use database::open_database_with;
pub(crate) use database::stored_seq;
pub use database::{Dialect, SqlDatabase, open_database, sqlite_url};
pub use log::SqlLog;
pub(crate) use store::{MessageRow, message_columns, message_from};
pub use store::{SEARCH_GROUPS_SQL, SEARCH_USERS_SQL, SqlStore};
pub use writer::{BatchWriter, CURSOR_FLUSH_INTERVAL};
