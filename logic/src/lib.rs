//! natter's logic layer: every message passes here before it exists.
//!
//! - [`config`]: limits and timings.
//! - [`admission`]: the bound on sends in progress, past which a send is refused with a hint.
//! - `send`: the send path (check, de-duplicate, name, append both copies together, store).
//! - [`validate`]: the checks on what a client sends (sizes, kinds, ids).
//! - [`service`]: the `Logic` gRPC service — dispatching send, sync, ack, connection events
//!   and the group and push rpcs.
//! - [`social`]: presence and group online counts, event frames, owner actions, recall, read
//!   cursors, image checks.

pub mod admission;
pub mod config;
mod send;
pub mod service;
pub mod social;
pub mod validate;

pub use config::LogicConfig;
pub use service::LogicService;
