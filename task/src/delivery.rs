//! One object's delivery: in order, under a lock per (object, connect node), at least once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use natter_infra::{InfraError, MessageLog, Sessions, Store};
use natter_proto::handle::ConnectHandle;
use natter_proto::v1::{
    Audience, GroupMembershipRequest, Message, PushAllRequest, PushGroupRequest, PushLock,
    PushReply, PushUsersRequest,
};
use natter_proto::{ErrorCode, ObjectId, trace_child, trace_context, trace_continued};
use tracing::{Instrument, Span};

use crate::config::TaskConfig;
use crate::directory::ConnectDirectory;
use crate::push_batch::{LockedPush, PushBatcher};

/// What a delivery needs; shared by every object's loop.
pub struct Deliverer {
    /// Timings and sizes.
    pub config: TaskConfig,
    /// Delivered cursors, and the store copy task repairs.
    pub store: Arc<dyn Store>,
    /// The log read in order.
    pub log: Arc<dyn MessageLog>,
    /// Where recipients are connected, and the locks.
    pub sessions: Arc<dyn Sessions>,
    /// The connect nodes.
    pub directory: Arc<ConnectDirectory>,
    /// Locked pushes, gathered per connect node.
    pushes: PushBatcher,
    /// Set when the process stops: loops end instead of retrying against closed ports.
    stopped: AtomicBool,
    /// Told each object's delivered cursor as it moves (the partitioned log's numbering
    /// keeps from it where a successor must start looking for undelivered records).
    on_delivered: OnceLock<OnDelivered>,
}

/// What is told when an object's messages up to a seq are delivered.
pub type OnDelivered = Box<dyn Fn(&ObjectId, u64) + Send + Sync>;

/// Who an ephemeral push reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EphemeralAudience {
    /// These users' connections.
    Users(Vec<i64>),
    /// A group's online members.
    Group(i64),
    /// Every connection.
    Everyone,
}

impl EphemeralAudience {
    /// The audience a request's fields name. An unspecified or unknown one is refused: a
    /// push that does not say whom it is for goes to nobody, never to everyone.
    pub fn of_request(
        audience: i32,
        user_ids: Vec<i64>,
        group_id: i64,
    ) -> Result<Self, tonic::Status> {
        match Audience::try_from(audience) {
            Ok(Audience::Users) => Ok(EphemeralAudience::Users(user_ids)),
            Ok(Audience::Group) => Ok(EphemeralAudience::Group(group_id)),
            Ok(Audience::Everyone) => Ok(EphemeralAudience::Everyone),
            Ok(Audience::Unspecified) | Err(_) => Err(ErrorCode::InvalidInput.status(format!(
                "an ephemeral push names no known audience ({audience})"
            ))),
        }
    }
}

/// Whom a push on one connect node is for.
enum Recipients {
    /// The named users' connections there.
    Users,
    /// A group's online members there.
    Group(i64),
    /// Every connection there.
    Everyone,
}

impl Recipients {
    /// Pushes `messages`, with no lock, to these recipients on `connect`, naming `users`
    /// when it is a user list; the answer says how many it was queued for there.
    async fn push_unlocked(
        &self,
        connect: &ConnectHandle,
        users: Vec<i64>,
        messages: &[Message],
    ) -> Result<PushReply, tonic::Status> {
        let messages = messages.to_vec();
        let reply = match self {
            Recipients::Users => {
                let request = PushUsersRequest {
                    user_ids: users,
                    messages,
                    ..PushUsersRequest::default()
                };
                connect.push_users(request).await?
            }
            Recipients::Group(group_id) => {
                let request = PushGroupRequest {
                    group_id: *group_id,
                    messages,
                    ..PushGroupRequest::default()
                };
                connect.push_group(request).await?
            }
            Recipients::Everyone => connect.push_all(PushAllRequest { messages }).await?,
        };
        Ok(reply)
    }
}

/// First wait between checks of an unreleased lock; doubles up to the configured most
/// ([`TaskConfig::release_poll_max`]).
const FIRST_POLL: Duration = Duration::from_micros(500);

/// One push to one connect node, waiting for its lock to be released.
struct Pending {
    node: String,
    users: Vec<i64>,
    key: String,
    token: String,
    /// A release seen before this instant is connect's; after it the lock may have expired
    /// instead, which looks the same, so the push counts as lost.
    trust_until: Instant,
}

impl Deliverer {
    /// The longest wait between lock checks (the cluster's when the configuration leaves it).
    fn longest_poll(&self) -> Duration {
        self.config
            .release_poll_max(crate::config::CLUSTER_RELEASE_POLL_MAX_MS)
    }

