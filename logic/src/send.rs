//! Sending and de-duplication: the `send` rpc and its path (check and authorise, claim the
//! cid, name, append, store, answer), and the log append the other families share.
//!
//! A one-to-one message has two copies (the recipient's inbox and the sender's own, for the
//! sender's other devices); both go to the log in one request, which the embedded log writes
//! in one transaction and the Kafka log as concurrent produces. Concurrent sends meet in the
//! log's and the store's batch writers, so they share commits instead of taking turns. A send
//! is answered only once its copies are durable in the log. If only some copies were written,
//! the de-duplication record says which, so a retry with the same cid writes the rest under
//! the same id instead of a second message.

use std::time::Duration;

use natter_infra::ids::first_id_at;
use natter_infra::sessions::Claim;
use natter_infra::{InfraError, now_millis};
use natter_proto::v1::{
    Message, SendBatchReply, SendBatchRequest, SendOutcome, SendReply, SendRequest, WakeRequest,
};
use natter_proto::{ErrorCode, ObjectId, trace_child, trace_context};
use tonic::Status;
use tracing::Instrument;

use crate::claim_holder;
use crate::edits::Quote;
use crate::state::{LogicService, status};
use crate::validate::{self, Content};

/// How long a send may hold its cid's claim before a retry may take over: longer than any
/// send takes (the appends are bounded by the log's own deadline).
pub(crate) const PENDING_CLAIM_TTL: Duration = Duration::from_secs(60);

/// The de-duplication key of a send.
fn dedup_key(sender: i64, cid: &str) -> String {
    format!("send:{sender}:{cid}")
}

/// A one-to-one send of which some copies are in the log: what a retry needs to finish it
/// under the same id and time.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PartialSend {
    id: u64,
    ts: i64,
    /// The recipient's copy is in the log.
    recipient_written: bool,
    /// The seq of the sender's copy, if it is in the log.
    sender_seq: Option<u64>,
}

/// What a send's de-duplication record remembers, so a retry with the same cid neither
/// writes the message twice nor loses it.
#[derive(Debug, PartialEq)]
enum Remembered {
    /// Finished: the retry gets the same reply. Stored as `id object seq ts`.
    Sent(SendReply),
    /// Some copies are in the log (the log failed for the others): a retry writes only the
    /// missing ones. Stored as `partial id ts recipient_written sender_seq` (0: not written);
    /// the older `partial id ts` means the recipient's copy alone.
    Partial(PartialSend),
}

impl Remembered {
    fn encode(&self) -> String {
        match self {
            Remembered::Sent(reply) => {
                format!("{} {} {} {}", reply.id, reply.object, reply.seq, reply.ts)
            }
            Remembered::Partial(partial) => format!(
                "partial {} {} {} {}",
                partial.id,
                partial.ts,
                u8::from(partial.recipient_written),
                partial.sender_seq.unwrap_or(0)
            ),
        }
    }

    fn decode(cid: &str, text: &str) -> Option<Remembered> {
        let mut parts = text.split(' ');
        let first = parts.next()?;
        if first == "partial" {
            let id = parts.next()?.parse().ok()?;
            let ts = parts.next()?.parse().ok()?;
            let (recipient_written, sender_seq) = match (parts.next(), parts.next()) {
                (None, None) => (true, None),
                (Some(recipient), Some(sender)) => {
                    let sender: u64 = sender.parse().ok()?;
                    (recipient == "1", (sender > 0).then_some(sender))
                }
                _ => return None,
            };
            return Some(Remembered::Partial(PartialSend {
                id,
                ts,
                recipient_written,
                sender_seq,
            }));
        }
        Some(Remembered::Sent(SendReply {
            cid: cid.to_string(),
            id: first.parse().ok()?,
            object: parts.next()?.to_string(),
            seq: parts.next()?.parse().ok()?,
            ts: parts.next()?.parse().ok()?,
        }))
    }

