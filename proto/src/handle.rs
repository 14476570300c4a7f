//! One handle per service: the same calls whether the service runs in this process (a direct
//! call on its implementation, no serialisation, no socket), in another one (a tonic client),
//! or in whichever of a layer's processes a balancer picks. The rpcs of each service are listed
//! once, below; the handle's methods for every variant are generated from that list.

use std::sync::Arc;

use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::v1;

/// Chooses which process of a layer takes the next call.
pub trait Balancer<Handle>: Send + Sync {
    /// A handle to the process that takes the next call, or why there is none.
    fn pick(&self) -> Result<Handle, Status>;
}

/// A layer with no process to call: every call is refused as unavailable. For a process that
/// is given a handle it never uses (a test of connect alone, say).
#[derive(Clone, Copy, Debug)]
pub struct Unreachable(pub &'static str);

impl<Handle> Balancer<Handle> for Unreachable {
    fn pick(&self) -> Result<Handle, Status> {
        Err(Status::unavailable(format!("no {} process", self.0)))
    }
}

/// Generates a handle enum with one async method per rpc.
macro_rules! service_handle {
    (
        $(#[$doc:meta])*
        $handle:ident, $server_trait:path, $client:ident,
        { $($method:ident($request:ty) -> $reply:ty;)* }
    ) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub enum $handle {
            /// The service in this process, called directly.
            InProcess(Arc<dyn $server_trait>),
            /// The service in another process, over gRPC.
            Remote($client<Channel>),
            /// Whichever of the layer's processes the balancer picks for each call.
            Balanced(Arc<dyn Balancer<$handle>>),
            /// A router in this process that spreads each call over the layer's processes by
            /// what the call is about (the owner of an object, say).
            Routed(Arc<dyn $server_trait>),
        }

        impl std::fmt::Debug for $handle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let variant = match self {
                    Self::InProcess(_) => "InProcess",
                    Self::Remote(_) => "Remote",
                    Self::Balanced(_) => "Balanced",
                    Self::Routed(_) => "Routed",
                };
                write!(f, "{}::{variant}", stringify!($handle))
            }
        }

        impl $handle {
            /// A handle to a remote service at `url` (e.g. `http://127.0.0.1:9001`); the
            /// connection is made on first use and re-made after failures.
            pub fn remote(url: &str) -> Result<Self, tonic::transport::Error> {
                // Every rpc is short; a bound keeps a dead peer from holding its caller.
                let channel = Endpoint::from_shared(url.to_string())?
                    .connect_timeout(std::time::Duration::from_secs(3))
                    .timeout(std::time::Duration::from_secs(10))
                    .connect_lazy();
                Ok(Self::Remote($client::new(channel)))
            }

            /// A handle whose every call is refused: the layer named `layer` is not reachable.
            pub fn unreachable(layer: &'static str) -> Self {
                Self::Balanced(Arc::new(Unreachable(layer)))
            }

            $(
                #[doc = concat!("Calls `", stringify!($method), "` on the service.")]
                pub async fn $method(&self, request: $request) -> Result<$reply, Status> {
                    match self {
                        Self::InProcess(service) | Self::Routed(service) => service
                            .$method(Request::new(request))
                            .await
                            .map(Response::into_inner),
                        Self::Remote(client) => client
                            .clone()
                            .$method(request)
                            .await
                            .map(Response::into_inner),
                        Self::Balanced(balancer) => {
                            // Boxed: the picked handle's call is this same method.
                            Box::pin(balancer.pick()?.$method(request)).await
                        }
                    }
                }
            )*
        }
    };
}

use v1::connect_client::ConnectClient;
use v1::logic_client::LogicClient;
use v1::task_client::TaskClient;

service_handle! {
    /// A way to call the logic layer.
    LogicHandle, v1::logic_server::Logic, LogicClient,
    {
        send(v1::SendRequest) -> v1::SendReply;
        sync(v1::SyncRequest) -> v1::SyncReply;
        ack(v1::AckRequest) -> v1::AckReply;
        connected(v1::ConnectionEvent) -> v1::ConnectedReply;
        disconnected(v1::ConnectionEvent) -> v1::Empty;
        create_group(v1::CreateGroupRequest) -> v1::GroupReply;
        join_group(v1::GroupMemberRequest) -> v1::GroupReply;
        leave_group(v1::GroupMemberRequest) -> v1::GroupReply;
        system_push(v1::SystemPushRequest) -> v1::SystemPushReply;
        typing(v1::TypingRequest) -> v1::Empty;
        manage_group(v1::ManageGroupRequest) -> v1::GroupReply;
        recall(v1::RecallRequest) -> v1::RecallReply;
        mark_read(v1::ReadRequest) -> v1::ReadReply;
        notify(v1::NotifyRequest) -> v1::Empty;
        online(v1::OnlineRequest) -> v1::OnlineReply;
    }
}

service_handle! {
    /// A way to call one connect node.
    ConnectHandle, v1::connect_server::Connect, ConnectClient,
    {
        push_users(v1::PushUsersRequest) -> v1::PushReply;
        push_group(v1::PushGroupRequest) -> v1::PushReply;
        push_all(v1::PushAllRequest) -> v1::PushReply;
        kick(v1::KickRequest) -> v1::KickReply;
        update_groups(v1::GroupMembershipRequest) -> v1::GroupMembershipReply;
    }
}

service_handle! {
    /// A way to call the task layer.
    TaskHandle, v1::task_server::Task, TaskClient,
    {
        wake(v1::WakeRequest) -> v1::Empty;
        update_groups(v1::GroupMembershipRequest) -> v1::Empty;
        push_ephemeral(v1::EphemeralPushRequest) -> v1::PushReply;
        sequence(v1::SequenceRequest) -> v1::SequenceReply;
    }
}
