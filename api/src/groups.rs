//! Groups: create, join, leave, and the caller's own list. Membership changes go through
//! logic, which also moves the caller's online connections in and out of the group's lists.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use natter_infra::store::{Group, GroupMember};
use natter_proto::ErrorCode;
use natter_proto::v1::{
    CreateGroupRequest, GroupAction, GroupMemberRequest, GroupReply, ManageGroupRequest,
    OnlineRequest,
};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthUser, UserView};
use crate::params::{after_id, next_after, page_limit, positive_id};
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// A group as listed (ids as strings: JavaScript numbers lose precision above 2^53).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    /// The group's id.
    #[schema(example = "7265418613035010")]
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its owner's id.
    #[schema(example = "7265418613035008")]
    pub owner: String,
    /// Upload id of its avatar, if set.
    pub avatar: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at: i64,
    /// Private: not found by search, joined through invites or by being added.
    pub private: bool,
    /// The caller's role (`owner`, `admin`, `member`), where the answer is about the caller's
    /// own groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl From<&Group> for GroupView {
    fn from(group: &Group) -> Self {
        GroupView {
            id: group.id.to_string(),
            name: group.name.clone(),
            owner: group.owner.to_string(),
            avatar: group.avatar.clone(),
            created_at: group.created_at,
            private: group.private,
            role: None,
        }
    }
}

impl From<GroupReply> for GroupView {
    fn from(reply: GroupReply) -> Self {
        GroupView {
            id: reply.group_id.to_string(),
            name: reply.name,
            owner: reply.owner.to_string(),
            avatar: (!reply.avatar.is_empty()).then_some(reply.avatar),
            created_at: reply.created_at,
            private: reply.private,
            role: None,
        }
    }
}

/// The caller's groups.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupList {
    /// Oldest first.
    pub groups: Vec<GroupView>,
}

/// A membership change's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MembershipView {
    /// The group.
    pub group: GroupView,
    /// False when nothing changed (already a member, or not one).
    pub changed: bool,
}

/// A member as the member list shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// The user's id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name.
    pub nickname: String,
    /// Avatar upload id.
    pub avatar: Option<String>,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Muted (may not send here) until then, ms since the Unix epoch; absent if not muted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
}

impl MemberView {
    fn of(member: &GroupMember, now: i64) -> MemberView {
        let user = UserView::from(&member.user);
        MemberView {
            id: user.id,
            username: user.username,
            nickname: user.nickname,
            avatar: user.avatar,
            role: member.membership.role.into(),
            muted_until: (member.membership.muted_until > now)
                .then_some(member.membership.muted_until),
        }
    }
}

/// A page of a group's members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberPage {
    /// Members by id, ascending.
    pub members: Vec<MemberView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

/// Members per page unless `limit` says otherwise.
pub const DEFAULT_MEMBER_PAGE: u32 = 100;
/// Most members per page.
pub const MAX_MEMBER_PAGE: u32 = 500;

/// The query of `GET /api/v1/groups/{id}/members` (read by hand from the query string, so that
/// bad numbers get problem responses; this type documents it).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Start after this member id (the last page's `next_after`); from the first when absent.
    pub after: Option<String>,
    /// Members per page, 1 to 500; 100 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A group to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Its name (1 to 64 characters).
    pub name: String,
    /// An upload id the caller made, to be the group's avatar.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Private: not found by search, joined through invites or by being added.
    #[serde(default)]
    pub private: bool,
}

/// `GET /api/v1/groups`: the caller's groups.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's groups, oldest first", body = GroupList),
    )
)]
pub async fn mine(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
) -> Result<Json<GroupList>, Problem> {
    let mut groups = Vec::new();
    for id in state.store.user_groups(user).await? {
        if let Some(group) = state.store.group(id).await? {
            let mut view = GroupView::from(&group);
            view.role = state
                .store
                .membership(id, user)
                .await?
                .map(|standing| standing.role.to_string());
            groups.push(view);
        }
    }
    Ok(Json(GroupList { groups }))
}

