//! Appends to one Kafka partition shared by many callers: while one produce request is in
//! flight, the records that arrive wait and go together in the next, so the number of requests
//! follows the broker's round trips rather than the number of callers, and nothing lingers when
//! the partition is idle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;
use tokio::sync::oneshot;

use crate::cluster::kafka_log::{retry_transient, unavailable};
use crate::error::{InfraError, InfraResult};
use crate::gather::fitting;

/// How many records may wait for one partition; past it a caller is refused at once.
const MOST_WAITING_RECORDS: usize = 20_000;
/// The payload bytes one produce request carries at most (brokers refuse batches over 1 MiB by
/// default); a single caller's records always go whole.
const MOST_REQUEST_BYTES: usize = 512 * 1024;

/// One caller's records and where its offsets go.
struct Waiting {
    records: Vec<Record>,
    reply: oneshot::Sender<InfraResult<Vec<i64>>>,
}

/// The records waiting for the next request, and whether a request is on its way.
#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    waiting_records: usize,
    in_flight: bool,
}

/// The producer of one partition; share it in an `Arc`.
pub struct PartitionProducer {
    partition: Arc<PartitionClient>,
    queue: Mutex<Queue>,
    requests: AtomicU64,
}

impl PartitionProducer {
    /// A producer writing through `partition`.
    pub fn new(partition: Arc<PartitionClient>) -> Arc<PartitionProducer> {
        Arc::new(PartitionProducer {
            partition,
            queue: Mutex::new(Queue::default()),
            requests: AtomicU64::new(0),
        })
    }

    /// The partition's client, for reads.
    pub fn client(&self) -> &PartitionClient {
        &self.partition
    }

    /// Produce requests sent so far (each carries the records of one or more callers).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `records`, in their order, once every in-sync replica has them; returns their
    /// offsets, consecutive for one call.
    pub async fn produce(self: &Arc<Self>, records: Vec<Record>) -> InfraResult<Vec<i64>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue();
            if queue.waiting_records + records.len() > MOST_WAITING_RECORDS {
                return Err(InfraError::Unavailable(format!(
                    "{}/{}: {} records already wait for the broker",
                    self.partition.topic(),
                    self.partition.partition(),
                    queue.waiting_records
                )));
            }
            queue.waiting_records += records.len();
            queue.waiting.push(Waiting { records, reply });
            !std::mem::replace(&mut queue.in_flight, true)
        };
        if start {
            // A task of its own, so a caller that gives up cannot strand the others' records.
            tokio::spawn(Arc::clone(self).send_waiting());
        }
        answer
            .await
            .map_err(|_| InfraError::Unavailable("the producer stopped".into()))?
    }

    /// Sends what waits, one request at a time, until nothing does.
    async fn send_waiting(self: Arc<Self>) {
        loop {
            let batch = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    queue.in_flight = false;
                    return;
                }
                let taken = fitting(&queue.waiting, MOST_REQUEST_BYTES, |waiting| {
                    waiting.records.iter().map(record_bytes).sum()
                });
                let batch: Vec<Waiting> = queue.waiting.drain(..taken).collect();
                queue.waiting_records -= batch.iter().map(|w| w.records.len()).sum::<usize>();
                batch
            };
            self.send(batch).await;
        }
    }

    /// One produce request for `batch`; each caller gets its own offsets or the error.
    async fn send(&self, batch: Vec<Waiting>) {
        // The records move into the request; each caller keeps how many were its own.
        let mut records: Vec<Record> = Vec::new();
        let mut callers = Vec::with_capacity(batch.len());
        for waiting in batch {
            callers.push((waiting.records.len(), waiting.reply));
            records.extend(waiting.records);
        }
        let count = records.len();
        self.requests.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("natter_log_produce_records").record(count as f64);
        let produced = retry_transient(|| {
            self.partition
                .produce(records.clone(), Compression::NoCompression)
        })
        .await;
        match produced {
            Ok(offsets) if offsets.len() == count => {
                let mut offsets = offsets.into_iter();
                for (own, reply) in callers {
                    let mine: Vec<i64> = offsets.by_ref().take(own).collect();
                    // A caller that gave up no longer listens; its records are stored anyway.
                    let _ = reply.send(Ok(mine));
                }
            }
            outcome => {
                let text = match outcome {
                    Ok(offsets) => format!(
                        "the broker returned {} offsets for {count} records",
                        offsets.len()
                    ),
                    Err(error) => unavailable(error).to_string(),
                };
                for (_, reply) in callers {
                    let _ = reply.send(Err(InfraError::Unavailable(text.clone())));
                }
            }
        }
    }
}

/// The bytes a record adds to a request, near enough for sizing batches.
fn record_bytes(record: &Record) -> usize {
    record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len) + 32
}
