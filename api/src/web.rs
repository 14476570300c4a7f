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

/// Every file the client is made of, in `web/` (a test keeps this list and the folder equal).
pub const WEB_FILES: &[WebFile] = &[
    WebFile {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../web/index.html"),
    },
    WebFile {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/style.css"),
    },
    WebFile {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/app.js"),
    },
    WebFile {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/api.js"),
    },
    WebFile {
        name: "store.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/store.js"),
    },
    WebFile {
        name: "socket.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/socket.js"),
    },
    WebFile {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/dom.js"),
    },
    WebFile {
        name: "account.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/account.js"),
    },
    WebFile {
        name: "people.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/people.js"),
    },
    WebFile {
        name: "groups.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/groups.js"),
    },
    WebFile {
        name: "group-settings.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/group-settings.js"),
    },
    WebFile {
        name: "chats.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/chats.js"),
    },
    WebFile {
        name: "chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/chat.js"),
    },
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
}
