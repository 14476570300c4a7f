//! Locked pushes on their way to a connect node: every delivery loop's push to one node goes
//! with the others waiting for it. While a few calls to a node are out, what arrives waits and
//! goes in the next, so a busy task process makes one call for many objects' pushes instead of
//! one each, and an idle one adds no delay. Only remote nodes are gathered for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use natter_infra::gather::{Gatherer, MOST_CALL_BYTES, split_by_size};
use natter_proto::ErrorCode;
use natter_proto::handle::ConnectHandle;
use natter_proto::trace_context;
use natter_proto::v1::{PushBatchRequest, PushGroupRequest, PushReply, PushUsersRequest};
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::Status;

use crate::directory::ConnectDirectory;

/// Calls out to one node at once. A call's answer waits for its slowest push's release, so
/// more than one keeps a push held back by a connection's limiter from holding every other.
const CALLS_IN_FLIGHT: usize = 4;

/// One push under a lock, for a user list or a group.
#[derive(Debug)]
pub enum LockedPush {
    /// To the named users' connections.
    Users(PushUsersRequest),
    /// To a group's online members.
    Group(PushGroupRequest),
}

/// A push waiting to go, with where its answer goes.
type Waiting = (LockedPush, oneshot::Sender<Result<PushReply, Status>>);

/// Gathers the pushes to each connect node into calls.
#[derive(Debug)]
pub struct PushBatcher {
    directory: Arc<ConnectDirectory>,
    nodes: Mutex<HashMap<String, Arc<Gatherer<Waiting>>>>,
}

impl PushBatcher {
    /// A batcher calling the nodes of `directory`.
    pub fn new(directory: Arc<ConnectDirectory>) -> Self {
        PushBatcher {
            directory,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `push` to `node` (reached through `connect`) with whatever else waits for it;
    /// returns its own answer. A node in this process (the embedded deployment) is called at
    /// once: a call there costs no trip, and gathering would only make each push wait for the
    /// others in its call.
    pub async fn push(
        &self,
        node: &str,
        connect: &ConnectHandle,
        mut push: LockedPush,
    ) -> Result<PushReply, Status> {
        if let ConnectHandle::InProcess(_) = connect {
            return match push {
                LockedPush::Users(request) => connect.push_users(request).await,
                LockedPush::Group(request) => connect.push_group(request).await,
            };
        }
        // The call's metadata carries one trace; each push carries its own.
        let trace_parent = trace_context::current();
        match &mut push {
            LockedPush::Users(request) => request.trace_parent = trace_parent,
            LockedPush::Group(request) => request.trace_parent = trace_parent,
        }
        let waiting = self.waiting_for(node);
        let (reply, answer) = oneshot::channel();
        if waiting.push([(push, reply)]) {
            // A task of its own, so a delivery loop that ends cannot strand the others' pushes.
            tokio::spawn(send_while_waiting(
                waiting,
                node.to_string(),
                Arc::clone(&self.directory),
            ));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ErrorCode::Internal.status("a gathered push lost its answer")))
    }

    fn waiting_for(&self, node: &str) -> Arc<Gatherer<Waiting>> {
        let mut nodes = self
            .nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(waiting) = nodes.get(node) {
            return Arc::clone(waiting);
        }
        let waiting = Arc::new(Gatherer::new(CALLS_IN_FLIGHT));
        nodes.insert(node.to_string(), Arc::clone(&waiting));
        waiting
    }
}

/// Sends what waits for `node`, a call at a time (several at once when what waits is too big
/// for one), until nothing does.
async fn send_while_waiting(
    waiting: Arc<Gatherer<Waiting>>,
    node: String,
    directory: Arc<ConnectDirectory>,
) {
    while let Some(pushes) = waiting.take() {
        let calls = split_by_size(pushes, MOST_CALL_BYTES, |(push, _)| match push {
            LockedPush::Users(push) => push.encoded_len(),
            LockedPush::Group(push) => push.encoded_len(),
        });
        join_all(calls.into_iter().map(|call| send(call, &node, &directory))).await;
    }
}

/// One call to `node` for `pushes`; each gets its own answer, or the call's failure.
async fn send(pushes: Vec<Waiting>, node: &str, directory: &ConnectDirectory) {
    metrics::histogram!("natter_task_push_batch_size").record(pushes.len() as f64);
    let mut request = PushBatchRequest::default();
    let mut user_replies = Vec::new();
    let mut group_replies = Vec::new();
    for (push, reply) in pushes {
        match push {
            LockedPush::Users(push) => {
                request.users.push(push);
                user_replies.push(reply);
            }
            LockedPush::Group(push) => {
                request.groups.push(push);
                group_replies.push(reply);
            }
        }
    }
    let Some(connect) = directory.get(node) else {
        let gone = ErrorCode::Unavailable.status(format!("connect node {node} is gone"));
        for reply in user_replies.into_iter().chain(group_replies) {
            let _ = reply.send(Err(gone.clone()));
        }
        return;
    };
    match connect.push_batch(request).await {
        Ok(answer) => {
            answer_each(user_replies, answer.users);
            answer_each(group_replies, answer.groups);
        }
        Err(status) => {
            for reply in user_replies.into_iter().chain(group_replies) {
                let _ = reply.send(Err(status.clone()));
            }
        }
    }
}

/// Gives each waiting push its answer, in order; one left without an answer is failed (its
/// lock then expires and the push is made again).
fn answer_each(replies: Vec<oneshot::Sender<Result<PushReply, Status>>>, answers: Vec<PushReply>) {
    let mut answers = answers.into_iter();
    for reply in replies {
        let answer = answers.next().ok_or_else(|| {
            ErrorCode::Internal.status("connect answered fewer pushes than it was given")
        });
        let _ = reply.send(answer);
    }
}
