//! Registration, login, refresh and bearer tokens over REST.

use natter::client::Reply;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, PASSWORD};

async fn post(harness: &Harness, path: &str, body: Value) -> Reply {
    harness
        .api
        .call(Method::POST, path, None, Some(body))
        .await
        .expect("request")
}

fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.code(), Some(code), "{}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["status"], status);
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty())
    );
}

#[tokio::test]
async fn register_login_and_refresh() {
    let harness = Harness::start().await;
    let registered = post(
        &harness,
        "/api/v1/auth/register",
        json!({"username": "Alice", "password": PASSWORD}),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    assert_eq!(registered.body["user"]["username"], "alice");
    assert_eq!(registered.body["token_type"], "Bearer");

    let session = harness.api.login("ALICE", PASSWORD).await.expect("login");
    let me = harness
        .api
        .call(Method::GET, "/api/v1/me", Some(&session.access_token), None)
        .await
        .unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], session.user_id.to_string());

    let refreshed = post(
        &harness,
        "/api/v1/auth/refresh",
        json!({"refresh_token": session.refresh_token}),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_ne!(
        refreshed.body["refresh_token"],
        session.refresh_token.as_str()
    );
    // A refresh token works once.
    let replayed = post(
        &harness,
        "/api/v1/auth/refresh",
        json!({"refresh_token": session.refresh_token}),
    )
    .await;
    assert_problem(&replayed, 401, "invalid_token");
}

#[tokio::test]
async fn bad_registrations_and_logins_get_problem_responses() {
    let harness = Harness::start().await;
    harness.user("bob").await;
    let register = |username: &str, password: &str| {
        post(
            &harness,
            "/api/v1/auth/register",
            json!({"username": username, "password": password}),
        )
    };
    assert_problem(&register("BOB", PASSWORD).await, 409, "username_taken");
    assert_problem(&register("carol", "").await, 422, "weak_password");
    assert_problem(&register("carol", "short").await, 422, "weak_password");
    assert_problem(&register("carol", "password1").await, 422, "weak_password");
    assert_problem(
        &register("carol", "carol-rules-1").await,
        422,
        "weak_password",
    );
    assert_problem(&register("x", PASSWORD).await, 400, "invalid_input");
    assert_problem(&register("bad name", PASSWORD).await, 400, "invalid_input");
    // A trailing space is a character no name may have, not another spelling of "bob".
    assert_problem(&register("bob ", PASSWORD).await, 400, "invalid_input");

    let wrong = post(
        &harness,
        "/api/v1/auth/login",
        json!({"username": "bob", "password": "not the password"}),
    )
    .await;
    assert_problem(&wrong, 401, "bad_credentials");
    let nobody = post(
        &harness,
        "/api/v1/auth/login",
        json!({"username": "nobody", "password": PASSWORD}),
    )
    .await;
    assert_problem(&nobody, 401, "bad_credentials");
    // A password longer than any that was ever accepted is bad input, not a wrong guess.
    let overlong = post(
        &harness,
        "/api/v1/auth/login",
        json!({"username": "bob", "password": "x".repeat(60_000)}),
    )
    .await;
    assert_problem(&overlong, 400, "invalid_input");

    // Malformed and incomplete bodies.
    let malformed = harness
        .api
        .call(Method::POST, "/api/v1/auth/login", None, None)
        .await
        .unwrap();
    assert_eq!(malformed.content_type, "application/problem+json");
    assert!(
        matches!(malformed.code(), Some("bad_frame")),
        "{}",
        malformed.body
    );
    // A body of the wrong shape is `bad_frame`, as on the WebSocket.
    let missing = post(&harness, "/api/v1/auth/login", json!({"username": "bob"})).await;
    assert_problem(&missing, 400, "bad_frame");
    let unknown_field = post(
        &harness,
        "/api/v1/auth/login",
        json!({"username": "bob", "password": PASSWORD, "remember": true}),
    )
    .await;
    assert_problem(&unknown_field, 400, "bad_frame");
    let array = post(&harness, "/api/v1/auth/login", json!(["bob", PASSWORD])).await;
    assert_problem(&array, 400, "bad_frame");
    // A known endpoint asked with a method it does not take.
    let wrong_method = harness
        .api
        .call(Method::DELETE, "/api/v1/auth/login", None, None)
        .await
        .unwrap();
    assert_problem(&wrong_method, 405, "method_not_allowed");
    let unknown = harness
        .api
        .call(Method::GET, "/api/v1/nothing", None, None)
        .await
        .unwrap();
    assert_problem(&unknown, 404, "not_found");
}

#[tokio::test]
async fn endpoints_refuse_missing_wrong_and_expired_tokens() {
    let harness = Harness::start().await;
    let session = harness.user("dave").await;
    let harness = &harness;
    let call = |token: Option<String>| async move {
        harness
            .api
            .call(Method::GET, "/api/v1/friends", token.as_deref(), None)
            .await
            .unwrap()
    };
    assert_problem(&call(None).await, 401, "unauthorized");
    assert_problem(
        &call(Some("not-a-token".into())).await,
        401,
        "invalid_token",
    );
    let tokens = &harness.system.as_ref().unwrap().tokens;
    let expired = tokens.issue_expired(session.user_id, 10).unwrap();
    assert_problem(&call(Some(expired)).await, 401, "token_expired");
    let forged = natter_proto::token::TokenKeys::new(b"some other secret")
        .issue(session.user_id, 60)
        .unwrap();
    assert_problem(&call(Some(forged)).await, 401, "invalid_token");
    assert_eq!(call(Some(session.access_token)).await.status, 200);
}
