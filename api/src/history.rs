//! History: a conversation's stored messages, paged back from the newest.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use natter_proto::frame::MessageFrame;
use natter_proto::{ErrorCode, ObjectId};
use serde::Serialize;

use crate::auth::AuthUser;
use crate::params::{page_limit, positive_id, query_number};
use crate::problem::{Problem, ProblemBody};
use crate::state::ApiState;

/// Messages per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;
/// Most messages per page.
pub const MAX_PAGE: u32 = 200;

/// One page, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// The messages, newest first, as the `msg` frame carries them.
    #[schema(value_type = Vec<MessageView>)]
    pub messages: Vec<MessageFrame>,
    /// Pass as `before` for the page before this one; absent on the oldest page.
    pub next_before: Option<u64>,
}

/// A stored message, as the WebSocket `msg` frame carries it.
// Documents how `MessageFrame` (in natter-proto) serialises; a test in `openapi` keeps the two
// in step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    /// The object this copy belongs to: `user:<id>` (an inbox) or `group:<id>`.
    #[schema(example = "user:7265418613035008")]
    pub object: String,
    /// Seq within `object`.
    pub seq: u64,
    /// Message id, as a string.
    #[schema(example = "7265418613035100")]
    pub id: String,
    /// Author's user id as a string ("0" for system messages).
    #[schema(example = "7265418613035009")]
    pub from: String,
    /// Addressed to: `user:<id>` or `group:<id>`.
    #[schema(example = "user:7265418613035008")]
    pub to: String,
    /// `text` or `image`.
    #[schema(example = "text")]
    pub kind: String,
    /// The text or upload id.
    pub body: String,
    /// Acceptance time, ms since the Unix epoch.
    pub ts: i64,
    /// The sender's client message id; absent when there was none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cid: String,
}

/// Which kind of conversation a history path names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    /// One-to-one with a user.
    User,
    /// A group.
    Group,
}

/// The query of the history endpoint (read by hand from the query string, so that bad numbers
/// get problem responses; this type documents it).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (the last page's `next_before`); from the newest when
    /// absent.
    pub before: Option<u64>,
    /// Messages per page, 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/conversations/{user|group}/{id}/messages?before=SEQ&limit=N`: with a user,
/// the copies in the caller's inbox exchanged with them (the history stays after the
/// friendship ends); with a group, its log, for members only. Seqs are those of the caller's
/// inbox or of the group.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{kind}/{id}/messages",
    tag = "history",
    security(("bearer" = [])),
    params(
        ("kind" = ConversationKind, Path, description = "`user` or `group`"),
        ("id" = String, Path, description = "The other user's or the group's id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "A page of messages, newest first", body = HistoryPage),
        (status = 400, description = "`invalid_input`: a bad kind, id, `before` or `limit`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`not_member`: the caller is not a member of the group", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn messages(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HistoryPage>, Problem> {
    let id = positive_id(&id, &kind)?;
    let before = query_number(&query, "before", u64::MAX)?;
    let limit = page_limit(&query, DEFAULT_PAGE, MAX_PAGE)?;
    let stored = match kind.as_str() {
        "user" => {
            state
                .store
                .conversation_before(user, id, before, limit)
                .await?
        }
        "group" => {
            if !state.store.is_group_member(id, user).await? {
                return Err(Problem::new(
                    ErrorCode::NotMember,
                    format!("you are not a member of group {id}"),
                ));
            }
            state
                .store
                .messages_before(&ObjectId::Group(id), before, limit)
                .await?
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                "a conversation is user/{id} or group/{id}",
            ));
        }
    };
    let next_before = (stored.len() == limit as usize)
        .then(|| stored.last().map(|message| message.seq))
        .flatten();
    Ok(Json(HistoryPage {
        messages: stored.iter().map(MessageFrame::from).collect(),
        next_before,
    }))
}
