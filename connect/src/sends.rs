//! Sends on their way to a logic process in another one: the `send` frames of all this node's
//! connections go together. While a few calls are out, what arrives waits and goes in the
//! next, so a busy node makes one call for many sends instead of one each, and an idle one
//! adds no delay. Each send is still admitted, checked and answered on its own.

use std::sync::Arc;

use futures_util::future::join_all;
use natter_infra::gather::{Gatherer, MOST_CALL_BYTES, split_by_size};
use natter_proto::handle::LogicHandle;
use natter_proto::v1::{SendBatchRequest, SendOutcome, SendReply, SendRequest};
use natter_proto::{ErrorCode, trace_context};
use prost::Message as _;
use tokio::sync::oneshot;
use tonic::Status;

/// Calls out at once. A call is answered when its slowest send is, so several keep one slow
/// send (a partition catching up) from holding every connection's.
const CALLS_IN_FLIGHT: usize = 16;

/// One send waiting to go, with where its answer goes.
type Waiting = (SendRequest, oneshot::Sender<Result<SendReply, Status>>);

/// Gathers a node's sends into calls to logic.
#[derive(Clone)]
pub struct SendBatcher {
    waiting: Arc<Gatherer<Waiting>>,
    logic: LogicHandle,
}

impl std::fmt::Debug for SendBatcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SendBatcher")
            .finish_non_exhaustive()
    }
}

impl SendBatcher {
    /// A batcher calling `logic`.
    pub fn new(logic: LogicHandle) -> Self {
        SendBatcher {
            waiting: Arc::new(Gatherer::new(CALLS_IN_FLIGHT)),
            logic,
        }
    }

    /// Sends `request` to logic with whatever else waits, and returns its own answer. Logic in
    /// this process (the embedded deployment) is called at once: a call there costs no trip,
    /// and gathering would only make each send wait for the others in its call.
    pub async fn send(&self, mut request: SendRequest) -> Result<SendReply, Status> {
        if let LogicHandle::InProcess(_) = &self.logic {
            return self.logic.send(request).await;
        }
        // The call's metadata carries one trace; each send carries its own.
        request.trace_parent = trace_context::current();
        let (reply, answer) = oneshot::channel();
        if self.waiting.push([(request, reply)]) {
            // A task of its own, so a connection that closes cannot strand the others' sends.
            tokio::spawn(self.clone().send_while_waiting());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ErrorCode::Internal.status("a gathered send lost its answer")))
    }

    /// Sends what waits, a call at a time (several at once when what waits is too big for
    /// one), until nothing does.
    async fn send_while_waiting(self) {
        while let Some(waiting) = self.waiting.take() {
            let calls = split_by_size(waiting, MOST_CALL_BYTES, |(send, _)| send.encoded_len());
            join_all(calls.into_iter().map(|call| self.call(call))).await;
        }
    }

    /// One call for `waiting`; each send gets its own answer, or the call's failure.
    async fn call(&self, waiting: Vec<Waiting>) {
        let (sends, replies): (Vec<SendRequest>, Vec<_>) = waiting.into_iter().unzip();
        metrics::histogram!("natter_connect_send_batch_size").record(sends.len() as f64);
        match self.logic.send_batch(SendBatchRequest { sends }).await {
            Ok(answer) => {
                let mut outcomes = answer.outcomes.into_iter();
                for reply in replies {
                    let outcome = outcomes.next().map_or_else(
                        || {
                            Err(ErrorCode::Internal
                                .status("logic answered fewer sends than it was given"))
                        },
                        SendOutcome::into_result,
                    );
                    let _ = reply.send(outcome);
                }
            }
            Err(status) => {
                for reply in replies {
                    let _ = reply.send(Err(status.clone()));
                }
            }
        }
    }
}
