//! Profiles: the caller's own (read and change) and anyone's public one.

use axum::Json;
use axum::extract::{Path, State};
use natter_infra::store::{AUDIENCE_EVERYONE, share_own_upload};
use natter_proto::ErrorCode;
use natter_proto::frame::ServerFrame;
use serde::Deserialize;

use crate::auth::{AuthUser, UserView};
use crate::params::positive_id;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 64;

/// Changes to the caller's profile; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChange {
    /// A new display name (trimmed; 1 to 64 characters, no control characters).
    #[serde(default)]
    pub nickname: Option<String>,
    /// An upload id the caller made, or `""` to clear the avatar. Avatars may be fetched by
    /// everyone signed in.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// `PATCH /api/v1/me`: change the caller's profile.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "profiles",
    security(("bearer" = [])),
    request_body = ProfileChange,
    responses(
        (status = 200, description = "The changed profile", body = UserView),
        (status = 400, description = "`bad_frame`: not JSON or an unknown field; \
            `invalid_input`: a bad nickname"),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`: \
            no valid access token, or the account no longer exists"),
        (status = 404, description = "`not_found`: an avatar upload the caller does not own"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
    )
)]
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
    if let Some(avatar) = change.avatar {
        let avatar = match avatar.as_str() {
            "" => None,
            id => {
                let upload = positive_id(id, "upload")?;
                if !share_own_upload(state.store.as_ref(), user, upload, AUDIENCE_EVERYONE).await? {
                    return Err(Problem::new(
                        ErrorCode::NotFound,
                        format!("you have no upload {upload}"),
                    ));
                }
                Some(upload.to_string())
            }
        };
        state.store.set_avatar(user, avatar.as_deref()).await?;
    }
    let profile = crate::auth::me(State(state.clone()), AuthUser(user)).await?;
    tell_profile(&state, user, &profile.0).await?;
    Ok(profile)
}

/// Tells the people who see a user's name and avatar (their friends, the members of their
/// groups, and their own other devices) that the profile changed.
async fn tell_profile(state: &ApiState, user: i64, profile: &UserView) -> Result<(), Problem> {
    let mut users: Vec<i64> = state
        .store
        .friends(user)
        .await?
        .into_iter()
        .map(|friend| friend.user.id)
        .collect();
    users.push(user);
    let groups = state.store.user_groups(user).await?;
    let frame = ServerFrame::Profile {
        user_id: user.to_string(),
        nickname: profile.nickname.clone(),
        avatar: profile.avatar.clone(),
    };
    crate::events::notify(state, users, groups, frame).await;
    Ok(())
}

/// `GET /api/v1/users/{id}`: anyone's public profile, for any signed-in user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "profiles",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user's public profile", body = UserView),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no such user"),
    )
)]
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
