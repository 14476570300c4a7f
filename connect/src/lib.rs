//! natter's connect layer: the WebSocket edge.
//!
//! - [`config`]: every size, rate and timing of the edge.
//! - [`gate`]: the deadline and per-address cap on sockets that have not finished their
//!   handshake.
//! - [`server`]: accepts sockets, authenticates the upgrade, owns the buckets, routes pushes.
//! - [`bucket`]: a CityHash32 shard of the users on this node: their connections, its routine
//!   workers and its push limiter.
//! - [`group_list`]: a group's online connections in a bucket, as an O(1) linked list.
//! - [`routine`]: a bucket's worker — takes push jobs, passes the limiter, queues frames.
//! - [`connection`]: one connection's shared handle: its bounded outbound queue and the
//!   sync/live state that keeps the seam between sync and live pushes exact.
//! - [`socket`]: one connection's task: frames in, frames out, heartbeats, the goodbye.
//! - [`limiter`]: the token buckets (per bucket for pushes, per connection for inbound frames).
//! - [`service`]: the `Connect` gRPC service over the server.
//! - [`acks`]: the node's `ack` frames, gathered into calls to logic.
//! - [`lock_releases`]: the node's releases of push locks, gathered into Redis calls.

pub mod acks;
pub mod bucket;
pub mod config;
pub mod connection;
pub mod gate;
pub mod group_list;
pub mod limiter;
pub mod lock_releases;
pub mod routine;
pub mod sends;
pub mod server;
pub mod service;
pub mod socket;

pub use config::ConnectConfig;
pub use gate::HandshakeLimits;
pub use server::ConnectServer;
pub use service::ConnectService;
