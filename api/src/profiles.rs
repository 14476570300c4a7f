//! Profiles: the caller's own (read and change) and anyone's public one.

use axum::Json;
use axum::extract::{Path, State};
use natter_proto::ErrorCode;
use serde::Deserialize;

use crate::auth::{AuthUser, UserView};
use crate::params::positive_id;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 64;

/// Changes to the caller's profile; absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileChange {
    /// A new display name (trimmed; 1 to 64 characters, no control characters).
    #[serde(default)]
    pub nickname: Option<String>,
}

/// `PATCH /api/v1/me`.
pub async fn update_me(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    JsonBody(change): JsonBody<ProfileChange>,
) -> Result<Json<UserView>, Problem> {
    if let Some(nickname) = change.nickname {
        let nickname = nickname.trim();
        let chars = nickname.chars().count();
        if chars == 0 || chars > MAX_NICKNAME_CHARS || nickname.chars().any(char::is_control) {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                format!(
                    "a nickname has 1 to {MAX_NICKNAME_CHARS} characters and no control \
                     characters"
                ),
            ));
        }
        if !state.store.set_nickname(user, nickname).await? {
            return Err(Problem::new(
                ErrorCode::InvalidToken,
                "the account no longer exists",
            ));
        }
    }
    crate::auth::me(State(state), AuthUser(user)).await
}

/// `GET /api/v1/users/{id}`: anyone's public profile, for any signed-in user.
pub async fn user(
    State(state): State<ApiState>,
    AuthUser(_): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Problem> {
    let user = state
        .store
        .user(positive_id(&id, "user")?)
        .await?
        .ok_or_else(|| Problem::new(ErrorCode::NotFound, "there is no such user"))?;
    Ok(Json(UserView::from(&user)))
}
