//! The embedded adapters: everything natter needs inside one process.

mod claim_memory;
mod dir_blobs;
mod memory_sessions;
mod sqlite;
mod static_registry;

pub use dir_blobs::DirBlobs;
pub use memory_sessions::MemorySessions;
pub use sqlite::open_sqlite;
pub use static_registry::StaticRegistry;
