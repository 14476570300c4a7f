//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations, and the routes that serve it: the document at `GET /api/v1/openapi.json` and a
//! Swagger UI at `GET /api/docs` (its assets are compiled into the binary; no CDN).
//!
//! To document a new endpoint: put `#[utoipa::path(...)]` on its handler (method, path, tag,
//! params, request_body, responses with their problem codes, security) and add the handler to
//! `paths(...)` on [`ApiDoc`]. Types it names derive `utoipa::ToSchema` (query structs
//! `utoipa::IntoParams`); list the schemas under `components(schemas(...))` as well. A test
//! fails while a route in [`crate::router`] is missing from the document.
//!
//! Two modifiers finish the document: [`SecuritySchemes`] declares the `bearer` (a user's
//! access token) and `admin_token` credentials that operations name in `security(...)`, and
//! [`ProblemResponses`] gives every error response its problem body, every operation taking an
//! access token its 401, and every `/api/v1/` operation the 500 `internal` and 503
//! `unavailable` responses, so handlers list only their own codes, without bodies.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use natter_proto::ErrorCode;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::schema::Ref;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::problem::{PROBLEM_JSON, Problem, ProblemBody};
use crate::{
    admin, auth, blocks, friends, groups, history, invites, messages, problem, profiles, reactions,
    search, uploads, web,
};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";
/// Where the Swagger UI is served.
pub const DOCS_PATH: &str = "/api/docs";

/// The OpenAPI document of natter's REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "natter REST API",
        description = "Accounts, profiles, friends, groups, sending and history over REST, and \
            the admin push API. Errors are RFC 9457 problem responses \
            (`application/problem+json`) whose `code` is one of natter's stable error codes. \
            Ids are JSON strings. Real-time delivery is over WebSocket (docs/protocol.md).",
    ),
    paths(
        crate::healthz,
        document,
        docs_page,
        auth::register,
        auth::login,
        auth::refresh,
        auth::me,
        profiles::update_me,
        profiles::user,
        friends::list,
        friends::requests,
        friends::request,
        friends::accept,
        friends::reject,
        friends::cancel,
        friends::remove,
        groups::mine,
        groups::create,
        groups::join,
        groups::leave,
        groups::members,
        groups::update,
        groups::remove_member,
        groups::disband,
        groups::online,
        messages::send,
        messages::recall,
        messages::edit,
        reactions::add,
        reactions::remove,
        reactions::list,
        history::messages,
        history::conversations,
        history::read,
        history::readers,
        history::mute,
        history::unmute,
        blocks::list,
        blocks::block,
        blocks::unblock,
        groups::add_member,
        groups::change_member,
        invites::create,
        invites::list,
        invites::revoke,
        invites::preview,
        invites::join,
        search::users,
        search::groups,
        uploads::upload,
        uploads::media,
        admin::push,
        web::client_config,
    ),
    components(schemas(
        problem::ProblemBody,
        problem::ProblemCode,
        auth::Credentials,
        auth::RefreshRequest,
        auth::Session,
        auth::UserView,
        profiles::ProfileChange,
        friends::FriendList,
        friends::FriendView,
        friends::NewRequest,
        friends::RequestLists,
        friends::RequestView,
        groups::GroupList,
        groups::GroupView,
        groups::MemberPage,
        groups::MembershipView,
        groups::NewGroup,
        messages::NewMessage,
        messages::Accepted,
        history::ConversationKind,
        history::HistoryPage,
        history::MessageView,
        history::ReplyView,
        history::ReactionView,
        groups::GroupChange,
        groups::OnlineView,
        messages::Recalled,
        messages::MessageEdit,
        messages::Edited,
        reactions::NewReaction,
        reactions::ReactionChange,
        reactions::ReactionPeople,
        reactions::ReactionList,
        history::ConversationView,
        history::ConversationList,
        history::ReadersView,
        history::MuteChange,
        history::MuteView,
        blocks::BlockList,
        groups::MemberView,
        groups::NewMember,
        groups::MemberChange,
        invites::NewInvite,
        invites::InviteView,
        invites::InviteList,
        invites::InvitePreview,
        history::ReadMark,
        history::ReadView,
        search::UserResults,
        search::GroupResults,
        uploads::UploadView,
        uploads::UploadForm,
        web::ClientConfig,
        admin::NewPush,
        admin::PushAccepted,
        admin::PushTarget,
    )),
    modifiers(&SecuritySchemes, &ProblemResponses),
    tags(
        (name = "auth", description = "Register, log in and refresh tokens"),
        (name = "profiles", description = "The caller's profile and anyone's public one"),
        (name = "friends", description = "Friend requests and the friend list"),
        (name = "groups", description = "Creating, joining and leaving groups; members"),
        (name = "messages", description = "Sending over REST"),
        (name = "history", description = "A conversation's stored messages"),
        (name = "search", description = "Users and groups by the start of their names"),
        (name = "uploads", description = "Images in, and out to those who may see them"),
        (name = "admin", description = "System notifications from back ends"),
        (name = "meta", description = "Health and this documentation"),
    )
)]
pub struct ApiDoc;

