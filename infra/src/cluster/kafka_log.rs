//! `MessageLog` on a Kafka-protocol broker through rskafka (tested on Apache Kafka 4.4, KRaft).
//!
//! The `per-object` topology (the seeds' design): each object is one single-partition topic,
//! `<prefix>.user.<id>` or `<prefix>.group.<id>`, created on its first append. A message's seq
//! is its offset plus one, so the log's own numbering is the only numbering: nothing else has
//! to agree with it. The `partitioned` topology is [`super::KafkaPartitions`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::trace_context::TRACEPARENT;
use natter_proto::v1::Message;
use prost::Message as _;
use rskafka::BackoffConfig;
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OnceCell};

use crate::cluster::PartitionProducer;
use crate::error::{InfraError, InfraResult};
use crate::log::{MessageLog, record_payload};

/// How the message log is laid out on the broker.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogTopology {
    /// Two topics (inboxes, groups) with a fixed number of partitions each; objects share
    /// them by hash, and the task process owning a partition numbers its records.
    #[default]
    Partitioned,
    /// One single-partition topic per object (the seeds' design): a broker holds a
    /// partition per user and per group that ever received a message.
    PerObject,
}

/// How natter reaches its broker and names its topics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaLogConfig {
    /// `host:port` of one or more brokers; the rest of the cluster is found from them.
    pub bootstrap: Vec<String>,
    /// The first part of every topic name, so several natter clusters (or test runs) can share
    /// one broker.
    pub topic_prefix: String,
    /// Replicas per topic: 3 on a production Kafka cluster, 1 on a single broker.
    pub replication_factor: i16,
    /// How long the broker may take to create a topic, in milliseconds.
    pub create_timeout_ms: i32,
    /// How long one operation keeps retrying an unreachable broker before it fails, in ms.
    pub request_deadline_ms: u64,
    /// The most topics whose partition clients stay cached (each holds a little state).
    pub cached_partitions: usize,
    /// How objects' logs are laid out on the broker.
    pub topology: LogTopology,
    /// Partitions of the inbox topic (`partitioned`); fixed once the topic exists.
    pub inbox_partitions: u32,
    /// Partitions of the groups topic (`partitioned`); fixed once the topic exists.
    pub group_partitions: u32,
}

impl Default for KafkaLogConfig {
    fn default() -> Self {
        KafkaLogConfig {
            bootstrap: vec!["127.0.0.1:9092".into()],
            topic_prefix: "natter".into(),
            replication_factor: 1,
            create_timeout_ms: 5_000,
            request_deadline_ms: 15_000,
            cached_partitions: 10_000,
            topology: LogTopology::default(),
            inbox_partitions: 64,
            group_partitions: 64,
        }
    }
}

/// How long a fetch may wait on the broker for data: not at all. Readers are woken when
/// there is something to read, so a fetch never needs to long-poll, and a reader that is behind
/// must get what is there now rather than wait for more.
pub(crate) const FETCH_MAX_WAIT_MS: i32 = 0;
/// The most bytes one fetch asks for; a record larger than this still comes back whole.
pub(crate) const FETCH_MAX_BYTES: i32 = 1 << 20;

/// One partition's producer (and through it its client) per topic, created once even when
/// many callers race for it.
type PartitionSlot = Arc<OnceCell<Arc<PartitionProducer>>>;

/// The durable log on a Kafka-protocol broker.
pub struct KafkaLog {
    client: Client,
    config: KafkaLogConfig,
    partitions: Mutex<HashMap<String, PartitionSlot>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KafkaLog")
            .field("bootstrap", &self.config.bootstrap)
            .field("topic_prefix", &self.config.topic_prefix)
            .finish_non_exhaustive()
    }
}

/// Why a partition client could not be had.
enum PartitionError {
    /// The topic does not exist (and was not to be created).
    Missing,
    /// Anything else.
    Failed(InfraError),
}

impl KafkaLog {
    /// Connects to the brokers; fails (after `request_deadline_ms`) when none answers.
    pub async fn connect(config: KafkaLogConfig) -> InfraResult<KafkaLog> {
        let client = connect_client(&config).await?;
        Ok(KafkaLog {
            client,
            config,
            partitions: Mutex::new(HashMap::new()),
        })
    }
}

