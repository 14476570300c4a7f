//! Sending over REST: the same path as a WebSocket `send`, through logic.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use natter_proto::send_request::ClientSend;
use natter_proto::{ErrorCode, trace_root};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::auth::AuthUser;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// A message to send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Client message id (retries with the same cid are answered, not resent).
    pub cid: String,
    /// `user:<id>` or `group:<id>`.
    #[schema(example = "user:7265418613035009")]
    pub to: String,
    /// `text`.
    #[schema(example = "text")]
    pub kind: String,
    /// The text.
    pub body: String,
    /// The id of a message in the same conversation this one replies to.
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// An accepted message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The client message id.
    pub cid: String,
    /// The message id, as a string.
    #[schema(example = "7265418613035100")]
    pub id: String,
    /// The sender's own copy: its object.
    #[schema(example = "user:7265418613035008")]
    pub object: String,
    /// Seq in `object`.
    pub seq: u64,
    /// Acceptance time, ms since the Unix epoch.
    pub ts: i64,
}

/// `POST /api/v1/messages`: send a message, as a WebSocket `send` does.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    security(("bearer" = [])),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Accepted (a retry with the same cid is answered the same)",
            body = Accepted),
        (status = 400, description = "`bad_frame`: not JSON; `invalid_input`: a bad `to`, `cid` \
            or `body`"),
        (status = 403, description = "`not_friends` or `not_member`"),
        (status = 409, description = "`in_progress`: the same cid is still being processed"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
        (status = 422, description = "`unsupported_kind`"),
        (status = 429, description = "`rate_limited`"),
    )
)]
pub async fn send(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    JsonBody(message): JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let written = ClientSend {
        cid: message.cid,
        to: message.to,
        kind: message.kind,
        body: message.body,
        reply_to: message.reply_to,
    };
    let request = written
        .into_request(user)
        .map_err(|error| Problem::new(ErrorCode::InvalidInput, error))?;
    // A sampled message's trace starts here, with the REST call.
    let span = trace_root!("api.send", user_id = user, cid = %request.cid);
    let reply = state.logic.send(request).instrument(span).await?;
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

/// A recall's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recalled {
    /// The recalled message.
    pub id: String,
    /// The id of the `recall` message sent where the original went.
    pub recall_id: String,
}

/// `POST /api/v1/messages/{id}/recall`: the sender takes a message back within two minutes.
/// Its stored copies are emptied (history shows it as `recalled`) and a message of kind
/// `recall`, whose body is the recalled id, goes to everyone it went to.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/recall",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Recalled", body = Recalled),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no such message sent by the caller"),
        (status = 409, description = "`recall_window_passed`, or `conflict`: recalled already"),
    )
)]
pub async fn recall(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Recalled>, Problem> {
    let message_id = crate::params::positive_id(&id, "message")? as u64;
    let reply = state
        .logic
        .recall(natter_proto::v1::RecallRequest {
            sender: user,
            message_id,
        })
        .await?;
    Ok(Json(Recalled {
        id: message_id.to_string(),
        recall_id: reply.id.to_string(),
    }))
}

/// A message's new text.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageEdit {
    /// The whole new text (1–4000 characters, not blank).
    pub body: String,
}

/// An edit's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Edited {
    /// The edited message.
    pub id: String,
    /// The id of the `edit` event sent where the message went.
    pub edit_id: String,
    /// When, ms since the Unix epoch (history shows it as the message's `edited_at`).
    pub edited_at: i64,
}

/// `PATCH /api/v1/messages/{id}`: the author rewrites a text message. Every stored copy
/// changes, and an `edit` event carrying the new text (its `ref` the message) goes everywhere
/// the message went, through the same logs, so offline devices apply it when they sync.
#[utoipa::path(
    patch,
    path = "/api/v1/messages/{id}",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The message's id")),
    request_body = MessageEdit,
    responses(
        (status = 200, description = "Edited", body = Edited),
        (status = 400, description = "`invalid_input`: not a positive id, or a blank or \
            overlong text; `bad_frame`: a malformed body"),
        (status = 404, description = "`not_found`: no such message sent by the caller"),
        (status = 422, description = "`unsupported_kind`: not a text message"),
    )
)]
pub async fn edit(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    axum::extract::Path(id): axum::extract::Path<String>,
    JsonBody(change): JsonBody<MessageEdit>,
) -> Result<Json<Edited>, Problem> {
    let message_id = crate::params::positive_id(&id, "message")? as u64;
    let reply = state
        .logic
        .edit(natter_proto::v1::EditRequest {
            sender: user,
            message_id,
            body: change.body,
        })
        .await?;
    Ok(Json(Edited {
        id: message_id.to_string(),
        edit_id: reply.id.to_string(),
        edited_at: reply.edited_at,
    }))
}
