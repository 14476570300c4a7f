//! Acknowledgements on their way to logic: the `ack` frames of all this node's connections go
//! together, one call at a time, each gathering what arrived for [`ACK_LINGER`] or while the
//! last call was out. No message waits for an ack (it only raises a cursor and answers
//! `acked`), so acks are gathered harder than sends: at 2,000 messages a second four calls out
//! at once carried 4 to 9 acks each, and each call costs logic a read of the log ends its acks
//! pass besides the call itself. With logic in this process (the embedded deployment) a call
//! costs no trip, and nothing lingers.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use natter_infra::gather::{Gatherer, MOST_CALL_BYTES, split_by_size};
use natter_proto::ErrorCode;
use natter_proto::frame::ServerFrame;
use natter_proto::handle::LogicHandle;
use natter_proto::v1::{AckOutcome, AckRequest, Acknowledgement, Refusal};
use prost::Message as _;
use tonic::Status;

use crate::connection::Connection;
use crate::socket::refuse_status;

/// Calls out at once to a logic process elsewhere: one, so that what arrives meanwhile goes in
/// the next.
const CALLS_IN_FLIGHT: usize = 1;
/// Calls out at once to logic in this process, where a call costs no trip and nothing
/// lingers; a few, so that one slow ack does not hold every other connection's.
const IN_PROCESS_CALLS: usize = 4;
/// How long an ack waits for others before its call leaves: its `acked` answer comes this much
/// later, and a connection that drops in this window has the message again on its next sync.
const ACK_LINGER: Duration = Duration::from_millis(10);

/// One acknowledgement waiting to go, with the connection its answer goes to.
type Waiting = (Acknowledgement, Arc<Connection>);

/// Gathers a node's acknowledgements into calls to logic.
#[derive(Clone)]
pub struct AckBatcher {
    waiting: Arc<Gatherer<Waiting>>,
    logic: LogicHandle,
    /// [`ACK_LINGER`], or nothing for logic in this process.
    linger: Duration,
}

impl std::fmt::Debug for AckBatcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AckBatcher").finish_non_exhaustive()
    }
}

impl AckBatcher {
    /// A batcher calling `logic`.
    pub fn new(logic: LogicHandle) -> Self {
        let in_process = matches!(logic, LogicHandle::InProcess(_));
        AckBatcher {
            waiting: Arc::new(Gatherer::new(if in_process {
                IN_PROCESS_CALLS
            } else {
                CALLS_IN_FLIGHT
            })),
            logic,
            linger: if in_process {
                Duration::ZERO
            } else {
                ACK_LINGER
            },
        }
    }

    /// Passes one acknowledgement to logic with whatever else is waiting; `connection` is
    /// answered `acked` (if it asked for that) or the refusal when the call returns.
    pub fn acknowledge(&self, ack: Acknowledgement, connection: Arc<Connection>) {
        if self.waiting.push([(ack, connection)]) {
            // A task of its own, so a connection that closes cannot strand the others' acks.
            tokio::spawn(self.clone().send_while_waiting());
        }
    }

    /// Sends what waits, one call at a time, each after the linger, until nothing does.
    async fn send_while_waiting(self) {
        loop {
            if !self.linger.is_zero() {
                tokio::time::sleep(self.linger).await;
            }
            let Some(waiting) = self.waiting.take() else {
                break;
            };
            // A backlog behind a slow call may outgrow one call.
            let calls = split_by_size(waiting, MOST_CALL_BYTES, |(ack, _)| ack.encoded_len());
            join_all(calls.into_iter().map(|call| self.call(call))).await;
        }
    }

    /// One call for `waiting`; each connection gets its own answer, or the call's failure.
    async fn call(&self, waiting: Vec<Waiting>) {
        let (acks, connections): (Vec<Acknowledgement>, Vec<_>) = waiting.into_iter().unzip();
        metrics::histogram!("natter_ack_batch_size").record(acks.len() as f64);
        // The object goes back in `acked`, only to connections that asked for it.
        let objects: Vec<Option<String>> = acks
            .iter()
            .zip(&connections)
            .map(|(ack, connection)| connection.options.acked.then(|| ack.object.clone()))
            .collect();
        match self.logic.ack(AckRequest { acks }).await {
            Ok(reply) => {
                let mut outcomes = reply.outcomes.into_iter();
                for (connection, object) in connections.into_iter().zip(objects) {
                    match (answer_of(outcomes.next()), object) {
                        (Ok(seq), Some(object)) => {
                            connection.send_frame(&ServerFrame::Acked { object, seq });
                        }
                        (Ok(_), None) => {}
                        (Err(status), _) => refuse_status(&connection, &status, None),
                    }
                }
            }
            Err(status) => {
                for connection in connections {
                    refuse_status(&connection, &status, None);
                }
            }
        }
    }
}

/// One acknowledgement's answer from its outcome.
fn answer_of(outcome: Option<AckOutcome>) -> Result<u64, Status> {
    let Some(outcome) = outcome else {
        return Err(ErrorCode::Internal.status("logic answered fewer acks than it was given"));
    };
    if outcome.code.is_empty() {
        return Ok(outcome.seq);
    }
    let refusal = Refusal {
        code: outcome.code,
        message: outcome.message,
        retry_after_ms: 0,
    };
    Err(refusal.into_status())
}
