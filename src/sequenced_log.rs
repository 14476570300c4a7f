//! Logic's side of the partitioned log: a message is produced to its object's partition, then
//! the task process owning that partition is asked for the seq it gave the record (the ask
//! carries the message, so the owner need not read the record back). The asks of
//! concurrent sends to one partition go together: while a few requests about it are out, the
//! next gathers what arrives; each partition's asks go apart, so a seq waits for its own
//! partition's numbering only. Reads go to the store, which holds every numbered record before
//! its seq is answered.
//!
//! A logic process needs no coordination with the others: the partition's order is the
//! order. One that dies after producing leaves a record the owner numbers and delivers like
//! any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use natter_infra::cluster::{KafkaPartitions, read_back};
use natter_infra::error::InfraResult;
use natter_infra::gather::Gatherer;
use natter_infra::sql::SqlLog;
use natter_infra::{InfraError, MessageLog};
use natter_proto::ObjectId;
use natter_proto::handle::TaskHandle;
use natter_proto::placement::LogPartition;
use natter_proto::v1::{Message, PartitionRecords, ProducedRecord, SequenceRequest};
use tokio::sync::oneshot;

/// How long logic keeps asking for the seqs of records it produced: a produced record is in
/// the log, so giving up early would answer "failed" for a message that will be delivered.
const ASK_DEADLINE: Duration = Duration::from_secs(20);
/// The pause before asking again about records whose ask failed.
const ASK_PAUSE: Duration = Duration::from_millis(100);

/// One record whose seq a send waits for.
struct Ask {
    partition: LogPartition,
    record: ProducedRecord,
    /// When it was first asked about (for the deadline).
    since: Instant,
    reply: oneshot::Sender<InfraResult<u64>>,
}

/// Requests for seqs out at once for one partition. A request is answered when its records
/// are numbered, and an owner numbers a partition one commit at a time: a few requests at once
/// keep its numbering busy while later asks still share requests, and each partition's asks
/// go apart so that none waits for another partition's commit (BENCHMARKS.md, 2026-12-08).
const REQUESTS_IN_FLIGHT: usize = 2;

/// The partitioned Kafka log as logic's `MessageLog`.
#[derive(Debug)]
pub struct SequencedLog {
    partitions: Arc<KafkaPartitions>,
    numbered: SqlLog,
    asker: Asker,
}

/// Sends the asks of concurrent sends to a partition's owner together: while
/// [`REQUESTS_IN_FLIGHT`] requests about a partition are out, what arrives for it waits and
/// goes in the next.
#[derive(Clone)]
struct Asker {
    waiting: Arc<Mutex<HashMap<LogPartition, Arc<Gatherer<Ask>>>>>,
    task: TaskHandle,
}

impl std::fmt::Debug for Asker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Asker").finish_non_exhaustive()
    }
}

impl Asker {
    /// Queues asks with their partitions' others, starting a sender for a partition unless
    /// enough are running.
    fn enqueue(&self, asks: Vec<Ask>) {
        for (partition, asks) in by_partition(asks) {
            let waiting = {
                let mut gatherers = self
                    .waiting
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                Arc::clone(
                    gatherers
                        .entry(partition)
                        .or_insert_with(|| Arc::new(Gatherer::new(REQUESTS_IN_FLIGHT))),
                )
            };
            if waiting.push(asks) {
                // A task of its own, so a send that gives up cannot strand the others' asks.
                tokio::spawn(self.clone().send_while_waiting(partition, waiting));
            }
        }
    }

    /// Sends what waits for `partition`, one request at a time, until nothing does.
    async fn send_while_waiting(self, partition: LogPartition, waiting: Arc<Gatherer<Ask>>) {
        while let Some(asks) = waiting.take() {
            self.send(partition, asks).await;
        }
    }

