//! The `Logic` gRPC service: a table from each rpc to the function of its family that answers
//! it. The work is in the family modules; this file only dispatches.

use natter_proto::v1::logic_server::Logic;
use natter_proto::v1::{
    AckReply, AckRequest, ConnectedReply, ConnectionEvent, CreateGroupRequest, EditReply,
    EditRequest, Empty, GroupMemberRequest, GroupReply, ManageGroupRequest, NotifyRequest,
    OnlineReply, OnlineRequest, ReactReply, ReactRequest, ReadReply, ReadRequest, RecallReply,
    RecallRequest, SendBatchReply, SendBatchRequest, SendReply, SendRequest, SyncReply,
    SyncRequest, SystemPushReply, SystemPushRequest, TypingRequest,
};
use tonic::{Request, Response, Status};

use crate::state::LogicService;
use crate::{edits, groups, presence, recall, send, sync, system_push};

/// Implements `Logic` for [`LogicService`] from a table of `rpc(Request) -> Reply => function`.
macro_rules! dispatch {
    ($($rpc:ident($request:ty) -> $reply:ty => $function:path;)*) => {
        #[tonic::async_trait]
        impl Logic for LogicService {
            $(
                async fn $rpc(&self, request: Request<$request>) -> Result<Response<$reply>, Status> {
                    $function(self, request.into_inner()).await.map(Response::new)
                }
            )*
        }
    };
}

dispatch! {
    send(SendRequest) -> SendReply => send::send;
    send_batch(SendBatchRequest) -> SendBatchReply => send::send_batch;
    sync(SyncRequest) -> SyncReply => sync::sync;
    ack(AckRequest) -> AckReply => sync::ack;
    connected(ConnectionEvent) -> ConnectedReply => presence::connected;
    disconnected(ConnectionEvent) -> Empty => presence::disconnected;
    create_group(CreateGroupRequest) -> GroupReply => groups::create_group;
    join_group(GroupMemberRequest) -> GroupReply => groups::join_group;
    leave_group(GroupMemberRequest) -> GroupReply => groups::leave_group;
    manage_group(ManageGroupRequest) -> GroupReply => groups::manage_group;
    system_push(SystemPushRequest) -> SystemPushReply => system_push::system_push;
    typing(TypingRequest) -> Empty => presence::typing;
    notify(NotifyRequest) -> Empty => presence::notify;
    online(OnlineRequest) -> OnlineReply => presence::online;
    recall(RecallRequest) -> RecallReply => recall::recall;
    edit(EditRequest) -> EditReply => edits::edit;
    react(ReactRequest) -> ReactReply => edits::react;
    mark_read(ReadRequest) -> ReadReply => recall::mark_read;
}
