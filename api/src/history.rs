//! History: a conversation's stored messages, paged back from the newest.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use natter_proto::frame::MessageFrame;
use natter_proto::{ErrorCode, ObjectId};
use serde::Serialize;

use natter_infra::store::one_to_one_receipts;

use crate::auth::AuthUser;
use crate::auth::UserView;
use crate::params::{page_limit, positive_id, query_number};
use crate::problem::Problem;
use crate::state::ApiState;

/// Messages per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;
/// Most messages per page.
pub const MAX_PAGE: u32 = 200;

/// One page, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// The messages, newest first, as the `msg` frame carries them.
    #[schema(value_type = Vec<MessageView>)]
    pub messages: Vec<MessageFrame>,
    /// Pass as `before` for the page before this one; absent on the oldest page.
    pub next_before: Option<u64>,
}

/// A stored message, as the WebSocket `msg` frame carries it.
// Documents how `MessageFrame` (in natter-proto) serialises; a test in `openapi` keeps the two
// in step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    /// The object this copy belongs to: `user:<id>` (an inbox) or `group:<id>`.
    #[schema(example = "user:7265418613035008")]
    pub object: String,
    /// Seq within `object`.
    pub seq: u64,
    /// Message id, as a string.
    #[schema(example = "7265418613035100")]
    pub id: String,
    /// Author's user id as a string ("0" for system messages).
    #[schema(example = "7265418613035009")]
    pub from: String,
    /// Addressed to: `user:<id>` or `group:<id>`.
    #[schema(example = "user:7265418613035008")]
    pub to: String,
    /// `text` or `image`.
    #[schema(example = "text")]
    pub kind: String,
    /// The text or upload id.
    pub body: String,
    /// Acceptance time, ms since the Unix epoch.
    pub ts: i64,
    /// The sender's client message id; absent when there was none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cid: String,
    /// For an `edit`, `reaction` or `reaction_removed`: the id of the message it is about.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<String>,
    /// For a reply: the message it answers, quoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyView>,
    /// When the text was last edited (ms since the Unix epoch); absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// History only: reactions per emoji; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionView>,
}

/// The message a reply answers, as the reply quotes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplyView {
    /// Its id.
    pub id: String,
    /// Its author's id.
    pub from: String,
    /// The start of its text (up to 100 characters); empty when it was an image.
    pub snippet: String,
}

/// One emoji's reactions to a message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReactionView {
    /// The emoji.
    #[schema(example = "👍")]
    pub emoji: String,
    /// How many reacted with it.
    pub count: u64,
    /// The first of them by id (up to 20).
    pub users: Vec<String>,
    /// Whether the caller is one of them.
    pub mine: bool,
}

/// Which kind of conversation a history path names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    /// One-to-one with a user.
    User,
    /// A group.
    Group,
}

/// The query of the history endpoint (read by hand from the query string, so that bad numbers
/// get problem responses; this type documents it).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (the last page's `next_before`); from the newest when
    /// absent.
    pub before: Option<u64>,
    /// Messages per page, 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/conversations/{user|group}/{id}/messages?before=SEQ&limit=N`: with a user,