/// Declares the credentials operations name in `security(...)`.
#[derive(Debug)]
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's access token from register, login or refresh, sent as \
                         `Authorization: Bearer <access token>`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The configured admin credential (`api.admin_token`), sent as \
                         `Authorization: Bearer <admin token>`. The admin API is off while it \
                         is empty.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Finishes the error responses of every `/api/v1/` operation, so handlers list only their own
/// codes: each error response gets the problem body, an operation taking a user's access token
/// gets the 401 for a missing, bad or expired one, and every operation gets the server-side
/// 500 `internal` and 503 `unavailable`. A response an operation lists itself is kept.
#[derive(Debug)]
pub struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        let everywhere = [
            (
                ErrorCode::Internal,
                "`internal`: an unexpected server error; it has been logged",
            ),
            (
                ErrorCode::Unavailable,
                "`unavailable`: a dependency is unavailable; retry later",
            ),
        ];
        let unauthorized = (
            ErrorCode::Unauthorized,
            "`unauthorized`, `invalid_token` or `token_expired`",
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") || path == DOCUMENT_PATH {
                continue;
            }
            for operation in operations(item) {
                let takes_token = operation
                    .security
                    .iter()
                    .flatten()
                    .any(|needs| *needs == bearer);
                let added = everywhere
                    .iter()
                    .chain(takes_token.then_some(&unauthorized));
                let responses = &mut operation.responses.responses;
                for (code, description) in added {
                    responses
                        .entry(code.http_status().to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(*description)
                                .build()
                                .into()
                        });
                }
                for (status, response) in responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (is_error, response)
                        && response.content.is_empty()
                    {
                        response.content.insert(
                            PROBLEM_JSON.to_string(),
                            Content::new(Some(Ref::from_schema_name(ProblemBody::name()))).into(),
                        );
                    }
                }
            }
        }
    }
}

/// The operations of a path item, whatever their method.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .flatten()
    .chain(item.additional_operations.values_mut())
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// `GET /api/docs`: a browsable Swagger UI of the document.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "meta",
    responses((status = 200, description = "The Swagger UI page", content_type = "text/html"))
)]
pub async fn docs_page() -> Response {
    swagger_file("index.html")
}

/// `GET /api/docs/{*file}`: the Swagger UI's scripts, styles and icons (not in the document).
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    swagger_file(&file)
}