    /// What the stored copies of an earlier attempt of `request` say it wrote, if any: the
    /// durable record a retry falls back on when the de-duplication memory forgot it.
    fn from_copies(request: &SendRequest, copies: &[Message]) -> Option<Remembered> {
        // One message per cid; should the history hold more, the first made is the answer.
        let first = copies.iter().min_by_key(|copy| copy.id)?;
        let copies: Vec<&Message> = copies.iter().filter(|copy| copy.id == first.id).collect();
        let sender_object = ObjectId::User(request.sender).to_string();
        let reply = |copy: &Message| SendReply {
            cid: request.cid.clone(),
            id: copy.id,
            object: copy.object.clone(),
            seq: copy.seq,
            ts: copy.ts,
        };
        if first.target_kind != ObjectId::User(0).kind_name() {
            // A group message has one copy, the group's.
            return Some(Remembered::Sent(reply(first)));
        }
        let sender_copy = copies.iter().find(|copy| copy.object == sender_object);
        let recipient_written = copies.iter().any(|copy| copy.object != sender_object);
        match sender_copy {
            Some(copy) if recipient_written => Some(Remembered::Sent(reply(copy))),
            sender_copy => Some(Remembered::Partial(PartialSend {
                id: first.id,
                ts: first.ts,
                recipient_written,
                sender_seq: sender_copy.map(|copy| copy.seq),
            })),
        }
    }
}

/// How far a failed send got.
enum SendFailure {
    /// Nothing was written: a retry starts afresh.
    NothingWritten(Status),
    /// Some copies were written; a retry must finish with the same id.
    Partial(Status, PartialSend),
}

impl LogicService {
    /// Checks a send and returns its target and what it quotes; authorisation included.
    async fn check_send(&self, request: &SendRequest) -> Result<(ObjectId, Quote), Status> {
        if request.sender <= 0 {
            return Err(ErrorCode::Unauthorized.status("no sender"));
        }
        validate::cid(&request.cid)?;
        let content = validate::content(&request.kind, &request.body, self.config.max_text_chars)?;
        let target = validate::target(request.target_kind, request.target_id)?;
        match target {
            ObjectId::User(peer) => {
                if !self.may_reach(request.sender, target).await? {
                    return Err(
                        ErrorCode::NotFriends.status(format!("user {peer} is not your friend"))
                    );
                }
            }
            // One read of the member's standing answers both: a member, and not muted.
            ObjectId::Group(group) => self.refuse_if_muted(group, request.sender).await?,
        }
        let quote = self.quote(request.sender, target, request.reply_to).await?;
        if let Content::Image(upload) = content {
            self.share_image(request.sender, upload, target).await?;
        }
        Ok((target, quote))
    }

    /// Logs, stores and announces an accepted group message: one copy, in the group's log,
    /// which every member follows (the sender's devices get it from there too).
    async fn deliver_group(
        &self,
        request: &SendRequest,
        group: i64,
        quote: &Quote,
    ) -> Result<SendReply, Status> {
        let object = ObjectId::Group(group);
        let mut message = Message {
            id: self.ids.next_id().map_err(status)?,
            sender: request.sender,
            peer: group,
            kind: request.kind.clone(),
            body: request.body.clone(),
            ts: now_millis(),
            cid: request.cid.clone(),
            target_kind: object.kind_name().into(),
            target_id: group,
            ..Message::default()
        };
        quote.apply(&mut message);
        let [message] = self
            .append_copies(vec![(object, message)])
            .await?
            .try_into()
            .map_err(|_| ErrorCode::Internal.status("one copy appended, not one returned"))?;
        metrics::counter!("natter_messages_accepted_total").increment(1);
        Ok(SendReply {
            cid: request.cid.clone(),
            id: message.id,
            object: message.object,
            seq: message.seq,
            ts: message.ts,
        })
    }

