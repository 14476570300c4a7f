//! Recall and read state: taking a message back, and how far a user has read a conversation.

use natter_infra::now_millis;
use natter_infra::store::{RECALL_KIND, RECALLED_KIND};
use natter_proto::frame::ServerFrame;
use natter_proto::v1::{Message, ReadReply, ReadRequest, RecallReply, RecallRequest};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};

impl LogicService {
    /// Takes back a message: every stored copy is emptied, and a `recall` message goes to
    /// each place a copy went, so online and offline recipients both learn of it.
    pub(crate) async fn recall_message(&self, sender: i64, id: u64) -> Result<u64, Status> {
        let copies = self.store.message_copies(id).await.map_err(status)?;
        let Some(first) = copies.first() else {
            return Err(ErrorCode::NotFound.status(format!("there is no message {id}")));
        };
        if first.sender != sender {
            return Err(ErrorCode::NotFound.status(format!("you sent no message {id}")));
        }
        if first.kind == RECALLED_KIND || first.kind == RECALL_KIND {
            return Err(ErrorCode::Conflict.status("that message is recalled already"));
        }
        let window =
            i64::try_from(self.config.recall_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_millis().saturating_sub(first.ts) > window {
            return Err(ErrorCode::RecallWindowPassed.status(format!(
                "messages can be recalled for {} seconds after sending",
                self.config.recall_seconds
            )));
        }
        self.store.mark_recalled(id).await.map_err(status)?;
        let recall_id = self.ids.next_id().map_err(status)?;
        let notice = Message {
            id: recall_id,
            sender,
            kind: RECALL_KIND.into(),
            body: id.to_string(),
            ts: now_millis(),
            ref_id: id,
            ..Message::default()
        };
        self.announce_about(&copies, notice, None).await?;
        metrics::counter!("natter_messages_recalled_total").increment(1);
        Ok(recall_id)
    }

    /// Moves a read cursor: `user:<peer>` counts in the reader's inbox, `group:<id>` in the
    /// group's log (members only). The seq is capped at the log's end; the reader's other
    /// devices get a `read` frame.
    pub(crate) async fn move_read_cursor(
        &self,
        user: i64,
        conversation: &str,
        seq: u64,
    ) -> Result<u64, Status> {
        let object = match conversation.parse::<ObjectId>() {
            Ok(ObjectId::User(peer)) if peer > 0 => ObjectId::User(user),
            Ok(ObjectId::Group(group)) if group > 0 => {
                if !self
                    .store
                    .is_group_member(group, user)
                    .await
                    .map_err(status)?
                {
                    return Err(ErrorCode::NotMember
                        .status(format!("you are not a member of group {group}")));
                }
                ObjectId::Group(group)
            }
            _ => {
                return Err(
                    ErrorCode::InvalidInput.status("a conversation is user:<id> or group:<id>")
                );
            }
        };
        let end = self.log.end(&object).await.map_err(status)?;
        let stored = self
            .store
            .advance_read_cursor(user, conversation, seq.min(end))
            .await
            .map_err(status)?;
        let frame = ServerFrame::Read {
            conversation: conversation.to_string(),
            seq: stored,
        };
        self.notify_users(vec![user], &frame).await;
        self.receipt_for_read(user, conversation, stored);
        Ok(stored)
    }
}

/// `recall`: the sender takes back a message within the recall window.
pub(crate) async fn recall(
    logic: &LogicService,
    request: RecallRequest,
) -> Result<RecallReply, Status> {
    let id = logic
        .recall_message(request.sender, request.message_id)
        .await?;
    Ok(RecallReply { id })
}

/// `mark_read`: moves a read cursor, capped at the conversation's end.
pub(crate) async fn mark_read(
    logic: &LogicService,
    request: ReadRequest,
) -> Result<ReadReply, Status> {
    let seq = logic
        .move_read_cursor(request.user_id, &request.conversation, request.seq)
        .await?;
    Ok(ReadReply { seq })
}