/// One file of the embedded Swagger UI. The page gets a `<base>` so that its relative links
/// reach the assets under `/api/docs/` although the page itself is at `/api/docs`.
fn swagger_file(file: &str) -> Response {
    let config = Arc::new(utoipa_swagger_ui::Config::new([DOCUMENT_PATH]));
    let found = match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(found)) => found,
        Ok(None) => return Problem::new(ErrorCode::NotFound, "no such file").into_response(),
        Err(error) => {
            tracing::error!(%error, file, "serving the Swagger UI failed");
            return Problem::new(ErrorCode::Internal, "internal error").into_response();
        }
    };
    let mut bytes = found.bytes;
    if file == "index.html" {
        let page = String::from_utf8_lossy(&bytes).replacen(
            "<head>",
            &format!("<head>\n    <base href=\"{DOCS_PATH}/\" />"),
            1,
        );
        bytes = Cow::Owned(page.into_bytes());
    }
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(content_type) = HeaderValue::from_str(&found.content_type) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    if found.gzpipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use natter_infra::ids::IdGenerator;
    use natter_infra::sql::{SqlStore, open_database};
    use natter_proto::frame::{MessageFrame, ReactionCount, ReplyRef};
    use natter_proto::handle::LogicHandle;
    use natter_proto::token::TokenKeys;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::{ApiConfig, ApiState};

    /// Routes that are served but deliberately left out of the document.
    const UNDOCUMENTED: [(&str, &str); 1] = [("GET", "/api/docs/{*file}")];

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn document_json() -> Value {
        let text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the document serialises");
        serde_json::from_str(&text).expect("the document is JSON")
    }

    /// (METHOD, path) of every operation in the document.
    fn documented_operations() -> BTreeSet<(String, String)> {
        let document = document_json();
        let paths = document["paths"].as_object().expect("paths");
        let mut operations = BTreeSet::new();
        for (path, item) in paths {
            let item = item.as_object().expect("a path item");
            for method in item.keys().filter(|key| METHODS.contains(&key.as_str())) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
        operations
    }

    /// (METHOD, path) of every `.route(...)` in `router()`, read from its source, so that a
    /// route added there without documentation fails the test.
    fn routed_operations() -> BTreeSet<(String, String)> {
        let source = include_str!("lib.rs");
        let start = source.find("pub fn router(").expect("router() in lib.rs");
        let length = source[start..].find("\n}\n").expect("the end of router()");
        let mut rest = &source[start..start + length];
        let mut routes = BTreeSet::new();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(index, _)| index)
                .expect("a closed .route(...) call");
            let arguments = &rest[..end];
            let path = arguments
                .split('"')
                .nth(1)
                .expect("route paths in router() are string literals");
            for method in METHODS {
                let called = arguments
                    .match_indices(&format!("{method}("))
                    .any(|(index, _)| {
                        !arguments[..index]
                            .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                    });
                if called {
                    routes.insert((method.to_uppercase(), path.to_string()));
                }
            }
            rest = &rest[end..];
        }
        routes
    }

    async fn test_state() -> ApiState {
        let database = open_database("sqlite::memory:", 1)
            .await
            .expect("an in-memory database");
        ApiState {
            config: ApiConfig::default(),
            store: Arc::new(SqlStore::new(database)),
            // Never called: every request here is refused before it reaches logic.
            logic: LogicHandle::remote("http://127.0.0.1:9").expect("a lazy logic handle"),
            tokens: TokenKeys::new(b"openapi test secret"),
            ids: Arc::new(IdGenerator::new(1).expect("an id generator")),
            blobs: Arc::new(natter_infra::embedded::DirBlobs::new(
                std::env::temp_dir().join("natter-openapi-test-blobs"),
            )),
        }
    }

    async fn get(router: &axum::Router, uri: &str) -> (StatusCode, String, Vec<u8>) {
        let request = Request::get(uri).body(Body::empty()).expect("a request");
        let response = router.clone().oneshot(request).await.expect("an answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, content_type, body.to_vec())
    }

    #[test]
    fn the_document_is_openapi_3_and_reads_back() {
        let document = document_json();
        let version = document["openapi"].as_str().expect("an openapi version");
        assert!(version.starts_with("3."), "version {version}");
        assert_eq!(document["info"]["title"], "natter REST API");
        let text = document.to_string();
        let parsed: utoipa::openapi::OpenApi =
            serde_json::from_str(&text).expect("the document reads back as OpenAPI");
        assert_eq!(
            parsed.paths.paths.len(),
            document["paths"].as_object().map_or(0, |paths| paths.len())
        );
    }

    #[test]
    fn every_route_in_the_router_is_documented() {
        let documented = documented_operations();
        let routed = routed_operations();
        assert!(routed.len() > 20, "the route parser found only {routed:?}");
        let undocumented: BTreeSet<(String, String)> = UNDOCUMENTED
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        let missing: Vec<_> = routed
            .difference(&documented)
            .filter(|route| !undocumented.contains(route))
            .collect();
        assert!(
            missing.is_empty(),
            "routes without #[utoipa::path] in ApiDoc's paths(...): {missing:?}"
        );
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(stale.is_empty(), "documented but not routed: {stale:?}");
    }

    #[tokio::test]
    async fn every_documented_operation_is_served_by_the_router() {
        let router = crate::router(test_state().await);
        for (method, path) in documented_operations() {
            let uri = path
                .replace("{kind}", "user")
                .replace("{id}", "1")
                .replace("{user}", "1");
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).expect("a method"))
                .uri(&uri)
                .body(Body::empty())
                .expect("a request");
            let response = router.clone().oneshot(request).await.expect("an answer");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !String::from_utf8_lossy(&body).contains("no such endpoint"),
                "{method} {path} reached the fallback"
            );
        }
    }

    #[test]
    fn references_and_security_names_resolve() {
        let document = document_json();
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("schemas");
        let schemes = document["components"]["securitySchemes"]
            .as_object()
            .expect("security schemes");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
        assert_eq!(schemes["admin_token"]["scheme"], "bearer");

        fn walk(value: &Value, references: &mut Vec<String>, security: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (key, inner) in map {
                        match (key.as_str(), inner) {
                            ("$ref", Value::String(target)) => references.push(target.clone()),
                            ("security", Value::Array(requirements)) => {
                                for requirement in requirements.iter().filter_map(Value::as_object)
                                {
                                    security.extend(requirement.keys().cloned());
                                }
                            }
                            _ => walk(inner, references, security),
                        }
                    }
                }
                Value::Array(items) => {
                    for item in items {
                        walk(item, references, security);
                    }
                }
                _ => {}
            }
        }
        let (mut references, mut security) = (Vec::new(), Vec::new());
        walk(&document["paths"], &mut references, &mut security);
        walk(&document["components"], &mut references, &mut security);
        assert!(!references.is_empty());
        for reference in references {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            assert!(schemas.contains_key(name), "{reference} has no schema");
        }
        assert!(security.iter().any(|name| name == "bearer"));
        assert!(security.iter().any(|name| name == "admin_token"));
        for name in security {
            assert!(schemes.contains_key(&name), "security {name} has no scheme");
        }
    }

    #[test]
    fn operations_carry_their_problems_and_credentials() {
        let document = document_json();
        let operation = &document["paths"]["/api/v1/friends/requests"]["post"];
        assert_eq!(operation["tags"][0], "friends");
        assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]));
        for status in ["201", "400", "401", "404", "409", "413", "500", "503"] {
            assert!(
                operation["responses"][status].is_object(),
                "POST /api/v1/friends/requests lacks {status}"
            );
        }
        assert!(
            operation["responses"]["409"]["content"][PROBLEM_JSON]["schema"]["$ref"]
                .as_str()
                .is_some_and(|target| target.ends_with("/ProblemBody"))
        );
        let push = &document["paths"]["/api/v1/admin/push"]["post"];
        assert_eq!(push["security"][0]["admin_token"], serde_json::json!([]));
        let register = &document["paths"]["/api/v1/auth/register"]["post"];
        assert!(
            register.get("security").is_none(),
            "registering needs no token"
        );
        let health = &document["paths"]["/healthz"]["get"];
        assert!(health["responses"]["500"].is_null());
        let members = &document["paths"]["/api/v1/groups/{id}/members"]["get"];
        let parameters: Vec<&str> = members["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert_eq!(parameters, ["id", "after", "limit"]);
    }

    #[test]
    fn every_error_response_has_the_problem_body_and_every_token_a_401() {
        let document = document_json();
        let paths = document["paths"].as_object().expect("paths");
        let mut checked = 0;
        for (path, item) in paths
            .iter()
            .filter(|(path, _)| path.starts_with("/api/v1/"))
        {
            for (method, operation) in item.as_object().expect("a path item") {
                let responses = operation["responses"].as_object().expect("responses");
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"][PROBLEM_JSON]["schema"]["$ref"];
                        assert!(
                            schema
                                .as_str()
                                .is_some_and(|target| target.ends_with("/ProblemBody")),
                            "{method} {path} {status} has no problem body"
                        );
                        checked += 1;
                    }
                }
                let takes_token = operation["security"]
                    .as_array()
                    .is_some_and(|needs| needs.iter().any(|need| need.get("bearer").is_some()));
                if takes_token {
                    assert!(
                        responses.contains_key("401"),
                        "{method} {path} lacks its 401"
                    );
                }
            }
        }
        assert!(checked > 100, "only {checked} error responses found");
    }

    #[test]
    fn ids_are_strings_and_codes_are_every_error_code() {
        let document = document_json();
        let schemas = &document["components"]["schemas"];
        for (schema, field) in [
            ("UserView", "id"),
            ("GroupView", "id"),
            ("GroupView", "owner"),
            ("RequestView", "from"),
            ("Accepted", "id"),
            ("PushAccepted", "id"),
            ("MessageView", "id"),
            ("MessageView", "from"),
        ] {
            assert_eq!(
                schemas[schema]["properties"][field]["type"], "string",
                "{schema}.{field}"
            );
        }
        let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
            .as_array()
            .expect("the code enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let every: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(codes, every);
    }

    #[test]
    fn the_message_schema_matches_the_message_frame() {
        let frame = MessageFrame {
            object: "user:1".into(),
            seq: 1,
            id: "2".into(),
            from: "3".into(),
            to: "user:1".into(),
            kind: "text".into(),
            body: "hi".into(),
            ts: 4,
            cid: "c1".into(),
            refers_to: Some("5".into()),
            reply_to: Some(ReplyRef::default()),
            edited_at: Some(6),
            reactions: vec![ReactionCount::default()],
        };
        let serialised = serde_json::to_value(&frame).expect("a frame serialises");
        let frame_keys: BTreeSet<&String> =
            serialised.as_object().expect("an object").keys().collect();
        let document = document_json();
        let schema = &document["components"]["schemas"]["MessageView"];
        let schema_keys: BTreeSet<&String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        assert_eq!(frame_keys, schema_keys);
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for optional in ["cid", "ref", "reply_to", "edited_at", "reactions"] {
            assert!(
                !required.contains(optional),
                "{optional} is left out when empty"
            );
        }
    }

    #[tokio::test]
    async fn the_document_and_the_swagger_ui_are_served() {
        let router = crate::router(test_state().await);

        let (status, content_type, body) = get(&router, "/api/v1/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let served: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(served, document_json());

        let (status, content_type, body) = get(&router, "/api/docs").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = String::from_utf8(body).expect("UTF-8");
        assert!(page.contains("<base href=\"/api/docs/\" />"), "{page}");
        assert!(page.contains("swagger-ui-bundle.js"), "{page}");
        assert!(
            !page.contains("https://"),
            "the page loads nothing from elsewhere"
        );

        let mut assets = BTreeMap::new();
        for asset in [
            "swagger-ui-bundle.js",
            "swagger-ui-standalone-preset.js",
            "swagger-initializer.js",
            "swagger-ui.css",
            "index.css",
        ] {
            let (status, content_type, body) = get(&router, &format!("/api/docs/{asset}")).await;
            assert_eq!(status, StatusCode::OK, "{asset}");
            assert!(!body.is_empty(), "{asset}");
            assets.insert(asset, (content_type, body));
        }
        let (content_type, initializer) = &assets["swagger-initializer.js"];
        assert!(content_type.contains("javascript"), "{content_type}");
        assert!(String::from_utf8_lossy(initializer).contains("/api/v1/openapi.json"));
        assert!(assets["swagger-ui.css"].0.starts_with("text/css"));

        let (status, content_type, _) = get(&router, "/api/docs/no-such-file.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, PROBLEM_JSON);
    }

    #[tokio::test]
    async fn problem_responses_keep_their_shape() {
        let router = crate::router(test_state().await);
        let (status, content_type, body) = get(&router, "/api/v1/users/x").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(content_type, PROBLEM_JSON);
        let problem: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(problem["code"], "unauthorized");
        assert_eq!(problem["title"], "unauthorized");
        assert_eq!(problem["status"], 401);
        assert_eq!(problem["type"], "https://natter.dev/problems/unauthorized");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty())
        );
        assert_eq!(problem.as_object().map(|fields| fields.len()), Some(5));
    }
}
