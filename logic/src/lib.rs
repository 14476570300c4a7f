//! natter's logic layer: every message passes here before it exists.
//!
//! - [`config`]: limits and timings.
//! - [`state`]: the service's shared state ([`LogicService`]), the one module every rpc family
//!   imports.
//! - [`service`]: the `Logic` gRPC service, a table from each rpc to its family's function.
//! - `send`: sending and de-duplication (check and authorise, name, append both copies
//!   together, store, answer).
//! - `claim_holder`: who holds a send's de-duplication claim (node and run), so a restarted
//!   process takes over what its earlier run left half done.
//! - `sync`: sync pages and acknowledgements.
//! - `groups`: creating, joining and leaving groups, the owner's changes.
//! - `presence`: sessions, presence, group online counts, typing and event frames.
//! - `system_push`: back ends' notifications.
//! - `recall`: recall and read cursors.
//! - `images`: uploads used in messages and as avatars.
//! - [`admission`]: the bound on sends in progress, past which a send is refused with a hint.
//! - [`validate`]: the checks on what a client sends (sizes, kinds, ids).

pub mod admission;
mod claim_holder;
mod claims;
pub mod config;
mod edits;
mod groups;
mod images;
mod presence;
mod recall;
mod receipts;
mod recent_copies;
mod send;
pub mod service;
pub mod state;
mod sync;
mod system_push;
pub mod validate;

pub use config::LogicConfig;
pub use state::LogicService;
