//! The WebSocket wire protocol: JSON text frames tagged by `type`. See `docs/protocol.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::v1;

/// A frame a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Send a message to a user (a friend) or a group.
    Send {
        /// Client message id, unique per sender; a retry with the same cid is answered, not resent.
        cid: String,
        /// `user:<id>` or `group:<id>`.
        to: String,
        /// `text` (images follow with uploads).
        kind: String,
        /// The text.
        body: String,
        /// The id of a message in the same conversation this one replies to.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reply_to: Option<String>,
    },
    /// Confirm everything in `object` up to and including `seq` was received.
    Ack {
        /// The object acknowledged.
        object: String,
        /// The last seq received.
        seq: u64,
    },
    /// Ask for everything after these positions; objects left out start from the stored cursor.
    /// Live pushes begin after the first `synced`.
    Sync {
        /// Last seq held per object.
        #[serde(default)]
        cursors: BTreeMap<String, u64>,
    },
    /// Application-level liveness check; answered with `pong`. (A struct variant, so that an
    /// unknown field is refused here as on every other frame.)
    Ping {},
    /// The user is typing to a friend or a group (ephemeral; at most one a second counts).
    Typing {
        /// `user:<id>` or `group:<id>`.
        to: String,
    },
    /// The user has read a conversation up to `seq` (of their inbox for `user:<peer>`, of the
    /// group's log for `group:<id>`).
    Read {
        /// `user:<peer>` or `group:<id>`.
        conversation: String,
        /// The last seq read.
        seq: u64,
    },
}

/// The kind of an ephemeral message announcing that its sender is typing; connect sends it
/// as a `typing` frame.
pub const TYPING_KIND: &str = "typing";

/// The kind of an ephemeral message whose body is a whole server frame (an event: presence,
/// group online counts, friend requests, group changes, reads); connect sends the body as it is.
pub const EVENT_KIND: &str = "event";

/// Which frame types a client may send, for telling `unknown_type` from `bad_frame`.
pub const CLIENT_FRAME_TYPES: [&str; 6] = ["send", "ack", "sync", "ping", "typing", "read"];

