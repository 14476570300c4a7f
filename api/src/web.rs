//! The browser client: plain ES modules, CSS and HTML from `web/`, compiled into the binary and
//! served at `/` and `/web/{file}`, plus `GET /api/v1/client-config`, which tells the client
//! where the WebSocket endpoint is.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, http::StatusCode};
use natter_proto::ErrorCode;
use serde::Serialize;

use crate::problem::Problem;
use crate::state::ApiState;

/// A file of the browser client.
#[derive(Debug)]
pub struct WebFile {
    /// Its name under `web/` (and under `/web/`).
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its content.
    pub body: &'static str,
}

/// The media type of a client file, by its extension.
const fn content_type(name: &str) -> &'static str {
    let bytes = name.as_bytes();
    match bytes {
        [.., b'.', b'h', b't', b'm', b'l'] => "text/html; charset=utf-8",
        [.., b'.', b'c', b's', b's'] => "text/css; charset=utf-8",
        _ => "text/javascript; charset=utf-8",
    }
}

/// The client files named, each compiled in from `web/`.
macro_rules! web_files {
    ($($name:literal),* $(,)?) => {
        &[$(WebFile {
            name: $name,
            content_type: content_type($name),
            body: include_str!(concat!("../../web/", $name)),
        }),*]
    };
}

/// Every file the client is made of, in `web/` (a test keeps this list and the folder equal).
pub const WEB_FILES: &[WebFile] = web_files![
    "index.html",
    "style.css",
    "account.js",
    "api.js",
    "app.js",
    "attention.js",
    "blocks.js",
    "chat.js",
    "chats.js",
    "compose-mode.js",
    "dialog.js",
    "dom.js",
    "drafts.js",
    "group-members.js",
    "group-settings.js",
    "groups.js",
    "invite-join.js",
    "invites.js",
    "linkify.js",
    "message-events.js",
    "message-menu.js",
    "mutes.js",
    "people.js",
    "reactions.js",
    "receipts.js",
    "route.js",
    "settings.js",
    "socket.js",
    "store.js",
];

/// The browser client's routes (not part of the REST API's document).
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/web/{file}", get(file))
}

fn serve(file: &WebFile) -> Response {
    (
        [
            (header::CONTENT_TYPE, file.content_type),
            // The files change with the binary; always ask whether they did.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        file.body,
    )
        .into_response()
}

async fn index() -> Response {
    match WEB_FILES.iter().find(|file| file.name == "index.html") {
        Some(file) => serve(file),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(Path(name): Path<String>) -> Result<Response, Problem> {
    WEB_FILES
        .iter()
        .find(|file| file.name == name)
        .map(serve)
        .ok_or_else(|| Problem::new(ErrorCode::NotFound, format!("no client file {name:?}")))
}

/// What the browser client needs to know to connect.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientConfig {
    /// The WebSocket endpoint; `{host}` stands for the host name the page was loaded from.
    #[schema(example = "ws://{host}:8090/ws")]
    pub ws_url: String,
}

/// `GET /api/v1/client-config`: where the WebSocket endpoint is, for browser clients.
#[utoipa::path(
    get,
    path = "/api/v1/client-config",
    tag = "meta",
    responses((status = 200, description = "The client configuration", body = ClientConfig))
)]
pub async fn client_config(State(state): State<ApiState>) -> Json<ClientConfig> {
    Json(ClientConfig {
        ws_url: state.config.public_ws_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_web_folder_is_served_and_nothing_else() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../web");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .expect("the web folder")
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = WEB_FILES.iter().map(|file| file.name.to_string()).collect();
        served.sort();
        assert_eq!(on_disk, served, "web/ and WEB_FILES differ");
    }

    #[test]
    fn each_file_is_served_as_its_kind() {
        for file in WEB_FILES {
            let expected = match file.name.rsplit_once('.').map(|(_, extension)| extension) {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                other => panic!("{}: an unexpected kind of file {other:?}", file.name),
            };
            assert_eq!(file.content_type, expected, "{}", file.name);
        }
    }
}
