//! natter's REST API.
//!
//! - [`state`]: what every handler shares (ports, the logic handle, token keys, limits).
//! - [`problem`]: RFC 9457 problem responses with stable codes, and the JSON body extractor
//!   that turns malformed bodies into them.
//! - [`params`]: ids and numbers from paths and query strings, refused clearly.
//! - [`auth`]: register, log in, refresh; the bearer-token extractor; password rules.
//! - [`profiles`]: the caller's profile and anyone's public one.
//! - [`friends`]: friend requests (made, accepted, turned down, withdrawn), the friend list,
//!   removing a friend.
//! - [`groups`]: creating, joining and leaving groups (through logic).
//! - [`messages`]: sending over REST (through logic, like a WebSocket `send`).
//! - [`history`]: a conversation's stored messages, paged back from the newest.
//! - [`decode_budget`]: the memory image decodes may hold at once.
//! - [`images`]: recognising uploaded images by their bytes, bounding their size, thumbnails.
//! - [`search`]: users and groups by the start of their names.
//! - [`uploads`]: images in (checked by content, with thumbnails) and out (to those who may
//!   see them).
//! - [`web`]: the browser client's files, and where it finds the WebSocket endpoint.
//! - [`admin`]: system notifications from back ends, behind their own credential.
//! - [`openapi`]: the OpenAPI document (`/api/v1/openapi.json`) and its Swagger UI (`/api/docs`).

pub mod admin;
pub mod auth;
pub mod blocks;
pub mod decode_budget;
mod events;
pub mod friends;
pub mod groups;
pub mod history;
pub mod images;
pub mod invites;
pub mod messages;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod profiles;
pub mod reactions;
pub mod search;
pub mod state;
pub mod uploads;
pub mod web;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

pub use state::{ApiConfig, ApiState};

/// `GET /healthz`: `ok` while the API serves.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "The API is up", body = String, example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The API's routes under `/api/v1`, plus `/healthz`.
pub fn router(state: ApiState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/docs", get(openapi::docs_page))
        .route("/api/docs/{*file}", get(openapi::docs_asset))
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/me", get(auth::me).patch(profiles::update_me))
        .route("/api/v1/client-config", get(web::client_config))
        .route("/api/v1/users/search", get(search::users))
        .route("/api/v1/users/{id}", get(profiles::user))
        .route("/api/v1/groups/search", get(search::groups))
        .route(
            "/api/v1/groups/{id}",
            patch(groups::update).delete(groups::disband),
        )
        .route(
            "/api/v1/groups/{id}/members/{user}",
            delete(groups::remove_member).patch(groups::change_member),
        )
        .route("/api/v1/groups/{id}/online", get(groups::online))
        .route("/api/v1/conversations", get(history::conversations))
        .route(
            "/api/v1/conversations/{kind}/{id}/read",
            post(history::read),
        )
        .route(
            "/api/v1/conversations/group/{id}/messages/{seq}/readers",
            get(history::readers),
        )
        .route("/api/v1/messages/{id}/recall", post(messages::recall))
        .route("/api/v1/messages/{id}", patch(messages::edit))
        .route(
            "/api/v1/messages/{id}/reactions",
            get(reactions::list).post(reactions::add),
        )
        .route(
            "/api/v1/messages/{id}/reactions/{emoji}",
            delete(reactions::remove),
        )
        .route(
            "/api/v1/uploads",
            post(uploads::upload).layer(axum::extract::DefaultBodyLimit::max(
                state.config.max_upload_bytes.saturating_add(64 * 1024),
            )),
        )
        .route("/media/{id}", get(uploads::media))
        .route("/api/v1/friends/{id}", delete(friends::remove))
        .route(
            "/api/v1/friends/requests/{user}/reject",
            post(friends::reject),
        )
        .route("/api/v1/friends/requests/{user}", delete(friends::cancel))
        .route("/api/v1/friends", get(friends::list))
        .route("/api/v1/blocks", get(blocks::list))
        .route(
            "/api/v1/blocks/{id}",
            put(blocks::block).delete(blocks::unblock),
        )
        .route(
            "/api/v1/conversations/{kind}/{id}/mute",
            put(history::mute).delete(history::unmute),
        )
        .route(
            "/api/v1/friends/requests",
            get(friends::requests).post(friends::request),
        )
        .route(
            "/api/v1/friends/requests/{user}/accept",
            post(friends::accept),
        )
        .route("/api/v1/messages", post(messages::send))
        .route(
            "/api/v1/conversations/{kind}/{id}/messages",
            get(history::messages),
        )
        .route("/api/v1/groups", get(groups::mine).post(groups::create))
        .route("/api/v1/admin/push", post(admin::push))
        .route("/api/v1/groups/{id}/join", post(groups::join))
        .route("/api/v1/groups/{id}/leave", post(groups::leave))
        .route(
            "/api/v1/groups/{id}/members",
            get(groups::members).post(groups::add_member),
        )
        .route(
            "/api/v1/groups/{id}/invites",
            get(invites::list).post(invites::create),
        )
        .route(
            "/api/v1/groups/{id}/invites/{code}",
            delete(invites::revoke),
        )
        .route("/api/v1/invites/{code}", get(invites::preview))
        .route("/api/v1/invites/{code}/join", post(invites::join))
        .merge(web::router())
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        // One budget for every upload this router takes.
        .layer(axum::Extension(decode_budget::DecodeBudget::new(
            state.config.decode_memory_bytes,
            std::time::Duration::from_millis(state.config.decode_wait_ms),
        )))
        .with_state(state)
}