/// A client of the brokers `config` names, after checking the names it will use.
pub(crate) async fn connect_client(config: &KafkaLogConfig) -> InfraResult<Client> {
    if config.bootstrap.is_empty() {
        return Err(InfraError::Config("kafka.bootstrap lists no broker".into()));
    }
    if config.topic_prefix.is_empty()
        || !config
            .topic_prefix
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character))
    {
        return Err(InfraError::Config(format!(
            "kafka.topic_prefix {:?} must be letters, digits, '.', '_' or '-'",
            config.topic_prefix
        )));
    }
    let backoff = BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        base: 2.0,
        deadline: Some(Duration::from_millis(config.request_deadline_ms)),
    };
    ClientBuilder::new(config.bootstrap.clone())
        .client_id("natter")
        .backoff_config(backoff)
        .build()
        .await
        .map_err(unavailable)
}

impl KafkaLog {
    /// The topic that holds `object`'s log.
    fn topic(&self, object: &ObjectId) -> String {
        match object {
            ObjectId::User(id) => format!("{}.user.{id}", self.config.topic_prefix),
            ObjectId::Group(id) => format!("{}.group.{id}", self.config.topic_prefix),
        }
    }

    /// The object a topic of ours holds, or None for someone else's topic.
    fn object_of(&self, topic: &str) -> Option<ObjectId> {
        let rest = topic
            .strip_prefix(self.config.topic_prefix.as_str())?
            .strip_prefix('.')?;
        let (kind, id) = rest.split_once('.')?;
        format!("{kind}:{id}").parse().ok()
    }

    /// The partition client of `topic`; with `create`, the topic is created when missing.
    async fn partition(
        &self,
        topic: &str,
        create: bool,
    ) -> Result<Arc<PartitionProducer>, PartitionError> {
        let slot = {
            let mut partitions = self.partitions.lock().await;
            if let Some(slot) = partitions.get(topic) {
                Arc::clone(slot)
            } else {
                // Bounded: when full, forget one entry; it is rebuilt on its next use.
                if partitions.len() >= self.config.cached_partitions.max(1)
                    && let Some(evicted) = partitions.keys().next().cloned()
                {
                    partitions.remove(&evicted);
                }
                let slot = PartitionSlot::default();
                partitions.insert(topic.to_owned(), Arc::clone(&slot));
                slot
            }
        };
        slot.get_or_try_init(|| self.open_partition(topic, create))
            .await
            .map(Arc::clone)
    }

    async fn open_partition(
        &self,
        topic: &str,
        create: bool,
    ) -> Result<Arc<PartitionProducer>, PartitionError> {
        match self
            .client
            .partition_client(topic, 0, UnknownTopicHandling::Error)
            .await
        {
            Ok(partition) => return Ok(PartitionProducer::new(Arc::new(partition))),
            Err(error) if is_protocol(&error, ProtocolError::UnknownTopicOrPartition) => {
                if !create {
                    return Err(PartitionError::Missing);
                }
            }
            Err(error) => return Err(PartitionError::Failed(unavailable(error))),
        }
        let controller = self
            .client
            .controller_client()
            .map_err(|error| PartitionError::Failed(unavailable(error)))?;
        match controller
            .create_topic(
                topic,
                1,
                self.config.replication_factor,
                self.config.create_timeout_ms,
            )
            .await
        {
            Ok(()) => {
                metrics::counter!("natter_log_topics_created_total").increment(1);
                tracing::debug!(topic, "created log topic");
            }
            // Another process created it first: that is just as good.
            Err(error) if is_protocol(&error, ProtocolError::TopicAlreadyExists) => {}
            Err(error) => return Err(PartitionError::Failed(unavailable(error))),
        }
        // Brokers may take a moment before a new topic is known everywhere; wait it out (up
        // to the request deadline).
        self.client
            .partition_client(topic, 0, UnknownTopicHandling::Retry)
            .await
            .map(|partition| PartitionProducer::new(Arc::new(partition)))
            .map_err(|error| PartitionError::Failed(unavailable(error)))
    }

