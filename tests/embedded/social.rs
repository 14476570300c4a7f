//! The social features end to end: search, uploads and who may see them, group management,
//! online counts, presence, friend events, the conversation list with read cursors, recall.

use std::io::Cursor;
use std::time::Duration;

use natter::client::{Session, WsClient};
use natter_proto::frame::{ClientFrame, ServerFrame};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::http::Method;

use crate::harness::{
    Harness, WAIT, call, conversations, entry, event_where, expect, expect_silence, next_error,
    next_message, no_event_where, refused, send_text, sync,
};

/// Presence grace and group-count interval short enough to keep the tests quick.
async fn fast_harness() -> Harness {
    Harness::start_with(|config| {
        config.logic.presence_grace_ms = 300;
        config.logic.group_online_interval_ms = 200;
    })
    .await
}

/// A PNG of `width` x `height` pixels (coarse blocks: not blank, yet it compresses well).
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x / 64 * 16) as u8, (y / 64 * 16) as u8, 128])
    });
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encode a PNG");
    bytes.into_inner()
}

/// `POST /api/v1/uploads` with `bytes` as the multipart field `field` (built by hand).
pub(crate) async fn upload_as(
    harness: &Harness,
    who: Option<&Session>,
    field: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let token = who.map(|who| who.access_token.as_str());
    upload_to(&harness.api_base(), token, field, bytes).await
}

