//! natter's task layer: delivery.
//!
//! - [`config`]: lock lifetime, batch size, retry pacing.
//! - [`directory`]: the connect nodes task can push to, by node name.
//! - [`delivery`]: one object's delivery loop — read the log from the delivered cursor, find
//!   where the recipients are connected, push under the object's lock, wait for connect to
//!   release it, push again after the lock expires.
//! - [`push_batch`]: the pushes to each connect node, gathered into calls while earlier ones
//!   are out.
//! - [`sequencer`]: the partitioned log's numbering — the partitions this process owns,
//!   read in offset order, each record given its object's next seq in one commit.
//! - [`service`]: the `Task` gRPC service (wakes) and start-up recovery.

pub mod config;
pub mod delivery;
pub mod directory;
pub mod push_batch;
pub mod sequencer;
pub mod service;

pub use config::TaskConfig;
pub use directory::ConnectDirectory;
pub use service::TaskService;