    /// The partition client of an existing topic, or None when it has never been written.
    async fn existing_partition(&self, topic: &str) -> InfraResult<Option<Arc<PartitionProducer>>> {
        match self.partition(topic, false).await {
            Ok(partition) => Ok(Some(partition)),
            Err(PartitionError::Missing) => Ok(None),
            Err(PartitionError::Failed(error)) => Err(error),
        }
    }

    /// Forget a cached client after it failed, so the next call starts afresh.
    async fn forget(&self, topic: &str) {
        self.partitions.lock().await.remove(topic);
    }
    /// Produces `messages` to one object's partition in one request; returns their seqs.
    async fn produce(&self, object: &ObjectId, messages: &[&Message]) -> InfraResult<Vec<u64>> {
        let topic = self.topic(object);
        let partition = match self.partition(&topic, true).await {
            Ok(partition) => partition,
            Err(PartitionError::Missing) => {
                return Err(InfraError::Unavailable(format!("{topic} was not created")));
            }
            Err(PartitionError::Failed(error)) => return Err(error),
        };
        let records: Vec<Record> = messages
            .iter()
            .map(|message| record_of(None, message))
            .collect();
        let started = std::time::Instant::now();
        // Concurrent appends to one object (a busy group) share produce requests.
        let offsets = match partition.produce(records).await {
            Ok(offsets) => offsets,
            Err(error) => {
                self.forget(&topic).await;
                return Err(error);
            }
        };
        metrics::histogram!("natter_log_append_seconds").record(started.elapsed().as_secs_f64());
        // The producer checked that the broker answered one offset per record.
        Ok(offsets.into_iter().map(seq_of_offset).collect())
    }
}

#[async_trait]
impl MessageLog for KafkaLog {
    async fn append(&self, object: &ObjectId, message: &Message) -> InfraResult<u64> {
        let seqs = self.produce(object, &[message]).await?;
        seqs.first().copied().ok_or_else(|| {
            InfraError::Unavailable(format!("{object}: the broker returned no offset"))
        })
    }

