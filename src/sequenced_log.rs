//! Logic's side of the partitioned log: a message is produced to its object's partition, then
//! the task process owning that partition is asked for the seq it gave the record. Reads go to
//! the store, which holds every numbered record before its seq is answered.
//!
//! A logic process needs no coordination with the others: the partition's order is the
//! order. One that dies after producing leaves a record the owner numbers and delivers like
//! any other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use natter_infra::cluster::KafkaPartitions;
use natter_infra::error::InfraResult;
use natter_infra::sql::SqlLog;
use natter_infra::{InfraError, MessageLog};
use natter_proto::ObjectId;
use natter_proto::handle::TaskHandle;
use natter_proto::placement::LogPartition;
use natter_proto::v1::{Message, ProducedRecord, SequenceRequest};

/// How long logic keeps asking for the seqs of records it produced: a produced record is in
/// the log, so giving up early would answer "failed" for a message that will be delivered.
const ASK_DEADLINE: Duration = Duration::from_secs(20);
/// The pause between asks after one failed.
const ASK_PAUSE: Duration = Duration::from_millis(100);

/// The partitioned Kafka log as logic's `MessageLog`.
#[derive(Debug)]
pub struct SequencedLog {
    partitions: Arc<KafkaPartitions>,
    numbered: SqlLog,
    task: TaskHandle,
}

impl SequencedLog {
    /// Produces through `partitions`, asks `task` for seqs, reads `numbered` (a reader).
    pub fn new(partitions: Arc<KafkaPartitions>, numbered: SqlLog, task: TaskHandle) -> Self {
        SequencedLog {
            partitions,
            numbered,
            task,
        }
    }

    /// Asks the partition's owner for the seqs of records produced there, retrying (the owner
    /// may have just died) until the deadline.
    async fn ask(
        &self,
        partition: LogPartition,
        records: Vec<ProducedRecord>,
    ) -> InfraResult<Vec<u64>> {
        let started = Instant::now();
        let wanted = records.len();
        let request = SequenceRequest {
            partition: partition.to_string(),
            records,
        };
        loop {
            match self.task.sequence(request.clone()).await {
                Ok(reply) if reply.seqs.len() == wanted => {
                    metrics::histogram!("natter_log_sequence_seconds")
                        .record(started.elapsed().as_secs_f64());
                    return Ok(reply.seqs);
                }
                Ok(_) => {
                    return Err(InfraError::Corrupt(format!(
                        "{partition}: the owner answered the wrong number of seqs"
                    )));
                }
                Err(status) if started.elapsed() < ASK_DEADLINE => {
                    tracing::debug!(%partition, %status, "asking for seqs failed; asking again");
                    tokio::time::sleep(ASK_PAUSE).await;
                }
                Err(status) => {
                    return Err(InfraError::Unavailable(format!(
                        "{partition}: no seq for produced records: {}",
                        status.message()
                    )));
                }
            }
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
        // One ask per partition, all at once.
        let mut by_partition: Vec<(LogPartition, Vec<usize>)> = Vec::new();
        for (index, outcome) in produced.iter().enumerate() {
            if let Ok((partition, _)) = outcome {
                match by_partition
                    .iter_mut()
                    .find(|(known, _)| known == partition)
                {
                    Some((_, indices)) => indices.push(index),
                    None => by_partition.push((*partition, vec![index])),
                }
            }
        }
        let asked =
            futures_util::future::join_all(by_partition.iter().map(|(partition, indices)| {
                let records = indices
                    .iter()
                    .filter_map(|&index| {
                        let (_, offset) = produced[index].as_ref().ok()?;
                        let (object, message) = &entries[index];
                        Some(ProducedRecord {
                            offset: *offset,
                            object: object.to_string(),
                            id: message.id,
                        })
                    })
                    .collect();
                self.ask(*partition, records)
            }))
            .await;
        let mut outcomes: Vec<InfraResult<u64>> = produced
            .into_iter()
            .map(|outcome| outcome.map(|_| 0))
            .collect();
        for ((_, indices), answer) in by_partition.iter().zip(asked) {
            match answer {
                Ok(seqs) => {
                    for (&index, seq) in indices.iter().zip(seqs) {
                        outcomes[index] = Ok(seq);
                    }
                }
                Err(error) => {
                    let text = error.to_string();
                    for &index in indices {
                        outcomes[index] = Err(InfraError::Unavailable(text.clone()));
                    }
                }
            }
        }
        outcomes
    }

    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        self.numbered.read(object, after, max).await
    }

    async fn end(&self, object: &ObjectId) -> InfraResult<u64> {
        self.numbered.end(object).await
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
