//! The `partitioned` topology of the Kafka log: two topics, `<prefix>.inbox` and
//! `<prefix>.groups`, each with a fixed number of partitions, which objects share by hash
//! ([`LogPartition::of`]). Records are keyed by their object's name.
//!
//! This side only produces and fetches records: a record's seq in its object is given by the
//! task process owning its partition, which reads the partition in offset order (see
//! `task::sequencer`). A million silent users cost the broker nothing here, and the broker's
//! partition count stays what the configuration says whatever the number of objects.

use std::collections::HashMap;
use std::sync::Arc;

use natter_proto::ObjectId;
use natter_proto::placement::{LogPartition, Stream};
use natter_proto::v1::Message;
use prost::Message as _;
use rskafka::client::Client;
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::record::Record;

use crate::cluster::PartitionProducer;
use crate::cluster::kafka_log::{
    FETCH_MAX_WAIT_MS, KafkaLogConfig, answered, connect_client, fail_all, is_protocol, record_of,
    restore_headers, retry_transient, unavailable,
};
use crate::error::{InfraError, InfraResult};

/// One record read back from a partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// The object it was appended to.
    pub object: ObjectId,
    /// The message, with `object` filled in and `seq` 0 (the owner numbers it).
    pub message: Message,
}

/// What one fetch found.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Records from the offset asked for on, in offset order.
    pub records: Vec<PartitionRecord>,
    /// The offset after the last record readers can see (the high watermark).
    pub end: i64,
}

/// The shared, partitioned message log on a Kafka-protocol broker.
pub struct KafkaPartitions {
    config: KafkaLogConfig,
    producers: HashMap<LogPartition, Arc<PartitionProducer>>,
}

impl std::fmt::Debug for KafkaPartitions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KafkaPartitions")
            .field("bootstrap", &self.config.bootstrap)
            .field("topic_prefix", &self.config.topic_prefix)
            .field("partitions", &self.producers.len())
            .finish_non_exhaustive()
    }
}

impl KafkaPartitions {
    /// Connects to the brokers and makes sure both topics exist with the configured number of
    /// partitions. A topic that exists with another count is refused: objects would move
    /// between partitions, and their numbering with them.
    pub async fn connect(config: KafkaLogConfig) -> InfraResult<KafkaPartitions> {
        for (name, count) in [
            ("inbox_partitions", config.inbox_partitions),
            ("group_partitions", config.group_partitions),
        ] {
            if count == 0 || count > 10_000 {
                return Err(InfraError::Config(format!(
                    "kafka.{name} is {count}: expected 1 to 10000"
                )));
            }
        }
        let client = connect_client(&config).await?;
        let mut producers = HashMap::new();
        for stream in [Stream::Inbox, Stream::Groups] {
            let topic = topic_name(&config, stream);
            let count = partition_count(&config, stream);
            ensure_topic(&client, &config, &topic, count).await?;
            for index in 0..count {
                let partition = client
                    .partition_client(topic.as_str(), index as i32, UnknownTopicHandling::Retry)
                    .await
                    .map_err(unavailable)?;
                producers.insert(
                    LogPartition { stream, index },
                    PartitionProducer::new(Arc::new(partition)),
                );
            }
        }
        Ok(KafkaPartitions { config, producers })
    }

    /// The partition holding `object`.
    pub fn partition_of(&self, object: &ObjectId) -> LogPartition {
        LogPartition::of(object, partition_count(&self.config, Stream::of(object)))
    }

    /// The name the store keeps `partition`'s numbering under: its topic and index
    /// (`natter.inbox/3`).
    pub fn stored_name(&self, partition: &LogPartition) -> String {
        format!(
            "{}/{}",
            topic_name(&self.config, partition.stream),
            partition.index
        )
    }

    fn producer(&self, partition: &LogPartition) -> InfraResult<&Arc<PartitionProducer>> {
        self.producers
            .get(partition)
            .ok_or_else(|| InfraError::Config(format!("no log partition {partition}")))
    }

    /// Produces each entry to its object's partition, all partitions at once (concurrent
    /// callers' records to one partition share requests); returns where each entry went, in
    /// order. Entries for one partition go in the order given.
    pub async fn produce(
        &self,
        entries: &[(ObjectId, Message)],
    ) -> Vec<InfraResult<(LogPartition, i64)>> {
        let mut by_partition: Vec<(LogPartition, Vec<usize>)> = Vec::new();
        for (index, (object, _)) in entries.iter().enumerate() {
            let partition = self.partition_of(object);
            match by_partition
                .iter_mut()
                .find(|(known, _)| *known == partition)
            {
                Some((_, indices)) => indices.push(index),
                None => by_partition.push((partition, vec![index])),
            }
        }
        let started = std::time::Instant::now();
        let produced =
            futures_util::future::join_all(by_partition.iter().map(|(partition, indices)| {
                let records = indices
                    .iter()
                    .map(|&index| {
                        let (object, message) = &entries[index];
                        record_of(Some(object.to_string().into_bytes()), message)
                    })
                    .collect();
                async move { self.producer(partition)?.produce(records).await }
            }))
            .await;
        metrics::histogram!("natter_log_append_seconds").record(started.elapsed().as_secs_f64());
        let mut outcomes: Vec<Option<InfraResult<(LogPartition, i64)>>> =
            entries.iter().map(|_| None).collect();
        for ((partition, indices), result) in by_partition.iter().zip(produced) {
            match result {
                Ok(offsets) => {
                    for (&index, offset) in indices.iter().zip(offsets) {
                        outcomes[index] = Some(Ok((*partition, offset)));
                    }
                }
                Err(error) => fail_all(&mut outcomes, indices, &error),
            }
        }
        answered(outcomes)
    }