/// `POST /api/v1/groups`: create a group with the caller as owner and first member.
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    security(("bearer" = [])),
    request_body = NewGroup,
    responses(
        (status = 201, description = "Created", body = GroupView),
        (status = 404, description = "`not_found`: an avatar upload the caller does not own"),
        (status = 400, description = "`bad_frame`: not JSON; `invalid_input`: a bad name"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<NewGroup>,
) -> Result<(StatusCode, Json<GroupView>), Problem> {
    let reply = state
        .logic
        .create_group(CreateGroupRequest {
            owner: user,
            name: body.name,
            avatar: body.avatar.unwrap_or_default(),
            private: body.private,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(GroupView::from(reply))))
}

/// `POST /api/v1/groups/{id}/join`: become a member.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/join",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "A member (`changed` is false if already one)",
            body = MembershipView),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no such group"),
    )
)]
pub async fn join(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MembershipView>, Problem> {
    let request = GroupMemberRequest {
        group_id: positive_id(&id, "group")?,
        user_id: user,
        invite: String::new(),
    };
    let reply = state.logic.join_group(request).await?;
    Ok(Json(membership(reply)))
}

/// `POST /api/v1/groups/{id}/leave`: stop being a member.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/leave",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "Not a member (`changed` is false if not one before)",
            body = MembershipView),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no such group"),
    )
)]
pub async fn leave(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MembershipView>, Problem> {
    let request = GroupMemberRequest {
        group_id: positive_id(&id, "group")?,
        user_id: user,
        invite: String::new(),
    };
    let reply = state.logic.leave_group(request).await?;
    Ok(Json(membership(reply)))
}

/// `GET /api/v1/groups/{id}/members?after=ID&limit=N`: for members only.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/members",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id"), MemberQuery),
    responses(
        (status = 200, description = "A page of members by id, ascending", body = MemberPage),
        (status = 400, description = "`invalid_input`: a bad id, `after` or `limit`"),
        (status = 403, description = "`not_member`: the caller is not a member"),
    )
)]
pub async fn members(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<MemberPage>, Problem> {
    let group = positive_id(&id, "group")?;
    let after = after_id(&query)?;
    let limit = page_limit(&query, DEFAULT_MEMBER_PAGE, MAX_MEMBER_PAGE)?;
    require_member(&state, group, user).await?;
    let found = state.store.group_member_page(group, after, limit).await?;
    let now = natter_infra::now_millis();
    Ok(Json(MemberPage {
        next_after: next_after(
            found.last().map(|member| member.user.id),
            found.len(),
            limit,
        ),
        members: found
            .iter()
            .map(|member| MemberView::of(member, now))
            .collect(),
    }))
}

/// Refuses a caller who is not a member of `group`.
pub(crate) async fn require_member(state: &ApiState, group: i64, user: i64) -> Result<(), Problem> {
    if state.store.is_group_member(group, user).await? {
        Ok(())
    } else {
        Err(Problem::new(
            ErrorCode::NotMember,
            format!("you are not a member of group {group}"),
        ))
    }
}

/// The owner's changes to a group; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChange {
    /// A new name (1 to 64 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// An upload id the owner made, or `""` to clear the avatar.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Make the group private or public (the owner only).
    #[serde(default)]
    pub private: Option<bool>,
}

/// How many members of a group are online.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OnlineView {
    /// The group.
    pub group_id: String,
    /// Members with at least one live connection (users, not devices).
    pub online: u64,
}

/// Asks logic to apply an owner's action to a group.
async fn manage(
    state: &ApiState,
    request: ManageGroupRequest,
) -> Result<Json<MembershipView>, Problem> {
    let reply = state.logic.manage_group(request).await?;
    Ok(Json(membership(reply)))
}

/// `PATCH /api/v1/groups/{id}`: the owner renames the group or changes its avatar; members
/// get a `group_updated` frame.
#[utoipa::path(
    patch,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    request_body = GroupChange,
    responses(
        (status = 200, description = "The group now", body = MembershipView),
        (status = 400, description = "`bad_frame` or `invalid_input`"),
        (status = 403, description = "`forbidden`: the caller is not the owner"),
        (status = 404, description = "`not_found`: no such group, or an avatar upload the caller does not own"),
    )
)]
pub async fn update(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<GroupChange>,
) -> Result<Json<MembershipView>, Problem> {
    let group_id = positive_id(&id, "group")?;
    let current = state.store.group(group_id).await?.ok_or_else(|| {
        Problem::new(ErrorCode::NotFound, format!("there is no group {group_id}"))
    })?;
    let mut answer = None;
    if let Some(private) = change.private {
        let request = ManageGroupRequest {
            actor: user,
            group_id,
            action: GroupAction::SetPrivate.into(),
            private,
            ..ManageGroupRequest::default()
        };
        answer = Some(manage(&state, request).await?);
    }
    if change.name.is_some() || change.avatar.is_some() || answer.is_none() {
        let request = ManageGroupRequest {
            actor: user,
            group_id,
            action: GroupAction::Update.into(),
            name: change.name.unwrap_or(current.name),
            avatar: change.avatar.or(current.avatar).unwrap_or_default(),
            ..ManageGroupRequest::default()
        };
        answer = Some(manage(&state, request).await?);
    }
    answer.ok_or_else(|| Problem::new(ErrorCode::Internal, "no change was made"))
}

/// `DELETE /api/v1/groups/{id}/members/{user}`: the owner removes a member, who gets a
/// `group_removed` frame.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/members/{user}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The group's id"),
        ("user" = String, Path, description = "The member's id"),
    ),
    responses(
        (status = 200, description = "Removed (`changed` is false if they were not a member)", body = MembershipView),
        (status = 400, description = "`invalid_input`: not positive ids"),
        (status = 403, description = "`forbidden`: the caller is not the owner, or removes themself"),
        (status = 404, description = "`not_found`: no such group"),
    )
)]
pub async fn remove_member(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((id, member)): Path<(String, String)>,
) -> Result<Json<MembershipView>, Problem> {
    let request = ManageGroupRequest {
        actor: user,
        group_id: positive_id(&id, "group")?,
        action: GroupAction::Remove.into(),
        user_id: positive_id(&member, "user")?,
        ..ManageGroupRequest::default()
    };
    manage(&state, request).await
}

