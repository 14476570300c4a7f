//! `Registry` in one process: what this process registered, and a configured node id.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::InfraResult;
use crate::registry::{Registry, ServiceNode};

/// A registry that holds what was registered in this process and a configured node id.
#[derive(Debug)]
pub struct StaticRegistry {
    node_id: u16,
    /// One channel per layer, holding that layer's nodes in name order.
    layers: Mutex<HashMap<String, watch::Sender<Vec<ServiceNode>>>>,
}

impl StaticRegistry {
    /// A registry that hands out `node_id` as this process's snowflake node id.
    pub fn new(node_id: u16) -> Self {
        StaticRegistry {
            node_id,
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// Run `change` on a layer's node list and tell its watchers.
    fn change(&self, layer: &str, change: impl FnOnce(&mut Vec<ServiceNode>)) {
        let mut layers = self
            .layers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sender = layers
            .entry(layer.to_string())
            .or_insert_with(|| watch::channel(Vec::new()).0);
        sender.send_modify(|nodes| {
            change(nodes);
            nodes.sort_by(|a, b| a.node.cmp(&b.node));
        });
    }

    fn layer(&self, layer: &str) -> watch::Receiver<Vec<ServiceNode>> {
        let mut layers = self
            .layers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        layers
            .entry(layer.to_string())
            .or_insert_with(|| watch::channel(Vec::new()).0)
            .subscribe()
    }
}

#[async_trait]
impl Registry for StaticRegistry {
    async fn register(&self, node: &ServiceNode) -> InfraResult<()> {
        self.change(&node.layer, |nodes| {
            nodes.retain(|known| known.node != node.node);
            nodes.push(node.clone());
        });
        Ok(())
    }

    async fn deregister(&self, node: &ServiceNode) -> InfraResult<()> {
        self.change(&node.layer, |nodes| {
            nodes.retain(|known| known.node != node.node)
        });
        Ok(())
    }

    async fn nodes(&self, layer: &str) -> InfraResult<Vec<ServiceNode>> {
        Ok(self.layer(layer).borrow().clone())
    }

    async fn watch(&self, layer: &str) -> InfraResult<watch::Receiver<Vec<ServiceNode>>> {
        Ok(self.layer(layer))
    }

    async fn allocate_node_id(&self, _node: &str) -> InfraResult<u16> {
        Ok(self.node_id)
    }

    async fn node_ids(&self) -> InfraResult<Vec<(u16, String)>> {
        // The one process holds the one id; it registers no name for it.
        Ok(vec![(self.node_id, String::new())])
    }
}
