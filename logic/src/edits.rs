//! Changes to an earlier message — edits, reactions, and the quote a reply carries. Edits
//! and reactions are stored in place and announced as events through the same logs as the
//! message itself, so a device that was offline converges when it syncs.

use natter_infra::now_millis;
use natter_infra::store::{AUTHORED_KINDS, Reaction, copy_seen_by};
use natter_proto::frame::{EDIT_KIND, REACTION_KIND, REACTION_REMOVED_KIND};
use natter_proto::v1::{EditReply, EditRequest, Message, ReactReply, ReactRequest};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};
use crate::validate;

/// Characters of the answered text a reply quotes.
pub const SNIPPET_CHARS: usize = 100;

/// Most different emoji one user may put on one message.
pub const MAX_REACTIONS_PER_USER: usize = 20;

/// What a reply carries of the message it answers (all zero and empty for no reply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Quote {
    pub(crate) id: u64,
    pub(crate) sender: i64,
    pub(crate) snippet: String,
}

impl Quote {
    /// Puts the quote on a message about to be written.
    pub(crate) fn apply(&self, message: &mut Message) {
        message.ref_id = self.id;
        message.ref_sender = self.sender;
        message.ref_snippet.clone_from(&self.snippet);
    }
}

impl LogicService {
    /// The quote for a reply from `sender` in `target` to message `reply_to` (0: no reply).
    /// The answered message must be one the sender sees in that very conversation.
    pub(crate) async fn quote(
        &self,
        sender: i64,
        target: ObjectId,
        reply_to: u64,
    ) -> Result<Quote, Status> {
        if reply_to == 0 {
            return Ok(Quote::default());
        }
        let copies = self.store.message_copies(reply_to).await.map_err(status)?;
        let seen = copy_seen_by(self.store.as_ref(), sender, &copies)
            .await
            .map_err(status)?;
        let Some((conversation, answered)) = seen.filter(|(seen_in, _)| *seen_in == target) else {
            return Err(ErrorCode::NotFound.status(format!(
                "there is no message {reply_to} in this conversation to reply to"
            )));
        };
        if !AUTHORED_KINDS.contains(&answered.kind.as_str()) {
            return Err(ErrorCode::NotFound.status(format!(
                "message {reply_to} in {conversation} was recalled or is not one to reply to"
            )));
        }
        let snippet = if answered.kind == "text" {
            answered.body.chars().take(SNIPPET_CHARS).collect()
        } else {
            String::new()
        };
        Ok(Quote {
            id: reply_to,
            sender: answered.sender,
            snippet,
        })
    }

    /// Appends `event` (about an earlier message) to every object holding a copy of that
    /// message, addressed to `target` — or, when None, as each copy was addressed.
    pub(crate) async fn announce_about(
        &self,
        copies: &[Message],
        event: Message,
        target: Option<ObjectId>,
    ) -> Result<(), Status> {
        let events = copies
            .iter()
            .filter_map(|copy| {
                let object: ObjectId = copy.object.parse().ok()?;
                let (target_kind, target_id) = match target {
                    Some(target) => (target.kind_name().to_string(), target.target().1),
                    None => (copy.target_kind.clone(), copy.target_id),
                };
                let event = Message {
                    peer: copy.peer,
                    target_kind,
                    target_id,
                    ..event.clone()
                };
                Some((object, event))
            })
            .collect();
        self.append_copies(events).await.map(|_| ())
    }