    /// Logs, stores and announces an accepted one-to-one message; returns the sender's reply.
    /// `resume` is an earlier attempt that wrote some of the copies.
    async fn deliver_direct(
        &self,
        request: &SendRequest,
        peer: i64,
        quote: &Quote,
        resume: Option<PartialSend>,
    ) -> Result<SendReply, SendFailure> {
        let mut progress = match resume {
            Some(earlier) => earlier,
            None => PartialSend {
                id: self
                    .ids
                    .next_id()
                    .map_err(|error| SendFailure::NothingWritten(status(error)))?,
                ts: now_millis(),
                recipient_written: false,
                sender_seq: None,
            },
        };
        let mut base = Message {
            id: progress.id,
            sender: request.sender,
            kind: request.kind.clone(),
            body: request.body.clone(),
            ts: progress.ts,
            cid: request.cid.clone(),
            target_kind: ObjectId::User(peer).kind_name().into(),
            target_id: peer,
            ..Message::default()
        };
        quote.apply(&mut base);
        let recipient_object = ObjectId::User(peer);
        let sender_object = ObjectId::User(request.sender);
        let mut missing = Vec::with_capacity(2);
        if !progress.recipient_written {
            let copy = Message {
                peer: request.sender,
                ..base.clone()
            };
            missing.push((recipient_object, copy));
        }
        if progress.sender_seq.is_none() {
            // The sending connection's own copy is not pushed back to it when it asked so.
            let copy = Message {
                peer,
                unechoed_node: request.unechoed_node.clone(),
                unechoed_connection: request.unechoed_connection,
                ..base
            };
            missing.push((sender_object, copy));
        }
        // Both copies in one request: written together, not one after the other. The store
        // copy makes them visible to history; a copy written by an earlier attempt is
        // repaired by task as it delivers it.
        let (written, failure) = self.write_copies(missing).await;
        let recipient_name = recipient_object.to_string();
        let mut recipient_seq = None;
        for copy in &written {
            if copy.object == recipient_name {
                progress.recipient_written = true;
                recipient_seq = Some(copy.seq);
            } else {
                progress.sender_seq = Some(copy.seq);
            }
        }
        if let (Some(seq), Some(sender_seq)) = (recipient_seq, progress.sender_seq) {
            self.recent_copies
                .record(peer, seq, request.sender, sender_seq);
        }
        if let Some(error) = failure {
            let status = status(error);
            return Err(
                if progress.recipient_written || progress.sender_seq.is_some() {
                    SendFailure::Partial(status, progress)
                } else {
                    SendFailure::NothingWritten(status)
                },
            );
        }
        let seq = progress.sender_seq.ok_or_else(|| {
            SendFailure::Partial(ErrorCode::Internal.status("no sender copy"), progress)
        })?;
        metrics::counter!("natter_messages_accepted_total").increment(1);
        Ok(SendReply {
            cid: request.cid.clone(),
            id: progress.id,
            object: sender_object.to_string(),
            seq,
            ts: progress.ts,
        })
    }

