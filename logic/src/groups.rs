//! Groups and membership: creating, joining, leaving and the owner's changes, and telling the
//! connect nodes of a membership change before it is answered.

use natter_infra::now_millis;
use natter_infra::store::Group;
use natter_proto::frame::ServerFrame;
use natter_proto::v1::{
    CreateGroupRequest, GroupAction, GroupMemberRequest, GroupMembershipRequest, GroupReply,
    ManageGroupRequest,
};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};
use crate::validate;

impl LogicService {
    /// Tells the connect nodes holding a user's connections about joins and leaves, through
    /// task, before the change is answered, so a message sent right after reaches the
    /// user's connections live. A failure is logged, not returned: the membership is stored,
    /// and the user's connections pick it up when they reconnect.
    pub(crate) async fn announce_membership(&self, user_id: i64, joined: Vec<i64>, left: Vec<i64>) {
        let request = GroupMembershipRequest {
            user_id,
            joined,
            left,
        };
        if let Err(error) = self.task.update_groups(request).await {
            tracing::warn!(%error, "announcing a group membership change failed");
        }
    }

    /// Ends a user's membership (`reason`: `left` or `removed`): their online connections
    /// leave the group's list, all their devices get `group_removed`, and the group's online
    /// count is refreshed. False if they were not a member.
    pub(crate) async fn end_membership(
        &self,
        group: i64,
        user: i64,
        reason: &str,
    ) -> Result<bool, Status> {
        let ended = self
            .store
            .remove_group_member(group, user)
            .await
            .map_err(status)?;
        if ended {
            self.announce_membership(user, Vec::new(), vec![group])
                .await;
            let frame = ServerFrame::GroupRemoved {
                group_id: group.to_string(),
                reason: reason.into(),
            };
            self.notify_users(vec![user], &frame).await;
            self.schedule_group_online(group);
        }
        Ok(ended)
    }

    /// The group, or `not_found`.
    pub(crate) async fn existing_group(&self, group_id: i64) -> Result<Group, Status> {
        self.store
            .group(group_id)
            .await
            .map_err(status)?
            .ok_or_else(|| ErrorCode::NotFound.status(format!("there is no group {group_id}")))
    }
}

/// `create_group`: a new group with its owner as the first member.
pub(crate) async fn create_group(
    logic: &LogicService,
    request: CreateGroupRequest,
) -> Result<GroupReply, Status> {
    if request.owner <= 0 {
        return Err(ErrorCode::Unauthorized.status("no owner"));
    }
    let name = validate::group_name(&request.name)?;
    let avatar = logic.avatar_of(request.owner, &request.avatar).await?;
    let group = Group {
        id: logic.ids.next_id().map_err(status)? as i64,
        name,
        owner: request.owner,
        avatar,
        created_at: now_millis(),
    };
    logic.store.create_group(&group).await.map_err(status)?;
    logic
        .announce_membership(group.owner, vec![group.id], Vec::new())
        .await;
    Ok(group_reply(&group, true))
}

/// `join_group`: a new member, who reads the group's log from its present end on.
pub(crate) async fn join_group(
    logic: &LogicService,
    request: GroupMemberRequest,
) -> Result<GroupReply, Status> {
    let group = logic.existing_group(request.group_id).await?;
    let object = ObjectId::Group(group.id);
    // A new member reads from the group's present on; older messages are history.
    let end = logic.log.end(&object).await.map_err(status)?;
    let joined = logic
        .store
        .add_group_member(group.id, request.user_id, now_millis())
        .await
        .map_err(status)?;
    if joined {
        logic
            .store
            .advance_ack_cursor(request.user_id, &object, end)
            .await
            .map_err(status)?;
        logic
            .announce_membership(request.user_id, vec![group.id], Vec::new())
            .await;
        logic.schedule_group_online(group.id);
    }
    Ok(group_reply(&group, joined))
}

/// `leave_group`: a member leaves (the owner may not).
pub(crate) async fn leave_group(
    logic: &LogicService,
    request: GroupMemberRequest,
) -> Result<GroupReply, Status> {
    let group = logic.existing_group(request.group_id).await?;
    if group.owner == request.user_id {
        return Err(ErrorCode::Forbidden
            .status("the owner cannot leave the group; hand it over or disband it"));
    }
    let left = logic
        .end_membership(group.id, request.user_id, "left")
        .await?;
    Ok(group_reply(&group, left))
}

/// `manage_group`: the owner renames the group, removes a member or disbands it.
pub(crate) async fn manage_group(
    logic: &LogicService,
    request: ManageGroupRequest,
) -> Result<GroupReply, Status> {
    let mut group = logic.existing_group(request.group_id).await?;
    if group.owner != request.actor {
        return Err(ErrorCode::Forbidden.status("only the group's owner may do that"));
    }
    let changed = match GroupAction::try_from(request.action) {
        Ok(GroupAction::Update) => {
            group.name = validate::group_name(&request.name)?;
            group.avatar = logic.avatar_of(request.actor, &request.avatar).await?;
            let changed = logic
                .store
                .update_group(group.id, &group.name, group.avatar.as_deref())
                .await
                .map_err(status)?;
            let frame = ServerFrame::GroupUpdated {
                group_id: group.id.to_string(),
                name: group.name.clone(),
                avatar: group.avatar.clone(),
            };
            logic.notify_group(group.id, &frame).await;
            changed
        }
        Ok(GroupAction::Remove) => {
            if request.user_id == group.owner {
                return Err(ErrorCode::Forbidden.status("the owner cannot be removed"));
            }
            logic
                .end_membership(group.id, request.user_id, "removed")
                .await?
        }
        Ok(GroupAction::Disband) => {
            let members = logic.store.disband_group(group.id).await.map_err(status)?;
            let frame = ServerFrame::GroupRemoved {
                group_id: group.id.to_string(),
                reason: "disbanded".into(),
            };
            logic.notify_users(members.clone(), &frame).await;
            for member in members {
                logic
                    .announce_membership(member, Vec::new(), vec![group.id])
                    .await;
            }
            true
        }
        Ok(GroupAction::Unspecified) | Err(_) => {
            return Err(
                ErrorCode::InvalidInput.status(format!("unknown group action {}", request.action))
            );
        }
    };
    Ok(group_reply(&group, changed))
}

/// A group as the rpc answers it.
fn group_reply(group: &Group, changed: bool) -> GroupReply {
    GroupReply {
        group_id: group.id,
        name: group.name.clone(),
        owner: group.owner,
        created_at: group.created_at,
        changed,
        avatar: group.avatar.clone().unwrap_or_default(),
    }
}
