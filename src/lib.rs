//! The `natter` binary's library: what `natter serve` assembles, and the small client.
//!
//! - [`config`]: the one configuration file (TOML) with `NATTER_…` environment overrides.
//! - [`system`]: the embedded deployment — every layer in one process on the embedded ports.
//! - [`telemetry`]: tracing output and the Prometheus recorder behind `/metrics`.
//! - [`client`]: a minimal natter client (REST + WebSocket) for `natter client` and the tests.

pub mod client;
pub mod config;
pub mod system;
pub mod telemetry;
