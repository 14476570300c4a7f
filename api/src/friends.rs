//! Friend requests, acceptance and the friend list.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use natter_infra::store::FriendRequest;
use natter_infra::{InfraError, now_millis};
use natter_proto::ErrorCode;
use natter_proto::frame::ServerFrame;
use natter_proto::v1::OnlineRequest;

use crate::events::notify;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthUser, UserView, normalise_username};
use crate::params::positive_id;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// Longest note on a friend request, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// A friend as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FriendView {
    /// The friend.
    pub user: UserView,
    /// Friends since, ms since the Unix epoch.
    pub since: i64,
    /// Whether the friend has a live connection now (`presence` frames keep it current).
    pub online: bool,
}

/// The friend list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FriendList {
    /// Oldest friendship first.
    pub friends: Vec<FriendView>,
}

/// A request as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Who asked (id as a string).
    #[schema(example = "7265418613035008")]
    pub from: String,
    /// Who was asked (id as a string).
    #[schema(example = "7265418613035009")]
    pub to: String,
    /// The requester's note.
    pub note: String,
    /// When, ms since the Unix epoch.
    pub created_at: i64,
}

impl From<FriendRequest> for RequestView {
    fn from(request: FriendRequest) -> Self {
        RequestView {
            from: request.from.to_string(),
            to: request.to.to_string(),
            note: request.note,
            created_at: request.created_at,
        }
    }
}

/// Pending requests both ways.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestLists {
    /// Asked of the caller.
    pub incoming: Vec<RequestView>,
    /// Asked by the caller.
    pub outgoing: Vec<RequestView>,
}

/// Whom to ask: by id or by username.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The user's id (a string; a JSON number is accepted too).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "7265418613035009")]
    pub user_id: Option<serde_json::Value>,
    /// Or the user's username.
    #[serde(default)]
    pub username: Option<String>,
    /// An optional note.
    #[serde(default)]
    pub note: String,
}

/// `GET /api/v1/friends`: the caller's friends.
#[utoipa::path(
    get,
    path = "/api/v1/friends",
    tag = "friends",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The friend list", body = FriendList),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
) -> Result<Json<FriendList>, Problem> {
    let friends = state.store.friends(user).await?;
    let ids = friends.iter().map(|friend| friend.user.id).collect();
    let online: std::collections::HashSet<i64> = state
        .logic
        .online(OnlineRequest {
            user_ids: ids,
            group_id: 0,
        })
        .await?
        .online_user_ids
        .into_iter()
        .collect();
    let friends = friends
        .into_iter()
        .map(|friend| FriendView {
            online: online.contains(&friend.user.id),
            user: UserView::from(&friend.user),
            since: friend.since,
        })
        .collect();
    Ok(Json(FriendList { friends }))
}

/// `GET /api/v1/friends/requests`: pending requests, to and from the caller.
#[utoipa::path(
    get,
    path = "/api/v1/friends/requests",
    tag = "friends",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending requests both ways", body = RequestLists),
    )
)]
pub async fn requests(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
) -> Result<Json<RequestLists>, Problem> {
    let (incoming, outgoing) = state.store.friend_requests(user).await?;
    Ok(Json(RequestLists {
        incoming: incoming.into_iter().map(RequestView::from).collect(),
        outgoing: outgoing.into_iter().map(RequestView::from).collect(),
    }))
}

fn parse_user_id(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(number) => number.as_i64(),
        serde_json::Value::String(text) => natter_proto::object::parse_id(text),
        _ => None,
    }
    .filter(|id| *id > 0)
}

