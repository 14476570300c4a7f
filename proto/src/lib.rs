//! natter's contracts.
//!
//! - [`v1`]: the gRPC services between layers (`Logic`, `Connect`, `Task`) and their messages,
//!   generated from `proto/natter.proto`.
//! - [`handle`]: one small handle per service that calls it in-process or over gRPC.
//! - [`object`]: the names of the ordered streams ("user:42", "group:7").
//! - [`frame`]: the JSON frames a client exchanges with a connect node over WebSocket.
//! - [`error`]: the stable error codes shared by frames, problem responses and gRPC statuses.
//! - [`token`]: the signed access token that the API issues and connect verifies.

pub mod error;
pub mod frame;
pub mod handle;
pub mod object;
pub mod ownership;
pub mod placement;
pub mod token;

/// Generated gRPC types and services (package `natter.v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("natter.v1");
}

pub use error::ErrorCode;
pub use object::ObjectId;