    /// One request for `asks`, all of `partition`; answers them, or queues them again when
    /// the owner did not answer.
    async fn send(&self, partition: LogPartition, mut asks: Vec<Ask>) {
        let request = SequenceRequest {
            partitions: vec![PartitionRecords {
                partition: partition.to_string(),
                records: asks
                    .iter_mut()
                    .map(|ask| handed_over(&mut ask.record))
                    .collect(),
            }],
        };
        let started = Instant::now();
        metrics::histogram!("natter_log_sequence_batch_records").record(asks.len() as f64);
        let reply = self.task.sequence(request).await;
        metrics::histogram!("natter_log_sequence_seconds").record(started.elapsed().as_secs_f64());
        let answer = match reply {
            Ok(reply) => match reply.partitions.into_iter().next() {
                Some(answer) if !answer.error.is_empty() => Err(answer.error),
                Some(answer) if answer.seqs.len() == asks.len() => Ok(answer.seqs),
                Some(_) => Err("the owner answered the wrong number of seqs".to_owned()),
                None => Err("no answer".to_owned()),
            },
            Err(status) => Err(status.message().to_owned()),
        };
        let message = match answer {
            Ok(seqs) => {
                for (ask, seq) in asks.into_iter().zip(seqs) {
                    let _ = ask.reply.send(Ok(seq));
                }
                return;
            }
            Err(message) => message,
        };
        tracing::debug!(%partition, message, "asking for seqs failed; asking again");
        let mut again = Vec::new();
        for ask in asks {
            if ask.since.elapsed() < ASK_DEADLINE {
                again.push(ask);
            } else {
                let _ = ask.reply.send(Err(InfraError::Unavailable(format!(
                    "{partition}: no seq for a produced record: {message}"
                ))));
            }
        }
        if !again.is_empty() {
            let asker = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ASK_PAUSE).await;
                asker.enqueue(again);
            });
        }
    }
}

/// `asks` grouped by partition, each group in the order given.
fn by_partition(asks: Vec<Ask>) -> Vec<(LogPartition, Vec<Ask>)> {
    let mut grouped: Vec<(LogPartition, Vec<Ask>)> = Vec::new();
    for ask in asks {
        match grouped
            .iter_mut()
            .find(|(partition, _)| *partition == ask.partition)
        {
            Some((_, asks)) => asks.push(ask),
            None => grouped.push((ask.partition, vec![ask])),
        }
    }
    grouped
}

/// `record` for a request, its message moved into it: an ask asked again goes without, and
/// its owner then reads the record, which spares a copy of every message for the rare request
/// that fails.
fn handed_over(record: &mut ProducedRecord) -> ProducedRecord {
    let message = record.message.take();
    ProducedRecord {
        message,
        ..record.clone()
    }
}

impl SequencedLog {
    /// Produces through `partitions`, asks `task` for seqs, reads `numbered` (a reader).
    pub fn new(partitions: Arc<KafkaPartitions>, numbered: SqlLog, task: TaskHandle) -> Self {
        SequencedLog {
            partitions,
            numbered,
            asker: Asker {
                waiting: Arc::new(Mutex::new(HashMap::new())),
                task,
            },
        }
    }
}

#[async_trait]
impl MessageLog for SequencedLog {
    async fn append(&self, object: &ObjectId, message: &Message) -> InfraResult<u64> {
        let entries = [(*object, message.clone())];
        self.append_many(&entries)
            .await
            .pop()
            .unwrap_or_else(|| Err(InfraError::Unavailable("not appended".into())))
    }

