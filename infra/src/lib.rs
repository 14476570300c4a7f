//! natter's ports to the outside world, each a trait with an embedded implementation and a
//! cluster one behind it.
//!
//! - [`store`]: durable relational state, one trait per entity (`UserStore`, `FriendStore`,
//!   `GroupStore`, `MessageStore`, `UploadStore`) under the `Store` supertrait.
//! - [`log`]: the durable ordered log, one stream per object (`MessageLog`).
//! - [`sessions`]: who is connected where, object locks, de-duplication claims (`Sessions`).
//! - [`registry`]: where each layer's processes are (`Registry`).
//! - [`blobs`]: uploaded bytes (`Blobs`).
//! - [`ids`]: snowflake ids, guarded against the clock stepping back.
//! - [`error`]: the typed error every port returns, and the status callers see for it.
//! - [`positions`]: the highest seq known per object, kept in memory as a floor.
//! - `log_tail`: the newest entries of each object's log, kept by its only writer.
//! - [`gather`]: items waiting to go out together in the next of a few calls.
//! - [`gathered_calls`]: many callers' asks of a remote backend made in one call, each
//!   answered on its own.
//! - [`sql`]: `Store` and the `messages`-table log on SQLite, PostgreSQL or MySQL, chosen by
//!   the database URL, written through one group-commit writer.
//! - [`embedded`]: the one-process adapters: opening the SQLite database (WAL), memory for
//!   sessions, a static registry, a local directory for blobs.
//! - [`cluster`]: the same ports on shared servers: Redis sessions, an etcd registry, a
//!   Kafka-protocol log.
//! - `conformance` (feature `conformance`): one test suite per port, run against every adapter.

pub mod blobs;
pub mod cluster;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod gather;
pub mod gathered_calls;
pub mod history;
pub mod ids;
pub mod log;
mod log_tail;
pub mod positions;
pub mod registry;
pub mod sessions;
pub mod sql;
pub mod store;

pub use blobs::Blobs;
pub use error::InfraError;
pub use log::MessageLog;
pub use registry::Registry;
pub use sessions::Sessions;
pub use store::Store;

/// Milliseconds since the Unix epoch, as every stored timestamp is kept.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
