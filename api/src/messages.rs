//! Sending over REST: the same path as a WebSocket `send`, through logic.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use natter_proto::v1::SendRequest;
use natter_proto::{ErrorCode, ObjectId};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// A message to send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Client message id (retries with the same cid are answered, not resent).
    pub cid: String,
    /// `user:<id>` or `group:<id>`.
    pub to: String,
    /// `text`.
    pub kind: String,
    /// The text.
    pub body: String,
}

/// An accepted message.
#[derive(Debug, Serialize)]
pub struct Accepted {
    /// The client message id.
    pub cid: String,
    /// The message id, as a string.
    pub id: String,
    /// The sender's own copy: its object.
    pub object: String,
    /// Seq in `object`.
    pub seq: u64,
    /// Acceptance time, ms since the Unix epoch.
    pub ts: i64,
}

/// `POST /api/v1/messages`.
pub async fn send(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    JsonBody(message): JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let (target_kind, target_id) = match message.to.parse::<ObjectId>() {
        Ok(ObjectId::User(id)) => ("user", id),
        Ok(ObjectId::Group(id)) => ("group", id),
        Err(error) => return Err(Problem::new(ErrorCode::InvalidInput, error.to_string())),
    };
    let reply = state
        .logic
        .send(SendRequest {
            sender: user,
            cid: message.cid,
            target_kind: target_kind.into(),
            target_id,
            kind: message.kind,
            body: message.body,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            cid: reply.cid,
            id: reply.id.to_string(),
            object: reply.object,
            seq: reply.seq,
            ts: reply.ts,
        }),
    ))
}
