//! The `natter` binary's library: what `natter serve` assembles, and the small client.
//!
//! - [`config`]: the one configuration file (TOML) with `NATTER_…` environment overrides.
//! - [`system`]: the embedded deployment — every layer in one process on the embedded ports.
//! - [`cluster`]: the cluster deployment — one layer per process on shared servers.
//! - [`peers`]: a layer's live processes from the registry, balancing calls over them; the task
//!   router that sends each object's work to its owner.
//! - [`sequenced_log`]: logic's view of the partitioned log — produce, then ask the
//!   partition's owner for the seqs.
//! - [`telemetry`]: tracing output, the trace exporter and the Prometheus recorder behind
//!   `/metrics`; [`json_log`] and [`traced_only`] are its log format and exporter filter.
//! - [`status`]: `natter status`, the cluster as its registry and Redis see it.
//! - [`client`]: a minimal natter client (REST + WebSocket) for `natter client` and the tests.
//! - `listener`: the listening sockets, with a deep accept queue.
//! - `http`: the HTTP server of every process, with the handshake limits.

pub mod client;
pub mod cluster;
pub mod config;
mod http;
pub mod json_log;
mod listener;
pub mod peers;
pub mod sequenced_log;
pub mod status;
pub mod system;
pub mod telemetry;
pub mod traced_only;