    /// A deliverer over the given ports.
    pub fn new(
        config: TaskConfig,
        store: Arc<dyn Store>,
        log: Arc<dyn MessageLog>,
        sessions: Arc<dyn Sessions>,
        directory: Arc<ConnectDirectory>,
    ) -> Self {
        Deliverer {
            config,
            store,
            log,
            sessions,
            pushes: PushBatcher::new(Arc::clone(&directory)),
            directory,
            stopped: AtomicBool::new(false),
            on_delivered: OnceLock::new(),
        }
    }

    /// Sets what is told as delivered cursors move; only the first call counts.
    pub fn on_delivered(&self, tell: OnDelivered) {
        let _ = self.on_delivered.set(tell);
    }

    /// Stop every delivery loop at its next step; undelivered objects are recovered on start.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Deliver everything after the stored cursor; returns when the log is exhausted.
    /// Failures of the ports are retried after a pause, so an object is never given up.
    pub async fn deliver_available(&self, object: &ObjectId) {
        while !self.is_stopped() {
            match self.deliver_step(object).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%object, %error, "delivery step failed; retrying");
                    tokio::time::sleep(self.config.retry_pause()).await;
                }
            }
        }
    }

    /// Deliver one batch; false when the log has (as far as this read saw) nothing more.
    async fn deliver_step(&self, object: &ObjectId) -> Result<bool, InfraError> {
        let delivered = self.store.delivered_cursor(object).await?;
        let batch = self
            .log
            .read(object, delivered, self.config.batch_max)
            .await?;
        let Some(last) = batch.last().map(|message| message.seq) else {
            return Ok(false);
        };
        // Repairs a crash between logic's append and its store write; idempotent. A log that
        // stores what it numbers (the embedded and the partitioned one) has nothing to repair.
        if !self.log.stores_messages() {
            self.store.put_messages(&batch).await?;
        }
        self.push(object, &batch)
            .instrument(delivery_span(object, &batch))
            .await?;
        self.store.set_delivered_cursor(object, last).await?;
        if let Some(tell) = self.on_delivered.get() {
            tell(object, last);
        }
        metrics::counter!("natter_task_delivered_messages_total").increment(batch.len() as u64);
        // A short batch reached the end of the log as it was when read. Anything appended
        // since came with a wake, which marked the object dirty for another pass, so there is
        // no need to spend a read on finding the end again.
        Ok(batch.len() >= self.config.batch_max)
    }

    /// The recipients' connect nodes, with the users to push to on each, and for an inbox the
    /// nodes where its owner holds just one connection, with that connection.
    async fn targets(&self, object: &ObjectId) -> Result<Targets, InfraError> {
        match object {
            ObjectId::User(user) => {
                let mut held: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                for session in self.sessions.sessions(*user).await? {
                    held.entry(session.node)
                        .or_default()
                        .push(session.connection_id);
                }
                let lone = held
                    .iter()
                    .filter_map(|(node, connections)| match connections.as_slice() {
                        [connection] => Some((node.clone(), *connection)),
                        _ => None,
                    })
                    .collect();
                let nodes = held.into_keys().map(|node| (node, vec![*user])).collect();
                Ok(Targets { nodes, lone })
            }
            // Any connect node may hold members online; each walks its own lists.
            ObjectId::Group(_) => Ok(Targets {
                nodes: self.every_node(),
                lone: BTreeMap::new(),
            }),
        }
    }

    /// The connect nodes holding sessions of `users`, each with those of the users it holds.
    async fn nodes_holding(&self, users: &[i64]) -> Result<BTreeMap<String, Vec<i64>>, InfraError> {
        let mut nodes: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for user in users {
            for session in self.sessions.sessions(*user).await? {
                let held = nodes.entry(session.node).or_default();
                if !held.contains(user) {
                    held.push(*user);
                }
            }
        }
        Ok(nodes)
    }

    /// Every known connect node, with no users named.
    fn every_node(&self) -> BTreeMap<String, Vec<i64>> {
        self.directory
            .names()
            .into_iter()
            .map(|node| (node, Vec::new()))
            .collect()
    }

    /// Queues an ephemeral message on the online connections it is for: no lock and no
    /// retry, since nothing records it. Returns how many it was queued for (users for a user
    /// list, connections otherwise).
    pub async fn push_ephemeral(
        &self,
        audience: EphemeralAudience,
        message: Option<Message>,
    ) -> Result<u32, InfraError> {
        let messages: Vec<Message> = message.into_iter().collect();
        let (audience, nodes) = match audience {
            EphemeralAudience::Users(users) => {
                (Recipients::Users, self.nodes_holding(&users).await?)
            }
            EphemeralAudience::Group(group) => (Recipients::Group(group), self.every_node()),
            EphemeralAudience::Everyone => (Recipients::Everyone, self.every_node()),
        };
        let mut reached = 0u32;
        for (node, users) in nodes {
            let Some(connect) = self.directory.get(&node) else {
                continue;
            };
            match audience.push_unlocked(&connect, users, &messages).await {
                Ok(reply) => reached = reached.saturating_add(reply.connections),
                // Ephemeral: whoever this node holds misses it, as if offline.
                Err(error) => tracing::warn!(%node, %error, "an ephemeral push failed"),
            }
        }
        Ok(reached)
    }

    /// Passes a user's group joins and leaves to every connect node holding their sessions.
    pub async fn announce_membership(
        &self,
        request: GroupMembershipRequest,
    ) -> Result<(), InfraError> {
        for node in self.nodes_holding(&[request.user_id]).await?.into_keys() {
            let Some(connect) = self.directory.get(&node) else {
                continue;
            };
            if let Err(error) = connect.update_groups(request.clone()).await {
                // Its connections pick the change up when they reconnect.
                tracing::warn!(%node, %error, "passing a membership change to connect failed");
            }
        }
        Ok(())
    }

    /// Push a batch to every node holding a recipient; push again to nodes that have not
    /// released their lock when it expires.
    async fn push(&self, object: &ObjectId, batch: &[Message]) -> Result<(), InfraError> {
        let Targets {
            nodes: mut targets,
            lone,
        } = self.targets(object).await?;
        let mut attempt = 0u32;
        while !targets.is_empty() && !self.is_stopped() {
            let round = if attempt > 0 {
                metrics::counter!("natter_redeliveries_total").increment(1);
                tracing::info!(
                    %object,
                    message_id = batch.first().map_or(0, |message| message.id),
                    attempt,
                    nodes = targets.len(),
                    "redelivering an unconfirmed push"
                );
                trace_child!("task.redeliver", attempt, nodes = targets.len())
            } else {
                Span::none()
            };
            attempt += 1;
            let round_targets = std::mem::take(&mut targets);
            targets = self
                .push_round(object, batch, round_targets, &lone)
                .instrument(round)
                .await?;
        }
        Ok(())
    }

    /// One round of a push: lock and push to each target node, then wait for the nodes to
    /// release their locks; returns the nodes that did not (to push to again). `lone` holds
    /// the inbox owner's only connection on a node, which is spared its own unechoed sends.
    async fn push_round(
        &self,
        object: &ObjectId,
        batch: &[Message],
        targets: BTreeMap<String, Vec<i64>>,
        lone: &BTreeMap<String, u64>,
    ) -> Result<BTreeMap<String, Vec<i64>>, InfraError> {
        let mut pending = Vec::with_capacity(targets.len());
        for (node, users) in targets {
            let messages = wanted_on(batch, &node, lone.get(&node).copied());
            if messages.is_empty() {
                // Its one connection there sent all of them and wants no echo.
                metrics::counter!("natter_pushes_spared_total").increment(1);
                continue;
            }
            let key = format!("lock:{object}:{node}");
            let token = format!("{:032x}", rand::random::<u128>());
            let trust_until = self
                .take_lock(&key, &token)
                .instrument(trace_child!("task.lock", node = %node))
                .await?;
            let Some(connect) = self.directory.get(&node) else {
                // A node nobody knows holds no live connection: its sessions are stale.
                tracing::debug!(%node, "skipping a push to an unknown connect node");
                self.sessions.release_lock(&key, &token).await?;
                continue;
            };
            let lock = Some(PushLock {
                key: key.clone(),
                token: token.clone(),
            });
            metrics::counter!("natter_pushes_total").increment(1);
            let push = match object {
                ObjectId::User(_) => LockedPush::Users(PushUsersRequest {
                    user_ids: users.clone(),
                    messages,
                    lock,
                    trace_parent: String::new(),
                }),
                ObjectId::Group(group) => LockedPush::Group(PushGroupRequest {
                    group_id: *group,
                    messages,
                    lock,
                    trace_parent: String::new(),
                }),
            };
            let pushed = self
                .pushes
                .push(&node, &connect, push)
                .instrument(trace_child!("task.push", node = %node, users = users.len()))
                .await;
            match pushed {
                // Released before the answer: confirmed, nothing to watch.
                Ok(reply) if reply.released => continue,
                Ok(_) => {}
                // The lock stays: the push is retried when it expires, as any lost push.
                Err(error) => tracing::warn!(
                    %node,
                    %object,
                    message_id = batch.first().map_or(0, |message| message.id),
                    %error,
                    "push to connect failed"
                ),
            }
            pending.push(Pending {
                node,
                users,
                key,
                token,
                trust_until,
            });
        }
        self.await_releases(pending).await
    }

    /// Take a lock, waiting while someone else (an earlier owner of the object) holds it.
    /// Returns until when a release of it can be told from its expiry.
    async fn take_lock(&self, key: &str, token: &str) -> Result<Instant, InfraError> {
        let ttl = self.config.lock_ttl();
        // The lock's clock starts no earlier than this, wherever the lock lives; a tenth of
        // its life is left as margin for the trip to the sessions backend.
        let margin = ttl / 10;
        let mut pause = FIRST_POLL;
        loop {
            let asked_at = Instant::now();
            if self.sessions.try_lock(key, token, ttl).await? {
                return Ok(asked_at + ttl - margin);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.longest_poll());
        }
    }

    /// Wait until each push's lock is released, or its trust window ends; returns the pushes
    /// not confirmed in time (to be pushed again).
    async fn await_releases(
        &self,
        mut pending: Vec<Pending>,
    ) -> Result<BTreeMap<String, Vec<i64>>, InfraError> {
        let mut lost = BTreeMap::new();
        let mut pause = FIRST_POLL;
        while !pending.is_empty() {
            let mut still_held = Vec::with_capacity(pending.len());
            for push in pending {
                let now = Instant::now();
                if now >= push.trust_until || self.is_stopped() {
                    lost.insert(push.node, push.users);
                } else if self.sessions.lock_holder(&push.key).await?.as_deref()
                    == Some(push.token.as_str())
                {
                    still_held.push(push);
                }
            }
            pending = still_held;
            let Some(next_deadline) = pending.iter().map(|push| push.trust_until).min() else {
                break;
            };
            let wait = next_deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(wait)).await;
            pause = (pause * 2).min(self.longest_poll());
        }
        Ok(lost)
    }
}

