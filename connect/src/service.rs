//! The `Connect` gRPC service: pushes and kicks from task and the admin API.

use std::sync::Arc;

use futures_util::future::join_all;
use natter_proto::trace_continued;
use natter_proto::v1::connect_server::Connect;
use natter_proto::v1::{
    GroupMembershipReply, GroupMembershipRequest, KickReply, KickRequest, PushAllRequest,
    PushBatchReply, PushBatchRequest, PushGroupRequest, PushReply, PushUsersRequest,
};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::server::{ConnectServer, Pushed};

/// The connect layer's service implementation.
#[derive(Debug, Clone)]
pub struct ConnectService {
    server: Arc<ConnectServer>,
}

impl ConnectService {
    /// The service of a node.
    pub fn new(server: Arc<ConnectServer>) -> Self {
        ConnectService { server }
    }
}

fn count(reached: usize) -> u32 {
    u32::try_from(reached).unwrap_or(u32::MAX)
}

fn reply_of(pushed: Pushed) -> PushReply {
    PushReply {
        connections: count(pushed.reached),
        released: pushed.released,
    }
}

#[tonic::async_trait]
impl Connect for ConnectService {
    async fn push_users(
        &self,
        request: Request<PushUsersRequest>,
    ) -> Result<Response<PushReply>, Status> {
        let request = request.into_inner();
        let pushed = self
            .server
            .push_users(&request.user_ids, &request.messages, request.lock)
            .await;
        Ok(Response::new(reply_of(pushed)))
    }

    async fn push_group(
        &self,
        request: Request<PushGroupRequest>,
    ) -> Result<Response<PushReply>, Status> {
        let request = request.into_inner();
        let pushed = self
            .server
            .push_group(request.group_id, &request.messages, request.lock)
            .await;
        Ok(Response::new(reply_of(pushed)))
    }

    async fn push_batch(
        &self,
        request: Request<PushBatchRequest>,
    ) -> Result<Response<PushBatchReply>, Status> {
        let PushBatchRequest { users, groups } = request.into_inner();
        metrics::histogram!("natter_connect_push_batch_size")
            .record((users.len() + groups.len()) as f64);
        // All at once: each waits a moment for its own lock's release, and those waits overlap.
        // Each push continues its own pusher's trace, which the call's metadata cannot carry.
        let users = users.into_iter().map(|push| {
            let span = trace_continued!(&push.trace_parent, "connect.push");
            async move {
                self.server
                    .push_users(&push.user_ids, &push.messages, push.lock)
                    .await
            }
            .instrument(span)
        });
        let groups = groups.into_iter().map(|push| {
            let span = trace_continued!(&push.trace_parent, "connect.push");
            async move {
                self.server
                    .push_group(push.group_id, &push.messages, push.lock)
                    .await
            }
            .instrument(span)
        });
        let (users, groups) = tokio::join!(join_all(users), join_all(groups));
        Ok(Response::new(PushBatchReply {
            users: users.into_iter().map(reply_of).collect(),
            groups: groups.into_iter().map(reply_of).collect(),
        }))
    }

    async fn push_all(
        &self,
        request: Request<PushAllRequest>,
    ) -> Result<Response<PushReply>, Status> {
        let reached = self.server.push_all(&request.into_inner().messages).await;
        Ok(Response::new(PushReply {
            connections: count(reached),
            released: false,
        }))
    }

    async fn update_groups(
        &self,
        request: Request<GroupMembershipRequest>,
    ) -> Result<Response<GroupMembershipReply>, Status> {
        let request = request.into_inner();
        let updated = self
            .server
            .update_groups(request.user_id, &request.joined, &request.left);
        Ok(Response::new(GroupMembershipReply {
            connections: count(updated),
        }))
    }

    async fn kick(&self, request: Request<KickRequest>) -> Result<Response<KickReply>, Status> {
        let kicked = self.server.kick(request.into_inner().user_id);
        Ok(Response::new(KickReply {
            connections: count(kicked),
        }))
    }
}
