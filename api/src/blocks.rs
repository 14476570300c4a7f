//! Blocking: a user stops another from reaching them. A block ends any friendship and pending
//! request between the two and refuses new requests either way, so neither can message the
//! other one-to-one or see the other's presence (both follow from friendship).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use natter_infra::now_millis;
use natter_proto::ErrorCode;
use natter_proto::frame::ServerFrame;
use serde::Serialize;

use crate::auth::{AuthUser, UserView};
use crate::events::notify;
use crate::params::positive_id;
use crate::problem::Problem;
use crate::state::ApiState;

/// The users the caller has blocked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BlockList {
    /// By id.
    pub users: Vec<UserView>,
}

/// `GET /api/v1/blocks`: the users the caller has blocked.
#[utoipa::path(
    get,
    path = "/api/v1/blocks",
    tag = "friends",
    security(("bearer" = [])),
    responses((status = 200, description = "Blocked users", body = BlockList))
)]
pub async fn list(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
) -> Result<Json<BlockList>, Problem> {
    let users = state.store.blocked_users(user).await?;
    Ok(Json(BlockList {
        users: users.iter().map(UserView::from).collect(),
    }))
}

/// `PUT /api/v1/blocks/{id}`: block a user. Ends a friendship and pending requests between the
/// two (the other side gets `friend_removed`, as when a friend is removed); the caller's
/// devices get `blocked`.
#[utoipa::path(
    put,
    path = "/api/v1/blocks/{id}",
    tag = "friends",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The user to block")),
    responses(
        (status = 204, description = "Blocked (or blocked already)"),
        (status = 400, description = "`invalid_input`: not a positive id, or the caller"),
        (status = 404, description = "`not_found`: no such user"),
    )
)]
pub async fn block(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(other): Path<String>,
) -> Result<StatusCode, Problem> {
    let other = positive_id(&other, "user")?;
    if other == user {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            "you cannot block yourself",
        ));
    }
    if state.store.user(other).await?.is_none() {
        return Err(Problem::new(ErrorCode::NotFound, "no such user"));
    }
    // The block first: once it is stored no request can be made, so none is left behind.
    state.store.block_user(user, other, now_millis()).await?;
    state.store.remove_friend_request(user, other).await?;
    state.store.remove_friend_request(other, user).await?;
    if state.store.remove_friendship(user, other).await? {
        let ended = |id: i64| ServerFrame::FriendRemoved {
            user_id: id.to_string(),
        };
        notify(&state, vec![other], Vec::new(), ended(user)).await;
        notify(&state, vec![user], Vec::new(), ended(other)).await;
    }
    let frame = ServerFrame::Blocked {
        user_id: other.to_string(),
        blocked: true,
    };
    notify(&state, vec![user], Vec::new(), frame).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/blocks/{id}`: unblock a user (friendship is not restored: ask again).
#[utoipa::path(
    delete,
    path = "/api/v1/blocks/{id}",
    tag = "friends",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The user to unblock")),
    responses(
        (status = 204, description = "Unblocked"),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: that user is not blocked"),
    )
)]
pub async fn unblock(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(other): Path<String>,
) -> Result<StatusCode, Problem> {
    let other = positive_id(&other, "user")?;
    if !state.store.unblock_user(user, other).await? {
        return Err(Problem::new(
            ErrorCode::NotFound,
            "that user is not blocked",
        ));
    }
    let frame = ServerFrame::Blocked {
        user_id: other.to_string(),
        blocked: false,
    };
    notify(&state, vec![user], Vec::new(), frame).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses a friend request between two users when either has blocked the other.
pub(crate) async fn refuse_if_blocked(
    state: &ApiState,
    user: i64,
    other: i64,
) -> Result<(), Problem> {
    if state.store.has_blocked(user, other).await? {
        return Err(Problem::new(
            ErrorCode::Forbidden,
            "you have blocked this user; unblock them first",
        ));
    }
    if state.store.has_blocked(other, user).await? {
        return Err(Problem::new(
            ErrorCode::Forbidden,
            "this user does not take requests from you",
        ));
    }
    Ok(())
}