    /// One send: claim its cid, write it (or finish a half-written earlier attempt), and
    /// remember the outcome for retries.
    pub(crate) async fn send_once(&self, request: SendRequest) -> Result<SendReply, Status> {
        let started = std::time::Instant::now();
        let (target, quote) = self
            .check_send(&request)
            .instrument(trace_child!("logic.validate"))
            .await?;
        metrics::histogram!("natter_send_stage_seconds", "stage" => "check")
            .record(started.elapsed().as_secs_f64());
        let key = dedup_key(request.sender, &request.cid);
        // A claim in progress expires soon, in case this process dies mid-send; a finished
        // one is kept for the whole de-duplication window.
        let claim = self
            .claims
            .claim(key.clone())
            .instrument(trace_child!("logic.dedup"))
            .await
            .map_err(status)?;
        let earlier = match claim {
            Claim::New { remembered_since } => {
                self.forgotten_attempt(&request, remembered_since).await
            }
            Claim::Forgotten => self.attempt_in_history(&request).await,
            Claim::Pending { holder } => {
                if !self.take_over_from_gone(&key, &holder).await? {
                    return Err(ErrorCode::InProgress
                        .status("a message with this cid is still being processed"));
                }
                // The earlier attempt died somewhere in its writes: finish what it wrote.
                self.attempt_in_history(&request).await
            }
            Claim::Done(text) => match Remembered::decode(&request.cid, &text) {
                Some(Remembered::Sent(reply)) => return Ok(reply),
                // A resumed send keeps its record: nothing to remember again yet.
                Some(Remembered::Partial(partial)) => Ok(Some(Remembered::Partial(partial))),
                None => {
                    return Err(ErrorCode::Internal.status("unreadable de-duplication record"));
                }
            },
        };
        let resume = match earlier {
            Ok(None) => None,
            Ok(Some(Remembered::Sent(reply))) => {
                self.remember(&key, &Remembered::Sent(reply.clone())).await;
                return Ok(reply);
            }
            Ok(Some(Remembered::Partial(partial))) => Some(partial),
            Err(error) => {
                if let Err(error) = self.sessions.abandon_claim(&key).await {
                    tracing::warn!(%error, "releasing a de-duplication claim failed");
                }
                return Err(error);
            }
        };
        metrics::histogram!("natter_send_stage_seconds", "stage" => "claim")
            .record(started.elapsed().as_secs_f64());
        let outcome = match target {
            ObjectId::User(peer) => self.deliver_direct(&request, peer, &quote, resume).await,
            // One append: it either happened (and the claim records the reply) or not.
            ObjectId::Group(group) => self
                .deliver_group(&request, group, &quote)
                .await
                .map_err(SendFailure::NothingWritten),
        };
        metrics::histogram!("natter_send_stage_seconds", "stage" => "written")
            .record(started.elapsed().as_secs_f64());
        let (remembered, result) = match outcome {
            Ok(reply) => (Some(Remembered::Sent(reply.clone())), Ok(reply)),
            Err(SendFailure::Partial(status, partial)) => {
                (Some(Remembered::Partial(partial)), Err(status))
            }
            // A resumed send keeps its record: the earlier copies are still written.
            Err(SendFailure::NothingWritten(status)) if resume.is_some() => (None, Err(status)),
            Err(SendFailure::NothingWritten(status)) => {
                if let Err(error) = self.sessions.abandon_claim(&key).await {
                    tracing::warn!(%error, "releasing a de-duplication claim failed");
                }
                (None, Err(status))
            }
        };
        if let Some(remembered) = remembered {
            self.remember(&key, &remembered).await;
        }
        result
    }

    /// Takes over a send's claim left pending by `holder` if that holder is known to be gone:
    /// an earlier run of this very logic process (same node, another run), killed mid-send.
    /// Waiting for the claim to expire would refuse the client's retries for up to a minute.
    /// A holder that may be alive (another process) is waited for.
    async fn take_over_from_gone(&self, key: &str, holder: &str) -> Result<bool, Status> {
        if !claim_holder::is_earlier_run(&self.claim_holder, holder) {
            return Ok(false);
        }
        let taken = self
            .sessions
            .take_over_claim(key, holder, &self.claim_holder, PENDING_CLAIM_TTL)
            .await
            .map_err(status)?;
        if taken {
            metrics::counter!("natter_send_claims_taken_over_total").increment(1);
            tracing::info!(previous = holder, "took over a send left by an earlier run");
        }
        Ok(taken)
    }

    /// Completes a send's claim with what a retry should find.
    async fn remember(&self, key: &str, remembered: &Remembered) {
        let stored = self
            .claims
            .complete(key.to_owned(), remembered.encode())
            .await;
        if let Err(error) = stored {
            tracing::warn!(%error, "remembering a send for de-duplication failed");
        }
    }

