//! The `Registry` conformance suite.

use super::random_id;
use crate::ids::MAX_NODE_ID;
use crate::registry::{Registry, ServiceNode};

fn node(layer: &str, name: &str) -> ServiceNode {
    ServiceNode {
        layer: layer.into(),
        node: name.into(),
        address: format!("http://127.0.0.1:{}", 10_000 + random_id() % 50_000),
    }
}

/// Run every `Registry` check.
pub async fn run(registry: &dyn Registry) {
    let first = node("connect", &format!("conformance-c1-{}", random_id()));
    let second = node("connect", &format!("conformance-c2-{}", random_id()));
    let task = node("task", &format!("conformance-t-{}", random_id()));
    for each in [&first, &second, &task] {
        registry.register(each).await.expect("register");
    }
    // Registering again (a restart) replaces, never duplicates.
    registry.register(&first).await.expect("register again");
    let connect = registry.nodes("connect").await.expect("nodes");
    assert!(
        connect.contains(&first) && connect.contains(&second),
        "nodes(\"connect\") lists both registered connect nodes: {connect:?}"
    );
    assert_eq!(
        connect
            .iter()
            .filter(|known| known.node == first.node)
            .count(),
        1,
        "re-registering a node does not list it twice: {connect:?}"
    );
    assert!(
        !connect.iter().any(|known| known.node == task.node),
        "layers are kept apart: {connect:?}"
    );
    let tasks = registry.nodes("task").await.expect("nodes");
    assert!(tasks.contains(&task), "nodes(\"task\") lists it: {tasks:?}");
    assert!(
        tasks.iter().all(|known| known.layer == "task"),
        "nodes(layer) lists only that layer: {tasks:?}"
    );
    for each in [&first, &second] {
        let id = registry
            .allocate_node_id(&each.node)
            .await
            .expect("node id");
        assert!(
            id <= MAX_NODE_ID,
            "a snowflake node id fits in 10 bits, got {id}"
        );
    }
}
