//! Emoji reactions: adding and taking them back (through logic, which announces them in the
//! message's logs), who reacted, and the counts history shows.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, State};
use natter_infra::store::{Reaction, copy_seen_by};
use natter_proto::ErrorCode;
use natter_proto::frame::ReactionCount;
use natter_proto::v1::ReactRequest;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthUser, UserView};
use crate::params::positive_id;
use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// Users listed per emoji in history (the count is whole).
pub const USERS_PER_EMOJI: usize = 20;

/// A reaction to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReaction {
    /// One emoji (up to 8 code points; no letters, digits or spaces).
    #[schema(example = "👍")]
    pub emoji: String,
}

/// Whether a reaction changed anything.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReactionChange {
    /// The message.
    pub id: String,
    /// The emoji.
    pub emoji: String,
    /// False when it was already there (adding) or already gone (taking back).
    pub changed: bool,
}

/// One emoji's reactions to a message, with everyone who reacted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReactionPeople {
    /// The emoji.
    pub emoji: String,
    /// How many.
    pub count: u64,
    /// Who, by when they reacted.
    pub users: Vec<UserView>,
}

/// Every reaction to a message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReactionList {
    /// The message.
    pub id: String,
    /// Per emoji, the most used first.
    pub reactions: Vec<ReactionPeople>,
}

async fn change(
    state: &ApiState,
    user: i64,
    id: &str,
    emoji: String,
    present: bool,
) -> Result<Json<ReactionChange>, Problem> {
    let message_id = positive_id(id, "message")? as u64;
    let reply = state
        .logic
        .react(ReactRequest {
            user_id: user,
            message_id,
            emoji: emoji.clone(),
            present,
        })
        .await?;
    Ok(Json(ReactionChange {
        id: message_id.to_string(),
        emoji,
        changed: reply.changed,
    }))
}

/// `POST /api/v1/messages/{id}/reactions`: react to a message one can see (a friend's or
/// one's own one-to-one message, or a message of a group one is in). A `reaction` event goes
/// where the message went.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/reactions",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The message's id")),
    request_body = NewReaction,
    responses(
        (status = 200, description = "Added (or there already)", body = ReactionChange),
        (status = 400, description = "`invalid_input`: a bad id or emoji, or more than 20 \
            different reactions on one message"),
        (status = 403, description = "`forbidden`: no longer a friend or member there"),
        (status = 404, description = "`not_found`: no such message the caller can see"),
    )
)]
pub async fn add(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(reaction): JsonBody<NewReaction>,
) -> Result<Json<ReactionChange>, Problem> {
    change(&state, user, &id, reaction.emoji, true).await
}

/// `DELETE /api/v1/messages/{id}/reactions/{emoji}`: take one's reaction back (the emoji
/// percent-encoded). A `reaction_removed` event goes where the message went.
#[utoipa::path(
    delete,
    path = "/api/v1/messages/{id}/reactions/{emoji}",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The message's id"),
        ("emoji" = String, Path, description = "The emoji, percent-encoded"),
    ),
    responses(
        (status = 200, description = "Taken back (or not there)", body = ReactionChange),
        (status = 400, description = "`invalid_input`: a bad id or emoji"),
        (status = 404, description = "`not_found`: no such message the caller can see"),
    )
)]
pub async fn remove(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path((id, emoji)): Path<(String, String)>,
) -> Result<Json<ReactionChange>, Problem> {
    change(&state, user, &id, emoji, false).await
}

/// `GET /api/v1/messages/{id}/reactions`: who reacted with what, to people who can see the
/// message.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}/reactions",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Every reaction", body = ReactionList),
        (status = 400, description = "`invalid_input`: not a positive id"),
        (status = 404, description = "`not_found`: no such message the caller can see"),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ReactionList>, Problem> {
    let message_id = positive_id(&id, "message")? as u64;
    let copies = state.store.message_copies(message_id).await?;
    if copy_seen_by(state.store.as_ref(), user, &copies)
        .await?
        .is_none()
    {
        return Err(Problem::new(
            ErrorCode::NotFound,
            format!("there is no message {message_id} you can see"),
        ));
    }
    let mut found = state.store.reactions(&[message_id]).await?;
    found.sort_by_key(|reaction| reaction.ts);
    let mut by_emoji: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for reaction in found {
        by_emoji
            .entry(reaction.emoji)
            .or_default()
            .push(reaction.user_id);
    }
    let mut reactions = Vec::with_capacity(by_emoji.len());
    for (emoji, users) in by_emoji {
        let mut people = Vec::with_capacity(users.len());
        for reactor in &users {
            if let Some(profile) = state.store.user(*reactor).await? {
                people.push(UserView::from(&profile));
            }
        }
        reactions.push(ReactionPeople {
            emoji,
            count: users.len() as u64,
            users: people,
        });
    }
    reactions.sort_by_key(|reaction| std::cmp::Reverse(reaction.count));
    Ok(Json(ReactionList {
        id: message_id.to_string(),
        reactions,
    }))
}

/// Who reacted with what, by message and emoji, in the order given.
fn by_message_and_emoji(reactions: Vec<Reaction>) -> HashMap<u64, BTreeMap<String, Vec<i64>>> {
    let mut grouped: HashMap<u64, BTreeMap<String, Vec<i64>>> = HashMap::new();
    for reaction in reactions {
        grouped
            .entry(reaction.message_id)
            .or_default()
            .entry(reaction.emoji)
            .or_default()
            .push(reaction.user_id);
    }
    grouped
}

/// The reaction counts of `messages` as `viewer` sees them (`mine` is theirs), by message.
pub(crate) async fn counts(
    state: &ApiState,
    viewer: i64,
    messages: &[u64],
) -> Result<HashMap<u64, Vec<ReactionCount>>, Problem> {
    let grouped = by_message_and_emoji(state.store.reactions(messages).await?);
    Ok(grouped
        .into_iter()
        .map(|(message, by_emoji)| {
            let mut counts: Vec<ReactionCount> = by_emoji
                .into_iter()
                .map(|(emoji, users)| ReactionCount {
                    count: users.len() as u64,
                    mine: users.contains(&viewer),
                    users: users
                        .iter()
                        .take(USERS_PER_EMOJI)
                        .map(ToString::to_string)
                        .collect(),
                    emoji,
                })
                .collect();
            counts.sort_by_key(|count| std::cmp::Reverse(count.count));
            (message, counts)
        })
        .collect())
}
