//! History: a conversation's stored messages, paged back from the newest.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use natter_proto::frame::MessageFrame;
use natter_proto::{ErrorCode, ObjectId};
use serde::Serialize;

use crate::auth::AuthUser;
use crate::params::{page_limit, positive_id, query_number};
use crate::problem::Problem;
use crate::state::ApiState;

/// Messages per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;
/// Most messages per page.
pub const MAX_PAGE: u32 = 200;

/// One page, newest first.
#[derive(Debug, Serialize)]
pub struct HistoryPage {
    /// The messages, newest first, as the `msg` frame carries them.
    pub messages: Vec<MessageFrame>,
    /// Pass as `before` for the page before this one; absent on the oldest page.
    pub next_before: Option<u64>,
}

/// `GET /api/v1/conversations/{user|group}/{id}/messages?before=SEQ&limit=N`: with a user,
/// the copies in the caller's inbox exchanged with them (the history stays after the
/// friendship ends); with a group, its log, for members only. Seqs are those of the caller's
/// inbox or of the group.
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
