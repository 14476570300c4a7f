//! System push: a back end's notification to users, a group or everyone, ephemeral or kept in
//! each recipient's log.

use natter_infra::now_millis;
use natter_proto::v1::{EphemeralPushRequest, Message, SystemPushReply, SystemPushRequest};
use natter_proto::{ErrorCode, ObjectId};
use tonic::Status;

use crate::state::{LogicService, status};
use crate::validate;

/// Most users one system push may name.
const MAX_PUSH_USERS: usize = 1000;

/// `system_push`: a back end's notification, ephemeral or persisted in each recipient's log.
pub(crate) async fn system_push(
    logic: &LogicService,
    request: SystemPushRequest,
) -> Result<SystemPushReply, Status> {
    validate::text(&request.body, logic.config.max_text_chars)?;
    match request.target_kind.as_str() {
        "all" if request.persist => {
            return Err(ErrorCode::InvalidInput
                .status("a push to everyone is ephemeral; persist works for users and groups"));
        }
        "all" => {}
        "users" => {
            if request.user_ids.is_empty() || request.user_ids.len() > MAX_PUSH_USERS {
                return Err(ErrorCode::InvalidInput
                    .status(format!("a push names 1 to {MAX_PUSH_USERS} users")));
            }
            for user in &request.user_ids {
                if logic.store.user(*user).await.map_err(status)?.is_none() {
                    return Err(ErrorCode::NotFound.status(format!("there is no user {user}")));
                }
            }
        }
        "group" => {
            logic.existing_group(request.group_id).await?;
        }
        other => {
            return Err(ErrorCode::InvalidInput.status(format!(
                "push to \"all\", \"users\" or \"group\", not {other:?}"
            )));
        }
    }
    let message = Message {
        id: logic.ids.next_id().map_err(status)?,
        sender: 0,
        kind: "text".into(),
        body: request.body.clone(),
        ts: now_millis(),
        ..Message::default()
    };
    let id = message.id;
    if !request.persist {
        let reply = logic
            .task
            .push_ephemeral(EphemeralPushRequest {
                target_kind: request.target_kind,
                user_ids: request.user_ids,
                group_id: request.group_id,
                message: Some(message),
            })
            .await?;
        return Ok(SystemPushReply {
            id,
            connections: reply.connections,
        });
    }
    // Persisted: a copy in each recipient's log, delivered and synced like any message.
    let targets: Vec<(ObjectId, &str, i64)> = if request.target_kind == "group" {
        vec![(ObjectId::Group(request.group_id), "group", request.group_id)]
    } else {
        request
            .user_ids
            .iter()
            .map(|user| (ObjectId::User(*user), "user", *user))
            .collect()
    };
    let copies = targets
        .into_iter()
        .map(|(object, target_kind, target_id)| {
            let copy = Message {
                target_kind: target_kind.into(),
                target_id,
                peer: if target_kind == "group" { target_id } else { 0 },
                ..message.clone()
            };
            (object, copy)
        })
        .collect();
    logic.append_copies(copies).await?;
    Ok(SystemPushReply { id, connections: 0 })
}