/// A frame the server sends.
// Frames are built, serialised and dropped at once, never held in bulk, so a message frame's
// size is not worth a box (an allocation) on every message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on a new connection.
    Welcome {
        /// The authenticated user (a string: ids exceed what JavaScript numbers hold).
        user_id: String,
        /// This connection's id on its node.
        connection_id: u64,
        /// The connect node.
        node: String,
        /// The history's epoch: cursors kept from another epoch do not apply here, so a
        /// client that sees a new one drops its cursors and syncs afresh.
        #[serde(default)]
        epoch: String,
    },
    /// A `send` was accepted and is durable.
    Sent {
        /// The client's message id.
        cid: String,
        /// The message id.
        id: String,
        /// The sender's own copy: its object and seq there.
        object: String,
        /// Seq in `object`.
        seq: u64,
        /// Acceptance time, ms since the Unix epoch.
        ts: i64,
    },
    /// A message in an object the client follows.
    Msg(MessageFrame),
    /// A sync finished: every message up to these positions has been sent on this connection.
    Synced {
        /// Position per object.
        cursors: BTreeMap<String, u64>,
    },
    /// An `ack` was stored.
    Acked {
        /// The object.
        object: String,
        /// The stored cursor (never moves back).
        seq: u64,
    },
    /// The last client frame was refused; the connection stays open unless a close follows.
    Error {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
        /// The `cid` of the refused `send`, if it was one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        cid: Option<String>,
        /// When the server is past its capacity: how long to wait before retrying, in ms.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `ping`.
    Pong,
    /// Someone is typing in a conversation the client is in (ephemeral).
    Typing {
        /// Who is typing (a user id as a string).
        from: String,
        /// Where: `user:<id>` (the client itself) or `group:<id>`.
        to: String,
    },
    /// A friend came online (first device) or went offline (last device, after a grace
    /// period that absorbs reconnects).
    Presence {
        /// The friend.
        user_id: String,
        /// Whether they are online now.
        online: bool,
    },
    /// How many members of a group are online (sent at most once per interval per group).
    GroupOnline {
        /// The group.
        group_id: String,
        /// Online members (users, not devices).
        online: u64,
    },
    /// Someone asked to be the client's friend.
    FriendRequest {
        /// Who asked.
        from: String,
        /// Their note (may be empty).
        note: String,
    },
    /// A friend request the client made was accepted: they are friends now.
    FriendAccepted {
        /// The new friend.
        user_id: String,
    },
    /// A friendship ended (either side removed it).
    FriendRemoved {
        /// The former friend.
        user_id: String,
    },
    /// A group the client is in was renamed or got a new avatar.
    GroupUpdated {
        /// The group.
        group_id: String,
        /// Its name now.
        name: String,
        /// Upload id of its avatar now, if any.
        avatar: Option<String>,
        /// Whether it is private now.
        #[serde(default)]
        private: bool,
    },
    /// The client was added to a group by its owner or an admin.
    GroupAdded {
        /// The group.
        group_id: String,
        /// Its name.
        name: String,
        /// Who added the client.
        by: String,
    },
    /// A member's standing in a group changed (a role given or taken, a mute set or lifted);
    /// sent to the group's members.
    GroupMember {
        /// The group.
        group_id: String,
        /// The member.
        user_id: String,
        /// `owner`, `admin` or `member`.
        role: String,
        /// Muted until then (ms since the Unix epoch); absent when not muted.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        muted_until: Option<i64>,
    },
    /// The client is no longer in a group: it `left` (on another device), was `removed` by
    /// the owner, or the group was `disbanded`.
    GroupRemoved {
        /// The group.
        group_id: String,
        /// `left`, `removed` or `disbanded`.
        reason: String,
    },
    /// The user read a conversation on one device; their other devices follow.
    Read {
        /// `user:<peer>` or `group:<id>`.
        conversation: String,
        /// The read cursor now.
        seq: u64,
    },
    /// How far the other side of a conversation got with the client's own messages: live
    /// news derived from their acknowledgements and read cursors (never stored per message).
    Receipt {
        /// `user:<peer>` (one-to-one) or `group:<id>`.
        conversation: String,
        /// One-to-one: every message of the client's up to this seq of its own inbox has
        /// reached a device of the peer.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        delivered: Option<u64>,
        /// One-to-one: the peer has read up to this seq of the client's inbox. In a group: the
        /// seq (of the group's log) of the client's message that `read_count` is about.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        read: Option<u64>,
        /// Group only: how many other members have read the message at `read`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        read_count: Option<u64>,
    },
    /// A friend or fellow group member changed their nickname or avatar.
    Profile {
        /// Who.
        user_id: String,
        /// Their nickname now.
        nickname: String,
        /// Upload id of their avatar now, if any.
        avatar: Option<String>,
    },
    /// The user blocked or unblocked someone (on one device; their other devices follow).
    Blocked {
        /// Who.
        user_id: String,
        /// Blocked now, or unblocked.
        blocked: bool,
    },
    /// The user muted or unmuted a conversation (their other devices follow).
    Muted {
        /// `user:<peer>` or `group:<id>`.
        conversation: String,
        /// Muted now, or unmuted.
        muted: bool,
        /// Muted until then (ms since the Unix epoch); absent for until unmuted.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        until: Option<i64>,
    },
    /// An ephemeral system notification: never stored, synced or acknowledged.
    Notice {
        /// Its id.
        id: String,
        /// The text.
        body: String,
        /// When it was sent, ms since the Unix epoch.
        ts: i64,
    },
}

/// A message as a client sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageFrame {
    /// The object this copy belongs to.
    pub object: String,
    /// Seq within `object`; de-duplicate by (object, seq), then by `id`.
    pub seq: u64,
    /// Message id (a snowflake, as a string: JavaScript numbers lose precision above 2^53).
    pub id: String,
    /// Author's user id as a string ("0" for system messages).
    pub from: String,
    /// Addressed to: `user:<id>` or `group:<id>`.
    pub to: String,
    /// `text` or `image`.
    pub kind: String,
    /// The text or upload id.
    pub body: String,
    /// Acceptance time, ms since the Unix epoch.
    pub ts: i64,
    /// The sender's client message id (lets the sender's devices match their own echo).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub cid: String,
    /// For an `edit` or a `reaction`: the id of the message it is about.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none", default)]
    pub refers_to: Option<String>,
    /// For a reply: the message it answers.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<ReplyRef>,
    /// When the text was last edited (ms since the Unix epoch), if it was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub edited_at: Option<i64>,
    /// History only: the reactions, per emoji.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reactions: Vec<ReactionCount>,
}

/// The message a reply answers, quoted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyRef {
    /// Its id.
    pub id: String,
    /// Its author.
    pub from: String,
    /// The start of its text; empty when it was no text (an image).
    pub snippet: String,
}

/// How many reacted to a message with one emoji, and who.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// How many people reacted with it.
    pub count: u64,
    /// The first of them by id (up to 20).
    pub users: Vec<String>,
    /// Whether the caller is one of them.
    pub mine: bool,
}

/// The kinds of messages that carry an event about another message rather than content.
pub const EDIT_KIND: &str = "edit";
/// A reaction added (`body` is the emoji, `ref` the message).
pub const REACTION_KIND: &str = "reaction";
/// A reaction taken back.
pub const REACTION_REMOVED_KIND: &str = "reaction_removed";

