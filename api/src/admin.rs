//! The admin API: back ends push system notifications. It has its own credential
//! (`api.admin_token`) and is off while that is empty.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use natter_proto::v1::{Audience, SystemPushRequest};
use natter_proto::{ErrorCode, ObjectId};
use serde::{Deserialize, Serialize};

use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// A request that carried the admin credential.
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<ApiState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Problem> {
        let expected = state.config.admin_token.as_bytes();
        if expected.is_empty() {
            return Err(Problem::new(
                ErrorCode::Forbidden,
                "the admin API is off; set api.admin_token to turn it on",
            ));
        }
        let Some(given) = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(natter_proto::token::bearer)
        else {
            return Err(Problem::new(
                ErrorCode::Unauthorized,
                "send Authorization: Bearer <admin token>",
            ));
        };
        if same_secret(given.as_bytes(), expected) {
            return Ok(Admin);
        }
        // Say which mistake it is: a user's own token is a credential, just not this one.
        if state.tokens.verify(given).is_ok() {
            return Err(Problem::new(
                ErrorCode::Forbidden,
                "a user's access token does not open the admin API; send the admin token",
            ));
        }
        Err(Problem::new(
            ErrorCode::InvalidToken,
            "this is not the admin token",
        ))
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how much of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// Whom a push is for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PushTarget {
    /// `"all"` (every online connection) or `"group:<id>"`.
    #[schema(example = "all")]
    One(String),
    /// `["user:<id>", ...]`.
    #[schema(example = json!(["user:7265418613035008"]))]
    Users(Vec<String>),
}

/// A system notification to push.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPush {
    /// Whom it is for.
    pub to: PushTarget,
    /// The text.
    pub body: String,
    /// Write it to the recipients' logs (users and groups only) so that offline users get it
    /// when they sync; otherwise only online connections get it, as a `notice` frame.
    #[serde(default)]
    pub persist: bool,
}

impl NewPush {
    /// The logic request for this push: its audience checked and named.
    pub fn into_request(self) -> Result<SystemPushRequest, Problem> {
        let mut request = SystemPushRequest {
            body: self.body,
            persist: self.persist,
            ..SystemPushRequest::default()
        };
        match self.to {
            PushTarget::One(all) if all == "all" => request.set_audience(Audience::Everyone),
            PushTarget::One(object) => match object.parse::<ObjectId>() {
                Ok(ObjectId::Group(group)) => {
                    request.set_audience(Audience::Group);
                    request.group_id = group;
                }
                _ => {
                    return Err(Problem::new(
                        ErrorCode::InvalidInput,
                        "to is \"all\", \"group:<id>\" or a list of \"user:<id>\"",
                    ));
                }
            },
            PushTarget::Users(users) => {
                request.set_audience(Audience::Users);
                for user in users {
                    match user.parse::<ObjectId>() {
                        Ok(ObjectId::User(id)) => request.user_ids.push(id),
                        _ => {
                            return Err(Problem::new(
                                ErrorCode::InvalidInput,
                                format!("{user:?} is not a user (user:<id>)"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(request)
    }
}

/// A push's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushAccepted {
    /// The notification's id.
    pub id: String,
    /// For an ephemeral push, the connections (or, for users, the users) it was queued for.
    pub reached: u32,
}

/// `POST /api/v1/admin/push`: push a system notification to users, a group or everyone.
#[utoipa::path(
    post,
    path = "/api/v1/admin/push",
    tag = "admin",
    security(("admin_token" = [])),
    request_body = NewPush,
    responses(
        (status = 202, description = "Accepted for delivery", body = PushAccepted),
        (status = 400, description = "`bad_frame`: not JSON; `invalid_input`: a bad `to` or body"),
        (status = 401, description = "`unauthorized`: no bearer token; `invalid_token`: a token \
            that is not the admin token"),
        (status = 403, description = "`forbidden`: the admin API is off (`api.admin_token` is \
            empty), or the token is a user's access token"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
    )
)]
pub async fn push(
    State(state): State<ApiState>,
    _admin: Admin,
    JsonBody(push): JsonBody<NewPush>,
) -> Result<(StatusCode, Json<PushAccepted>), Problem> {
    let request = push.into_request()?;
    let reply = state.logic.system_push(request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PushAccepted {
            id: reply.id.to_string(),
            reached: reply.connections,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3creT", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
