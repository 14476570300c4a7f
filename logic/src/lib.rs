//! natter's logic layer: every message passes here before it exists.
//!
//! - [`config`]: limits and timings.
//! - [`validate`]: the checks on what a client sends (sizes, kinds, ids).
//! - [`service`]: the `Logic` gRPC service — send (authorise, de-duplicate, id, log, store,
//!   answer, wake task), sync, ack, and connection events.
//! - [`social`]: presence and group online counts, event frames, owner actions, recall, read
//!   cursors, image checks.

pub mod config;
pub mod service;
pub mod social;
pub mod validate;

pub use config::LogicConfig;
pub use service::LogicService;
