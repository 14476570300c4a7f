//! Presence and events: sessions coming and going, friends told of presence, group online
//! counts, typing indicators and event frames to online connections.

use natter_infra::now_millis;
use natter_infra::sessions::SessionRef;
use natter_proto::frame::{EVENT_KIND, ServerFrame};
use natter_proto::v1::{
    Audience, ConnectedReply, ConnectionEvent, Empty, EphemeralPushRequest, Message, NotifyRequest,
    OnlineReply, OnlineRequest, TypingRequest,
};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};
use crate::validate;

/// How often logic looks for users whose connect node went away.
const DEPARTURE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Departures handled per look.
const DEPARTURE_BATCH: usize = 500;

/// Members read per page when counting a group's online members.
const MEMBER_PAGE: u32 = 1000;

impl LogicService {
    /// Queues an event frame on the online connections of `users` (ephemeral; offline users
    /// learn the state from the REST API when they come back). Failures are logged: an
    /// event is a hint, and the state it reports is already stored.
    pub(crate) async fn notify_users(&self, users: Vec<i64>, frame: &ServerFrame) {
        if users.is_empty() {
            return;
        }
        self.push_event(Audience::Users, users, 0, frame.to_json())
            .await;
    }

    /// Queues a frame made elsewhere (the API's friend events) on users' connections.
    pub(crate) async fn notify_users_raw(&self, users: Vec<i64>, frame: String) {
        if users.is_empty() {
            return;
        }
        self.push_event(Audience::Users, users, 0, frame).await;
    }

    /// Queues an event frame on the online connections of a group's members.
    pub(crate) async fn notify_group(&self, group: i64, frame: &ServerFrame) {
        self.push_event(Audience::Group, Vec::new(), group, frame.to_json())
            .await;
    }

    pub(crate) async fn push_event(
        &self,
        audience: Audience,
        users: Vec<i64>,
        group: i64,
        frame: String,
    ) {
        let event = Message {
            kind: EVENT_KIND.into(),
            body: frame,
            ts: now_millis(),
            ..Message::default()
        };
        let request = EphemeralPushRequest {
            audience: audience.into(),
            user_ids: users,
            group_id: group,
            message: Some(event),
        };
        if let Err(error) = self.task.push_ephemeral(request).await {
            tracing::warn!(%error, ?audience, "pushing an event frame failed");
        }
    }

    /// A user's first connection: friends hear they are online unless they were never told
    /// otherwise (a reconnect within the grace period), and their groups' counts change.
    pub(crate) async fn came_online(&self, user: i64) -> Result<(), Status> {
        if self
            .sessions
            .set_announced_presence(user, true)
            .await
            .map_err(status)?
        {
            self.announce_presence(user, true).await?;
        }
        Ok(())
    }

    /// A connection closed. If it was the user's last, wait out the grace period in the
    /// background; if they are still away then, friends hear they went offline.
    pub(crate) async fn maybe_went_offline(&self, user: i64) -> Result<(), Status> {
        if !self
            .sessions
            .sessions(user)
            .await
            .map_err(status)?
            .is_empty()
        {
            return Ok(());
        }
        let logic = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(logic.config.presence_grace()).await;
            if let Err(error) = logic.confirm_offline(user).await {
                tracing::warn!(%error, user, "announcing that a user went offline failed");
            }
        });
        Ok(())
    }

    /// Takes the presence events queued when a connect node's sessions were removed (it
    /// stopped or died) and tells friends of those users left with no connection. Runs until
    /// the process ends; each event is taken by one logic process.
    pub fn follow_departures(&self) {
        let logic = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DEPARTURE_POLL);
            loop {
                tick.tick().await;
                let events = match logic.sessions.take_presence(DEPARTURE_BATCH).await {
                    Ok(events) => events,
                    Err(error) => {
                        tracing::warn!(%error, "taking departed users' presence failed");
                        continue;
                    }
                };
                for event in events.into_iter().filter(|event| !event.online) {
                    if let Err(error) = logic.confirm_offline(event.user).await {
                        tracing::warn!(%error, user = event.user, "announcing a departure failed");
                    }
                }
            }
        });
    }

    pub(crate) async fn confirm_offline(&self, user: i64) -> Result<(), Status> {
        let still_away = self
            .sessions
            .sessions(user)
            .await
            .map_err(status)?
            .is_empty();
        if still_away
            && self
                .sessions
                .set_announced_presence(user, false)
                .await
                .map_err(status)?
        {
            self.announce_presence(user, false).await?;
        }
        Ok(())
    }

    /// Tells a user's friends about a presence change and schedules their groups' counts.
    pub(crate) async fn announce_presence(&self, user: i64, online: bool) -> Result<(), Status> {
        metrics::counter!("natter_presence_changes_total", "online" => online.to_string())
            .increment(1);
        let friends: Vec<i64> = self
            .store
            .friends(user)
            .await
            .map_err(status)?
            .into_iter()
            .map(|friend| friend.user.id)
            .collect();
        let frame = ServerFrame::Presence {
            user_id: user.to_string(),
            online,
        };
        self.notify_users(friends, &frame).await;
        for group in self.store.user_groups(user).await.map_err(status)? {
            self.schedule_group_online(group);
        }
        Ok(())
    }

    /// Sends the group's online count to its members once the interval has passed; changes
    /// within the interval share that one frame.
    pub(crate) fn schedule_group_online(&self, group: i64) {
        if !self.pending_group_counts.mark(group) {
            return;
        }
        let logic = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(logic.config.group_online_interval()).await;
            logic.pending_group_counts.clear(group);
            match logic.group_online(group).await {
                Ok(online) => {
                    let frame = ServerFrame::GroupOnline {
                        group_id: group.to_string(),
                        online,
                    };
                    logic.notify_group(group, &frame).await;
                }
                Err(error) => tracing::warn!(%error, group, "counting a group's online members"),
            }
        });
    }

    /// Online members of a group: users with at least one live connection anywhere. A dead
    /// connect node's sessions are removed, so its users stop counting with them.
    pub(crate) async fn group_online(&self, group: i64) -> Result<u64, Status> {
        let mut online = 0;
        let mut after = 0;
        loop {
            let page = self
                .store
                .group_members(group, after, MEMBER_PAGE)
                .await
                .map_err(status)?;
            let ids: Vec<i64> = page.iter().map(|member| member.id).collect();
            online += self
                .sessions
                .online_among(&ids)
                .await
                .map_err(status)?
                .len() as u64;
            match page.last() {
                Some(last) if page.len() == MEMBER_PAGE as usize => after = last.id,
                _ => return Ok(online),
            }
        }
    }
}