    async fn append_many(&self, entries: &[(ObjectId, Message)]) -> Vec<InfraResult<u64>> {
        // One produce per object, all of them at once: a one-to-one message's two copies
        // cost one round trip to the broker, not two in a row.
        let mut by_object: Vec<(ObjectId, Vec<usize>)> = Vec::new();
        for (index, (object, _)) in entries.iter().enumerate() {
            match by_object.iter_mut().find(|(known, _)| known == object) {
                Some((_, indices)) => indices.push(index),
                None => by_object.push((*object, vec![index])),
            }
        }
        let produced = futures_util::future::join_all(by_object.iter().map(|(object, indices)| {
            let messages: Vec<&Message> = indices.iter().map(|&index| &entries[index].1).collect();
            async move { self.produce(object, &messages).await }
        }))
        .await;
        let mut outcomes: Vec<Option<InfraResult<u64>>> = entries.iter().map(|_| None).collect();
        for ((object, indices), result) in by_object.iter().zip(produced) {
            match result {
                Ok(seqs) if seqs.len() == indices.len() => {
                    for (&index, seq) in indices.iter().zip(seqs) {
                        outcomes[index] = Some(Ok(seq));
                    }
                }
                Ok(_) => {
                    for &index in indices {
                        outcomes[index] = Some(Err(InfraError::Unavailable(format!(
                            "{object}: the broker returned too few offsets"
                        ))));
                    }
                }
                Err(error) => fail_all(&mut outcomes, indices, &error),
            }
        }
        answered(outcomes)
    }

    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        let topic = self.topic(object);
        let Some(partition) = self.existing_partition(&topic).await? else {
            return Ok(Vec::new());
        };
        let name = object.to_string();
        let mut messages = Vec::new();
        // The message with seq `after + 1` sits at offset `after`.
        let mut next_offset = i64::try_from(after).unwrap_or(i64::MAX);
        let started = std::time::Instant::now();
        while messages.len() < max {
            let (records, high_watermark) = match retry_transient(|| {
                partition
                    .client()
                    .fetch_records(next_offset, 1..FETCH_MAX_BYTES, FETCH_MAX_WAIT_MS)
            })
            .await
            {
                Ok(fetched) => fetched,
                // Reading past the end is reading nothing.
                Err(error) if is_protocol(&error, ProtocolError::OffsetOutOfRange) => break,
                Err(error) => {
                    self.forget(&topic).await;
                    return Err(unavailable(error));
                }
            };
            let before = messages.len();
            for record in records {
                if record.offset < next_offset || messages.len() >= max {
                    continue;
                }
                let seq = seq_of_offset(record.offset);
                let payload = record.record.value.as_deref().unwrap_or_default();
                let mut message = Message::decode(payload)
                    .map_err(|error| InfraError::Corrupt(format!("{name}@{seq}: {error}")))?;
                restore_headers(&record.record, &mut message);
                message.object = name.clone();
                message.seq = seq;
                messages.push(message);
                next_offset = record.offset + 1;
            }
            if messages.len() == before || next_offset >= high_watermark {
                break;
            }
        }
        metrics::histogram!("natter_log_read_seconds").record(started.elapsed().as_secs_f64());
        Ok(messages)
    }

    async fn end(&self, object: &ObjectId) -> InfraResult<u64> {
        let topic = self.topic(object);
        let Some(partition) = self.existing_partition(&topic).await? else {
            return Ok(0);
        };
        // ListOffsets(Latest) answers the high watermark: the end of what readers can see.
        match partition.client().get_offset(OffsetAt::Latest).await {
            Ok(latest) => Ok(u64::try_from(latest).unwrap_or(0)),
            Err(error) => {
                self.forget(&topic).await;
                Err(unavailable(error))
            }
        }
    }

    async fn objects(&self) -> InfraResult<Vec<ObjectId>> {
        let topics = self.client.list_topics().await.map_err(unavailable)?;
        let mut objects: Vec<ObjectId> = topics
            .iter()
            .filter_map(|topic| self.object_of(&topic.name))
            .collect();
        objects.sort_unstable();
        objects.dedup();
        Ok(objects)
    }
}

/// Fails every entry at `indices` with `error`: they went to the broker in one request.
pub(crate) fn fail_all<T>(
    outcomes: &mut [Option<InfraResult<T>>],
    indices: &[usize],
    error: &dyn std::fmt::Display,
) {
    let text = error.to_string();
    for &index in indices {
        outcomes[index] = Some(Err(InfraError::Unavailable(text.clone())));
    }
}

/// Each entry's outcome, in order; an entry no request answered is unavailable.
pub(crate) fn answered<T>(outcomes: Vec<Option<InfraResult<T>>>) -> Vec<InfraResult<T>> {
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| Err(InfraError::Unavailable("not produced".into())))
        })
        .collect()
}

/// The broker record of a message, keyed by `key` when its topic holds several objects.
pub(crate) fn record_of(key: Option<Vec<u8>>, message: &Message) -> Record {
    // The record's time is the message's; a nonsense value becomes the epoch rather than an
    // error, since brokers only use it for retention.
    let timestamp = Utc
        .timestamp_millis_opt(message.ts)
        .single()
        .unwrap_or_default();
    let mut headers = std::collections::BTreeMap::new();
    if !message.trace_parent.is_empty() {
        headers.insert(
            TRACEPARENT.to_owned(),
            message.trace_parent.as_bytes().to_vec(),
        );
    }
    if message.unechoed_connection != 0 {
        let unechoed = format!("{}/{}", message.unechoed_node, message.unechoed_connection);
        headers.insert(UNECHOED.to_owned(), unechoed.into_bytes());
    }
    Record {
        key,
        value: Some(record_payload(message)),
        headers,
        timestamp,
    }
}

/// The record header naming the connection that sent a copy and wants no echo of it, as
/// `<node>/<connection id>` (see [`record_of`]).
const UNECHOED: &str = "natter-unechoed";