    /// An earlier attempt of `request` that the de-duplication memory may have forgotten
    /// because it began (at `remembered_since`) after it: found in the history by sender and
    /// cid. The history is searched only while it may hold such an attempt, that is while the
    /// newest message stored before the memory began is inside the de-duplication window.
    async fn forgotten_attempt(
        &self,
        request: &SendRequest,
        remembered_since: i64,
    ) -> Result<Option<Remembered>, Status> {
        let window_start = self.dedup_window_start();
        if remembered_since <= window_start {
            // The memory covers the whole window.
            return Ok(None);
        }
        let newest = match self.history_at_memory_start.newest_for(remembered_since) {
            Some(newest) => newest,
            None => {
                let newest = self
                    .store
                    .newest_message_before(first_id_at(remembered_since))
                    .await
                    .map_err(status)?;
                self.history_at_memory_start
                    .record(remembered_since, newest);
                newest
            }
        };
        if newest.is_none_or(|newest| newest < window_start) {
            return Ok(None);
        }
        self.attempt_in_history(request).await
    }

    /// When the de-duplication window now begins (unix ms).
    fn dedup_window_start(&self) -> i64 {
        now_millis().saturating_sub(self.config.dedup_ttl().as_millis() as i64)
    }

    /// An earlier attempt of `request` inside the de-duplication window, found in the
    /// history by sender and cid.
    async fn attempt_in_history(
        &self,
        request: &SendRequest,
    ) -> Result<Option<Remembered>, Status> {
        let window_start = self.dedup_window_start();
        let copies = self
            .store
            .copies_by_cid(request.sender, &request.cid, window_start)
            .await
            .map_err(status)?;
        metrics::counter!("natter_send_history_dedup_checks_total").increment(1);
        Ok(Remembered::from_copies(request, &copies))
    }
}

impl LogicService {
    /// Whether `sender` may address `target`: a friend other than themself, or a group they
    /// are a member of.
    pub(crate) async fn may_reach(&self, sender: i64, target: ObjectId) -> Result<bool, Status> {
        match target {
            ObjectId::User(peer) => {
                Ok(peer != sender && self.store.are_friends(sender, peer).await.map_err(status)?)
            }
            ObjectId::Group(group) => self
                .store
                .is_group_member(group, sender)
                .await
                .map_err(status),
        }
    }

    /// Appends each copy to its object's log, wakes task for them, and stores them for
    /// history. The log is the durable record: if the store fails the copies still go out,
    /// and task repairs the store as it delivers them.
    pub(crate) async fn append_copies(
        &self,
        copies: Vec<(ObjectId, Message)>,
    ) -> Result<Vec<Message>, Status> {
        match self.write_copies(copies).await {
            (_, Some(error)) => Err(status(error)),
            (written, None) => Ok(written),
        }
    }

