//! Groups: create, join, leave, and the caller's own list. Membership changes go through
//! logic, which also moves the caller's online connections in and out of the group's lists.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use natter_infra::store::Group;
use natter_proto::ErrorCode;
use natter_proto::v1::{CreateGroupRequest, GroupMemberRequest, GroupReply};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthUser, UserView};
use crate::params::{page_limit, positive_id, query_number};
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// A group as listed (ids as strings: JavaScript numbers lose precision above 2^53).
#[derive(Debug, Serialize)]
pub struct GroupView {
    /// The group's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its owner's id.
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
            avatar: None,
            created_at: reply.created_at,
        }
    }
}

/// The caller's groups.
#[derive(Debug, Serialize)]
pub struct GroupList {
    /// Oldest first.
    pub groups: Vec<GroupView>,
}

/// A membership change's outcome.
#[derive(Debug, Serialize)]
pub struct MembershipView {
    /// The group.
    pub group: GroupView,
    /// False when nothing changed (already a member, or not one).
    pub changed: bool,
}

/// A page of a group's members.
#[derive(Debug, Serialize)]
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

/// A group to create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Its name (1 to 64 characters).
    pub name: String,
}

/// `GET /api/v1/groups`: the caller's groups.
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
        })
        .await?;
    Ok((StatusCode::CREATED, Json(GroupView::from(reply))))
}

/// `POST /api/v1/groups/{id}/join`.
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

/// `POST /api/v1/groups/{id}/leave`.
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
pub async fn members(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<MemberPage>, Problem> {
    let group = positive_id(&id, "group")?;
    let after = query_number(&query, "after", 0)?;
    let limit = page_limit(&query, DEFAULT_MEMBER_PAGE, MAX_MEMBER_PAGE)?;
    if !state.store.is_group_member(group, user).await? {
        return Err(Problem::new(
            ErrorCode::NotMember,
            format!("you are not a member of group {group}"),
        ));
    }
    let found = state.store.group_members(group, after, limit).await?;
    let next_after = (found.len() == limit as usize)
        .then(|| found.last().map(|member| member.id.to_string()))
        .flatten();
    Ok(Json(MemberPage {
        members: found.iter().map(UserView::from).collect(),
        next_after,
    }))
}

fn membership(reply: GroupReply) -> MembershipView {
    MembershipView {
        changed: reply.changed,
        group: GroupView::from(reply),
    }
}
