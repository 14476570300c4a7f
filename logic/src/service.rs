//! The `Logic` service: the one place a message is checked, named and made durable.

use std::collections::HashMap;
use std::sync::Arc;

use natter_infra::ids::IdGenerator;
use natter_infra::positions::PositionCache;
use natter_infra::sessions::SessionRef;
use natter_infra::store::Group;
use natter_infra::{InfraError, MessageLog, Sessions, Store, now_millis};
use natter_proto::frame::ServerFrame;
use natter_proto::handle::TaskHandle;
use natter_proto::v1::logic_server::Logic;
use natter_proto::v1::{
    AckOutcome, AckReply, AckRequest, Acknowledgement, ConnectedReply, ConnectionEvent,
    CreateGroupRequest, Cursor, Empty, EphemeralPushRequest, GroupMemberRequest,
    GroupMembershipRequest, GroupReply, ManageGroupRequest, Message, NotifyRequest, OnlineReply,
    OnlineRequest, ReadReply, ReadRequest, RecallReply, RecallRequest, SendReply, SendRequest,
    SyncReply, SyncRequest, SystemPushReply, SystemPushRequest, TypingRequest, WakeRequest,
};
use natter_proto::{ErrorCode, ObjectId};
use tonic::{Request, Response, Status};

use crate::admission::SendAdmission;
use crate::config::LogicConfig;
use crate::social::PendingGroupCounts;
use crate::validate::{self, Target};

/// The logic layer's service implementation.
#[derive(Clone)]
pub struct LogicService {
    pub(crate) config: LogicConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) log: Arc<dyn MessageLog>,
    pub(crate) sessions: Arc<dyn Sessions>,
    pub(crate) ids: Arc<IdGenerator>,
    /// Where wakes for grown objects go.
    pub(crate) task: TaskHandle,
    /// Groups with a `group_online` frame waiting for its interval.
    pub(crate) pending_group_counts: Arc<PendingGroupCounts>,
    /// The bound on sends in progress.
    admission: SendAdmission,
    /// The highest seq known to exist per object (appended here, or read as an end), so an
    /// ack within it is valid without asking the log.
    known_ends: Arc<PositionCache<ObjectId>>,
}

impl std::fmt::Debug for LogicService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An infrastructure error as the status callers see.
pub(crate) fn status(error: InfraError) -> Status {
    error.into_status()
}

/// Most users one system push may name.
const MAX_PUSH_USERS: usize = 1000;

impl LogicService {
    /// A logic service over the given ports; wakes go to `task`.
    pub fn new(
        config: LogicConfig,
        store: Arc<dyn Store>,
        log: Arc<dyn MessageLog>,
        sessions: Arc<dyn Sessions>,
        ids: Arc<IdGenerator>,
        task: TaskHandle,
    ) -> Self {
        LogicService {
            admission: SendAdmission::new(config.max_sends_in_flight, config.send_latency_target()),
            config,
            store,
            log,
            sessions,
            ids,
            task,
            pending_group_counts: Arc::default(),
            known_ends: Arc::default(),
        }
    }

    /// The objects a user follows: their inbox, then the logs of their groups.
    async fn followed(&self, user: i64) -> Result<Vec<ObjectId>, Status> {
        let groups = self.store.user_groups(user).await.map_err(status)?;
        Ok(std::iter::once(ObjectId::User(user))
            .chain(groups.into_iter().map(ObjectId::Group))
            .collect())
    }

    /// The object a user acknowledges, if it is theirs to read: their own inbox needs no
    /// query, a group a membership check.
    async fn acknowledgeable(&self, user: i64, object: &str) -> Result<ObjectId, Status> {
        let parsed: ObjectId = object
            .parse()
            .map_err(|error| ErrorCode::InvalidInput.status(format!("{error}")))?;
        let theirs = match parsed {
            ObjectId::User(owner) => owner == user,
            ObjectId::Group(group) => self
                .store
                .is_group_member(group, user)
                .await
                .map_err(status)?,
        };
        if !theirs {
            return Err(ErrorCode::Forbidden.status(format!("{parsed} is not yours to read")));
        }
        Ok(parsed)
    }