/// Uploads `bytes` as the multipart field `field` to the API at `base`, with `token` if any.
pub(crate) async fn upload_to(
    base: &str,
    token: Option<&str>,
    field: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let boundary = "natter-test-boundary-7d1c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"picture.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = reqwest::Client::new()
        .post(format!("{base}/api/v1/uploads"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Uploads an image that must be accepted; returns its id.
async fn upload(harness: &Harness, who: &Session, bytes: &[u8]) -> String {
    let (status, view) = upload_as(harness, Some(who), "file", bytes).await;
    assert_eq!(status, 201, "upload: {view}");
    view["id"].as_str().expect("an upload id").to_string()
}

/// `GET <path>` (a `/media/...` path) as `who`: status, content type, bytes.
async fn fetch(harness: &Harness, path: &str, who: Option<&Session>) -> (u16, String, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", harness.api_base()));
    if let Some(who) = who {
        request = request.bearer_auth(&who.access_token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response.bytes().await.expect("a body").to_vec();
    (status, content_type, bytes)
}

/// The problem code of a media response that is not an image.
fn problem_code(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|problem| problem["code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Sends a message of any kind over the socket; the `sent` frame's message id, or the
/// refusal's code.
async fn send_kind(
    socket: &mut WsClient,
    cid: &str,
    to: &str,
    kind: &str,
    body: &str,
) -> Result<String, String> {
    socket
        .send(&ClientFrame::Send {
            cid: cid.into(),
            to: to.into(),
            kind: kind.into(),
            body: body.into(),
            reply_to: None,
        })
        .await
        .expect("send");
    loop {
        match socket.next(WAIT).await.expect("an answer") {
            Some(ServerFrame::Sent { cid: got, id, .. }) if got == cid => return Ok(id),
            Some(ServerFrame::Error { code, cid: got, .. }) => {
                assert_eq!(got.as_deref(), Some(cid), "the refusal names the send");
                return Err(code.as_str().to_string());
            }
            Some(_) => {}
            None => panic!("closed while sending {cid}"),
        }
    }
}

/// Creates a group owned by `owner` that `members` join; returns its id.
async fn group_with(
    harness: &Harness,
    owner: &Session,
    name: &str,
    members: &[&Session],
) -> String {
    let created = expect(
        harness,
        Method::POST,
        "/api/v1/groups",
        Some(owner),
        Some(json!({ "name": name })),
        201,
    )
    .await;
    let group = created["id"].as_str().expect("a group id").to_string();
    for member in members {
        let path = format!("/api/v1/groups/{group}/join");
        expect(harness, Method::POST, &path, Some(member), None, 200).await;
    }
    group
}

/// The `id`s of a list of views under `key`.
fn ids(page: &Value, key: &str) -> Vec<String> {
    page[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn search_finds_users_and_groups_by_prefix_in_any_case() {
    let harness = Harness::start().await;
    let annika = harness.user("annika").await;
    let anneliese = harness.user("anneliese").await;
    let bob = harness.user("bob").await;
    let carl = harness.user("carl").await;
    expect(
        &harness,
        Method::PATCH,
        "/api/v1/me",
        Some(&bob),
        Some(json!({"nickname": "Annie B"})),
        200,
    )
    .await;

    // Username or nickname prefix, any case, ascending by id, paged.
    let found = expect(
        &harness,
        Method::GET,
        "/api/v1/users/search?q=ANN",
        Some(&carl),
        None,
        200,
    )
    .await;
    let mut expected = vec![
        annika.user_id.to_string(),
        anneliese.user_id.to_string(),
        bob.user_id.to_string(),
    ];
    expected.sort_by_key(|id| id.parse::<i64>().unwrap_or_default());
    assert_eq!(ids(&found, "users"), expected);
    assert!(found["next_after"].is_null(), "{found}");
    let bobs = found["users"]
        .as_array()
        .and_then(|users| users.iter().find(|user| user["username"] == "bob"))
        .expect("bob by nickname");
    assert_eq!(bobs["nickname"], "Annie B");

    let first = expect(
        &harness,
        Method::GET,
        "/api/v1/users/search?q=ann&limit=2",
        Some(&carl),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&first, "users"), expected[..2]);
    let after = first["next_after"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = expect(
        &harness,
        Method::GET,
        &format!("/api/v1/users/search?q=ann&limit=2&after={after}"),
        Some(&carl),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&rest, "users"), expected[2..]);
    assert!(rest["next_after"].is_null(), "{rest}");

    let narrower = expect(
        &harness,
        Method::GET,
        "/api/v1/users/search?q=annE",
        Some(&carl),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&narrower, "users"), [anneliese.user_id.to_string()]);
    let nobody = expect(
        &harness,
        Method::GET,
        "/api/v1/users/search?q=zz",
        Some(&carl),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&nobody, "users"), Vec::<String>::new());

    // Groups by name prefix; anyone signed in may search, members or not.
    let climbers = group_with(&harness, &annika, "Climbers", &[]).await;
    let club = group_with(&harness, &bob, "climbing club", &[]).await;
    let chess = group_with(&harness, &bob, "Chess", &[]).await;
    let groups = expect(
        &harness,
        Method::GET,
        "/api/v1/groups/search?q=CLIMB",
        Some(&carl),
        None,
        200,
    )
    .await;
    let mut climbing = vec![climbers.clone(), club];
    climbing.sort_by_key(|id| id.parse::<i64>().unwrap_or_default());
    assert_eq!(ids(&groups, "groups"), climbing);
    let one = expect(
        &harness,
        Method::GET,
        "/api/v1/groups/search?q=chess",
        Some(&annika),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&one, "groups"), [chess]);
    assert_eq!(one["groups"][0]["name"], "Chess");
    assert_eq!(one["groups"][0]["owner"], bob.user_id.to_string());

    // Bad queries and no token.
    for path in [
        "/api/v1/users/search?q=",
        "/api/v1/users/search",
        "/api/v1/users/search?q=%20%20",
        "/api/v1/groups/search?q=",
        "/api/v1/groups/search?q=ann&limit=0",
        "/api/v1/users/search?q=ann&after=abc",
    ] {
        refused(
            &harness,
            Method::GET,
            path,
            Some(&carl),
            None,
            400,
            "invalid_input",
        )
        .await;
    }
    let long = format!("/api/v1/users/search?q={}", "a".repeat(65));
    refused(
        &harness,
        Method::GET,
        &long,
        Some(&carl),
        None,
        400,
        "invalid_input",
    )
    .await;
    for path in ["/api/v1/users/search?q=ann", "/api/v1/groups/search?q=c"] {
        refused(&harness, Method::GET, path, None, None, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn uploads_are_judged_by_their_bytes_not_their_names() {
    let limit = 200_000;
    let harness = Harness::start_with(|config| config.api.max_upload_bytes = limit).await;
    let ada = harness.user("ada").await;
    let small = png(10, 10);
    // Judged by content, whatever the name and declared type say.
    let refusals: [(&str, Vec<u8>, u16, &str); 5] = [
        (
            "file",
            b"just some text, not a picture\n".to_vec(),
            415,
            "unsupported_media_type",
        ),
        ("file", Vec::new(), 415, "unsupported_media_type"),
        (
            "file",
            [
                b"\x89PNG\r\n\x1a\n".as_slice(),
                b"garbage garbage garbage garbage",
            ]
            .concat(),
            422,
            "corrupt_image",
        ),
        (
            "file",
            [b"\x89PNG\r\n\x1a\n".as_slice(), vec![0u8; limit].as_slice()].concat(),
            413,
            "frame_too_large",
        ),
        ("picture", small.clone(), 400, "invalid_input"),
    ];
    for (field, bytes, status, code) in refusals {
        let (got, problem) = upload_as(&harness, Some(&ada), field, &bytes).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{problem}"
        );
    }
    let (status, problem) = upload_as(&harness, None, "file", &small).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let not_multipart = harness
        .api
        .call(
            Method::POST,
            "/api/v1/uploads",
            Some(&ada.access_token),
            Some(json!({"file": "x"})),
        )
        .await
        .expect("the API answers");
    assert_eq!(
        (not_multipart.status, not_multipart.code()),
        (400, Some("bad_frame")),
        "{}",
        not_multipart.body
    );
}

#[tokio::test]
async fn uploads_are_measured_and_served_to_their_owner() {
    let limit = 200_000;
    let harness = Harness::start_with(|config| config.api.max_upload_bytes = limit).await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;

    let small = png(10, 10);
    // Accepted images.
    let large = png(1200, 800);
    assert!(large.len() < limit, "the test image fits the limit");
    let (status, view) = upload_as(&harness, Some(&ada), "file", &large).await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_str().expect("an id").to_string();
    assert_eq!(view["content_type"], "image/png");
    assert_eq!(
        (view["width"].as_u64(), view["height"].as_u64()),
        (Some(1200), Some(800))
    );
    assert_eq!(view["size"].as_u64(), Some(large.len() as u64));
    assert_eq!(view["url"], format!("/media/{id}"));
    assert_eq!(view["thumbnail_url"], format!("/media/{id}?size=thumb"));

    let (status, small_view) = upload_as(&harness, Some(&ada), "file", &small).await;
    assert_eq!(status, 201, "{small_view}");
    assert!(small_view["thumbnail_url"].is_null(), "{small_view}");
    let small_id = small_view["id"].as_str().expect("an id").to_string();
    assert_ne!(small_id, id);

    // The owner gets the bytes back, and a thumbnail that keeps the aspect ratio.
    let (status, content_type, bytes) = fetch(&harness, &format!("/media/{id}"), Some(&ada)).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert_eq!(bytes, large);
    let (status, content_type, thumb) =
        fetch(&harness, &format!("/media/{id}?size=thumb"), Some(&ada)).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    let thumb = image::load_from_memory(&thumb).expect("the thumbnail decodes");
    assert_eq!(thumb.width(), 320);
    assert!((213..=214).contains(&thumb.height()), "{}", thumb.height());
    let (status, _, bytes) = fetch(
        &harness,
        &format!("/media/{small_id}?size=thumb"),
        Some(&ada),
    )
    .await;
    assert_eq!(
        (status, bytes),
        (200, small.clone()),
        "no thumbnail: the original"
    );

    // Someone else, no token, no such upload, not an id.
    let (status, _, body) = fetch(&harness, &format!("/media/{id}"), Some(&bob)).await;
    assert_eq!((status, problem_code(&body).as_str()), (404, "not_found"));
    let (status, _, body) = fetch(&harness, &format!("/media/{id}?size=thumb"), Some(&bob)).await;
    assert_eq!((status, problem_code(&body).as_str()), (404, "not_found"));
    let (status, _, body) = fetch(&harness, &format!("/media/{id}"), None).await;
    assert_eq!(
        (status, problem_code(&body).as_str()),
        (401, "unauthorized")
    );
    let (status, _, body) = fetch(&harness, "/media/4242", Some(&ada)).await;
    assert_eq!((status, problem_code(&body).as_str()), (404, "not_found"));
    let (status, _, body) = fetch(&harness, "/media/abc", Some(&ada)).await;
    assert_eq!(
        (status, problem_code(&body).as_str()),
        (400, "invalid_input")
    );
}

#[tokio::test]
async fn images_are_shared_by_sending_them_and_avatars_with_everyone() {
    let harness = Harness::start().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;

    let picture = upload(&harness, &ada, &png(1200, 800)).await;
    let media = format!("/media/{picture}");
    let thumb = format!("/media/{picture}?size=thumb");
    let (status, _, _) = fetch(&harness, &media, Some(&bob)).await;
    assert_eq!(status, 404, "not shared yet");

    let to_bob = format!("user:{}", bob.user_id);
    let sent = send_kind(&mut ada_socket, "img1", &to_bob, "image", &picture).await;
    let message_id = sent.expect("the image is sent");
    let received = next_message(&mut bob_socket).await;
    assert_eq!(
        (
            received.kind.as_str(),
            received.body.as_str(),
            received.id.as_str()
        ),
        ("image", picture.as_str(), message_id.as_str())
    );
    for path in [&media, &thumb] {
        let (status, content_type, _) = fetch(&harness, path, Some(&bob)).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/png"),
            "{path}"
        );
        let (status, _, body) = fetch(&harness, path, Some(&carol)).await;
        assert_eq!(
            (status, problem_code(&body).as_str()),
            (404, "not_found"),
            "{path}"
        );
    }

    // Someone else's upload, or none at all, cannot be sent.
    let to_ada = format!("user:{}", ada.user_id);
    let stolen = send_kind(&mut bob_socket, "img2", &to_ada, "image", &picture).await;
    assert_eq!(stolen, Err("not_found".to_string()));
    let missing = send_kind(&mut bob_socket, "img3", &to_ada, "image", "4242").await;
    assert_eq!(missing, Err("not_found".to_string()));
    let named = send_kind(&mut bob_socket, "img4", &to_ada, "image", "cat.png").await;
    assert_eq!(named, Err("invalid_input".to_string()));
    refused(
        &harness,
        Method::POST,
        "/api/v1/messages",
        Some(&bob),
        Some(json!({"cid": "img5", "to": to_ada, "kind": "image", "body": picture})),
        404,
        "not_found",
    )
    .await;
    // Nothing of Bob's refused sends reaches Ada (her own image's echo may still arrive).
    while let Ok(Some(frame)) = ada_socket.next(Duration::from_millis(300)).await {
        if let ServerFrame::Msg(message) = frame {
            assert_eq!(message.from, ada.user_id.to_string(), "only her own echo");
        }
    }

    // A group image: members may see it, others may not.
    let dave = harness.user("dave").await;
    let group = group_with(&harness, &ada, "pictures", &[&dave]).await;
    let group_picture = upload(&harness, &ada, &png(20, 20)).await;
    let sent = send_kind(
        &mut ada_socket,
        "img6",
        &format!("group:{group}"),
        "image",
        &group_picture,
    )
    .await;
    assert!(sent.is_ok(), "{sent:?}");
    let group_media = format!("/media/{group_picture}");
    assert_eq!(fetch(&harness, &group_media, Some(&dave)).await.0, 200);
    assert_eq!(fetch(&harness, &group_media, Some(&carol)).await.0, 404);
    assert_eq!(fetch(&harness, &group_media, Some(&bob)).await.0, 404);

    // An avatar is for everyone signed in, once set; only its owner may set it.
    let face = upload(&harness, &carol, &png(64, 64)).await;
    let face_media = format!("/media/{face}");
    assert_eq!(fetch(&harness, &face_media, Some(&ada)).await.0, 404);
    refused(
        &harness,
        Method::PATCH,
        "/api/v1/me",
        Some(&ada),
        Some(json!({"avatar": face})),
        404,
        "not_found",
    )
    .await;
    assert_eq!(fetch(&harness, &face_media, Some(&ada)).await.0, 404);
    let me = expect(
        &harness,
        Method::PATCH,
        "/api/v1/me",
        Some(&carol),
        Some(json!({"avatar": face})),
        200,
    )
    .await;
    assert_eq!(me["avatar"], face.as_str());
    let seen = expect(
        &harness,
        Method::GET,
        &format!("/api/v1/users/{}", carol.user_id),
        Some(&bob),
        None,
        200,
    )
    .await;
    assert_eq!(seen["avatar"], face.as_str());
    for viewer in [&ada, &bob, &dave] {
        let (status, content_type, _) = fetch(&harness, &face_media, Some(viewer)).await;
        assert_eq!((status, content_type.as_str()), (200, "image/png"));
    }
    assert_eq!(fetch(&harness, &face_media, None).await.0, 401);
}

#[tokio::test]
async fn group_owners_rename_remove_members_and_disband() {
    let harness = fast_harness().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let dave = harness.user("dave").await;
    let group = group_with(&harness, &ada, "climbers", &[&bob, &carol]).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let (mut dave_socket, _) = harness.connect_synced(&dave).await;
    let path = format!("/api/v1/groups/{group}");
    let updated = |frame: &ServerFrame| matches!(frame, ServerFrame::GroupUpdated { .. });
    let removed = |frame: &ServerFrame| matches!(frame, ServerFrame::GroupRemoved { .. });

    // Only the owner may change the group.
    let rename = Some(json!({"name": "hijacked"}));
    for who in [&bob, &dave] {
        refused(
            &harness,
            Method::PATCH,
            &path,
            Some(who),
            rename.clone(),
            403,
            "forbidden",
        )
        .await;
    }
    refused(
        &harness,
        Method::PATCH,
        &path,
        None,
        rename.clone(),
        401,
        "unauthorized",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        "/api/v1/groups/4242",
        Some(&ada),
        rename,
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        Some(json!({"name": ""})),
        400,
        "invalid_input",
    )
    .await;

    let renamed = expect(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        Some(json!({"name": "  boulderers "})),
        200,
    )
    .await;
    assert_eq!(renamed["group"]["name"], "boulderers");
    for socket in [&mut bob_socket, &mut carol_socket] {
        let frame = event_where(socket, "group_updated", updated).await;
        assert_eq!(
            frame,
            ServerFrame::GroupUpdated {
                group_id: group.clone(),
                name: "boulderers".into(),
                avatar: None,
                private: false,
            }
        );
    }
    no_event_where(
        &mut dave_socket,
        Duration::from_millis(500),
        "group news",
        |frame| updated(frame) || removed(frame),
    )
    .await;

    // Removing a member: only the owner, never the owner themself.
    let carols = format!("{path}/members/{}", carol.user_id);
    for who in [&bob, &dave] {
        refused(
            &harness,
            Method::DELETE,
            &carols,
            Some(who),
            None,
            403,
            "forbidden",
        )
        .await;
    }
    refused(
        &harness,
        Method::DELETE,
        &carols,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    let owners = format!("{path}/members/{}", ada.user_id);
    refused(
        &harness,
        Method::DELETE,
        &owners,
        Some(&ada),
        None,
        403,
        "forbidden",
    )
    .await;
    let gone = expect(&harness, Method::DELETE, &carols, Some(&ada), None, 200).await;
    assert_eq!(gone["changed"], true);
    let frame = event_where(&mut carol_socket, "group_removed", removed).await;
    assert_eq!(
        frame,
        ServerFrame::GroupRemoved {
            group_id: group.clone(),
            reason: "removed".into()
        }
    );
    let again = expect(&harness, Method::DELETE, &carols, Some(&ada), None, 200).await;
    assert_eq!(again["changed"], false);
    let to_group = format!("group:{group}");
    let carol_send = send_kind(&mut carol_socket, "c1", &to_group, "text", "still here?").await;
    assert_eq!(carol_send, Err("not_member".to_string()));
    let members = format!("{path}/members");
    refused(
        &harness,
        Method::GET,
        &members,
        Some(&carol),
        None,
        403,
        "not_member",
    )
    .await;
    let page = expect(&harness, Method::GET, &members, Some(&bob), None, 200).await;
    let mut expected = vec![ada.user_id.to_string(), bob.user_id.to_string()];
    expected.sort_by_key(|id| id.parse::<i64>().unwrap_or_default());
    assert_eq!(ids(&page, "members"), expected);
    no_event_where(
        &mut bob_socket,
        Duration::from_millis(300),
        "group_removed",
        removed,
    )
    .await;
    // Bob still gets group messages; Carol does not.
    let mut ada_socket = harness.connect_synced(&ada).await.0;
    assert!(
        send_kind(&mut ada_socket, "a1", &to_group, "text", "hi")
            .await
            .is_ok()
    );
    assert_eq!(next_message(&mut bob_socket).await.body, "hi");
    expect_silence(&mut carol_socket, Duration::from_millis(300)).await;

    // Disbanding: only the owner; every member hears of it, and no one is a member after.
    for who in [&bob, &dave, &carol] {
        refused(
            &harness,
            Method::DELETE,
            &path,
            Some(who),
            None,
            403,
            "forbidden",
        )
        .await;
    }
    refused(
        &harness,
        Method::DELETE,
        &path,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    expect(&harness, Method::DELETE, &path, Some(&ada), None, 200).await;
    let frame = event_where(&mut bob_socket, "group_removed", removed).await;
    assert_eq!(
        frame,
        ServerFrame::GroupRemoved {
            group_id: group.clone(),
            reason: "disbanded".into()
        }
    );
    no_event_where(
        &mut carol_socket,
        Duration::from_millis(300),
        "group_removed",
        removed,
    )
    .await;
    for who in [&ada, &bob] {
        refused(
            &harness,
            Method::GET,
            &members,
            Some(who),
            None,
            403,
            "not_member",
        )
        .await;
        let mine = expect(
            &harness,
            Method::GET,
            "/api/v1/groups",
            Some(who),
            None,
            200,
        )
        .await;
        assert_eq!(ids(&mine, "groups"), Vec::<String>::new());
    }
    let late = send_kind(&mut bob_socket, "b1", &to_group, "text", "anyone?").await;
    assert_eq!(late, Err("not_member".to_string()));
}

#[tokio::test]
async fn group_owners_set_an_avatar_of_their_own_that_members_hear_of() {
    let harness = fast_harness().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let dave = harness.user("dave").await;
    let group = group_with(&harness, &ada, "boulderers", &[&bob]).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut dave_socket, _) = harness.connect_synced(&dave).await;
    let path = format!("/api/v1/groups/{group}");
    let updated = |frame: &ServerFrame| matches!(frame, ServerFrame::GroupUpdated { .. });

    // An avatar the owner uploaded; not someone else's.
    let bobs_picture = upload(&harness, &bob, &png(16, 16)).await;
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        Some(json!({"avatar": bobs_picture})),
        404,
        "not_found",
    )
    .await;
    let picture = upload(&harness, &ada, &png(16, 16)).await;
    let changed = expect(
        &harness,
        Method::PATCH,
        &path,
        Some(&ada),
        Some(json!({"avatar": picture})),
        200,
    )
    .await;
    assert_eq!(changed["group"]["avatar"], picture.as_str());
    assert_eq!(changed["group"]["name"], "boulderers", "the name stays");
    let frame = event_where(&mut bob_socket, "group_updated", updated).await;
    assert_eq!(
        frame,
        ServerFrame::GroupUpdated {
            group_id: group.clone(),
            name: "boulderers".into(),
            avatar: Some(picture.clone()),
            private: false,
        }
    );
    let (status, _, _) = fetch(&harness, &format!("/media/{picture}"), Some(&dave)).await;
    assert_eq!(status, 200, "a group avatar is for everyone signed in");

    // A member may not, even with an upload of their own.
    refused(
        &harness,
        Method::PATCH,
        &path,
        Some(&bob),
        Some(json!({"avatar": bobs_picture})),
        403,
        "forbidden",
    )
    .await;
    no_event_where(
        &mut dave_socket,
        Duration::from_millis(300),
        "group_updated",
        updated,
    )
    .await;

    // A group can have its avatar from the start, but only one its creator uploaded.
    refused(
        &harness,
        Method::POST,
        "/api/v1/groups",
        Some(&ada),
        Some(json!({"name": "pictured", "avatar": bobs_picture})),
        404,
        "not_found",
    )
    .await;
    let created = expect(
        &harness,
        Method::POST,
        "/api/v1/groups",
        Some(&ada),
        Some(json!({"name": "pictured", "avatar": picture})),
        201,
    )
    .await;
    assert_eq!(created["avatar"], picture.as_str());
    let listed = expect(
        &harness,
        Method::GET,
        "/api/v1/groups",
        Some(&ada),
        None,
        200,
    )
    .await;
    let pictured = listed["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|group| group["name"] == "pictured")
        .cloned();
    assert_eq!(
        pictured.map(|group| group["avatar"].clone()),
        Some(json!(picture))
    );
}

/// `GET /api/v1/groups/{id}/online` as `who`, which must succeed.
async fn online_count(harness: &Harness, group: &str, who: &Session) -> u64 {
    let path = format!("/api/v1/groups/{group}/online");
    let view = expect(harness, Method::GET, &path, Some(who), None, 200).await;
    assert_eq!(view["group_id"], group);
    view["online"].as_u64().expect("a count")
}

/// Polls the online count until it is `want`, failing if it ever goes above `most`.
async fn online_becomes(harness: &Harness, group: &str, who: &Session, want: u64, most: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let count = online_count(harness, group, who).await;
        assert!(count <= most, "online {count}, more than {most}");
        if count == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "online stayed {count}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn group_online_counts_users_not_devices_for_members_only() {
    let harness = fast_harness().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let group = group_with(&harness, &ada, "climbers", &[&bob]).await;
    assert_eq!(online_count(&harness, &group, &ada).await, 0);

    let path = format!("/api/v1/groups/{group}/online");
    refused(
        &harness,
        Method::GET,
        &path,
        Some(&carol),
        None,
        403,
        "not_member",
    )
    .await;
    refused(
        &harness,
        Method::GET,
        &path,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    refused(
        &harness,
        Method::GET,
        "/api/v1/groups/abc/online",
        Some(&ada),
        None,
        400,
        "invalid_input",
    )
    .await;
    // A non-member's connection does not count.
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;

    // Two devices of one user count once.
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (ada_phone, _) = harness.connect_synced(&ada).await;
    let (ada_laptop, _) = harness.connect_synced(&ada).await;
    online_becomes(&harness, &group, &bob, 2, 2).await;
    let counted = |frame: &ServerFrame, want: u64| {
        matches!(frame, ServerFrame::GroupOnline { group_id, online }
            if *group_id == group && *online == want)
    };
    event_where(&mut bob_socket, "group_online 2", |frame| counted(frame, 2)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(online_count(&harness, &group, &ada).await, 2);

    // One of Ada's devices leaves: she is still online.
    ada_phone.close().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(online_count(&harness, &group, &bob).await, 2);
    // Her last one leaves: one member online, and Bob hears of it.
    ada_laptop.close().await;
    online_becomes(&harness, &group, &bob, 1, 2).await;
    event_where(&mut bob_socket, "group_online 1", |frame| counted(frame, 1)).await;
    no_event_where(
        &mut carol_socket,
        Duration::from_millis(500),
        "group_online",
        |frame| matches!(frame, ServerFrame::GroupOnline { .. }),
    )
    .await;
}

/// Whether `who`'s only friend is online, by their friend list.
async fn friend_online(harness: &Harness, who: &Session) -> Option<bool> {
    let list = expect(
        harness,
        Method::GET,
        "/api/v1/friends",
        Some(who),
        None,
        200,
    )
    .await;
    assert_eq!(list["friends"].as_array().map(Vec::len), Some(1), "{list}");
    list["friends"][0]["online"].as_bool()
}

#[tokio::test]
async fn friends_see_presence_from_first_and_last_connection() {
    // A grace long enough that a reconnect surely fits in it.
    let grace = Duration::from_millis(1500);
    let harness = Harness::start_with(|config| {
        config.logic.presence_grace_ms = grace.as_millis() as u64;
        config.logic.group_online_interval_ms = 200;
    })
    .await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let is_presence = |frame: &ServerFrame| matches!(frame, ServerFrame::Presence { .. });
    assert_eq!(friend_online(&harness, &bob).await, Some(false));

    let first = harness.connect(&ada).await;
    let frame = event_where(&mut bob_socket, "presence", is_presence).await;
    assert_eq!(
        frame,
        ServerFrame::Presence {
            user_id: ada.user_id.to_string(),
            online: true
        }
    );
    assert_eq!(friend_online(&harness, &bob).await, Some(true));
    // Ada sees Bob online in her list too.
    assert_eq!(friend_online(&harness, &ada).await, Some(true));

    // A second device comes and goes: nothing new for Bob.
    let second = harness.connect(&ada).await;
    second.close().await;
    no_event_where(&mut bob_socket, grace * 2, "presence", is_presence).await;
    assert_eq!(friend_online(&harness, &bob).await, Some(true));

    // A quick reconnect of the last device: no offline/online pair.
    first.close().await;
    let again = harness.connect(&ada).await;
    no_event_where(&mut bob_socket, grace * 2, "presence", is_presence).await;

    // The last device leaves for good: offline after the grace.
    again.close().await;
    let frame = event_where(&mut bob_socket, "presence", is_presence).await;
    assert_eq!(
        frame,
        ServerFrame::Presence {
            user_id: ada.user_id.to_string(),
            online: false
        }
    );
    assert_eq!(friend_online(&harness, &bob).await, Some(false));
    // Not a friend: Carol heard nothing of Ada.
    no_event_where(
        &mut carol_socket,
        Duration::from_millis(200),
        "presence",
        is_presence,
    )
    .await;
}

#[tokio::test]
async fn friend_requests_acceptances_and_removals_reach_the_other_side() {
    let harness = fast_harness().await;
    let ada = harness.user("ada").await;
    let bob = harness.user("bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let friendly = |frame: &ServerFrame| {
        matches!(
            frame,
            ServerFrame::FriendRequest { .. }
                | ServerFrame::FriendAccepted { .. }
                | ServerFrame::FriendRemoved { .. }
        )
    };
    let quiet = Duration::from_millis(300);

    expect(
        &harness,
        Method::POST,
        "/api/v1/friends/requests",
        Some(&ada),
        Some(json!({"user_id": bob.user_id.to_string(), "note": "we met at the crag"})),
        201,
    )
    .await;
    let frame = event_where(&mut bob_socket, "friend_request", friendly).await;
    assert_eq!(
        frame,
        ServerFrame::FriendRequest {
            from: ada.user_id.to_string(),
            note: "we met at the crag".into()
        }
    );
    no_event_where(&mut carol_socket, quiet, "friend events", friendly).await;
    no_event_where(&mut ada_socket, quiet, "friend events", friendly).await;

    // Only the one asked can accept.
    let accept = format!("/api/v1/friends/requests/{}/accept", ada.user_id);
    refused(
        &harness,
        Method::POST,
        &accept,
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::POST,
        &accept,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    expect(&harness, Method::POST, &accept, Some(&bob), None, 200).await;
    let frame = event_where(&mut ada_socket, "friend_accepted", friendly).await;
    assert_eq!(
        frame,
        ServerFrame::FriendAccepted {
            user_id: bob.user_id.to_string()
        }
    );

    // A stranger cannot remove the friendship; either side can.
    let remove_ada = format!("/api/v1/friends/{}", ada.user_id);
    refused(
        &harness,
        Method::DELETE,
        &remove_ada,
        Some(&carol),
        None,
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::DELETE,
        &remove_ada,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    no_event_where(&mut ada_socket, quiet, "friend events", friendly).await;
    let (status, _) = call(&harness, Method::DELETE, &remove_ada, Some(&bob), None).await;
    assert_eq!(status, 204);
    let frame = event_where(&mut ada_socket, "friend_removed", friendly).await;
    assert_eq!(
        frame,
        ServerFrame::FriendRemoved {
            user_id: bob.user_id.to_string()
        }
    );
    no_event_where(&mut carol_socket, quiet, "friend events", friendly).await;
}

#[tokio::test]
async fn conversations_list_unread_counts_that_reads_bring_down() {
    let harness = fast_harness().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    harness.api.befriend(&carol, &ada).await.expect("befriend");
    let dave = harness.user("dave").await;
    let group = group_with(&harness, &bob, "climbers", &[&ada]).await;
    let (mut ada_phone, _) = harness.connect_synced(&ada).await;
    let (mut ada_laptop, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;
    let (mut carol_socket, _) = harness.connect_synced(&carol).await;
    let (mut dave_socket, _) = harness.connect_synced(&dave).await;
    assert_eq!(conversations(&harness, &dave).await, Vec::<Value>::new());

    // Bob writes three, then Carol one, then Bob in the group.
    for (n, body) in ["one", "two", "three"].iter().enumerate() {
        send_text(&mut bob_socket, &format!("b{n}"), ada.user_id, body).await;
    }
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(next_message(&mut ada_phone).await.seq);
    }
    send_text(&mut carol_socket, "c0", ada.user_id, "hello from carol").await;
    let group_key = format!("group:{group}");
    assert!(
        send_kind(&mut bob_socket, "g0", &group_key, "text", "in the group")
            .await
            .is_ok()
    );

    let bob_key = format!("user:{}", bob.user_id);
    let carol_key = format!("user:{}", carol.user_id);
    let list = conversations(&harness, &ada).await;
    let order: Vec<&str> = list
        .iter()
        .map(|item| item["conversation"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        [group_key.as_str(), carol_key.as_str(), bob_key.as_str()]
    );
    assert_eq!(entry(&list, &bob_key)["unread"], 3);
    assert_eq!(entry(&list, &bob_key)["last"]["body"], "three");
    assert_eq!(entry(&list, &carol_key)["unread"], 1);
    assert_eq!(entry(&list, &carol_key)["last"]["body"], "hello from carol");
    assert_eq!(entry(&list, &group_key)["unread"], 1);
    assert_eq!(entry(&list, &group_key)["last"]["body"], "in the group");

    // Her own message is last but not unread.
    send_text(&mut ada_phone, "a0", bob.user_id, "coming").await;
    let list = conversations(&harness, &ada).await;
    assert_eq!(list[0]["conversation"], bob_key.as_str());
    assert_eq!(entry(&list, &bob_key)["last"]["body"], "coming");
    assert_eq!(entry(&list, &bob_key)["unread"], 3);

    // Reading up to the second: one unread left; both devices follow.
    let read_bob = format!("/api/v1/conversations/user/{}/read", bob.user_id);
    let answer = expect(
        &harness,
        Method::POST,
        &read_bob,
        Some(&ada),
        Some(json!({"seq": seqs[1]})),
        200,
    )
    .await;
    assert_eq!(answer, json!({"conversation": bob_key, "seq": seqs[1]}));
    let is_read = |frame: &ServerFrame| matches!(frame, ServerFrame::Read { .. });
    for socket in [&mut ada_phone, &mut ada_laptop] {
        let frame = event_where(socket, "read", is_read).await;
        assert_eq!(
            frame,
            ServerFrame::Read {
                conversation: bob_key.clone(),
                seq: seqs[1]
            }
        );
    }
    let list = conversations(&harness, &ada).await;
    assert_eq!(entry(&list, &bob_key)["unread"], 1);
    assert_eq!(entry(&list, &bob_key)["read"], seqs[1]);
    assert_eq!(
        entry(&list, &carol_key)["unread"],
        1,
        "other conversations stay"
    );
    no_event_where(&mut bob_socket, Duration::from_millis(300), "read", is_read).await;
    let bobs = conversations(&harness, &bob).await;
    assert_eq!(entry(&bobs, &format!("user:{}", ada.user_id))["unread"], 1);

    // Beyond the newest: capped; it never moves back.
    let capped = expect(
        &harness,
        Method::POST,
        &read_bob,
        Some(&ada),
        Some(json!({"seq": 1_000_000})),
        200,
    )
    .await;
    let newest = capped["seq"].as_u64().expect("a seq");
    assert!(newest >= seqs[2] && newest < 1_000_000, "{capped}");
    assert_eq!(
        entry(&conversations(&harness, &ada).await, &bob_key)["unread"],
        0
    );
    let back = expect(
        &harness,
        Method::POST,
        &read_bob,
        Some(&ada),
        Some(json!({"seq": 1})),
        200,
    )
    .await;
    assert_eq!(back["seq"].as_u64(), Some(newest));

    // Over the socket: the other device follows.
    let group_seq = entry(&conversations(&harness, &ada).await, &group_key)["last"]["seq"]
        .as_u64()
        .expect("a group seq");
    ada_laptop
        .send(&ClientFrame::Read {
            conversation: group_key.clone(),
            seq: group_seq,
        })
        .await
        .expect("send read");
    let frame = event_where(&mut ada_phone, "read", |frame| {
        matches!(frame, ServerFrame::Read { conversation, .. } if *conversation == group_key)
    })
    .await;
    assert_eq!(
        frame,
        ServerFrame::Read {
            conversation: group_key.clone(),
            seq: group_seq
        }
    );
    assert_eq!(
        entry(&conversations(&harness, &ada).await, &group_key)["unread"],
        0
    );

    // Who may not: a non-member for a group, no token, bad paths and bodies.
    let read_group = format!("/api/v1/conversations/group/{group}/read");
    let mark = Some(json!({"seq": 1}));
    refused(
        &harness,
        Method::POST,
        &read_group,
        Some(&dave),
        mark.clone(),
        403,
        "not_member",
    )
    .await;
    dave_socket
        .send(&ClientFrame::Read {
            conversation: group_key.clone(),
            seq: 1,
        })
        .await
        .expect("send read");
    assert_eq!(next_error(&mut dave_socket).await.0, "not_member");
    refused(
        &harness,
        Method::POST,
        &read_bob,
        None,
        mark.clone(),
        401,
        "unauthorized",
    )
    .await;
    refused(
        &harness,
        Method::GET,
        "/api/v1/conversations",
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    let channel = format!("/api/v1/conversations/channel/{group}/read");
    refused(
        &harness,
        Method::POST,
        &channel,
        Some(&ada),
        mark,
        400,
        "invalid_input",
    )
    .await;
    let (status, _) = call(
        &harness,
        Method::POST,
        &read_bob,
        Some(&ada),
        Some(json!({"seq": -1})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn senders_recall_their_messages_for_everyone() {
    let harness = fast_harness().await;
    let (ada, bob) = harness.friends("ada", "bob").await;
    let carol = harness.user("carol").await;
    let (mut ada_socket, _) = harness.connect_synced(&ada).await;
    let (mut bob_socket, _) = harness.connect_synced(&bob).await;

    let to_bob = format!("user:{}", bob.user_id);
    let id = send_kind(&mut ada_socket, "oops", &to_bob, "text", "wrong chat")
        .await
        .expect("sent");
    assert_eq!(next_message(&mut bob_socket).await.id, id);
    let kept = send_kind(&mut ada_socket, "keep", &to_bob, "text", "this stays")
        .await
        .expect("sent");
    assert_eq!(next_message(&mut bob_socket).await.id, kept);

    // Only the sender.
    let recall = format!("/api/v1/messages/{id}/recall");
    for who in [&bob, &carol] {
        refused(
            &harness,
            Method::POST,
            &recall,
            Some(who),
            None,
            404,
            "not_found",
        )
        .await;
    }
    refused(
        &harness,
        Method::POST,
        &recall,
        None,
        None,
        401,
        "unauthorized",
    )
    .await;
    refused(
        &harness,
        Method::POST,
        "/api/v1/messages/4242/recall",
        Some(&ada),
        None,
        404,
        "not_found",
    )
    .await;
    refused(
        &harness,
        Method::POST,
        "/api/v1/messages/abc/recall",
        Some(&ada),
        None,
        400,
        "invalid_input",
    )
    .await;

    let answer = expect(&harness, Method::POST, &recall, Some(&ada), None, 200).await;
    assert_eq!(answer["id"], id.as_str());
    let recall_id = answer["recall_id"]
        .as_str()
        .expect("a recall id")
        .to_string();
    assert_ne!(recall_id, id);
    let notice = next_message(&mut bob_socket).await;
    assert_eq!(
        (
            notice.kind.as_str(),
            notice.body.as_str(),
            notice.id.as_str()
        ),
        ("recall", id.as_str(), recall_id.as_str())
    );
    assert_eq!(notice.from, ada.user_id.to_string());

    // History shows the original emptied; the other message stays.
    for (who, peer) in [(&bob, &ada), (&ada, &bob)] {
        let path = format!("/api/v1/conversations/user/{}/messages", peer.user_id);
        let page = expect(&harness, Method::GET, &path, Some(who), None, 200).await;
        let messages = page["messages"].as_array().expect("messages");
        let original = messages
            .iter()
            .find(|message| message["id"] == id.as_str())
            .unwrap_or_else(|| panic!("the recalled message in {page}"));
        assert_eq!(original["kind"], "recalled", "{original}");
        assert_eq!(original["body"], "", "{original}");
        let other = messages
            .iter()
            .find(|message| message["id"] == kept.as_str())
            .unwrap_or_else(|| panic!("the kept message in {page}"));
        assert_eq!(other["body"], "this stays");
    }
    // A device that syncs from the start afterwards never sees the text: it reads the
    // original emptied, then the notice.
    let mut bob_tablet = harness.connect(&bob).await;
    let synced = sync(
        &mut bob_tablet,
        std::collections::BTreeMap::from([(to_bob.clone(), 0)]),
    )
    .await;
    let original = synced
        .iter()
        .find(|message| message.id == id)
        .unwrap_or_else(|| panic!("the recalled message in {synced:?}"));
    assert_eq!(
        (original.kind.as_str(), original.body.as_str()),
        ("recalled", "")
    );
    assert!(
        synced
            .iter()
            .any(|message| message.kind == "recall" && message.body == id),
        "the notice follows: {synced:?}"
    );

    // Twice is a conflict, and nothing more arrives.
    refused(
        &harness,
        Method::POST,
        &recall,
        Some(&ada),
        None,
        409,
        "conflict",
    )
    .await;
    expect_silence(&mut bob_socket, Duration::from_millis(300)).await;
}
