//! Invite links to groups: the owner and admins make them (with an expiry and a use limit),
//! list and revoke them; anyone signed in who holds a good one sees what it joins and joins
//! through it — the only way into a private group besides being added.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use natter_infra::now_millis;
use natter_infra::store::{Invite, ROLE_MEMBER};
use natter_proto::ErrorCode;
use natter_proto::v1::GroupMemberRequest;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::groups::{GroupView, MembershipView, membership};
use crate::params::positive_id;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// How long an invite lasts unless asked otherwise: a week.
pub const DEFAULT_INVITE_SECONDS: i64 = 7 * 24 * 3600;
/// The longest an invite may last: thirty days.
pub const MAX_INVITE_SECONDS: i64 = 30 * 24 * 3600;
/// The most joins one invite may allow.
pub const MAX_INVITE_USES: u64 = 10_000;

/// An invite to make; both fields optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    /// How long it lasts, 60 s to 30 days; a week when absent.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
    /// How many may join through it, 1 to 10,000; 100 when absent.
    #[serde(default)]
    pub max_uses: Option<u64>,
}

/// An invite as its group's admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteView {
    /// The code the link carries.
    pub code: String,
    /// The link for the web client (`/#/invite/<code>`).
    pub url: String,
    /// The group.
    pub group_id: String,
    /// Who made it.
    pub created_by: String,
    /// Good until then, ms since the Unix epoch.
    pub expires_at: i64,
    /// How many may join through it.
    pub max_uses: u64,
    /// How many have.
    pub uses: u64,
}

impl From<&Invite> for InviteView {
    fn from(invite: &Invite) -> Self {
        InviteView {
            url: format!("/#/invite/{}", invite.code),
            code: invite.code.clone(),
            group_id: invite.group_id.to_string(),
            created_by: invite.created_by.to_string(),
            expires_at: invite.expires_at,
            max_uses: invite.max_uses,
            uses: invite.uses,
        }
    }
}

/// A group's invites.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteList {
    /// Newest first.
    pub invites: Vec<InviteView>,
}

/// What a good invite joins.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitePreview {
    /// The group.
    pub group: GroupView,
    /// Good until then, ms since the Unix epoch.
    pub expires_at: i64,
}

/// Refuses a caller who is not the group's owner or an admin.
async fn require_admin(state: &ApiState, group: i64, user: i64) -> Result<(), Problem> {
    match state.store.membership(group, user).await? {
        Some(standing) if standing.role != ROLE_MEMBER => Ok(()),
        Some(_) => Err(Problem::new(
            ErrorCode::Forbidden,
            "only the group's owner and admins manage its invites",
        )),
        None => Err(Problem::new(
            ErrorCode::NotMember,
            format!("you are not a member of group {group}"),
        )),
    }
}

fn gone() -> Problem {
    Problem::new(
        ErrorCode::NotFound,
        "that invite does not exist, has expired or is used up",
    )
}

/// An invite code in its one spelling: 32 lower-case hex digits (128 random bits).
fn checked_code(code: &str) -> Result<&str, Problem> {
    let plausible = code.len() == 32
        && code
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    if plausible { Ok(code) } else { Err(gone()) }
}

/// `POST /api/v1/groups/{id}/invites` `{expires_in_seconds?, max_uses?}`: the owner or an admin
/// makes an invite link.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/invites",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    request_body = NewInvite,
    responses(
        (status = 201, description = "Made", body = InviteView),
        (status = 400, description = "`invalid_input`: a bad id, lifetime or use limit"),
        (status = 403, description = "`not_member`, or `forbidden`: not the owner or an admin"),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewInvite>,
) -> Result<(StatusCode, Json<InviteView>), Problem> {
    let group = positive_id(&id, "group")?;
    require_admin(&state, group, user).await?;
    let seconds = body.expires_in_seconds.unwrap_or(DEFAULT_INVITE_SECONDS);
    let max_uses = body.max_uses.unwrap_or(100);
    if !(60..=MAX_INVITE_SECONDS).contains(&seconds) || !(1..=MAX_INVITE_USES).contains(&max_uses) {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            format!(
                "an invite lasts 60 to {MAX_INVITE_SECONDS} seconds and allows 1 to \
                 {MAX_INVITE_USES} joins"
            ),
        ));
    }
    let now = now_millis();
    let invite = Invite {
        code: format!("{:032x}", rand::random::<u128>()),
        group_id: group,
        created_by: user,
        created_at: now,
        expires_at: now.saturating_add(seconds.saturating_mul(1000)),
        max_uses,
        uses: 0,
    };
    state.store.create_invite(&invite).await?;
    Ok((StatusCode::CREATED, Json(InviteView::from(&invite))))
}

/// `GET /api/v1/groups/{id}/invites`: the group's invites, for its owner and admins.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/invites",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "Its invites, newest first", body = InviteList),
        (status = 403, description = "`not_member`, or `forbidden`: not the owner or an admin"),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<InviteList>, Problem> {
    let group = positive_id(&id, "group")?;
    require_admin(&state, group, user).await?;
    let invites = state.store.group_invites(group).await?;
    Ok(Json(InviteList {
        invites: invites.iter().map(InviteView::from).collect(),
    }))
}

/// `DELETE /api/v1/groups/{id}/invites/{code}`: revoke an invite (the owner or an admin).
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/invites/{code}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The group's id"),
        ("code" = String, Path, description = "The invite's code"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`not_member`, or `forbidden`: not the owner or an admin"),
        (status = 404, description = "`not_found`: no such invite to this group"),
    )
)]
pub async fn revoke(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((id, code)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let group = positive_id(&id, "group")?;
    require_admin(&state, group, user).await?;
    if state
        .store
        .revoke_invite(group, checked_code(&code)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(gone())
    }
}

/// `GET /api/v1/invites/{code}`: what a good invite joins, for anyone signed in.
#[utoipa::path(
    get,
    path = "/api/v1/invites/{code}",
    tag = "groups",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The invite's code")),
    responses(
        (status = 200, description = "The group it joins", body = InvitePreview),
        (status = 404, description = "`not_found`: no such invite, or expired, or used up"),
    )
)]
pub async fn preview(
    State(state): State<ApiState>,
    AuthUser(_user): AuthUser,
    Path(code): Path<String>,
) -> Result<Json<InvitePreview>, Problem> {
    let invite = state
        .store
        .invite(checked_code(&code)?)
        .await?
        .filter(|invite| invite.expires_at > now_millis() && invite.uses < invite.max_uses)
        .ok_or_else(gone)?;
    let group = state.store.group(invite.group_id).await?.ok_or_else(gone)?;
    Ok(Json(InvitePreview {
        group: GroupView::from(&group),
        expires_at: invite.expires_at,
    }))
}

/// `POST /api/v1/invites/{code}/join`: join the group a good invite names (a member already
/// in uses none of its joins).
#[utoipa::path(
    post,
    path = "/api/v1/invites/{code}/join",
    tag = "groups",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The invite's code")),
    responses(
        (status = 200, description = "A member (`changed` is false if already one)", body = MembershipView),
        (status = 404, description = "`not_found`: no such invite, or expired, or used up"),
    )
)]
pub async fn join(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(code): Path<String>,
) -> Result<Json<MembershipView>, Problem> {
    let request = GroupMemberRequest {
        group_id: 0,
        user_id: user,
        invite: checked_code(&code)?.to_string(),
    };
    let reply = state.logic.join_group(request).await?;
    Ok(Json(membership(reply)))
}
