//! What logic does beyond messages: presence and group online counts, event frames, the
//! owner's group changes, recall, read cursors and image checks.

use std::collections::HashSet;
use std::sync::Mutex;

use natter_infra::now_millis;
use natter_infra::store::{AUDIENCE_EVERYONE, RECALL_KIND, RECALLED_KIND, share_own_upload};
use natter_proto::frame::{EVENT_KIND, ServerFrame};
use natter_proto::v1::{EphemeralPushRequest, Message};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::service::{LogicService, status};
use crate::validate::Target;

/// How often logic looks for users whose connect node went away.
const DEPARTURE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Departures handled per look.
const DEPARTURE_BATCH: usize = 500;

/// Members read per page when counting a group's online members.
const MEMBER_PAGE: u32 = 1000;

/// Groups whose `group_online` frame is waiting for its interval to pass.
#[derive(Debug, Default)]
pub struct PendingGroupCounts(Mutex<HashSet<i64>>);

impl PendingGroupCounts {
    /// Marks `group` pending; false if it was already.
    fn mark(&self, group: i64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(group)
    }

    fn clear(&self, group: i64) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&group);
    }
}

/// The audience a message's image is shared with: the recipient, or the group.
pub fn audience_of(target: Target) -> String {
    match target {
        Target::User(peer) => format!("user:{peer}"),
        Target::Group(group) => format!("group:{group}"),
    }
}

impl LogicService {
    /// Queues an event frame on the online connections of `users` (ephemeral; offline users
    /// learn the state from the REST API when they come back). Failures are logged: an
    /// event is a hint, and the state it reports is already stored.
    pub(crate) async fn notify_users(&self, users: Vec<i64>, frame: &ServerFrame) {
        if users.is_empty() {
            return;
        }
        self.push_event("users", users, 0, frame.to_json()).await;
    }

    /// Queues a frame made elsewhere (the API's friend events) on users' connections.
    pub(crate) async fn notify_users_raw(&self, users: Vec<i64>, frame: String) {
        if users.is_empty() {
            return;
        }
        self.push_event("users", users, 0, frame).await;
    }

    /// Queues an event frame on the online connections of a group's members.
    pub(crate) async fn notify_group(&self, group: i64, frame: &ServerFrame) {
        self.push_event("group", Vec::new(), group, frame.to_json())
            .await;
    }

    async fn push_event(&self, kind: &str, users: Vec<i64>, group: i64, frame: String) {
        let event = Message {
            kind: EVENT_KIND.into(),
            body: frame,
            ts: now_millis(),
            ..Message::default()
        };
        let request = EphemeralPushRequest {
            target_kind: kind.into(),
            user_ids: users,
            group_id: group,
            message: Some(event),
        };
        if let Err(error) = self.task.push_ephemeral(request).await {
            tracing::warn!(%error, kind, "pushing an event frame failed");
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

    async fn confirm_offline(&self, user: i64) -> Result<(), Status> {
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
    async fn announce_presence(&self, user: i64, online: bool) -> Result<(), Status> {
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

    /// Checks that `upload` is `owner`'s own, and lets `audience` fetch it.
    async fn share_own(&self, owner: i64, upload: i64, audience: &str) -> Result<(), Status> {
        if share_own_upload(self.store.as_ref(), owner, upload, audience)
            .await
            .map_err(status)?
        {
            Ok(())
        } else {
            Err(ErrorCode::NotFound.status(format!("you have no upload {upload}")))
        }
    }

    /// Checks that `upload` is the sender's own, and lets the target's audience fetch it.
    pub(crate) async fn share_image(
        &self,
        sender: i64,
        upload: i64,
        target: Target,
    ) -> Result<(), Status> {
        self.share_own(sender, upload, &audience_of(target)).await
    }

    /// An avatar as given (`""` for none, else an upload id the owner made), shared with
    /// everyone signed in once accepted.
    pub(crate) async fn avatar_of(
        &self,
        owner: i64,
        avatar: &str,
    ) -> Result<Option<String>, Status> {
        if avatar.is_empty() {
            return Ok(None);
        }
        let upload = avatar
            .parse::<i64>()
            .map_err(|_| ErrorCode::InvalidInput.status("the avatar is an upload id"))?;
        self.share_own(owner, upload, AUDIENCE_EVERYONE).await?;
        Ok(Some(upload.to_string()))
    }

    /// Takes back a message: every stored copy is emptied, and a `recall` message goes to
    /// each place a copy went, so online and offline recipients both learn of it.
    pub(crate) async fn recall_message(&self, sender: i64, id: u64) -> Result<u64, Status> {
        let copies = self.store.message_copies(id).await.map_err(status)?;
        let Some(first) = copies.first() else {
            return Err(ErrorCode::NotFound.status(format!("there is no message {id}")));
        };
        if first.sender != sender {
            return Err(ErrorCode::NotFound.status(format!("you sent no message {id}")));
        }
        if first.kind == RECALLED_KIND || first.kind == RECALL_KIND {
            return Err(ErrorCode::Conflict.status("that message is recalled already"));
        }
        let window =
            i64::try_from(self.config.recall_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_millis().saturating_sub(first.ts) > window {
            return Err(ErrorCode::RecallWindowPassed.status(format!(
                "messages can be recalled for {} seconds after sending",
                self.config.recall_seconds
            )));
        }
        self.store.mark_recalled(id).await.map_err(status)?;
        let recall_id = self.ids.next_id().map_err(status)?;
        let ts = now_millis();
        let notices = copies
            .iter()
            .filter_map(|copy| {
                let object: ObjectId = copy.object.parse().ok()?;
                let notice = Message {
                    id: recall_id,
                    sender,
                    peer: copy.peer,
                    kind: RECALL_KIND.into(),
                    body: id.to_string(),
                    ts,
                    target_kind: copy.target_kind.clone(),
                    target_id: copy.target_id,
                    ..Message::default()
                };
                Some((object, notice))
            })
            .collect();
        self.append_copies(notices).await?;
        metrics::counter!("natter_messages_recalled_total").increment(1);
        Ok(recall_id)
    }

    /// Moves a read cursor: `user:<peer>` counts in the reader's inbox, `group:<id>` in the
    /// group's log (members only). The seq is capped at the log's end; the reader's other
    /// devices get a `read` frame.
    pub(crate) async fn mark_read(
        &self,
        user: i64,
        conversation: &str,
        seq: u64,
    ) -> Result<u64, Status> {
        let object = match conversation.parse::<ObjectId>() {
            Ok(ObjectId::User(peer)) if peer > 0 => ObjectId::User(user),
            Ok(ObjectId::Group(group)) if group > 0 => {
                if !self
                    .store
                    .is_group_member(group, user)
                    .await
                    .map_err(status)?
                {
                    return Err(ErrorCode::NotMember
                        .status(format!("you are not a member of group {group}")));
                }
                ObjectId::Group(group)
            }
            _ => {
                return Err(
                    ErrorCode::InvalidInput.status("a conversation is user:<id> or group:<id>")
                );
            }
        };
        let end = self.log.end(&object).await.map_err(status)?;
        let stored = self
            .store
            .advance_read_cursor(user, conversation, seq.min(end))
            .await
            .map_err(status)?;
        let frame = ServerFrame::Read {
            conversation: conversation.to_string(),
            seq: stored,
        };
        self.notify_users(vec![user], &frame).await;
        Ok(stored)
    }
}