/// the copies in the caller's inbox exchanged with them (the history stays after the
/// friendship ends); with a group, its log, for members only. Seqs are those of the caller's
/// inbox or of the group.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{kind}/{id}/messages",
    tag = "history",
    security(("bearer" = [])),
    params(
        ("kind" = ConversationKind, Path, description = "`user` or `group`"),
        ("id" = String, Path, description = "The other user's or the group's id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "A page of messages, newest first", body = HistoryPage),
        (status = 400, description = "`invalid_input`: a bad kind, id, `before` or `limit`"),
        (status = 403, description = "`not_member`: the caller is not a member of the group"),
    )
)]
pub async fn messages(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HistoryPage>, Problem> {
    let id = positive_id(&id, &kind)?;
    let before = query_number(&query, "before", u64::MAX)?;
    let limit = page_limit(&query, DEFAULT_PAGE, MAX_PAGE)?;
    let stored = match kind.as_str() {
        "user" => {
            state
                .store
                .conversation_before(user, id, before, limit)
                .await?
        }
        "group" => {
            crate::groups::require_member(&state, id, user).await?;
            state
                .store
                .messages_before(&ObjectId::Group(id), before, limit)
                .await?
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                "a conversation is user/{id} or group/{id}",
            ));
        }
    };
    let next_before = (stored.len() == limit as usize)
        .then(|| stored.last().map(|message| message.seq))
        .flatten();
    let ids: Vec<u64> = stored.iter().map(|message| message.id).collect();
    let mut reactions = crate::reactions::counts(&state, user, &ids).await?;
    let messages = stored
        .iter()
        .map(|message| {
            let mut frame = MessageFrame::from(message);
            frame.reactions = reactions.remove(&message.id).unwrap_or_default();
            frame
        })
        .collect();
    Ok(Json(HistoryPage {
        messages,
        next_before,
    }))
}

/// Conversations listed unless `limit` says otherwise.
pub const DEFAULT_CONVERSATIONS: u32 = 50;
/// Most conversations listed.
pub const MAX_CONVERSATIONS: u32 = 200;

/// One conversation in the caller's list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    /// `user:<id>` or `group:<id>`.
    #[schema(example = "user:7265418613035009")]
    pub conversation: String,
    /// The newest message, if any.
    #[schema(value_type = Option<MessageView>)]
    pub last: Option<MessageFrame>,
    /// The read cursor: a seq of the caller's inbox (for a user) or of the group's log.
    pub read: u64,
    /// Messages from others after the read cursor (counted up to 1000).
    pub unread: u64,
    /// One-to-one only: the caller's messages up to this seq of their inbox have reached a
    /// device of the other user (0: none yet). Live changes come as `receipt` frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_delivered: Option<u64>,
    /// One-to-one only: the other user has read the caller's messages up to this seq of the
    /// caller's inbox (0: none yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_read: Option<u64>,
    /// Whether the caller muted the conversation (no notifications; unread still counted).
    pub muted: bool,
    /// Muted until then (ms since the Unix epoch); absent when not muted, or until unmuted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
}

/// The caller's conversations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationList {
    /// The most recently active first.
    pub conversations: Vec<ConversationView>,
}

/// The query of `GET /api/v1/conversations`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// Conversations to list, 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/conversations`: the caller's one-to-one conversations and groups, each with
/// its last message and unread count, the most recently active first.
#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = "history",
    security(("bearer" = [])),
    params(ConversationQuery),
    responses(
        (status = 200, description = "The conversation list", body = ConversationList),
        (status = 400, description = "`invalid_input`: a bad limit"),
    )
)]
pub async fn conversations(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ConversationList>, Problem> {
    let limit = page_limit(&query, DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS)?;
    let found = state.store.conversations(user, limit).await?;
    let now = natter_infra::now_millis();
    let mutes: HashMap<String, i64> = state
        .store
        .mutes(user)
        .await?
        .into_iter()
        .filter(|(_, until)| *until == 0 || *until > now)
        .collect();
    let mut conversations = Vec::with_capacity(found.len());
    for conversation in found {
        let receipts = match conversation.key.parse::<ObjectId>() {
            Ok(ObjectId::User(peer)) => {
                Some(one_to_one_receipts(state.store.as_ref(), user, peer).await?)
            }
            _ => None,
        };
        let mute = mutes.get(&conversation.key).copied();
        conversations.push(ConversationView {
            muted: mute.is_some(),
            muted_until: mute.filter(|until| *until > 0),
            conversation: conversation.key,
            last: conversation.last.as_ref().map(MessageFrame::from),
            read: conversation.read,
            unread: conversation.unread,
            peer_delivered: receipts.map(|(delivered, _)| delivered),
            peer_read: receipts.map(|(_, read)| read),
        });
    }
    Ok(Json(ConversationList { conversations }))
}

/// How far the caller has read.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMark {
    /// The last seq read (of the caller's inbox for a user, of the group's log for a group).
    pub seq: u64,
}

