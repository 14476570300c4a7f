//! Acknowledgements on their way to logic: the `ack` frames of all this node's connections go
//! together. While a few calls are out, what arrives waits and goes in the next, so a busy node
//! makes one call for many acks instead of one each, and an idle one adds no delay.

use std::sync::Arc;

use natter_infra::gather::Gatherer;
use natter_proto::ErrorCode;
use natter_proto::frame::ServerFrame;
use natter_proto::handle::LogicHandle;
use natter_proto::v1::{AckOutcome, AckRequest, Acknowledgement, Refusal};
use tonic::Status;

use crate::connection::Connection;
use crate::socket::refuse_status;

/// Calls out at once. An answer waits for the slowest acknowledgement in its call, so more
/// than one keeps a slow one from holding every other connection's.
const CALLS_IN_FLIGHT: usize = 4;

/// One acknowledgement waiting to go, with the connection its answer goes to.
type Waiting = (Acknowledgement, Arc<Connection>);

/// Gathers a node's acknowledgements into calls to logic.
#[derive(Clone)]
pub struct AckBatcher {
    waiting: Arc<Gatherer<Waiting>>,
    logic: LogicHandle,
}

impl std::fmt::Debug for AckBatcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AckBatcher").finish_non_exhaustive()
    }
}

impl AckBatcher {
    /// A batcher calling `logic`.
    pub fn new(logic: LogicHandle) -> Self {
        AckBatcher {
            waiting: Arc::new(Gatherer::new(CALLS_IN_FLIGHT)),
            logic,
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

    /// Sends what waits, one call at a time, until nothing does.
    async fn send_while_waiting(self) {
        while let Some(waiting) = self.waiting.take() {
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
