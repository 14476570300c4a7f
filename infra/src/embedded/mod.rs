//! The embedded adapters: everything natter needs inside one process.

mod dir_blobs;
mod memory_sessions;
mod sqlite;
pub(crate) mod sqlite_log;
mod static_registry;

pub use dir_blobs::DirBlobs;
pub use memory_sessions::MemorySessions;
pub use sqlite::open_sqlite;
pub use sqlite_log::SqliteLog;
pub use static_registry::StaticRegistry;