    async fn append_many(&self, entries: &[(ObjectId, Message)]) -> Vec<InfraResult<u64>> {
        let produced = self.partitions.produce(entries).await;
        let mut asks = Vec::with_capacity(produced.len());
        let mut outcomes: Vec<InfraResult<oneshot::Receiver<InfraResult<u64>>>> =
            Vec::with_capacity(produced.len());
        let since = Instant::now();
        for (outcome, (object, message)) in produced.into_iter().zip(entries) {
            match outcome {
                Ok((partition, offset)) => {
                    let (reply, answer) = oneshot::channel();
                    asks.push(Ask {
                        partition,
                        record: ProducedRecord {
                            offset,
                            object: object.to_string(),
                            id: message.id,
                            // So the owner need not read back what it is asked about.
                            message: Some(read_back(object, message)),
                        },
                        since,
                        reply,
                    });
                    outcomes.push(Ok(answer));
                }
                Err(error) => outcomes.push(Err(error)),
            }
        }
        self.asker.enqueue(asks);
        let mut seqs = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            seqs.push(match outcome {
                Ok(answer) => answer.await.unwrap_or_else(|_| {
                    Err(InfraError::Unavailable("the seq ask was dropped".into()))
                }),
                Err(error) => Err(error),
            });
        }
        seqs
    }

    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        self.numbered.read(object, after, max).await
    }

    async fn end(&self, object: &ObjectId) -> InfraResult<u64> {
        self.numbered.end(object).await
    }

    async fn ends(&self, objects: &[ObjectId]) -> InfraResult<Vec<(ObjectId, u64)>> {
        self.numbered.ends(objects).await
    }

    async fn objects(&self) -> InfraResult<Vec<ObjectId>> {
        self.numbered.objects().await
    }

    fn stores_messages(&self) -> bool {
        true
    }

    fn delivers_appends(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use natter_proto::placement::Stream;
    use natter_proto::v1::Empty;
    use natter_proto::v1::task_server::Task;
    use natter_proto::v1::{
        EphemeralPushRequest, GroupMembershipRequest, LagReply, PartitionSeqs, PushReply,
        SequenceReply, WakeRequest,
    };
    use tokio::sync::Notify;
    use tonic::{Request, Response, Status};

    use super::*;

    /// A task process that numbers every partition at once (seq = offset + 1) except one,
    /// whose numbering never finishes.
    struct StalledOwner {
        stalled: String,
        never: Notify,
    }

    #[tonic::async_trait]
    impl Task for StalledOwner {
        async fn wake(&self, _: Request<WakeRequest>) -> Result<Response<Empty>, Status> {
            Ok(Response::new(Empty {}))
        }

        async fn update_groups(
            &self,
            _: Request<GroupMembershipRequest>,
        ) -> Result<Response<Empty>, Status> {
            Ok(Response::new(Empty {}))
        }

        async fn push_ephemeral(
            &self,
            _: Request<EphemeralPushRequest>,
        ) -> Result<Response<PushReply>, Status> {
            Ok(Response::new(PushReply::default()))
        }

        async fn sequence(
            &self,
            request: Request<SequenceRequest>,
        ) -> Result<Response<SequenceReply>, Status> {
            let partitions = request.into_inner().partitions;
            if partitions
                .iter()
                .any(|asked| asked.partition == self.stalled)
            {
                self.never.notified().await;
            }
            Ok(Response::new(SequenceReply {
                partitions: partitions
                    .into_iter()
                    .map(|asked| PartitionSeqs {
                        seqs: asked
                            .records
                            .iter()
                            .map(|record| record.offset as u64 + 1)
                            .collect(),
                        error: String::new(),
                    })
                    .collect(),
            }))
        }

        async fn lag(&self, _: Request<Empty>) -> Result<Response<LagReply>, Status> {
            Ok(Response::new(LagReply::default()))
        }
    }

    fn ask(partition: LogPartition, offset: i64) -> (Ask, oneshot::Receiver<InfraResult<u64>>) {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            partition,
            record: ProducedRecord {
                offset,
                object: "user:7".into(),
                id: offset as u64,
                message: None,
            },
            since: Instant::now(),
            reply,
        };
        (ask, answer)
    }

    #[tokio::test]
    async fn a_partition_s_seqs_do_not_wait_for_another_partition_s_numbering() {
        let stalled = LogPartition {
            stream: Stream::Inbox,
            index: 0,
        };
        let moving = LogPartition {
            stream: Stream::Inbox,
            index: 1,
        };
        let asker = Asker {
            waiting: Arc::new(Mutex::new(HashMap::new())),
            task: TaskHandle::InProcess(Arc::new(StalledOwner {
                stalled: stalled.to_string(),
                never: Notify::new(),
            })),
        };
        let (stalled_ask, mut stalled_answer) = ask(stalled, 4);
        let (moving_ask, moving_answer) = ask(moving, 9);
        // Asked together, as one send's two copies are.
        asker.enqueue(vec![stalled_ask, moving_ask]);
        let seq = tokio::time::timeout(Duration::from_secs(5), moving_answer)
            .await
            .expect("the moving partition's seq came while the other stalled")
            .expect("answered")
            .expect("a seq");
        assert_eq!(seq, 10);
        assert!(
            stalled_answer.try_recv().is_err(),
            "the stalled partition's ask is still waiting"
        );
    }
}
