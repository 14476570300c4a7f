//! Logic's side of the partitioned log: a message is produced to its object's partition, then
//! the task process owning that partition is asked for the seq it gave the record (the ask
//! carries the message, so the owner need not read the record back). The asks of
//! concurrent sends go together: while a few requests are out, the next gathers what arrives
//! (the task router splits it by owner). Reads go to the store, which holds every numbered record
//! before its seq is answered.
//!
//! A logic process needs no coordination with the others: the partition's order is the
//! order. One that dies after producing leaves a record the owner numbers and delivers like
//! any other.

use std::sync::Arc;
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

/// Requests for seqs out at once. A request is answered when its slowest partition is
/// numbered, so one at a time would hold every send behind the slowest partition; a few at
/// once keep the partitions' numbering busy while later asks still share requests. An ask
/// waiting for a request also holds its record back from being numbered: 16 rather than 8
/// cut the cluster's steady p50 by a fifth at 2,000 msg/s, for about 6% more CPU a delivery
/// (BENCHMARKS.md, 2026-12-07, stop 42).
const REQUESTS_IN_FLIGHT: usize = 16;

/// The partitioned Kafka log as logic's `MessageLog`.
#[derive(Debug)]
pub struct SequencedLog {
    partitions: Arc<KafkaPartitions>,
    numbered: SqlLog,
    asker: Asker,
}

/// Sends the asks of concurrent sends to the partitions' owners together: while
/// [`REQUESTS_IN_FLIGHT`] requests are out, what arrives waits and goes in the next.
#[derive(Clone)]
struct Asker {
    waiting: Arc<Gatherer<Ask>>,
    task: TaskHandle,
}

impl std::fmt::Debug for Asker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Asker").finish_non_exhaustive()
    }
}

impl Asker {
    /// Queues asks, starting a sender unless enough are running.
    fn enqueue(&self, asks: Vec<Ask>) {
        if self.waiting.push(asks) {
            // A task of its own, so a send that gives up cannot strand the others' asks.
            tokio::spawn(self.clone().send_while_waiting());
        }
    }

    /// Sends what waits, one request at a time, until nothing does.
    async fn send_while_waiting(self) {
        while let Some(asks) = self.waiting.take() {
            self.send(asks).await;
        }
    }

    /// One request for `asks`, grouped by partition; answers them, or queues again those
    /// whose owner did not answer.
    async fn send(&self, asks: Vec<Ask>) {
        let mut by_partition: Vec<(LogPartition, Vec<Ask>)> = Vec::new();
        for ask in asks {
            match by_partition
                .iter_mut()
                .find(|(partition, _)| *partition == ask.partition)
            {
                Some((_, grouped)) => grouped.push(ask),
                None => by_partition.push((ask.partition, vec![ask])),
            }
        }
        let request = SequenceRequest {
            partitions: by_partition
                .iter_mut()
                .map(|(partition, asks)| PartitionRecords {
                    partition: partition.to_string(),
                    records: asks
                        .iter_mut()
                        .map(|ask| handed_over(&mut ask.record))
                        .collect(),
                })
                .collect(),
        };
        let started = Instant::now();
        let records: usize = by_partition.iter().map(|(_, asks)| asks.len()).sum();
        metrics::histogram!("natter_log_sequence_batch_records").record(records as f64);
        let reply = self.task.sequence(request).await;
        metrics::histogram!("natter_log_sequence_seconds").record(started.elapsed().as_secs_f64());
        // One answer per partition, in request order; a failed request fails them all.
        let answers: Vec<Result<Vec<u64>, String>> = match reply {
            Ok(reply) => {
                let mut given = reply.partitions.into_iter();
                by_partition
                    .iter()
                    .map(|(_, asks)| match given.next() {
                        Some(answer) if !answer.error.is_empty() => Err(answer.error),
                        Some(answer) if answer.seqs.len() == asks.len() => Ok(answer.seqs),
                        Some(_) => Err("the owner answered the wrong number of seqs".to_owned()),
                        None => Err("no answer".to_owned()),
                    })
                    .collect()
            }
            Err(status) => by_partition
                .iter()
                .map(|_| Err(status.message().to_owned()))
                .collect(),
        };
        let mut again = Vec::new();
        for ((partition, asks), answer) in by_partition.into_iter().zip(answers) {
            match answer {
                Ok(seqs) => {
                    for (ask, seq) in asks.into_iter().zip(seqs) {
                        let _ = ask.reply.send(Ok(seq));
                    }
                }
                Err(message) => {
                    tracing::debug!(%partition, message, "asking for seqs failed; asking again");
                    for ask in asks {
                        if ask.since.elapsed() < ASK_DEADLINE {
                            again.push(ask);
                        } else {
                            let _ = ask.reply.send(Err(InfraError::Unavailable(format!(
                                "{partition}: no seq for a produced record: {message}"
                            ))));
                        }
                    }
                }
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
                waiting: Arc::new(Gatherer::new(REQUESTS_IN_FLIGHT)),
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