/// `connected`: registers the session, tells friends the user came online, and answers the
/// user's groups.
pub(crate) async fn connected(
    logic: &LogicService,
    request: ConnectionEvent,
) -> Result<ConnectedReply, Status> {
    let (user, session) = session_of(request);
    logic
        .sessions
        .add_session(user, &session)
        .await
        .map_err(status)?;
    // Presence is news for friends, not a condition of connecting.
    if let Err(error) = logic.came_online(user).await {
        tracing::warn!(%error, user, "announcing that a user came online failed");
    }
    let group_ids = logic.store.user_groups(user).await.map_err(status)?;
    let epoch = logic
        .history_epoch
        .get_or_try_init(|| logic.store.history_epoch())
        .await
        .map_err(status)?
        .clone();
    Ok(ConnectedReply { group_ids, epoch })
}

/// `disconnected`: removes the session; friends hear of it after the grace period.
pub(crate) async fn disconnected(
    logic: &LogicService,
    request: ConnectionEvent,
) -> Result<Empty, Status> {
    let (user, session) = session_of(request);
    logic
        .sessions
        .remove_session(user, &session)
        .await
        .map_err(status)?;
    logic.maybe_went_offline(user).await?;
    Ok(Empty {})
}

/// `typing`: an ephemeral indicator to whoever the user may reach.
pub(crate) async fn typing(logic: &LogicService, request: TypingRequest) -> Result<Empty, Status> {
    // The same who-may-reach-whom as a message, without a body or a cid to check.
    let target = validate::target(request.target_kind, request.target_id)?;
    if !logic.may_reach(request.sender, target).await? {
        return Err(ErrorCode::Forbidden.status("you cannot reach that conversation"));
    }
    let (audience, user_ids, group_id) = match target {
        ObjectId::User(peer) => (Audience::Users, vec![peer], 0),
        ObjectId::Group(group) => (Audience::Group, Vec::new(), group),
    };
    let indicator = Message {
        sender: request.sender,
        kind: natter_proto::frame::TYPING_KIND.into(),
        target_kind: target.kind_name().into(),
        target_id: request.target_id,
        ts: now_millis(),
        ..Message::default()
    };
    logic
        .task
        .push_ephemeral(EphemeralPushRequest {
            audience: audience.into(),
            user_ids,
            group_id,
            message: Some(indicator),
        })
        .await?;
    Ok(Empty {})
}

/// `notify`: an event frame made elsewhere (the API's friend events) to users' connections.
pub(crate) async fn notify(logic: &LogicService, request: NotifyRequest) -> Result<Empty, Status> {
    for group in &request.group_ids {
        logic
            .push_event(Audience::Group, Vec::new(), *group, request.frame.clone())
            .await;
    }
    logic
        .notify_users_raw(request.user_ids, request.frame)
        .await;
    Ok(Empty {})
}

/// `online`: which of some users are online, and a group's online count.
pub(crate) async fn online(
    logic: &LogicService,
    request: OnlineRequest,
) -> Result<OnlineReply, Status> {
    let online_user_ids = logic
        .sessions
        .online_among(&request.user_ids)
        .await
        .map_err(status)?;
    let group_online = if request.group_id > 0 {
        logic.group_online(request.group_id).await?
    } else {
        0
    };
    Ok(OnlineReply {
        online_user_ids,
        group_online,
    })
}

/// The user and session a connection event is about.
fn session_of(event: ConnectionEvent) -> (i64, SessionRef) {
    let session = SessionRef {
        node: event.node,
        connection_id: event.connection_id,
    };
    (event.user_id, session)
}
