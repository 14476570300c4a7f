//! Sync and acknowledgements: what a user's objects hold after their cursors, and moving the
//! acknowledged cursor.

use std::collections::HashMap;

use natter_proto::v1::{
    AckOutcome, AckReply, AckRequest, Acknowledgement, Cursor, Refusal, SyncReply, SyncRequest,
};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};

impl LogicService {
    /// The objects a user follows: their inbox, then the logs of their groups.
    pub(crate) async fn followed(&self, user: i64) -> Result<Vec<ObjectId>, Status> {
        let groups = self.store.user_groups(user).await.map_err(status)?;
        Ok(std::iter::once(ObjectId::User(user))
            .chain(groups.into_iter().map(ObjectId::Group))
            .collect())
    }

    /// The object a user acknowledges, if it is theirs to read: their own inbox needs no
    /// query, a group a membership check.
    pub(crate) async fn acknowledgeable(
        &self,
        user: i64,
        object: &str,
    ) -> Result<ObjectId, Status> {
        let parsed = not_another_users_inbox(user, object)?;
        if let ObjectId::Group(group) = parsed
            && !self
                .store
                .is_group_member(group, user)
                .await
                .map_err(status)?
        {
            return Err(not_yours(&parsed));
        }
        Ok(parsed)
    }

    /// Learns, in one read of the log, the ends of the objects whose acks in `acks` go past
    /// what this process knows of them, so each ack's check then finds its end known. A
    /// failed read is left to each ack's own check, which reports it.
    pub(crate) async fn learn_ends(&self, acks: &[Acknowledgement]) {
        let mut unknown: Vec<ObjectId> = acks
            .iter()
            .filter_map(|ack| {
                // Another user's inbox is refused without reading anything.
                let object = not_another_users_inbox(ack.user_id, &ack.object).ok()?;
                let known = self.known_ends.get(&object);
                known.is_none_or(|known| known < ack.seq).then_some(object)
            })
            .collect();
        // A lone ack is read by its own check as before.
        if unknown.len() < 2 {
            return;
        }
        unknown.sort_unstable();
        unknown.dedup();
        if let Ok(ends) = self.log.ends(&unknown).await {
            for (object, end) in ends {
                self.known_ends.raise(object, end);
            }
        }
    }

    /// One acknowledgement: checks it and raises the user's cursor; returns the cursor.
    pub(crate) async fn acknowledge(&self, ack: Acknowledgement) -> Result<u64, Status> {
        let object = self.acknowledgeable(ack.user_id, &ack.object).await?;
        // Most acks are of messages this process appended or has seen: no query then.
        if self
            .known_ends
            .get(&object)
            .is_none_or(|known| known < ack.seq)
        {
            let end = self.log.end(&object).await.map_err(status)?;
            self.known_ends.raise(object, end);
            if ack.seq > end {
                return Err(ErrorCode::BadCursor.status(format!(
                    "seq {} is beyond the end of {object} ({end})",
                    ack.seq
                )));
            }
        }
        // A reader's first acknowledgement here: their receipts cover what they passed since
        // the cursor stored before it, not a look back over the history (one small read per
        // reader and process, instead of a range of hundreds of rows after every restart).
        let previous = if self.receipt_start_unknown(ack.user_id, &object) {
            self.store.ack_cursor(ack.user_id, &object).await.ok()
        } else {
            None
        };
        let stored = self
            .store
            .advance_ack_cursor(ack.user_id, &object, ack.seq)
            .await
            .map_err(status)?;
        self.receipt_for_ack(ack.user_id, &object, stored, previous);
        Ok(stored)
    }

    pub(crate) fn parse_followed(
        &self,
        followed: &[ObjectId],
        object: &str,
    ) -> Result<ObjectId, Status> {
        let object: ObjectId = object
            .parse()
            .map_err(|error| ErrorCode::InvalidInput.status(format!("{error}")))?;
        if !followed.contains(&object) {
            return Err(ErrorCode::Forbidden.status(format!("{object} is not yours to read")));
        }
        Ok(object)
    }
}