/// Where one batch of an object is pushed.
struct Targets {
    /// Each connect node, with the users to push to there.
    nodes: BTreeMap<String, Vec<i64>>,
    /// For an inbox: the nodes where its owner holds one connection, with that connection.
    lone: BTreeMap<String, u64>,
}

/// The messages of `batch` that a push to `node` must carry: all but the copies sent from
/// `lone`, the only connection there, when it asked not to be pushed its own messages.
/// Connect would drop those; a connection of another device on the node still gets them.
fn wanted_on(batch: &[Message], node: &str, lone: Option<u64>) -> Vec<Message> {
    batch
        .iter()
        .filter(|message| {
            !(message.unechoed_connection != 0
                && lone == Some(message.unechoed_connection)
                && message.unechoed_node == node)
        })
        .cloned()
        .collect()
}

/// The span of one batch's delivery, continuing the trace of its first traced message.
fn delivery_span(object: &ObjectId, batch: &[Message]) -> Span {
    trace_context::batch_span(batch, |first| {
        trace_continued!(
            &first.trace_parent,
            "task.deliver",
            object = %object,
            message_id = first.id,
            messages = batch.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(id: u64, node: &str, connection: u64) -> Message {
        Message {
            id,
            unechoed_node: node.into(),
            unechoed_connection: connection,
            ..Message::default()
        }
    }

    fn ids(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|message| message.id).collect()
    }

    #[test]
    fn only_the_lone_connection_that_wants_no_echo_is_spared_its_own_copies() {
        let batch = [
            copy(1, "", 0),
            copy(2, "connect-1", 7),
            copy(3, "connect-1", 8),
            copy(4, "connect-2", 7),
        ];
        // Its one connection on connect-1 is 7: only 7's copy made there is left out.
        assert_eq!(ids(&wanted_on(&batch, "connect-1", Some(7))), [1, 3, 4]);
        // Connection 7 of another node is another connection.
        assert_eq!(ids(&wanted_on(&batch, "connect-2", Some(8))), [1, 2, 3, 4]);
        // Two connections there (no lone one): the other device gets everything.
        assert_eq!(ids(&wanted_on(&batch, "connect-1", None)), [1, 2, 3, 4]);
        // A batch of its own copies alone needs no push at all.
        assert!(wanted_on(&batch[1..2], "connect-1", Some(7)).is_empty());
        // A copy naming no connection is never taken for connection 0.
        assert_eq!(ids(&wanted_on(&batch[..1], "", Some(0))), [1]);
    }

    fn audience(audience: i32) -> Result<EphemeralAudience, tonic::Status> {
        EphemeralAudience::of_request(audience, vec![7], 9)
    }

    #[test]
    fn an_unknown_or_missing_audience_is_refused_never_read_as_everyone() {
        for unknown in [Audience::Unspecified as i32, 4, -1, 99] {
            let refused = audience(unknown).expect_err("an audience nobody named is refused");
            assert_eq!(ErrorCode::of_status(&refused), ErrorCode::InvalidInput);
        }
        assert_eq!(
            audience(Audience::Users as i32).unwrap(),
            EphemeralAudience::Users(vec![7])
        );
        assert_eq!(
            audience(Audience::Group as i32).unwrap(),
            EphemeralAudience::Group(9)
        );
        assert_eq!(
            audience(Audience::Everyone as i32).unwrap(),
            EphemeralAudience::Everyone
        );
    }
}