/// `POST /api/v1/friends/requests`: ask a user for friendship.
#[utoipa::path(
    post,
    path = "/api/v1/friends/requests",
    tag = "friends",
    security(("bearer" = [])),
    request_body = NewRequest,
    responses(
        (status = 201, description = "Asked", body = RequestView),
        (status = 400, description = "`bad_frame`: not JSON; `invalid_input`: not exactly one of \
            `user_id` and `username`, a bad id, a note over 200 characters, or the caller"),
        (status = 403, description = "`forbidden`: either has blocked the other"),
        (status = 404, description = "`not_found`: no such user"),
        (status = 409, description = "`conflict`: already asked, or already friends"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
    )
)]
pub async fn request(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<NewRequest>,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    if body.note.chars().count() > MAX_NOTE_CHARS {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            format!("the note may have at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    let target = match (&body.user_id, &body.username) {
        (Some(id), None) => {
            let id = parse_user_id(id).ok_or_else(|| {
                Problem::new(ErrorCode::InvalidInput, "user_id must be a positive id")
            })?;
            state.store.user(id).await?
        }
        (None, Some(username)) => {
            let username = normalise_username(username)?;
            state
                .store
                .credentials(&username)
                .await?
                .map(|(user, _)| user)
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                "give exactly one of user_id and username",
            ));
        }
    }
    .ok_or_else(|| Problem::new(ErrorCode::NotFound, "no such user"))?;
    if target.id == user {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            "you cannot befriend yourself",
        ));
    }
    crate::blocks::refuse_if_blocked(&state, user, target.id).await?;
    let request = FriendRequest {
        from: user,
        to: target.id,
        note: body.note,
        created_at: now_millis(),
    };
    match state.store.add_friend_request(&request).await {
        Ok(()) => {
            let frame = ServerFrame::FriendRequest {
                from: user.to_string(),
                note: request.note.clone(),
            };
            notify(&state, vec![request.to], Vec::new(), frame).await;
            Ok((StatusCode::CREATED, Json(RequestView::from(request))))
        }
        Err(InfraError::Conflict(what)) => Err(Problem::new(
            ErrorCode::Conflict,
            format!("cannot ask again: {what}"),
        )),
        Err(error) => Err(error.into()),
    }
}

/// `POST /api/v1/friends/requests/{from}/accept`: accept a request made to the caller.
#[utoipa::path(
    post,
    path = "/api/v1/friends/requests/{user}/accept",
    tag = "friends",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The requester's id")),
    responses(
        (status = 200, description = "Now friends", body = FriendView),
        (status = 400, description = "`invalid_input`: the id is not a number"),
        (status = 404, description = "`not_found`: no pending request from that user"),
    )
)]
pub async fn accept(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(from): Path<String>,
) -> Result<Json<FriendView>, Problem> {
    let from = positive_id(&from, "requester")?;
    let now = now_millis();
    match state.store.accept_friend_request(from, user, now).await {
        Ok(()) => {}
        Err(InfraError::NotFound(_)) => {
            return Err(Problem::new(
                ErrorCode::NotFound,
                "no pending request from that user",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let friend = state
        .store
        .user(from)
        .await?
        .ok_or_else(|| Problem::new(ErrorCode::NotFound, "no such user"))?;
    let frame = ServerFrame::FriendAccepted {
        user_id: user.to_string(),
    };
    notify(&state, vec![from], Vec::new(), frame).await;
    let online = state
        .logic
        .online(OnlineRequest {
            user_ids: vec![from],
            group_id: 0,
        })
        .await?;
    Ok(Json(FriendView {
        user: UserView::from(&friend),
        since: now,
        online: !online.online_user_ids.is_empty(),
    }))
}

/// `POST /api/v1/friends/requests/{from}/reject`: turn down a request made to the caller.
#[utoipa::path(
    post,
    path = "/api/v1/friends/requests/{user}/reject",
    tag = "friends",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The requester's id")),
    responses(
        (status = 204, description = "Turned down"),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no pending request from that user"),
    )
)]
pub async fn reject(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(from): Path<String>,
) -> Result<StatusCode, Problem> {
    let from = positive_id(&from, "user")?;
    if state.store.remove_friend_request(from, user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            ErrorCode::NotFound,
            "no pending request from that user",
        ))
    }
}

/// `DELETE /api/v1/friends/requests/{to}`: withdraw the caller's request to a user.
#[utoipa::path(
    delete,
    path = "/api/v1/friends/requests/{user}",
    tag = "friends",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The id of the user asked")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no pending request to that user"),
    )
)]
pub async fn cancel(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(to): Path<String>,
) -> Result<StatusCode, Problem> {
    let to = positive_id(&to, "user")?;
    if state.store.remove_friend_request(user, to).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            ErrorCode::NotFound,
            "no pending request to that user",
        ))
    }
}

/// `DELETE /api/v1/friends/{id}`: end a friendship (and with it one-to-one sending).
#[utoipa::path(
    delete,
    path = "/api/v1/friends/{id}",
    tag = "friends",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The friend's id")),
    responses(
        (status = 204, description = "No longer friends"),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: that user is not a friend"),
    )
)]
pub async fn remove(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(friend): Path<String>,
) -> Result<StatusCode, Problem> {
    let friend = positive_id(&friend, "user")?;
    if state.store.remove_friendship(user, friend).await? {
        let frame = ServerFrame::FriendRemoved {
            user_id: user.to_string(),
        };
        notify(&state, vec![friend], Vec::new(), frame).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            ErrorCode::NotFound,
            "that user is not your friend",
        ))
    }
}