    /// Records of `partition` from `offset` on, up to about `max_bytes` (a larger record
    /// still comes back whole), without waiting for more to arrive.
    pub async fn fetch(
        &self,
        partition: &LogPartition,
        offset: i64,
        max_bytes: i32,
    ) -> InfraResult<Fetched> {
        let client = self.producer(partition)?.client();
        let started = std::time::Instant::now();
        let (records, end) = match retry_transient(|| {
            client.fetch_records(offset, 1..max_bytes.max(1), FETCH_MAX_WAIT_MS)
        })
        .await
        {
            Ok(fetched) => fetched,
            // Nothing at or past the end yet.
            Err(error) if is_protocol(&error, ProtocolError::OffsetOutOfRange) => {
                return Ok(Fetched {
                    records: Vec::new(),
                    end: offset,
                });
            }
            Err(error) => return Err(unavailable(error)),
        };
        metrics::histogram!("natter_log_read_seconds").record(started.elapsed().as_secs_f64());
        let mut fetched = Fetched {
            records: Vec::with_capacity(records.len()),
            end,
        };
        for record in records {
            // A fetch may start at the beginning of the batch holding `offset`.
            if record.offset < offset {
                continue;
            }
            let (object, message) = read_record(&record.record).map_err(|error| {
                InfraError::Corrupt(format!("{partition}@{}: {error}", record.offset))
            })?;
            fetched.records.push(PartitionRecord {
                offset: record.offset,
                object,
                message,
            });
        }
        Ok(fetched)
    }
}

/// `message` as a fetch of the record it was produced as gives it back: what a producer
/// hands the partition's owner so it can number the record without reading it.
pub fn read_back(object: &ObjectId, message: &Message) -> Message {
    let mut read = Message {
        object: object.to_string(),
        seq: 0,
        ..message.clone()
    };
    // The record carries the unechoed connection only when there is one.
    if read.unechoed_connection == 0 {
        read.unechoed_node.clear();
    }
    read
}

/// A fetched record's object (its key) and message (its payload and headers).
fn read_record(record: &Record) -> Result<(ObjectId, Message), String> {
    let key = record.key.as_deref().unwrap_or_default();
    let name = String::from_utf8_lossy(key);
    let object: ObjectId = name.parse().map_err(|_| format!("key {name:?}"))?;
    let payload = record.value.as_deref().unwrap_or_default();
    let mut message = Message::decode(payload).map_err(|error| error.to_string())?;
    restore_headers(record, &mut message);
    message.object = object.to_string();
    message.seq = 0;
    Ok((object, message))
}

/// The topic of a stream: `<prefix>.inbox` or `<prefix>.groups`.
fn topic_name(config: &KafkaLogConfig, stream: Stream) -> String {
    format!("{}.{}", config.topic_prefix, stream.name())
}

fn partition_count(config: &KafkaLogConfig, stream: Stream) -> u32 {
    match stream {
        Stream::Inbox => config.inbox_partitions,
        Stream::Groups => config.group_partitions,
    }
}

/// Creates `topic` with `count` partitions unless it exists; refuses one with another count.
async fn ensure_topic(
    client: &Client,
    config: &KafkaLogConfig,
    topic: &str,
    count: u32,
) -> InfraResult<()> {
    let existing = client.list_topics().await.map_err(unavailable)?;
    if let Some(found) = existing.iter().find(|known| known.name == topic) {
        if found.partitions.len() != count as usize {
            return Err(InfraError::Config(format!(
                "topic {topic} has {} partitions but the configuration says {count}: changing \
                 the count would move objects between partitions",
                found.partitions.len()
            )));
        }
        return Ok(());
    }
    let controller = client.controller_client().map_err(unavailable)?;
    match controller
        .create_topic(
            topic,
            count as i32,
            config.replication_factor,
            config.create_timeout_ms,
        )
        .await
    {
        Ok(()) => {
            metrics::counter!("natter_log_topics_created_total").increment(1);
            tracing::info!(topic, partitions = count, "created the log topic");
            Ok(())
        }
        // Another process created it first: check it has the same shape.
        Err(error) if is_protocol(&error, ProtocolError::TopicAlreadyExists) => {
            // Its metadata may take a moment to reach the broker answering the listing.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Box::pin(ensure_topic(client, config, topic, count)).await
        }
        Err(error) => Err(unavailable(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_read_back_is_what_a_fetch_of_its_record_gives() {
        let object = ObjectId::User(42);
        let traced = Message {
            id: 7,
            sender: 3,
            kind: "text".into(),
            body: "hello".into(),
            ts: 1_700_000_000_000,
            object: "stale".into(),
            seq: 9,
            trace_parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            unechoed_node: "connect-1".into(),
            unechoed_connection: 12,
            ..Message::default()
        };
        // A node named without a connection is not carried by the record.
        let untraced = Message {
            trace_parent: String::new(),
            unechoed_connection: 0,
            ..traced.clone()
        };
        for message in [traced, untraced] {
            let record = record_of(Some(object.to_string().into_bytes()), &message);
            let (read_object, read) = read_record(&record).expect("readable");
            assert_eq!(read_object, object);
            assert_eq!(read_back(&object, &message), read);
        }
    }
}