/// The stored read cursor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadView {
    /// `user:<id>` or `group:<id>`.
    pub conversation: String,
    /// The read cursor now (never moves back; capped at the newest message).
    pub seq: u64,
}

/// `POST /api/v1/conversations/{user|group}/{id}/read`: move the caller's read cursor; their
/// other devices get a `read` frame.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{kind}/{id}/read",
    tag = "history",
    security(("bearer" = [])),
    params(
        ("kind" = ConversationKind, Path, description = "`user` or `group`"),
        ("id" = String, Path, description = "The other user's or the group's id"),
    ),
    request_body = ReadMark,
    responses(
        (status = 200, description = "The read cursor now", body = ReadView),
        (status = 400, description = "`bad_frame` or `invalid_input`"),
        (status = 403, description = "`not_member`: the caller is not a member of the group"),
    )
)]
pub async fn read(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((kind, id)): Path<(String, String)>,
    crate::problem::JsonBody(mark): crate::problem::JsonBody<ReadMark>,
) -> Result<Json<ReadView>, Problem> {
    let id = positive_id(&id, &kind)?;
    if kind != "user" && kind != "group" {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            "a conversation is user/{id} or group/{id}",
        ));
    }
    let conversation = format!("{kind}:{id}");
    let reply = state
        .logic
        .mark_read(natter_proto::v1::ReadRequest {
            user_id: user,
            conversation: conversation.clone(),
            seq: mark.seq,
        })
        .await?;
    Ok(Json(ReadView {
        conversation,
        seq: reply.seq,
    }))
}

/// Readers listed unless `limit` says otherwise.
pub const DEFAULT_READERS: u32 = 50;
/// Most readers listed.
pub const MAX_READERS: u32 = 500;

/// Who has read a group's message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadersView {
    /// `group:<id>`.
    pub conversation: String,
    /// The message's seq in the group's log.
    pub seq: u64,
    /// How many members other than its author have read it.
    pub read_count: u64,
    /// The first of them by id (up to `limit`).
    pub readers: Vec<UserView>,
}

/// `GET /api/v1/conversations/group/{id}/messages/{seq}/readers?limit=N`: the members whose
/// read cursor passed a message (its author aside), for members only.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/group/{id}/messages/{seq}/readers",
    tag = "history",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The group's id"),
        ("seq" = u64, Path, description = "The message's seq in the group's log"),
        ("limit" = Option<u32>, Query, description = "Readers listed, 1 to 500; 50 when absent"),
    ),
    responses(
        (status = 200, description = "How many read it, and who", body = ReadersView),
        (status = 400, description = "`invalid_input`: a bad id, seq or limit"),
        (status = 403, description = "`not_member`: the caller is not a member of the group"),
        (status = 404, description = "`not_found`: no message at that seq"),
    )
)]
pub async fn readers(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((id, seq_text)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ReadersView>, Problem> {
    let group = positive_id(&id, "group")?;
    // One spelling, as for ids: no sign, no leading zero.
    let seq = match seq_text.parse::<u64>() {
        Ok(seq) if seq > 0 && seq.to_string() == seq_text => seq,
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                "a seq is a positive number",
            ));
        }
    };
    let limit = page_limit(&query, DEFAULT_READERS, MAX_READERS)?;
    crate::groups::require_member(&state, group, user).await?;
    let object = ObjectId::Group(group);
    let Some(message) = state
        .store
        .messages_before(&object, seq.saturating_add(1), 1)
        .await?
        .into_iter()
        .find(|message| message.seq == seq)
    else {
        return Err(Problem::new(
            ErrorCode::NotFound,
            format!("group {group} has no message {seq}"),
        ));
    };
    let conversation = object.to_string();
    let found = state
        .store
        .readers(&conversation, seq, message.sender, limit)
        .await?;
    let mut readers = Vec::with_capacity(found.users.len());
    for reader in found.users {
        if let Some(profile) = state.store.user(reader).await? {
            readers.push(UserView::from(&profile));
        }
    }
    Ok(Json(ReadersView {
        conversation,
        seq,
        read_count: found.count,
        readers,
    }))
}

