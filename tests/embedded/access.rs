//! Who may and who may not, endpoint by endpoint: every documented endpoint refuses callers
//! without a valid credential, and each endpoint that predates the social features answers
//! the other party, a stranger and a non-member as it should (the newer ones are checked
//! party by party in `social`).

use natter::client::Session;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{Harness, call_with_token as call};

/// The admin credential these tests configure.
const ADMIN_TOKEN: &str = "access-test-admin-token-0123456789";

/// A call as `who` that must answer `status` (and `code`, for a problem).
async fn expect(
    harness: &Harness,
    method: Method,
    path: &str,
    who: &Session,
    body: Option<Value>,
    status: u16,
    code: Option<&str>,
) -> Value {
    let (got, reply) = call(harness, method.clone(), path, Some(&who.access_token), body).await;
    assert_eq!(got, status, "{method} {path} as {}: {reply}", who.user_id);
    if let Some(code) = code {
        assert_eq!(reply["code"], code, "{method} {path}: {reply}");
    }
    reply
}

/// `path` with its parameters filled with values that name nothing in particular.
fn concrete(path: &str) -> String {
    path.replace("{kind}", "user")
        .split('/')
        .map(|part| {
            if part.starts_with('{') {
                "1".to_string()
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_endpoint_refuses_callers_without_a_valid_credential() {
    let harness = Harness::start_with(|config| config.api.admin_token = ADMIN_TOKEN.into()).await;
    let user = harness.user("alice").await;
    let (status, document) = call(&harness, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = document["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|requirement| requirement.as_object())
                .flat_map(|requirement| requirement.keys().map(String::as_str))
                .collect();
            if schemes.is_empty() {
                continue;
            }
            let target = concrete(path);
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let (status, reply) = call(&harness, method.clone(), &target, None, body.clone()).await;
            assert_eq!(
                (status, reply["code"].as_str()),
                (401, Some("unauthorized")),
                "{method} {target} with no credential: {reply}"
            );
            let (status, reply) = call(
                &harness,
                method.clone(),
                &target,
                Some("forged.token.here"),
                body.clone(),
            )
            .await;
            assert_eq!(
                status, 401,
                "{method} {target} with a forged credential: {reply}"
            );
            if schemes.contains(&"admin_token") {
                // A user's own access token is not the admin credential.
                let (status, reply) = call(
                    &harness,
                    method.clone(),
                    &target,
                    Some(&user.access_token),
                    body,
                )
                .await;
                assert_eq!(
                    status, 403,
                    "{method} {target} with a user's token: {reply}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 29, "only {checked} operations checked");
}

#[tokio::test]
async fn friendship_endpoints_answer_only_the_parties() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let dave = harness.user("dave").await;

    // Dave asks Ada. Only Ada may accept or turn it down; only Dave may withdraw it.
    let request = json!({"user_id": ada.user_id.to_string(), "note": "hi"});
    expect(
        &harness,
        Method::POST,
        "/api/v1/friends/requests",
        &dave,
        Some(request),
        201,
        None,
    )
    .await;
    for stranger in [&bob, &carol] {
        let accept = format!("/api/v1/friends/requests/{}/accept", dave.user_id);
        let reject = format!("/api/v1/friends/requests/{}/reject", dave.user_id);
        let cancel = format!("/api/v1/friends/requests/{}", ada.user_id);
        for (method, path) in [
            (Method::POST, accept),
            (Method::POST, reject),
            (Method::DELETE, cancel),
        ] {
            expect(
                &harness,
                method,
                &path,
                stranger,
                None,
                404,
                Some("not_found"),
            )
            .await;
        }
    }
    let lists = expect(
        &harness,
        Method::GET,
        "/api/v1/friends/requests",
        &ada,
        None,
        200,
        None,
    )
    .await;
    assert_eq!(
        lists["incoming"].as_array().map(Vec::len),
        Some(1),
        "{lists}"
    );
    let carols = expect(
        &harness,
        Method::GET,
        "/api/v1/friends/requests",
        &carol,
        None,
        200,
        None,
    )
    .await;
    assert_eq!(carols["incoming"], json!([]), "a stranger sees none of it");
    assert_eq!(carols["outgoing"], json!([]));

    // A stranger cannot end someone else's friendship; the friends still are.
    let remove = format!("/api/v1/friends/{}", bob.user_id);
    expect(
        &harness,
        Method::DELETE,
        &remove,
        &carol,
        None,
        404,
        Some("not_found"),
    )
    .await;
    let friends = expect(
        &harness,
        Method::GET,
        "/api/v1/friends",
        &ada,
        None,
        200,
        None,
    )
    .await;
    assert_eq!(
        friends["friends"][0]["user"]["id"],
        bob.user_id.to_string(),
        "{friends}"
    );
    let carols = expect(
        &harness,
        Method::GET,
        "/api/v1/friends",
        &carol,
        None,
        200,
        None,
    )
    .await;
    assert_eq!(carols["friends"], json!([]));

    // Only friends send one to one; anyone signed in reads a public profile; a profile
    // change touches only the caller.
    let to_bob =
        json!({"cid": "c1", "to": format!("user:{}", bob.user_id), "kind": "text", "body": "hi"});
    expect(
        &harness,
        Method::POST,
        "/api/v1/messages",
        &carol,
        Some(to_bob.clone()),
        403,
        Some("not_friends"),
    )
    .await;
    expect(
        &harness,
        Method::POST,
        "/api/v1/messages",
        &ada,
        Some(to_bob),
        201,
        None,
    )
    .await;
    let profile = format!("/api/v1/users/{}", ada.user_id);
    expect(&harness, Method::GET, &profile, &carol, None, 200, None).await;
    expect(
        &harness,
        Method::PATCH,
        "/api/v1/me",
        &carol,
        Some(json!({"nickname": "Carol C"})),
        200,
        None,
    )
    .await;
    let ada_now = expect(&harness, Method::GET, &profile, &bob, None, 200, None).await;
    assert_eq!(ada_now["nickname"], "ada");
}

#[tokio::test]
async fn group_and_history_endpoints_answer_members_and_refuse_others() {
    let harness = Harness::start_with(|config| config.api.admin_token = ADMIN_TOKEN.into()).await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let group = expect(
        &harness,
        Method::POST,
        "/api/v1/groups",
        &ada,
        Some(json!({"name": "climbers"})),
        201,
        None,
    )
    .await;
    let group_id = group["id"].as_str().expect("an id").to_string();
    expect(
        &harness,
        Method::POST,
        &format!("/api/v1/groups/{group_id}/join"),
        &bob,
        None,
        200,
        None,
    )
    .await;
    let to_group = |cid: &str| json!({"cid": cid, "to": format!("group:{group_id}"), "kind": "text", "body": "hello"});
    expect(
        &harness,
        Method::POST,
        "/api/v1/messages",
        &bob,
        Some(to_group("g1")),
        201,
        None,
    )
    .await;
    let to_ada =
        json!({"cid": "d1", "to": format!("user:{}", ada.user_id), "kind": "text", "body": "psst"});
    expect(
        &harness,
        Method::POST,
        "/api/v1/messages",
        &bob,
        Some(to_ada),
        201,
        None,
    )
    .await;

    // A non-member may not send to, read or list the group; a member may.
    expect(
        &harness,
        Method::POST,
        "/api/v1/messages",
        &carol,
        Some(to_group("g2")),
        403,
        Some("not_member"),
    )
    .await;
    let history = format!("/api/v1/conversations/group/{group_id}/messages");
    let members = format!("/api/v1/groups/{group_id}/members");
    for path in [&history, &members] {
        expect(
            &harness,
            Method::GET,
            path,
            &carol,
            None,
            403,
            Some("not_member"),
        )
        .await;
        expect(&harness, Method::GET, path, &bob, None, 200, None).await;
    }
    // The owner may not leave; a non-member's leave changes nothing; the group is not in a
    // stranger's list.
    let leave = format!("/api/v1/groups/{group_id}/leave");
    expect(
        &harness,
        Method::POST,
        &leave,
        &ada,
        None,
        403,
        Some("forbidden"),
    )
    .await;
    let left = expect(&harness, Method::POST, &leave, &carol, None, 200, None).await;
    assert_eq!(left["changed"], false);
    let carols = expect(
        &harness,
        Method::GET,
        "/api/v1/groups",
        &carol,
        None,
        200,
        None,
    )
    .await;
    assert_eq!(carols["groups"], json!([]));

    // One-to-one history: each side reads its own inbox copies; a stranger's view of the
    // same conversation is empty.
    let with_ada = format!("/api/v1/conversations/user/{}/messages", ada.user_id);
    let with_bob = format!("/api/v1/conversations/user/{}/messages", bob.user_id);
    let bobs = expect(&harness, Method::GET, &with_ada, &bob, None, 200, None).await;
    let adas = expect(&harness, Method::GET, &with_bob, &ada, None, 200, None).await;
    assert_eq!(bobs["messages"][0]["body"], "psst");
    assert_eq!(adas["messages"][0]["body"], "psst");
    let carols = expect(&harness, Method::GET, &with_ada, &carol, None, 200, None).await;
    assert_eq!(carols["messages"], json!([]), "{carols}");

    // The admin API takes only the admin credential.
    let push = json!({"to": "all", "body": "maintenance"});
    let (status, reply) = call(
        &harness,
        Method::POST,
        "/api/v1/admin/push",
        Some(&ada.access_token),
        Some(push.clone()),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = call(
        &harness,
        Method::POST,
        "/api/v1/admin/push",
        Some(ADMIN_TOKEN),
        Some(push),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
}
