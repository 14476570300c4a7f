//! The `Registry` port: where each layer's processes are.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::InfraResult;

/// One registered process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNode {
    /// "api", "logic", "task" or "connect".
    pub layer: String,
    /// The node's name, unique in its cluster.
    pub node: String,
    /// Its gRPC address (`http://host:port`), empty for in-process services.
    pub address: String,
}

/// Service registration and discovery.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Announce a process; it stays registered while this process lives.
    async fn register(&self, node: &ServiceNode) -> InfraResult<()>;
    /// Withdraw a process (a clean stop); a dead process drops out by itself.
    async fn deregister(&self, node: &ServiceNode) -> InfraResult<()>;
    /// Every live process of a layer, ordered by node name.
    async fn nodes(&self, layer: &str) -> InfraResult<Vec<ServiceNode>>;
    /// The live processes of a layer now and after every change, ordered by node name.
    async fn watch(&self, layer: &str) -> InfraResult<watch::Receiver<Vec<ServiceNode>>>;
    /// A snowflake node id no other live process holds.
    async fn allocate_node_id(&self, node: &str) -> InfraResult<u16>;
    /// The snowflake node ids live processes hold, with the node holding each.
    async fn node_ids(&self) -> InfraResult<Vec<(u16, String)>>;
}