    /// One acknowledgement: checks it and raises the user's cursor; returns the cursor.
    async fn acknowledge(&self, ack: Acknowledgement) -> Result<u64, Status> {
        let object = self.acknowledgeable(ack.user_id, &ack.object).await?;
        // Most acks are of messages this process appended or has seen: no query then.
        if self
            .known_ends
            .get(&object)
            .is_none_or(|known| known < ack.seq)
        {
            let end = self.log.end(&object).await.map_err(status)?;
            self.known_ends.raise(object, end);
            if ack.seq > end {
                return Err(ErrorCode::BadCursor.status(format!(
                    "seq {} is beyond the end of {object} ({end})",
                    ack.seq
                )));
            }
        }
        self.store
            .advance_ack_cursor(ack.user_id, &object, ack.seq)
            .await
            .map_err(status)
    }

    fn parse_followed(&self, followed: &[ObjectId], object: &str) -> Result<ObjectId, Status> {
        let object: ObjectId = object
            .parse()
            .map_err(|error| ErrorCode::InvalidInput.status(format!("{error}")))?;
        if !followed.contains(&object) {
            return Err(ErrorCode::Forbidden.status(format!("{object} is not yours to read")));
        }
        Ok(object)
    }

    /// Tells the connect nodes holding a user's connections about joins and leaves, through
    /// task, before the change is answered, so a message sent right after reaches the
    /// user's connections live. A failure is logged, not returned: the membership is stored,
    /// and the user's connections pick it up when they reconnect.
    async fn announce_membership(&self, user_id: i64, joined: Vec<i64>, left: Vec<i64>) {
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
    async fn end_membership(&self, group: i64, user: i64, reason: &str) -> Result<bool, Status> {
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
    async fn existing_group(&self, group_id: i64) -> Result<Group, Status> {
        self.store
            .group(group_id)
            .await
            .map_err(status)?
            .ok_or_else(|| ErrorCode::NotFound.status(format!("there is no group {group_id}")))
    }

    /// Whether `sender` may address `target`: a friend other than themself, or a group they
    /// are a member of.
    pub(crate) async fn may_reach(&self, sender: i64, target: Target) -> Result<bool, Status> {
        match target {
            Target::User(peer) => {
                Ok(peer != sender && self.store.are_friends(sender, peer).await.map_err(status)?)
            }
            Target::Group(group) => self
                .store
                .is_group_member(group, sender)
                .await
                .map_err(status),
        }
    }

    /// Appends each copy to its object's log, wakes task for them, and stores them for
    /// history. The log is the durable record: if the store fails the copies still go out,
    /// and task repairs the store as it delivers them.
    pub(crate) async fn append_copies(
        &self,
        copies: Vec<(ObjectId, Message)>,
    ) -> Result<Vec<Message>, Status> {
        match self.write_copies(copies).await {
            (_, Some(error)) => Err(status(error)),
            (written, None) => Ok(written),
        }
    }

    /// Appends the copies in one request (the log writes them together, not one after
    /// another), then wakes task for and stores those written, even when another failed.
    /// Returns the written copies with their object and seq, and the first failure.
    pub(crate) async fn write_copies(
        &self,
        copies: Vec<(ObjectId, Message)>,
    ) -> (Vec<Message>, Option<InfraError>) {
        let outcomes = self.log.append_many(&copies).await;
        let mut written = Vec::with_capacity(copies.len());
        let mut objects = Vec::with_capacity(copies.len());
        let mut failure = None;
        for ((object, mut copy), outcome) in copies.into_iter().zip(outcomes) {
            match outcome {
                Ok(seq) => {
                    self.known_ends.raise(object, seq);
                    copy.seq = seq;
                    copy.object = object.to_string();
                    written.push(copy);
                    objects.push(object);
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        // A log whose numbering starts delivery (the partitioned one) needs no wake.
        if !self.log.delivers_appends() {
            self.wake(objects);
        }
        // A log that numbers into the store (the embedded log, the partitioned one) has
        // stored them already.
        if self.log.stores_messages() {
            return (written, failure);
        }
        if let Err(error) = self.store.put_messages(&written).await {
            let id = written.first().map_or(0, |copy| copy.id);
            tracing::warn!(%error, id, "storing accepted messages failed; task will repair it");
        }
        (written, failure)
    }

    /// Marks objects dirty at task; best effort (task also recovers lagging objects on start).
    pub(crate) fn wake(&self, objects: Vec<ObjectId>) {
        let task = self.task.clone();
        let request = WakeRequest {
            objects: objects.iter().map(ToString::to_string).collect(),
        };
        tokio::spawn(async move {
            if let Err(error) = task.wake(request).await {
                tracing::warn!(%error, "waking task failed; delivery waits for its recovery");
            }
        });
    }
}

#[tonic::async_trait]
impl Logic for LogicService {
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendReply>, Status> {
        // Past the bound the send is refused now, with a retry hint, rather than queued.
        let slot = self.admission.admit()?;
        // The work runs in a task of its own: a caller that goes away (its connect node
        // killed) must not cancel a send between its claim and the claim's completion, which
        // would leave the cid stuck "in progress".
        let service = self.clone();
        let request = request.into_inner();
        tokio::spawn(async move {
            let reply = service.send_once(request).await;
            drop(slot);
            reply
        })
        .await
        .map_err(|error| ErrorCode::Internal.status(format!("send failed: {error}")))?
        .map(Response::new)
    }

    async fn sync(&self, request: Request<SyncRequest>) -> Result<Response<SyncReply>, Status> {
        let request = request.into_inner();
        let user = request.user_id;
        let followed = self.followed(user).await?;
        let mut given = HashMap::new();
        for cursor in &request.cursors {
            match self.parse_followed(&followed, &cursor.object) {
                Ok(object) => {
                    given.insert(object, cursor.seq);
                }
                // A group the client still remembers but the user has left: nothing to send.
                Err(_) if cursor.object.starts_with("group:") => {}
                Err(refused) => return Err(refused),
            }
        }
        let limit = match request.limit {
            0 => self.config.sync_page_max,
            asked => asked.min(self.config.sync_page_max),
        } as usize;
        let mut reply = SyncReply::default();
        for object in followed {
            let after = match given.get(&object) {
                Some(seq) => *seq,
                None => self.store.ack_cursor(user, &object).await.map_err(status)?,
            };
            let room = limit.saturating_sub(reply.messages.len());
            // One more than fits tells whether this object has more after the page.
            let mut messages = if room == 0 {
                reply.more |= self.log.end(&object).await.map_err(status)? > after;
                Vec::new()
            } else {
                self.log
                    .read(&object, after, room + 1)
                    .await
                    .map_err(status)?
            };
            if messages.len() > room {
                reply.more = true;
                messages.truncate(room);
            }
            let position = messages.last().map_or(after, |message| message.seq);
            reply.cursors.push(Cursor {
                object: object.to_string(),
                seq: position,
            });
            reply.messages.extend(messages);
        }
        Ok(Response::new(reply))
    }

    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckReply>, Status> {
        // Each acknowledgement on its own, all at once: one refused refuses only itself.
        let outcomes = request.into_inner().acks.into_iter().map(|ack| async move {
            match self.acknowledge(ack).await {
                Ok(seq) => AckOutcome {
                    seq,
                    code: String::new(),
                    message: String::new(),
                },
                Err(status) => AckOutcome {
                    seq: 0,
                    code: ErrorCode::of_status(&status).as_str().to_owned(),
                    message: status.message().to_owned(),
                },
            }
        });
        let outcomes = futures_util::future::join_all(outcomes).await;
        Ok(Response::new(AckReply { outcomes }))
    }

    async fn connected(
        &self,
        request: Request<ConnectionEvent>,
    ) -> Result<Response<ConnectedReply>, Status> {
        let (user, session) = session_of(request.into_inner());
        self.sessions
            .add_session(user, &session)
            .await
            .map_err(status)?;
        // Presence is news for friends, not a condition of connecting.
        if let Err(error) = self.came_online(user).await {
            tracing::warn!(%error, user, "announcing that a user came online failed");
        }
        let group_ids = self.store.user_groups(user).await.map_err(status)?;
        Ok(Response::new(ConnectedReply { group_ids }))
    }

    async fn disconnected(
        &self,
        request: Request<ConnectionEvent>,
    ) -> Result<Response<Empty>, Status> {
        let (user, session) = session_of(request.into_inner());
        self.sessions
            .remove_session(user, &session)
            .await
            .map_err(status)?;
        self.maybe_went_offline(user).await?;
        Ok(Response::new(Empty {}))
    }

    async fn create_group(
        &self,
        request: Request<CreateGroupRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        let request = request.into_inner();
        if request.owner <= 0 {
            return Err(ErrorCode::Unauthorized.status("no owner"));
        }
        let name = validate::group_name(&request.name)?;
        let avatar = self.avatar_of(request.owner, &request.avatar).await?;
        let group = Group {
            id: self.ids.next_id().map_err(status)? as i64,
            name,
            owner: request.owner,
            avatar,
            created_at: now_millis(),
        };
        self.store.create_group(&group).await.map_err(status)?;
        self.announce_membership(group.owner, vec![group.id], Vec::new())
            .await;
        Ok(Response::new(group_reply(&group, true)))
    }

    async fn join_group(
        &self,
        request: Request<GroupMemberRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        let request = request.into_inner();
        let group = self.existing_group(request.group_id).await?;
        let object = ObjectId::Group(group.id);
        // A new member reads from the group's present on; older messages are history.
        let end = self.log.end(&object).await.map_err(status)?;
        let joined = self
            .store
            .add_group_member(group.id, request.user_id, now_millis())
            .await
            .map_err(status)?;
        if joined {
            self.store
                .advance_ack_cursor(request.user_id, &object, end)
                .await
                .map_err(status)?;
            self.announce_membership(request.user_id, vec![group.id], Vec::new())
                .await;
            self.schedule_group_online(group.id);
        }
        Ok(Response::new(group_reply(&group, joined)))
    }

    async fn leave_group(
        &self,
        request: Request<GroupMemberRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        let request = request.into_inner();
        let group = self.existing_group(request.group_id).await?;
        if group.owner == request.user_id {
            return Err(ErrorCode::Forbidden
                .status("the owner cannot leave the group; hand it over or disband it"));
        }
        let left = self
            .end_membership(group.id, request.user_id, "left")
            .await?;
        Ok(Response::new(group_reply(&group, left)))
    }

    async fn system_push(
        &self,
        request: Request<SystemPushRequest>,
    ) -> Result<Response<SystemPushReply>, Status> {
        let request = request.into_inner();
        validate::text(&request.body, self.config.max_text_chars)?;
        match request.target_kind.as_str() {
            "all" if request.persist => {
                return Err(ErrorCode::InvalidInput.status(
                    "a push to everyone is ephemeral; persist works for users and groups",
                ));
            }
            "all" => {}
            "users" => {
                if request.user_ids.is_empty() || request.user_ids.len() > MAX_PUSH_USERS {
                    return Err(ErrorCode::InvalidInput
                        .status(format!("a push names 1 to {MAX_PUSH_USERS} users")));
                }
                for user in &request.user_ids {
                    if self.store.user(*user).await.map_err(status)?.is_none() {
                        return Err(ErrorCode::NotFound.status(format!("there is no user {user}")));
                    }
                }
            }
            "group" => {
                self.existing_group(request.group_id).await?;
            }
            other => {
                return Err(ErrorCode::InvalidInput.status(format!(
                    "push to \"all\", \"users\" or \"group\", not {other:?}"
                )));
            }
        }
        let message = Message {
            id: self.ids.next_id().map_err(status)?,
            sender: 0,
            kind: "text".into(),
            body: request.body.clone(),
            ts: now_millis(),
            ..Message::default()
        };
        let id = message.id;
        if !request.persist {
            let reply = self
                .task
                .push_ephemeral(EphemeralPushRequest {
                    target_kind: request.target_kind,
                    user_ids: request.user_ids,
                    group_id: request.group_id,
                    message: Some(message),
                })
                .await?;
            return Ok(Response::new(SystemPushReply {
                id,
                connections: reply.connections,
            }));
        }
        // Persisted: a copy in each recipient's log, delivered and synced like any message.
        let targets: Vec<(ObjectId, &str, i64)> = if request.target_kind == "group" {
            vec![(ObjectId::Group(request.group_id), "group", request.group_id)]
        } else {
            request
                .user_ids
                .iter()
                .map(|user| (ObjectId::User(*user), "user", *user))
                .collect()
        };
        let copies = targets
            .into_iter()
            .map(|(object, target_kind, target_id)| {
                let copy = Message {
                    target_kind: target_kind.into(),
                    target_id,
                    peer: if target_kind == "group" { target_id } else { 0 },
                    ..message.clone()
                };
                (object, copy)
            })
            .collect();
        self.append_copies(copies).await?;
        Ok(Response::new(SystemPushReply { id, connections: 0 }))
    }

    async fn typing(&self, request: Request<TypingRequest>) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        // The same who-may-reach-whom as a message, without a body or a cid to check.
        let target = validate::target(&request.target_kind, request.target_id)?;
        if !self.may_reach(request.sender, target).await? {
            return Err(ErrorCode::Forbidden.status("you cannot reach that conversation"));
        }
        let (target_kind, user_ids, group_id) = match target {
            Target::User(peer) => ("users", vec![peer], 0),
            Target::Group(group) => ("group", Vec::new(), group),
        };
        let indicator = Message {
            sender: request.sender,
            kind: natter_proto::frame::TYPING_KIND.into(),
            target_kind: request.target_kind,
            target_id: request.target_id,
            ts: now_millis(),
            ..Message::default()
        };
        self.task
            .push_ephemeral(EphemeralPushRequest {
                target_kind: target_kind.into(),
                user_ids,
                group_id,
                message: Some(indicator),
            })
            .await?;
        Ok(Response::new(Empty {}))
    }

    async fn manage_group(
        &self,
        request: Request<ManageGroupRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        let request = request.into_inner();
        let mut group = self.existing_group(request.group_id).await?;
        if group.owner != request.actor {
            return Err(ErrorCode::Forbidden.status("only the group's owner may do that"));
        }
        let changed = match request.action.as_str() {
            "update" => {
                group.name = validate::group_name(&request.name)?;
                group.avatar = self.avatar_of(request.actor, &request.avatar).await?;
                let changed = self
                    .store
                    .update_group(group.id, &group.name, group.avatar.as_deref())
                    .await
                    .map_err(status)?;
                let frame = ServerFrame::GroupUpdated {
                    group_id: group.id.to_string(),
                    name: group.name.clone(),
                    avatar: group.avatar.clone(),
                };
                self.notify_group(group.id, &frame).await;
                changed
            }
            "remove" => {
                if request.user_id == group.owner {
                    return Err(ErrorCode::Forbidden.status("the owner cannot be removed"));
                }
                self.end_membership(group.id, request.user_id, "removed")
                    .await?
            }
            "disband" => {
                let members = self.store.disband_group(group.id).await.map_err(status)?;
                let frame = ServerFrame::GroupRemoved {
                    group_id: group.id.to_string(),
                    reason: "disbanded".into(),
                };
                self.notify_users(members.clone(), &frame).await;
                for member in members {
                    self.announce_membership(member, Vec::new(), vec![group.id])
                        .await;
                }
                true
            }
            other => {
                return Err(ErrorCode::InvalidInput.status(format!(
                    "unknown group action {:?}",
                    other.chars().take(32).collect::<String>()
                )));
            }
        };
        Ok(Response::new(group_reply(&group, changed)))
    }

    async fn recall(
        &self,
        request: Request<RecallRequest>,
    ) -> Result<Response<RecallReply>, Status> {
        let request = request.into_inner();
        let id = self
            .recall_message(request.sender, request.message_id)
            .await?;
        Ok(Response::new(RecallReply { id }))
    }

    async fn mark_read(
        &self,
        request: Request<ReadRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let request = request.into_inner();
        let seq = self
            .mark_read(request.user_id, &request.conversation, request.seq)
            .await?;
        Ok(Response::new(ReadReply { seq }))
    }

    async fn notify(&self, request: Request<NotifyRequest>) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        self.notify_users_raw(request.user_ids, request.frame).await;
        Ok(Response::new(Empty {}))
    }

    async fn online(
        &self,
        request: Request<OnlineRequest>,
    ) -> Result<Response<OnlineReply>, Status> {
        let request = request.into_inner();
        let online_user_ids = self
            .sessions
            .online_among(&request.user_ids)
            .await
            .map_err(status)?;
        let group_online = if request.group_id > 0 {
            self.group_online(request.group_id).await?
        } else {
            0
        };
        Ok(Response::new(OnlineReply {
            online_user_ids,
            group_online,
        }))
    }
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

/// The user and session a connection event is about.
fn session_of(event: ConnectionEvent) -> (i64, SessionRef) {
    let session = SessionRef {
        node: event.node,
        connection_id: event.connection_id,
    };
    (event.user_id, session)
}