    /// Appends the copies in one request (the log writes them together, not one after
    /// another), then wakes task for and stores those written, even when another failed.
    /// Returns the written copies with their object and seq, and the first failure.
    pub(crate) async fn write_copies(
        &self,
        copies: Vec<(ObjectId, Message)>,
    ) -> (Vec<Message>, Option<InfraError>) {
        let mut copies = copies;
        let append = trace_child!(
            "logic.append",
            message_id = copies.first().map_or(0, |(_, copy)| copy.id),
            copies = copies.len()
        );
        if !append.is_none() {
            // The log carries the append's span to task, which continues the trace there.
            let trace_parent = append.in_scope(trace_context::current);
            for (_, copy) in &mut copies {
                copy.trace_parent.clone_from(&trace_parent);
            }
        }
        let outcomes = self.log.append_many(&copies).instrument(append).await;
        let mut written = Vec::with_capacity(copies.len());
        let mut objects = Vec::with_capacity(copies.len());
        let mut failure = None;
        for ((object, mut copy), outcome) in copies.into_iter().zip(outcomes) {
            match outcome {
                Ok(seq) => {
                    self.known_ends.raise(object, seq);
                    // Receipts for this inbox's range may then come from memory.
                    if let ObjectId::User(owner) = object {
                        self.recent_copies.appended(owner, seq);
                    }
                    copy.seq = seq;
                    copy.object = object.to_string();
                    written.push(copy);
                    objects.push(object);
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        // A log whose numbering starts delivery (the partitioned one) needs no wake.
        if !self.log.delivers_appends() {
            self.wake(objects);
        }
        // A log that numbers into the store (the embedded log, the partitioned one) has
        // stored them already.
        if self.log.stores_messages() {
            return (written, failure);
        }
        if let Err(error) = self
            .store
            .put_messages(&written)
            .instrument(trace_child!("logic.store", copies = written.len()))
            .await
        {
            let message_id = written.first().map_or(0, |copy| copy.id);
            tracing::warn!(%error, message_id, "storing accepted messages failed; task will repair it");
        }
        (written, failure)
    }

    /// Marks objects dirty at task; best effort (task also recovers lagging objects on start).
    pub(crate) fn wake(&self, objects: Vec<ObjectId>) {
        let task = self.task.clone();
        let request = WakeRequest {
            objects: objects.iter().map(ToString::to_string).collect(),
        };
        tokio::spawn(async move {
            if let Err(error) = task.wake(request).await {
                tracing::warn!(%error, "waking task failed; delivery waits for its recovery");
            }
        });
    }
}

/// `send`: admitted, or refused at once past the bound; then checked, de-duplicated, appended
/// and stored in a task of its own (see [`LogicService::send_once`]).
pub(crate) async fn send(logic: &LogicService, request: SendRequest) -> Result<SendReply, Status> {
    // Past the bound the send is refused now, with a retry hint, rather than queued.
    let slot = logic.admission.admit()?;
    // The work runs in a task of its own: a caller that goes away (its connect node
    // killed) must not cancel a send between its claim and the claim's completion, which
    // would leave the cid stuck "in progress".
    let service = logic.clone();
    let span = trace_child!("logic.send", sender = request.sender, cid = %request.cid);
    tokio::spawn(
        async move {
            let reply = service.send_once(request).await;
            drop(slot);
            reply
        }
        .instrument(span),
    )
    .await
    .map_err(|error| ErrorCode::Internal.status(format!("send failed: {error}")))?
}

/// `send_batch`: the sends a connect node gathered, all at once, each admitted and answered
/// as `send` would answer it alone. Each continues its sender's trace, which the call's
/// metadata (one trace for the whole call) cannot carry.
pub(crate) async fn send_batch(
    logic: &LogicService,
    request: SendBatchRequest,
) -> Result<SendBatchReply, Status> {
    metrics::histogram!("natter_logic_send_batch_size").record(request.sends.len() as f64);
    let sends = request.sends.into_iter().map(|mut request| {
        let trace_parent = std::mem::take(&mut request.trace_parent);
        let span = trace_context::server_span(&trace_parent, "Logic/SendBatch");
        async move { SendOutcome::of(send(logic, request).await) }.instrument(span)
    });
    Ok(SendBatchReply {
        outcomes: futures_util::future::join_all(sends).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_sends_round_trip() {
        let reply = SendReply {
            cid: "c1".into(),
            id: 77,
            object: "user:3".into(),
            seq: 9,
            ts: 1234,
        };
        let partials = [(true, None), (false, Some(4)), (true, Some(5))].map(
            |(recipient_written, sender_seq)| {
                Remembered::Partial(PartialSend {
                    id: 77,
                    ts: 1234,
                    recipient_written,
                    sender_seq,
                })
            },
        );
        for remembered in std::iter::once(Remembered::Sent(reply)).chain(partials) {
            assert_eq!(
                Remembered::decode("c1", &remembered.encode()),
                Some(remembered)
            );
        }
        assert_eq!(Remembered::decode("c1", "garbage"), None);
        assert_eq!(Remembered::decode("c1", "partial 1"), None);
        assert_eq!(Remembered::decode("c1", "partial 1 2 1"), None);
    }

    #[test]
    fn an_older_partial_record_means_the_recipient_copy_alone() {
        assert_eq!(
            Remembered::decode("c1", "partial 77 1234"),
            Some(Remembered::Partial(PartialSend {
                id: 77,
                ts: 1234,
                recipient_written: true,
                sender_seq: None,
            }))
        );
    }
}
