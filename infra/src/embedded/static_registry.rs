//! `Registry` from configuration: the embedded process knows every service up front.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::InfraResult;
use crate::registry::{Registry, ServiceNode};

/// A registry that holds what was registered in this process and a configured node id.
#[derive(Debug)]
pub struct StaticRegistry {
    node_id: u16,
    nodes: Mutex<Vec<ServiceNode>>,
}

impl StaticRegistry {
    /// A registry that hands out `node_id` as this process's snowflake node id.
    pub fn new(node_id: u16) -> Self {
        StaticRegistry {
            node_id,
            nodes: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Registry for StaticRegistry {
    async fn register(&self, node: &ServiceNode) -> InfraResult<()> {
        let mut nodes = self
            .nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        nodes.retain(|known| !(known.layer == node.layer && known.node == node.node));
        nodes.push(node.clone());
        Ok(())
    }

    async fn nodes(&self, layer: &str) -> InfraResult<Vec<ServiceNode>> {
        let nodes = self
            .nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(nodes
            .iter()
            .filter(|node| node.layer == layer)
            .cloned()
            .collect())
    }

    async fn allocate_node_id(&self, _node: &str) -> InfraResult<u16> {
        Ok(self.node_id)
    }
}
