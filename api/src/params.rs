//! Path and query parameters read into numbers, or refused with a problem response.

use std::collections::HashMap;
use std::str::FromStr;

use natter_proto::ErrorCode;
use natter_proto::object::parse_id;

use crate::problem::Problem;

/// A positive id from the path; `what` names it in the refusal ("user", "group").
pub fn positive_id(text: &str, what: &str) -> Result<i64, Problem> {
    parse_id(text).ok_or_else(|| {
        Problem::new(
            ErrorCode::InvalidInput,
            format!("the {what} id must be a positive id in decimal digits, without leading zeros"),
        )
    })
}

/// The id a paged list continues after (`after`, a previous page's `next_after`): 0, the
/// start, when absent, else a positive id in its one written form.
pub fn after_id(query: &HashMap<String, String>) -> Result<i64, Problem> {
    match query.get("after") {
        None => Ok(0),
        Some(text) => positive_id(text, "after"),
    }
}

/// A number from the query string, or `default` when absent.
pub fn query_number<T: FromStr>(
    query: &HashMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, Problem> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            Problem::new(
                ErrorCode::InvalidInput,
                format!("{name} must be a whole number"),
            )
        }),
    }
}

/// The `limit` of a paged list: `default` when absent, otherwise 1 to `max`.
pub fn page_limit(query: &HashMap<String, String>, default: u32, max: u32) -> Result<u32, Problem> {
    let limit = query_number(query, "limit", default)?;
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::new(
            ErrorCode::InvalidInput,
            format!("limit must be between 1 and {max}"),
        ))
    }
}

/// The `next_after` of a page ordered by id: the last id when the page is full (a shorter
/// page is the last one).
pub fn next_after(last: Option<i64>, len: usize, limit: u32) -> Option<String> {
    (len == limit as usize)
        .then(|| last.map(|id| id.to_string()))
        .flatten()
}
