//! Groups and membership: creating, joining, leaving and the owner's changes, and telling the
//! connect nodes of a membership change before it is answered.

use natter_infra::now_millis;
use natter_infra::store::{Group, Membership, ROLE_ADMIN, ROLE_MEMBER, ROLE_OWNER};
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

    /// A user's standing in a group, or `not_member`.
    pub(crate) async fn standing(&self, group: i64, user: i64) -> Result<Membership, Status> {
        self.store
            .membership(group, user)
            .await
            .map_err(status)?
            .ok_or_else(|| {
                ErrorCode::NotMember.status(format!("you are not a member of group {group}"))
            })
    }

    /// Refuses a group send from a non-member (`not_member`) or a member muted there (`muted`).
    pub(crate) async fn refuse_if_muted(&self, group: i64, sender: i64) -> Result<(), Status> {
        let standing = self.standing(group, sender).await?;
        if standing.muted_until > now_millis() {
            return Err(ErrorCode::Muted.status(format!(
                "an admin muted you in group {group} until {} (ms since the Unix epoch)",
                standing.muted_until
            )));
        }
        Ok(())
    }

    /// Adds `user` to `group` as a reader from the log's present end on; false if already in.
    async fn add_member(&self, group: &Group, user: i64) -> Result<bool, Status> {
        let object = ObjectId::Group(group.id);
        // A new member reads from the group's present on; older messages are history.
        let end = self.log.end(&object).await.map_err(status)?;
        let joined = self
            .store
            .add_group_member(group.id, user, now_millis())
            .await
            .map_err(status)?;
        if joined {
            self.store
                .advance_ack_cursor(user, &object, end)
                .await
                .map_err(status)?;
            self.announce_membership(user, vec![group.id], Vec::new())
                .await;
            self.schedule_group_online(group.id);
        }
        Ok(joined)
    }

    /// Tells a group's members that one member's standing changed.
    async fn announce_standing(&self, group: i64, user: i64) -> Result<(), Status> {
        if let Some(standing) = self.store.membership(group, user).await.map_err(status)? {
            let frame = ServerFrame::GroupMember {
                group_id: group.to_string(),
                user_id: user.to_string(),
                role: standing.role.into(),
                muted_until: (standing.muted_until > now_millis()).then_some(standing.muted_until),
            };
            self.notify_group(group, &frame).await;
        }
        Ok(())
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
        private: request.private,
    };
    logic.store.create_group(&group).await.map_err(status)?;
    logic
        .announce_membership(group.owner, vec![group.id], Vec::new())
        .await;
    Ok(group_reply(&group, true))
}

/// `join_group`: a new member, who reads the group's log from its present end on. A public
/// group takes anyone; a private one only a holder of a good invite (to anyone else it is
/// `not_found`, so its existence is not given away).
pub(crate) async fn join_group(
    logic: &LogicService,
    request: GroupMemberRequest,
) -> Result<GroupReply, Status> {
    if !request.invite.is_empty() {
        return join_by_invite(logic, &request.invite, request.user_id).await;
    }
    let group = logic.existing_group(request.group_id).await?;
    if group.private
        && !logic
            .store
            .is_group_member(group.id, request.user_id)
            .await
            .map_err(status)?
    {
        return Err(ErrorCode::NotFound.status(format!(
            "there is no public group {}; a private group is joined through an invite",
            group.id
        )));
    }
    let joined = logic.add_member(&group, request.user_id).await?;
    Ok(group_reply(&group, joined))
}

