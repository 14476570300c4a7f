//! System push: a back end's notification to users, a group or everyone, ephemeral or kept in
//! each recipient's log.

use natter_infra::now_millis;
use natter_proto::v1::{
    Audience, EphemeralPushRequest, Message, SystemPushReply, SystemPushRequest,
};
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
    let audience = Audience::try_from(request.audience).unwrap_or(Audience::Unspecified);
    // The objects a persisted push is written to.
    let objects: Vec<ObjectId> = match audience {
        Audience::Everyone if request.persist => {
            return Err(ErrorCode::InvalidInput
                .status("a push to everyone is ephemeral; persist works for users and groups"));
        }
        Audience::Everyone => Vec::new(),
        Audience::Users => {
            if request.user_ids.is_empty() || request.user_ids.len() > MAX_PUSH_USERS {
                return Err(ErrorCode::InvalidInput
                    .status(format!("a push names 1 to {MAX_PUSH_USERS} users")));
            }
            for user in &request.user_ids {
                if logic.store.user(*user).await.map_err(status)?.is_none() {
                    return Err(ErrorCode::NotFound.status(format!("there is no user {user}")));
                }
            }
            request
                .user_ids
                .iter()
                .copied()
                .map(ObjectId::User)
                .collect()
        }
        Audience::Group => {
            logic.existing_group(request.group_id).await?;
            vec![ObjectId::Group(request.group_id)]
        }
        // Never read as everyone: a push that does not say whom it is for goes nowhere.
        Audience::Unspecified => {
            return Err(ErrorCode::InvalidInput.status(format!(
                "push to everyone, users or a group, not audience {}",
                request.audience
            )));
        }
    };
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
                audience: request.audience,
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
    let copies = objects
        .into_iter()
        .map(|object| {
            let (_, target_id) = object.target();
            let copy = Message {
                target_kind: object.kind_name().into(),
                target_id,
                peer: match object {
                    ObjectId::Group(group) => group,
                    ObjectId::User(_) => 0,
                },
                ..message.clone()
            };
            (object, copy)
        })
        .collect();
    logic.append_copies(copies).await?;
    Ok(SystemPushReply { id, connections: 0 })
}