/// `sync`: one page of what the user's objects hold after the given cursors, or after the
/// stored ones for objects left out.
pub(crate) async fn sync(logic: &LogicService, request: SyncRequest) -> Result<SyncReply, Status> {
    let user = request.user_id;
    let followed = logic.followed(user).await?;
    let mut given = HashMap::new();
    for cursor in &request.cursors {
        match logic.parse_followed(&followed, &cursor.object) {
            Ok(object) => {
                given.insert(object, cursor.seq);
            }
            // A group the client still remembers but the user has left: nothing to send.
            Err(_) if cursor.object.starts_with("group:") => {}
            Err(refused) => return Err(refused),
        }
    }
    let limit = match request.limit {
        0 => logic.config.sync_page_max,
        asked => asked.min(logic.config.sync_page_max),
    } as usize;
    let mut reply = SyncReply::default();
    for object in followed {
        let given_cursor = given.get(&object).copied();
        let after = match given_cursor {
            Some(seq) => seq,
            None => logic
                .store
                .ack_cursor(user, &object)
                .await
                .map_err(status)?,
        };
        let room = limit.saturating_sub(reply.messages.len());
        // One more than fits tells whether this object has more after the page.
        let mut messages = if room == 0 {
            let end = logic.log.end(&object).await.map_err(status)?;
            refuse_beyond_end(&object, given_cursor, end)?;
            reply.more |= end > after;
            Vec::new()
        } else {
            logic
                .log
                .read(&object, after, room + 1)
                .await
                .map_err(status)?
        };
        if messages.is_empty() && room > 0 && given_cursor.is_some_and(|seq| seq > 0) {
            // Nothing after a client's cursor: it is at the end, or past it.
            let end = logic.log.end(&object).await.map_err(status)?;
            refuse_beyond_end(&object, given_cursor, end)?;
        }
        if messages.len() > room {
            reply.more = true;
            messages.truncate(room);
        }
        let position = messages.last().map_or(after, |message| message.seq);
        reply.cursors.push(Cursor {
            object: object.to_string(),
            seq: position,
        });
        reply.messages.extend(messages);
    }
    Ok(reply)
}

/// Refuses a client's cursor past an object's end: it is from another history (a restore, or
/// another deployment), and syncing from it would drop every live message below it as seen.
fn refuse_beyond_end(object: &ObjectId, given: Option<u64>, end: u64) -> Result<(), Status> {
    match given {
        Some(seq) if seq > end => Err(ErrorCode::BadCursor.status(format!(
            "cursor {seq} is beyond the end of {object} ({end}): it is not from this history; \
             sync without it"
        ))),
        _ => Ok(()),
    }
}

/// The object an ack names, refused at once when it is another user's inbox; a group's
/// membership is left to be checked.
fn not_another_users_inbox(user: i64, object: &str) -> Result<ObjectId, Status> {
    let parsed: ObjectId = object
        .parse()
        .map_err(|error| ErrorCode::InvalidInput.status(format!("{error}")))?;
    match parsed {
        ObjectId::User(owner) if owner != user => Err(not_yours(&parsed)),
        _ => Ok(parsed),
    }
}

/// The refusal of an object the user may not read.
fn not_yours(object: &ObjectId) -> Status {
    ErrorCode::Forbidden.status(format!("{object} is not yours to read"))
}

/// `ack`: each acknowledgement checked and stored on its own.
pub(crate) async fn ack(logic: &LogicService, request: AckRequest) -> Result<AckReply, Status> {
    logic.learn_ends(&request.acks).await;
    // Each acknowledgement on its own, all at once: one refused refuses only itself.
    let outcomes = request.acks.into_iter().map(|ack| async move {
        match logic.acknowledge(ack).await {
            Ok(seq) => AckOutcome {
                seq,
                code: String::new(),
                message: String::new(),
            },
            Err(status) => {
                // Carried as any refused item of a gathered call is (an ack has no retry hint).
                let refusal = Refusal::of(&status);
                AckOutcome {
                    seq: 0,
                    code: refusal.code,
                    message: refusal.message,
                }
            }
        }
    });
    let outcomes = futures_util::future::join_all(outcomes).await;
    Ok(AckReply { outcomes })
}
