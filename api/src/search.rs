//! Finding people and groups: by the start of a username, nickname or group name, in any
//! case, paged by id.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use natter_proto::ErrorCode;
use serde::Serialize;

use crate::auth::{AuthUser, UserView};
use crate::groups::GroupView;
use crate::params::{after_id, next_after, page_limit};
use crate::problem::Problem;
use crate::state::ApiState;

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_SEARCH_PAGE: u32 = 20;
/// Most results per page.
pub const MAX_SEARCH_PAGE: u32 = 50;
/// Longest search prefix, in characters.
pub const MAX_QUERY_CHARS: usize = 64;

/// The query of the search endpoints (read by hand so bad numbers get problem responses).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The start of a name (1 to 64 characters, any case).
    pub q: String,
    /// Continue after this id (the last page's `next_after`).
    pub after: Option<String>,
    /// Results per page, 1 to 50; 20 when absent.
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

/// A page of users found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserResults {
    /// Ascending by id.
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

/// A page of groups found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupResults {
    /// Ascending by id.
    pub groups: Vec<GroupView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

/// The prefix, the id to continue after, and the page size of a search.
fn search_terms(query: &HashMap<String, String>) -> Result<(String, i64, u32), Problem> {
    let prefix = query.get("q").map(|q| q.trim()).unwrap_or_default();
    let chars = prefix.chars().count();
    if chars == 0 || chars > MAX_QUERY_CHARS || prefix.chars().any(char::is_control) {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            format!("q is the start of a name: 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let after = after_id(query)?;
    let limit = page_limit(query, DEFAULT_SEARCH_PAGE, MAX_SEARCH_PAGE)?;
    Ok((prefix.to_string(), after, limit))
}

/// `GET /api/v1/users/search`: users whose username or nickname starts with `q`.
#[utoipa::path(
    get,
    path = "/api/v1/users/search",
    tag = "search",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of users", body = UserResults),
        (status = 400, description = "`invalid_input`: a bad q, after or limit"),
    )
)]
pub async fn users(
    State(state): State<ApiState>,
    AuthUser(_): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<UserResults>, Problem> {
    let (prefix, after, limit) = search_terms(&query)?;
    let found = state.store.search_users(&prefix, after, limit).await?;
    Ok(Json(UserResults {
        next_after: next_after(found.last().map(|user| user.id), found.len(), limit),
        users: found.iter().map(UserView::from).collect(),
    }))
}

/// `GET /api/v1/groups/search`: groups whose name starts with `q`.
#[utoipa::path(
    get,
    path = "/api/v1/groups/search",
    tag = "search",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of groups", body = GroupResults),
        (status = 400, description = "`invalid_input`: a bad q, after or limit"),
    )
)]
pub async fn groups(
    State(state): State<ApiState>,
    AuthUser(_): AuthUser,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<GroupResults>, Problem> {
    let (prefix, after, limit) = search_terms(&query)?;
    let found = state.store.search_groups(&prefix, after, limit).await?;
    Ok(Json(GroupResults {
        next_after: next_after(found.last().map(|group| group.id), found.len(), limit),
        groups: found.iter().map(GroupView::from).collect(),
    }))
}