/// How long to mute a conversation.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteChange {
    /// Until then (ms since the Unix epoch, in the future); until unmuted when absent.
    pub until: Option<i64>,
}

/// A conversation's mute now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MuteView {
    /// `user:<id>` or `group:<id>`.
    pub conversation: String,
    /// Whether it is muted.
    pub muted: bool,
    /// Until when, if not until unmuted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// The conversation a mute path names, checked: a user, or a group the caller is in.
async fn mutable_conversation(
    state: &ApiState,
    user: i64,
    kind: &str,
    id: &str,
) -> Result<String, Problem> {
    let id = positive_id(id, kind)?;
    match kind {
        "user" => {}
        "group" => crate::groups::require_member(state, id, user).await?,
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                "a conversation is user/{id} or group/{id}",
            ));
        }
    }
    Ok(format!("{kind}:{id}"))
}

/// Stores a mute (or its end) and tells the caller's devices.
async fn set_mute(
    state: &ApiState,
    user: i64,
    conversation: String,
    until: Option<i64>,
) -> Result<Json<MuteView>, Problem> {
    state.store.set_mute(user, &conversation, until).await?;
    let view = MuteView {
        conversation: conversation.clone(),
        muted: until.is_some(),
        until: until.filter(|until| *until > 0),
    };
    let frame = natter_proto::frame::ServerFrame::Muted {
        conversation,
        muted: view.muted,
        until: view.until,
    };
    crate::events::notify(state, vec![user], Vec::new(), frame).await;
    Ok(Json(view))
}

/// `PUT /api/v1/conversations/{user|group}/{id}/mute` `{until?}`: mute a conversation — no
/// notifications on the caller's devices, unread still counted. The caller's devices get a
/// `muted` event.
#[utoipa::path(
    put,
    path = "/api/v1/conversations/{kind}/{id}/mute",
    tag = "history",
    security(("bearer" = [])),
    params(
        ("kind" = ConversationKind, Path, description = "`user` or `group`"),
        ("id" = String, Path, description = "The other user's or the group's id"),
    ),
    request_body = MuteChange,
    responses(
        (status = 200, description = "Muted", body = MuteView),
        (status = 400, description = "`invalid_input`: a bad path, or `until` not in the future"),
        (status = 403, description = "`not_member`: the caller is not a member of the group"),
    )
)]
pub async fn mute(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((kind, id)): Path<(String, String)>,
    crate::problem::JsonBody(change): crate::problem::JsonBody<MuteChange>,
) -> Result<Json<MuteView>, Problem> {
    let conversation = mutable_conversation(&state, user, &kind, &id).await?;
    let until = match change.until {
        None => 0,
        Some(until) if until > natter_infra::now_millis() => until,
        Some(_) => {
            return Err(Problem::new(
                ErrorCode::InvalidInput,
                "until is a time in the future, in ms since the Unix epoch",
            ));
        }
    };
    set_mute(&state, user, conversation, Some(until)).await
}

/// `DELETE /api/v1/conversations/{user|group}/{id}/mute`: unmute a conversation.
#[utoipa::path(
    delete,
    path = "/api/v1/conversations/{kind}/{id}/mute",
    tag = "history",
    security(("bearer" = [])),
    params(
        ("kind" = ConversationKind, Path, description = "`user` or `group`"),
        ("id" = String, Path, description = "The other user's or the group's id"),
    ),
    responses(
        (status = 200, description = "Unmuted", body = MuteView),
        (status = 400, description = "`invalid_input`: a bad path"),
        (status = 403, description = "`not_member`: the caller is not a member of the group"),
    )
)]
pub async fn unmute(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<MuteView>, Problem> {
    let conversation = mutable_conversation(&state, user, &kind, &id).await?;
    set_mute(&state, user, conversation, None).await
}
