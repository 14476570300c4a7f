//! The connect nodes task pushes to, by node name (static in one process, fed from the
//! registry in a cluster).

use std::collections::HashMap;
use std::sync::RwLock;

use natter_proto::handle::ConnectHandle;

/// Connect nodes by name.
#[derive(Debug, Default)]
pub struct ConnectDirectory {
    nodes: RwLock<HashMap<String, ConnectHandle>>,
}

impl ConnectDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace a node.
    pub fn insert(&self, node: &str, handle: ConnectHandle) {
        self.nodes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(node.to_string(), handle);
    }

    /// Forget a node.
    pub fn remove(&self, node: &str) {
        self.nodes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(node);
    }

    /// The names of every known node.
    pub fn names(&self) -> Vec<String> {
        self.nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The handle of a node, if known.
    pub fn get(&self, node: &str) -> Option<ConnectHandle> {
        self.nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(node)
            .cloned()
    }
}
