//! The `MessageLog` port: one durable, ordered stream per object.

use async_trait::async_trait;
use natter_proto::ObjectId;
use natter_proto::v1::Message;

use crate::error::InfraResult;

/// The bytes a log keeps for a message: the message without its object and seq, which the
/// entry's place in the log says, and without its trace and its unechoed connection, which a
/// record carries in headers.
pub(crate) fn record_payload(message: &Message) -> Vec<u8> {
    use prost::Message as _;
    Message {
        object: String::new(),
        seq: 0,
        trace_parent: String::new(),
        unechoed_node: String::new(),
        unechoed_connection: 0,
        ..message.clone()
    }
    .encode_to_vec()
}

/// The durable log ("the Kafka layer"). A message's seq is its position in its object's log:
/// the first is 1, and seqs are gap-free and strictly increasing per object.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Append a message to `object` (its `object` and `seq` fields are ignored); returns its seq.
    async fn append(&self, object: &ObjectId, message: &Message) -> InfraResult<u64>;
    /// Appends several entries at once (a one-to-one message's two copies), each to its own
    /// object, without waiting for one before the next; returns each entry's outcome in order.
    /// Entries for one object get increasing seqs in the order given. An adapter that writes
    /// them in one transaction fails all or none; one that cannot may fail some.
    async fn append_many(&self, entries: &[(ObjectId, Message)]) -> Vec<InfraResult<u64>> {
        let mut outcomes = Vec::with_capacity(entries.len());
        for (object, message) in entries {
            outcomes.push(self.append(object, message).await);
        }
        outcomes
    }
    /// Up to `max` messages after seq `after`, in order, with `object` and `seq` filled in.
    async fn read(&self, object: &ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>>;
    /// The seq of the last message (0 for an empty or unknown object).
    async fn end(&self, object: &ObjectId) -> InfraResult<u64>;
    /// The ends of several objects, as [`MessageLog::end`] gives each; one read where the log
    /// can (a gathered call's acks are checked against them together).
    async fn ends(&self, objects: &[ObjectId]) -> InfraResult<Vec<(ObjectId, u64)>> {
        each_end(self, objects).await
    }
    /// Every object with at least one message (for recovery on start).
    async fn objects(&self) -> InfraResult<Vec<ObjectId>>;
    /// Whether an append also leaves the message stored (the log is the store's `messages`
    /// table, or its numbering writes there), so the appender need not store it again.
    fn stores_messages(&self) -> bool {
        false
    }
    /// Whether an append starts the message's delivery by itself (the partitioned log: the
    /// task process numbering a record delivers it), so the appender need not wake task.
    fn delivers_appends(&self) -> bool {
        false
    }
}

/// The ends of `objects` asked of `log` one at a time.
pub(crate) async fn each_end<Log: MessageLog + ?Sized>(
    log: &Log,
    objects: &[ObjectId],
) -> InfraResult<Vec<(ObjectId, u64)>> {
    let mut ends = Vec::with_capacity(objects.len());
    for object in objects {
        ends.push((*object, log.end(object).await?));
    }
    Ok(ends)
}