/// Puts back on `message` what the record's headers carry beside its payload (see
/// [`record_of`]): its trace, and the connection that wants no echo of it. A header that does
/// not parse is left out: it only ever spares a push.
pub(crate) fn restore_headers(record: &Record, message: &mut Message) {
    let header = |name: &str| {
        record
            .headers
            .get(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    };
    message.trace_parent = header(TRACEPARENT).unwrap_or_default().to_owned();
    if let Some((node, connection)) = header(UNECHOED).and_then(|value| value.rsplit_once('/'))
        && let Ok(connection) = connection.parse()
    {
        message.unechoed_node = node.to_owned();
        message.unechoed_connection = connection;
    }
}

/// Attempts at an operation the broker failed in a way that may pass (see [`is_transient`]).
const TRANSIENT_ATTEMPTS: u32 = 5;

/// Runs `operation` again, with a short growing pause, while the broker answers with an error
/// that says "not now" rather than "no". A retried produce the broker had in fact stored is
/// stored twice under one message id, which clients already tolerate (docs/protocol.md).
pub(crate) async fn retry_transient<T, F, Operation>(
    mut operation: Operation,
) -> Result<T, KafkaError>
where
    Operation: FnMut() -> F,
    F: std::future::Future<Output = Result<T, KafkaError>>,
{
    let mut pause = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(error) if attempt < TRANSIENT_ATTEMPTS && is_transient(&error) => {
                metrics::counter!("natter_log_transient_errors_total").increment(1);
                tracing::debug!(%error, attempt, "the broker failed transiently; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Broker errors that a retry may get past: short of in-sync replicas while one catches up, a
/// leader moving, or a broker slow to answer.
fn is_transient(error: &KafkaError) -> bool {
    match error {
        KafkaError::ServerError { protocol_error, .. } => matches!(
            protocol_error,
            ProtocolError::NotEnoughReplicas
                | ProtocolError::NotEnoughReplicasAfterAppend
                | ProtocolError::RequestTimedOut
                | ProtocolError::KafkaStorageError
        ),
        _ => false,
    }
}

/// Offsets count from 0, seqs from 1.
fn seq_of_offset(offset: i64) -> u64 {
    u64::try_from(offset).unwrap_or(0) + 1
}

pub(crate) fn is_protocol(error: &KafkaError, expected: ProtocolError) -> bool {
    match error {
        KafkaError::ServerError { protocol_error, .. } => *protocol_error == expected,
        _ => false,
    }
}

pub(crate) fn unavailable(error: KafkaError) -> InfraError {
    InfraError::Unavailable(format!("kafka: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_offsets_plus_one() {
        assert_eq!(seq_of_offset(0), 1);
        assert_eq!(seq_of_offset(41), 42);
        assert_eq!(seq_of_offset(-1), 1, "a nonsense offset never yields seq 0");
    }

    #[test]
    fn a_record_carries_trace_and_unechoed_connection_in_headers_not_in_its_payload() {
        let message = Message {
            id: 9,
            body: "hello".into(),
            trace_parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            unechoed_node: "connect/2".into(),
            unechoed_connection: 41,
            ..Message::default()
        };
        let record = record_of(None, &message);
        let stored = Message::decode(record.value.as_deref().unwrap_or_default()).unwrap();
        assert_eq!((stored.id, stored.body.as_str()), (9, "hello"));
        assert!(stored.trace_parent.is_empty() && stored.unechoed_node.is_empty());
        assert_eq!(stored.unechoed_connection, 0);

        let mut read = stored;
        restore_headers(&record, &mut read);
        assert_eq!(read, message, "a node name holding '/' comes back whole");

        // A header that does not parse only loses the saving: the message reads as echoed.
        let mut garbled = record.clone();
        garbled
            .headers
            .insert(UNECHOED.to_owned(), b"connect-1/seven".to_vec());
        let mut read = Message::default();
        restore_headers(&garbled, &mut read);
        assert_eq!(
            (read.unechoed_node.as_str(), read.unechoed_connection),
            ("", 0)
        );
    }
}