/// `DELETE /api/v1/groups/{id}`: the owner disbands the group; every member gets a
/// `group_removed` frame. Its history stays in the log but no one can read it any more.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "Disbanded", body = MembershipView),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 403, description = "`forbidden`: the caller is not the owner"),
        (status = 404, description = "`not_found`: no such group"),
    )
)]
pub async fn disband(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MembershipView>, Problem> {
    let request = ManageGroupRequest {
        actor: user,
        group_id: positive_id(&id, "group")?,
        action: GroupAction::Disband.into(),
        ..ManageGroupRequest::default()
    };
    manage(&state, request).await
}

/// `GET /api/v1/groups/{id}/online`: how many members are online, for members.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/online",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The online count", body = OnlineView),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 403, description = "`not_member`: the caller is not a member"),
    )
)]
pub async fn online(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OnlineView>, Problem> {
    let group = positive_id(&id, "group")?;
    require_member(&state, group, user).await?;
    let reply = state
        .logic
        .online(OnlineRequest {
            user_ids: Vec::new(),
            group_id: group,
        })
        .await?;
    Ok(Json(OnlineView {
        group_id: group.to_string(),
        online: reply.group_online,
    }))
}

pub(crate) fn membership(reply: GroupReply) -> MembershipView {
    MembershipView {
        changed: reply.changed,
        group: GroupView::from(reply),
    }
}

/// A user for the owner or an admin to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The user (a friend of the caller).
    pub user_id: String,
}

/// `POST /api/v1/groups/{id}/members` `{user_id}`: the owner or an admin adds a friend of
/// theirs; the added user's devices get `group_added`.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/members",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    request_body = NewMember,
    responses(
        (status = 200, description = "Added (`changed` is false if already a member)", body = MembershipView),
        (status = 400, description = "`invalid_input`: not positive ids"),
        (status = 403, description = "`forbidden`: the caller is not the owner or an admin; \
            `not_friends`: the user is not the caller's friend"),
        (status = 404, description = "`not_found`: no such group"),
    )
)]
pub async fn add_member(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewMember>,
) -> Result<Json<MembershipView>, Problem> {
    let request = ManageGroupRequest {
        actor: user,
        group_id: positive_id(&id, "group")?,
        action: GroupAction::Add.into(),
        user_id: positive_id(&body.user_id, "user")?,
        ..ManageGroupRequest::default()
    };
    manage(&state, request).await
}

/// A change to a member's standing; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChange {
    /// `admin` or `member` (the owner only).
    #[serde(default)]
    pub role: Option<String>,
    /// Muted until then (ms since the Unix epoch); 0 lifts a mute (the owner, or an admin
    /// for plain members).
    #[serde(default)]
    pub muted_until: Option<i64>,
}

/// `PATCH /api/v1/groups/{id}/members/{user}` `{role?, muted_until?}`: the owner makes a
/// member an admin or a member again; the owner or an admin mutes a member (who may not send
/// to the group until then: `muted`). The members get `group_member`.
#[utoipa::path(
    patch,
    path = "/api/v1/groups/{id}/members/{user}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The group's id"),
        ("user" = String, Path, description = "The member's id"),
    ),
    request_body = MemberChange,
    responses(
        (status = 200, description = "Changed (`changed` is false if it already was so)", body = MembershipView),
        (status = 400, description = "`invalid_input`: bad ids or role"),
        (status = 403, description = "`forbidden`: not allowed to the caller's role"),
        (status = 404, description = "`not_found`: no such group or member"),
    )
)]
pub async fn change_member(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((id, member)): Path<(String, String)>,
    JsonBody(change): JsonBody<MemberChange>,
) -> Result<Json<MembershipView>, Problem> {
    let group_id = positive_id(&id, "group")?;
    let member = positive_id(&member, "user")?;
    let base = ManageGroupRequest {
        actor: user,
        group_id,
        user_id: member,
        ..ManageGroupRequest::default()
    };
    let mut answer = None;
    if let Some(role) = change.role {
        let request = ManageGroupRequest {
            action: GroupAction::SetRole.into(),
            role,
            ..base.clone()
        };
        answer = Some(manage(&state, request).await?);
    }
    if let Some(until) = change.muted_until {
        let request = ManageGroupRequest {
            action: GroupAction::Mute.into(),
            until,
            ..base
        };
        answer = Some(manage(&state, request).await?);
    }
    answer.ok_or_else(|| Problem::new(ErrorCode::InvalidInput, "give role or muted_until"))
}
