//! The conversation features through the six-process cluster: a reply, a reaction and an
//! edit travel as log events from one connect node to the other, receipts come back from the
//! recipient's acknowledgement and read cursor, and a new nickname reaches a friend live; a
//! private group is joined through an invite, counts its readers, and refuses a muted member.

use super::*;

/// The next frame on `client` for which `wanted` holds (events and messages alike).
async fn next_where(
    client: &mut WsClient,
    what: &str,
    wanted: impl Fn(&ServerFrame) -> bool,
) -> ServerFrame {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_frame(left).await {
            Ok(Some(frame)) if wanted(&frame) => return frame,
            Ok(Some(_)) => {}
            Ok(None) => panic!("closed while waiting for {what}"),
            Err(error) => panic!("no {what} in time: {error}"),
        }
    }
}

/// The next message of `kind`.
async fn next_of_kind(client: &mut WsClient, kind: &str) -> MessageFrame {
    match next_where(
        client,
        kind,
        |frame| matches!(frame, ServerFrame::Msg(message) if message.kind == kind),
    )
    .await
    {
        ServerFrame::Msg(message) => message,
        other => panic!("expected a {kind} message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_reactions_edits_receipts_and_profiles_cross_the_cluster() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let _cluster = start_cluster("partitioned", &SIX).await;
    let api = ApiClient::new(API);
    let run = rand::random::<u32>();
    let ada = api
        .register(&format!("ada{run}"), PASSWORD)
        .await
        .expect("register ada");
    let bob = api
        .register(&format!("bob{run}"), PASSWORD)
        .await
        .expect("register bob");
    api.befriend(&ada, &bob).await.expect("befriend");
    let mut ada_client = synced_client(&ada, CONNECT_URLS[0]).await;
    let mut bob_client = synced_client(&bob, CONNECT_URLS[1]).await;
    let bob_key = format!("user:{}", bob.user_id);
    let ada_key = format!("user:{}", ada.user_id);

    ada_client
        .send(&ClientFrame::Send {
            cid: "q".into(),
            to: bob_key.clone(),
            kind: "text".into(),
            body: "lunch at noon?".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    let question = next_of_kind(&mut bob_client, "text").await;
    let ada_seq = match next_where(&mut ada_client, "sent", |frame| {
        matches!(frame, ServerFrame::Sent { .. })
    })
    .await
    {
        ServerFrame::Sent { seq, .. } => seq,
        other => panic!("{other:?}"),
    };

    // Bob's device acknowledges, then he reads: Ada hears both.
    bob_client
        .send(&ClientFrame::Ack {
            object: bob_key.clone(),
            seq: question.seq,
        })
        .await
        .expect("ack");
    let delivered = next_where(&mut ada_client, "delivered receipt", |frame| {
        matches!(
            frame,
            ServerFrame::Receipt {
                delivered: Some(_),
                ..
            }
        )
    })
    .await;
    assert!(
        matches!(delivered, ServerFrame::Receipt { delivered: Some(seq), .. } if seq == ada_seq),
        "{delivered:?}"
    );
    bob_client
        .send(&ClientFrame::Read {
            conversation: ada_key.clone(),
            seq: question.seq,
        })
        .await
        .expect("read");
    let read = next_where(&mut ada_client, "read receipt", |frame| {
        matches!(frame, ServerFrame::Receipt { read: Some(_), .. })
    })
    .await;
    assert!(
        matches!(read, ServerFrame::Receipt { read: Some(seq), .. } if seq == ada_seq),
        "{read:?}"
    );

    // A reply and a reaction from Bob, an edit from Ada, each through the log.
    bob_client
        .send(&ClientFrame::Send {
            cid: "a".into(),
            to: ada_key.clone(),
            kind: "text".into(),
            body: "yes!".into(),
            reply_to: Some(question.id.clone()),
        })
        .await
        .expect("reply");
    let reply = next_of_kind(&mut ada_client, "text").await;
    assert_eq!(
        reply.reply_to.map(|quote| quote.id),
        Some(question.id.clone())
    );
    let reactions = format!("/api/v1/messages/{}/reactions", question.id);
    let reacted = api
        .call(
            Method::POST,
            &reactions,
            Some(&bob.access_token),
            Some(serde_json::json!({"emoji": "👍"})),
        )
        .await
        .expect("react");
    assert_eq!(reacted.status, 200, "{}", reacted.body);
    let reaction = next_of_kind(&mut ada_client, "reaction").await;
    assert_eq!(reaction.refers_to, Some(question.id.clone()));
    let edited = api
        .call(
            Method::PATCH,
            &format!("/api/v1/messages/{}", question.id),
            Some(&ada.access_token),
            Some(serde_json::json!({"body": "lunch at one?"})),
        )
        .await
        .expect("edit");
    assert_eq!(edited.status, 200, "{}", edited.body);
    let edit = next_of_kind(&mut bob_client, "edit").await;
    assert_eq!(
        (edit.refers_to, edit.body.as_str()),
        (Some(question.id.clone()), "lunch at one?")
    );

    // Bob's new name reaches Ada on the other node.
    let renamed = api
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&bob.access_token),
            Some(serde_json::json!({"nickname": "Robert"})),
        )
        .await
        .expect("rename");
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let profile = next_where(&mut ada_client, "profile", |frame| {
        matches!(frame, ServerFrame::Profile { .. })
    })
    .await;
    assert!(
        matches!(&profile, ServerFrame::Profile { nickname, .. } if nickname == "Robert"),
        "{profile:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_group_is_joined_by_invite_counts_readers_and_mutes() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let _cluster = start_cluster("partitioned", &SIX).await;
    let api = ApiClient::new(API);
    let run = rand::random::<u32>();
    let ada = api
        .register(&format!("ada{run}"), PASSWORD)
        .await
        .expect("register ada");
    let bob = api
        .register(&format!("bob{run}"), PASSWORD)
        .await
        .expect("register bob");
    let call = |method: Method, path: String, who: &Session, body: Option<serde_json::Value>| {
        let api = api.clone();
        let token = who.access_token.clone();
        async move {
            api.call(method, &path, Some(&token), body)
                .await
                .expect("a REST call")
        }
    };
    let created = call(
        Method::POST,
        "/api/v1/groups".into(),
        &ada,
        Some(serde_json::json!({"name": format!("hidden {run}"), "private": true})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let group = created.body["id"].as_str().expect("an id").to_string();
    let joined = call(
        Method::POST,
        format!("/api/v1/groups/{group}/join"),
        &bob,
        None,
    )
    .await;
    assert_eq!(
        joined.status, 404,
        "a private group is not joined without an invite"
    );
    let invite = call(
        Method::POST,
        format!("/api/v1/groups/{group}/invites"),
        &ada,
        Some(serde_json::json!({"max_uses": 1})),
    )
    .await;
    assert_eq!(invite.status, 201, "{}", invite.body);
    let code = invite.body["code"].as_str().expect("a code");
    let joined = call(
        Method::POST,
        format!("/api/v1/invites/{code}/join"),
        &bob,
        None,
    )
    .await;
    assert_eq!(joined.status, 200, "{}", joined.body);

    // Ada writes on one node; Bob reads on the other; Ada hears the count.
    let mut ada_client = synced_client(&ada, CONNECT_URLS[0]).await;
    let mut bob_client = synced_client(&bob, CONNECT_URLS[1]).await;
    let group_key = format!("group:{group}");
    ada_client
        .send(&ClientFrame::Send {
            cid: "g".into(),
            to: group_key.clone(),
            kind: "text".into(),
            body: "welcome".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    let welcome = next_of_kind(&mut bob_client, "text").await;
    bob_client
        .send(&ClientFrame::Read {
            conversation: group_key.clone(),
            seq: welcome.seq,
        })
        .await
        .expect("read");
    let counted = next_where(&mut ada_client, "group receipt", |frame| {
        matches!(
            frame,
            ServerFrame::Receipt {
                read_count: Some(_),
                ..
            }
        )
    })
    .await;
    assert_eq!(
        counted,
        ServerFrame::Receipt {
            conversation: group_key.clone(),
            delivered: None,
            read: Some(welcome.seq),
            read_count: Some(1),
        }
    );

    // Muted by the owner, Bob cannot write there.
    let later = natter_infra::now_millis() + 3_600_000;
    let muted = call(
        Method::PATCH,
        format!("/api/v1/groups/{group}/members/{}", bob.user_id),
        &ada,
        Some(serde_json::json!({"muted_until": later})),
    )
    .await;
    assert_eq!(muted.status, 200, "{}", muted.body);
    bob_client
        .send(&ClientFrame::Send {
            cid: "m".into(),
            to: group_key,
            kind: "text".into(),
            body: "hello?".into(),
            reply_to: None,
        })
        .await
        .expect("send");
    let refused = next_where(&mut bob_client, "the refusal", |frame| {
        matches!(frame, ServerFrame::Error { .. } | ServerFrame::Sent { .. })
    })
    .await;
    assert!(
        matches!(&refused, ServerFrame::Error { code, .. } if code.as_str() == "muted"),
        "{refused:?}"
    );
}
