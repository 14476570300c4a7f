//! The `Connect` gRPC service: pushes and kicks from task and the admin API.

use std::sync::Arc;

use natter_proto::v1::connect_server::Connect;
use natter_proto::v1::{
    GroupMembershipReply, GroupMembershipRequest, KickReply, KickRequest, PushAllRequest,
    PushGroupRequest, PushReply, PushUsersRequest,
};
use tonic::{Request, Response, Status};

use crate::server::ConnectServer;

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
        Ok(Response::new(PushReply {
            connections: count(pushed.reached),
            released: pushed.released,
        }))
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
        Ok(Response::new(PushReply {
            connections: count(pushed.reached),
            released: pushed.released,
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