/// A message taken back by its author (`ref` is the recalled message; so is `body`).
pub const RECALL_KIND: &str = "recall";

/// Whether messages of `kind` are events about another message (named by their `ref`).
pub fn is_about_another(kind: &str) -> bool {
    matches!(
        kind,
        RECALL_KIND | EDIT_KIND | REACTION_KIND | REACTION_REMOVED_KIND
    )
}

impl From<&v1::Message> for MessageFrame {
    fn from(message: &v1::Message) -> Self {
        MessageFrame {
            object: message.object.clone(),
            seq: message.seq,
            id: message.id.to_string(),
            from: message.sender.to_string(),
            to: format!("{}:{}", message.target_kind, message.target_id),
            kind: message.kind.clone(),
            body: message.body.clone(),
            ts: message.ts,
            cid: message.cid.clone(),
            // An event's subject, or a reply's: both are kept in `ref_id`.
            refers_to: (message.ref_id != 0 && is_about_another(&message.kind))
                .then(|| message.ref_id.to_string()),
            reply_to: (message.ref_id != 0 && !is_about_another(&message.kind)).then(|| ReplyRef {
                id: message.ref_id.to_string(),
                from: message.ref_sender.to_string(),
                snippet: message.ref_snippet.clone(),
            }),
            edited_at: (message.edited_at != 0).then_some(message.edited_at),
            reactions: Vec::new(),
        }
    }
}

impl ServerFrame {
    /// Whether this frame is an event (news about people and groups) rather than part of the
    /// message stream or an answer.
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            ServerFrame::Presence { .. }
                | ServerFrame::GroupOnline { .. }
                | ServerFrame::FriendRequest { .. }
                | ServerFrame::FriendAccepted { .. }
                | ServerFrame::FriendRemoved { .. }
                | ServerFrame::GroupUpdated { .. }
                | ServerFrame::GroupRemoved { .. }
                | ServerFrame::GroupAdded { .. }
                | ServerFrame::GroupMember { .. }
                | ServerFrame::Read { .. }
                | ServerFrame::Receipt { .. }
                | ServerFrame::Profile { .. }
                | ServerFrame::Blocked { .. }
                | ServerFrame::Muted { .. }
        )
    }

    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>, cid: Option<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            cid,
            retry_after_ms: None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"unserialisable frame"}"#.to_string()
        })
    }
}

/// Why a text frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Valid JSON with a `type` nobody knows.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// Not JSON, or fields missing or wrong.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl FrameError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::UnknownType(_) => ErrorCode::UnknownType,
            FrameError::Malformed(_) => ErrorCode::BadFrame,
        }
    }
}

impl ClientFrame {
    /// The cid of a frame that has one (a send), which every answer to it names.
    pub fn into_cid(self) -> Option<String> {
        match self {
            ClientFrame::Send { cid, .. } => Some(cid),
            _ => None,
        }
    }

    /// Parse a client's text frame, telling an unknown type from a malformed frame.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => Ok(frame),
            Err(error) => {
                #[derive(Deserialize)]
                struct Tag {
                    #[serde(rename = "type")]
                    kind: String,
                }
                match serde_json::from_str::<Tag>(text) {
                    Ok(tag) if !CLIENT_FRAME_TYPES.contains(&tag.kind.as_str()) => {
                        Err(FrameError::UnknownType(tag.kind.chars().take(32).collect()))
                    }
                    _ => Err(FrameError::Malformed(error.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let send = ClientFrame::parse(
            r#"{"type":"send","cid":"c1","to":"user:2","kind":"text","body":"hi"}"#,
        )
        .unwrap();
        assert!(matches!(send, ClientFrame::Send { ref cid, .. } if cid == "c1"));
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ack","object":"user:1","seq":3}"#).unwrap(),
            ClientFrame::Ack {
                object: "user:1".into(),
                seq: 3
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"sync"}"#).unwrap(),
            ClientFrame::Sync {
                cursors: BTreeMap::new()
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping {}
        );
    }

    #[test]
    fn tells_unknown_types_from_malformed_frames() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"dance"}"#)
                .unwrap_err()
                .code(),
            ErrorCode::UnknownType
        );
        for bad in [
            "{",
            "null",
            "[]",
            r#"{"type":"ack"}"#,
            r#"{"type":"ack","object":"x","seq":-1}"#,
            r#"{"type":"ping","extra":1}"#,
        ] {
            assert_eq!(
                ClientFrame::parse(bad).unwrap_err().code(),
                ErrorCode::BadFrame,
                "{bad}"
            );
        }
    }

    #[test]
    fn server_frames_have_the_documented_shape() {
        let json = ServerFrame::error(ErrorCode::NotFriends, "no", Some("c1".into())).to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"not_friends","message":"no","cid":"c1"}"#
        );
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
    }
}