    /// The author rewrites a text message: every copy changes in place, and an `edit` event
    /// carrying the new text goes where the copies went.
    pub(crate) async fn edit_message(
        &self,
        sender: i64,
        id: u64,
        body: &str,
    ) -> Result<EditReply, Status> {
        validate::text(body, self.config.max_text_chars)?;
        let copies = self.store.message_copies(id).await.map_err(status)?;
        let Some(first) = copies.first().filter(|first| first.sender == sender) else {
            return Err(ErrorCode::NotFound.status(format!("you sent no message {id}")));
        };
        if first.kind != "text" {
            return Err(ErrorCode::UnsupportedKind.status(format!(
                "only text messages can be edited; message {id} is {:?}",
                first.kind
            )));
        }
        let edited_at = now_millis();
        self.store
            .mark_edited(id, body, edited_at)
            .await
            .map_err(status)?;
        let event_id = self.ids.next_id().map_err(status)?;
        let event = Message {
            id: event_id,
            sender,
            kind: EDIT_KIND.into(),
            body: body.into(),
            ts: edited_at,
            ref_id: id,
            edited_at,
            ..Message::default()
        };
        self.announce_about(&copies, event, None).await?;
        metrics::counter!("natter_messages_edited_total").increment(1);
        Ok(EditReply {
            id: event_id,
            edited_at,
        })
    }

    /// Someone who sees a message adds or takes back a reaction; a `reaction` or
    /// `reaction_removed` event goes where the message's copies went. Returns whether
    /// anything changed.
    pub(crate) async fn set_reaction(
        &self,
        user: i64,
        id: u64,
        emoji: &str,
        present: bool,
    ) -> Result<bool, Status> {
        validate::emoji(emoji)?;
        let copies = self.store.message_copies(id).await.map_err(status)?;
        let seen = copy_seen_by(self.store.as_ref(), user, &copies)
            .await
            .map_err(status)?;
        let Some((conversation, copy)) =
            seen.filter(|(_, copy)| AUTHORED_KINDS.contains(&copy.kind.as_str()))
        else {
            return Err(ErrorCode::NotFound.status(format!("there is no message {id} you can see")));
        };
        // Reacting writes into the conversation, so it takes what sending there takes.
        if copy.sender != user && !self.may_reach(user, conversation).await? {
            return Err(
                ErrorCode::Forbidden.status(format!("you can no longer write in {conversation}"))
            );
        }
        if present {
            let mine: Vec<String> = self
                .store
                .reactions(&[id])
                .await
                .map_err(status)?
                .into_iter()
                .filter(|reaction| reaction.user_id == user)
                .map(|reaction| reaction.emoji)
                .collect();
            if mine.len() >= MAX_REACTIONS_PER_USER && !mine.iter().any(|held| held == emoji) {
                return Err(ErrorCode::InvalidInput.status(format!(
                    "at most {MAX_REACTIONS_PER_USER} different reactions per message"
                )));
            }
        }
        let ts = now_millis();
        let reaction = Reaction {
            message_id: id,
            user_id: user,
            emoji: emoji.into(),
            ts,
        };
        let changed = self
            .store
            .set_reaction(&reaction, present)
            .await
            .map_err(status)?;
        if changed {
            let event = Message {
                id: self.ids.next_id().map_err(status)?,
                sender: user,
                kind: if present {
                    REACTION_KIND
                } else {
                    REACTION_REMOVED_KIND
                }
                .into(),
                body: emoji.into(),
                ts,
                ref_id: id,
                ..Message::default()
            };
            // One-to-one, the reactor addresses the other party from their own side.
            self.announce_about(&copies, event, Some(conversation))
                .await?;
            metrics::counter!("natter_reactions_total", "change" => if present { "added" } else { "removed" })
                .increment(1);
        }
        Ok(changed)
    }
}

/// `edit`: the author rewrites a text message.
pub(crate) async fn edit(logic: &LogicService, request: EditRequest) -> Result<EditReply, Status> {
    logic
        .edit_message(request.sender, request.message_id, &request.body)
        .await
}

/// `react`: add or take back an emoji reaction.
pub(crate) async fn react(
    logic: &LogicService,
    request: ReactRequest,
) -> Result<ReactReply, Status> {
    let changed = logic
        .set_reaction(
            request.user_id,
            request.message_id,
            &request.emoji,
            request.present,
        )
        .await?;
    Ok(ReactReply { changed })
}