/// A join through an invite: a member already in uses nothing; anyone else uses one of the
/// invite's joins, if it has one left and has not expired.
async fn join_by_invite(logic: &LogicService, code: &str, user: i64) -> Result<GroupReply, Status> {
    let gone =
        || ErrorCode::NotFound.status("that invite does not exist, has expired or is used up");
    let invite = logic
        .store
        .invite(code)
        .await
        .map_err(status)?
        .ok_or_else(gone)?;
    let group = logic
        .existing_group(invite.group_id)
        .await
        .map_err(|_| gone())?;
    if logic
        .store
        .is_group_member(group.id, user)
        .await
        .map_err(status)?
    {
        return Ok(group_reply(&group, false));
    }
    logic
        .store
        .use_invite(code, now_millis())
        .await
        .map_err(status)?
        .ok_or_else(gone)?;
    let joined = logic.add_member(&group, user).await?;
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

/// Whether a member with role `actor` may act on one with role `target` (remove, mute): the
/// owner on anyone else, an admin on plain members.
fn outranks(actor: &str, target: &str) -> bool {
    match actor {
        ROLE_OWNER => target != ROLE_OWNER,
        ROLE_ADMIN => target == ROLE_MEMBER,
        _ => false,
    }
}

/// `manage_group`: the owner's and admins' changes. The owner does everything; an admin
/// renames, adds, and removes or mutes plain members; disbanding, roles and privacy are the
/// owner's.
pub(crate) async fn manage_group(
    logic: &LogicService,
    request: ManageGroupRequest,
) -> Result<GroupReply, Status> {
    let mut group = logic.existing_group(request.group_id).await?;
    let action = GroupAction::try_from(request.action).unwrap_or(GroupAction::Unspecified);
    let actor = match logic
        .store
        .membership(group.id, request.actor)
        .await
        .map_err(status)?
    {
        Some(standing) => standing.role,
        None => return Err(ErrorCode::Forbidden.status("only the group's members may do that")),
    };
    let owner_only = matches!(
        action,
        GroupAction::Disband | GroupAction::SetRole | GroupAction::SetPrivate
    );
    if actor == ROLE_MEMBER || (owner_only && actor != ROLE_OWNER) {
        return Err(ErrorCode::Forbidden.status(if owner_only {
            "only the group's owner may do that"
        } else {
            "only the group's owner and admins may do that"
        }));
    }
    let target = || async {
        logic
            .store
            .membership(group.id, request.user_id)
            .await
            .map_err(status)
    };
    let changed = match action {
        GroupAction::Update => {
            group.name = validate::group_name(&request.name)?;
            group.avatar = logic.avatar_of(request.actor, &request.avatar).await?;
            let changed = logic
                .store
                .update_group(group.id, &group.name, group.avatar.as_deref())
                .await
                .map_err(status)?;
            announce_group(logic, &group).await;
            changed
        }
        GroupAction::SetPrivate => {
            group.private = request.private;
            let changed = logic
                .store
                .set_group_private(group.id, group.private)
                .await
                .map_err(status)?;
            announce_group(logic, &group).await;
            changed
        }
        GroupAction::Remove => {
            let Some(standing) = target().await? else {
                return Ok(group_reply(&group, false));
            };
            if !outranks(actor, standing.role) {
                return Err(ErrorCode::Forbidden.status(format!(
                    "an {actor} cannot remove the group's {}",
                    standing.role
                )));
            }
            logic
                .end_membership(group.id, request.user_id, "removed")
                .await?
        }
        GroupAction::Add => {
            if !logic
                .may_reach(request.actor, ObjectId::User(request.user_id))
                .await?
            {
                return Err(ErrorCode::NotFriends
                    .status(format!("user {} is not your friend", request.user_id)));
            }
            let added = logic.add_member(&group, request.user_id).await?;
            if added {
                let frame = ServerFrame::GroupAdded {
                    group_id: group.id.to_string(),
                    name: group.name.clone(),
                    by: request.actor.to_string(),
                };
                logic.notify_users(vec![request.user_id], &frame).await;
            }
            added
        }
        GroupAction::Mute => {
            let Some(standing) = target().await? else {
                return Err(ErrorCode::NotFound.status("that user is not a member"));
            };
            if !outranks(actor, standing.role) {
                return Err(ErrorCode::Forbidden.status(format!(
                    "an {actor} cannot mute the group's {}",
                    standing.role
                )));
            }
            let until = request.until.max(0);
            let changed = logic
                .store
                .set_member_muted(group.id, request.user_id, until)
                .await
                .map_err(status)?;
            logic.announce_standing(group.id, request.user_id).await?;
            changed
        }
        GroupAction::SetRole => {
            let role = match request.role.as_str() {
                ROLE_ADMIN => ROLE_ADMIN,
                ROLE_MEMBER => ROLE_MEMBER,
                _ => {
                    return Err(ErrorCode::InvalidInput.status("a role is \"admin\" or \"member\""));
                }
            };
            let Some(standing) = target().await? else {
                return Err(ErrorCode::NotFound.status("that user is not a member"));
            };
            if standing.role == ROLE_OWNER {
                return Err(ErrorCode::Forbidden.status("the owner's role does not change"));
            }
            let changed = logic
                .store
                .set_member_role(group.id, request.user_id, role)
                .await
                .map_err(status)?;
            logic.announce_standing(group.id, request.user_id).await?;
            changed && standing.role != role
        }
        GroupAction::Disband => {
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
        GroupAction::Unspecified => {
            return Err(
                ErrorCode::InvalidInput.status(format!("unknown group action {}", request.action))
            );
        }
    };
    Ok(group_reply(&group, changed))
}

/// Tells the members a group's name, avatar or privacy changed.
async fn announce_group(logic: &LogicService, group: &Group) {
    let frame = ServerFrame::GroupUpdated {
        group_id: group.id.to_string(),
        name: group.name.clone(),
        avatar: group.avatar.clone(),
        private: group.private,
    };
    logic.notify_group(group.id, &frame).await;
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
        private: group.private,
    }
}
