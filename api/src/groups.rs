//! Groups: create, join, leave, and the caller's own list. Membership changes go through
//! logic, which also moves the caller's online connections in and out of the group's lists.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use natter_infra::store::Group;
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
}

impl From<&Group> for GroupView {
    fn from(group: &Group) -> Self {
        GroupView {
            id: group.id.to_string(),
            name: group.name.clone(),
            owner: group.owner.to_string(),
            avatar: group.avatar.clone(),
            created_at: group.created_at,
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

/// A page of a group's members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberPage {
    /// Members by id, ascending.
    pub members: Vec<UserView>,
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
            groups.push(GroupView::from(&group));
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
    let found = state.store.group_members(group, after, limit).await?;
    Ok(Json(MemberPage {
        next_after: next_after(found.last().map(|member| member.id), found.len(), limit),
        members: found.iter().map(UserView::from).collect(),
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
    let request = ManageGroupRequest {
        actor: user,
        group_id,
        action: GroupAction::Update.into(),
        name: change.name.unwrap_or(current.name),
        avatar: change.avatar.or(current.avatar).unwrap_or_default(),
        user_id: 0,
    };
    manage(&state, request).await
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

fn membership(reply: GroupReply) -> MembershipView {
    MembershipView {
        changed: reply.changed,
        group: GroupView::from(reply),
    }
}
