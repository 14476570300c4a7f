//! natter's contracts.
//!
//! - [`v1`]: the gRPC services between layers (`Logic`, `Connect`, `Task`) and their messages,
//!   generated from `proto/natter.proto`.
//! - [`handle`]: one handle per service that calls it in-process, over gRPC, or on whichever
//!   process of its layer a balancer picks. Its methods are generated from the rpcs the .proto
//!   lists, so adding an rpc takes the .proto and the implementation only (for `Logic`: the
//!   function in its family's module and its line in `logic/src/service.rs`'s dispatch table).
//! - [`object`]: the names of the ordered streams ("user:42", "group:7").
//! - [`frame`]: the JSON frames a client exchanges with a connect node over WebSocket.
//! - [`error`]: the stable error codes shared by frames, problem responses and gRPC statuses.
//! - [`token`]: the signed access token that the API issues and connect verifies.
//! - [`ownership`]: which process of a layer owns a name (rendezvous hashing).
//! - [`placement`]: where an object's records live in the partitioned log, and what task
//!   processes own.

pub mod error;
pub mod frame;
pub mod handle;
pub mod object;
pub mod ownership;
pub mod placement;
pub mod refusal;
pub mod send_request;
pub mod token;
pub mod trace_context;

/// Generated gRPC types and services (package `natter.v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("natter.v1");
}

pub use error::ErrorCode;
pub use object::ObjectId;
