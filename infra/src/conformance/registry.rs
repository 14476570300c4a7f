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
    let id = registry
        .allocate_node_id(&first.node)
        .await
        .expect("node id");
    assert!(
        id <= MAX_NODE_ID,
        "a snowflake node id fits in 10 bits, got {id}"
    );
    assert_eq!(
        registry
            .allocate_node_id(&first.node)
            .await
            .expect("node id again"),
        id,
        "asking again for the same node keeps its id"
    );
    let held = registry.node_ids().await.expect("node ids");
    assert!(
        held.iter().any(|(held_id, _)| *held_id == id),
        "node_ids lists the id just allocated: {held:?}"
    );
    watching(registry, &first, &second).await;
}

/// Watchers see the current nodes at once and every later change, and a withdrawn node
/// leaves both the list and the watch.
async fn watching(registry: &dyn Registry, first: &ServiceNode, second: &ServiceNode) {
    let mut watcher = registry.watch("connect").await.expect("watch");
    let now = watcher.borrow_and_update().clone();
    assert!(
        now.contains(first) && now.contains(second),
        "a new watcher sees the nodes registered before it: {now:?}"
    );
    let names: Vec<&str> = now.iter().map(|known| known.node.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "nodes come ordered by name");

    registry.deregister(second).await.expect("deregister");
    let listed = registry.nodes("connect").await.expect("nodes");
    assert!(
        listed.contains(first) && !listed.contains(second),
        "a deregistered node leaves nodes(): {listed:?}"
    );
    let seen = wait_until(&mut watcher, |nodes| !nodes.contains(second)).await;
    assert!(seen.contains(first), "the watch keeps the others: {seen:?}");

    let third = node("connect", &format!("conformance-c3-{}", random_id()));
    registry.register(&third).await.expect("register");
    wait_until(&mut watcher, |nodes| nodes.contains(&third)).await;
    registry.deregister(&third).await.expect("deregister");
    registry.deregister(first).await.expect("deregister");
    // Deregistering what is not registered is not an error (a repeated clean stop).
    registry.deregister(&third).await.expect("deregister twice");
}

/// The watched value once `done` holds, failing after 10 s.
async fn wait_until(
    watcher: &mut tokio::sync::watch::Receiver<Vec<ServiceNode>>,
    done: impl Fn(&Vec<ServiceNode>) -> bool,
) -> Vec<ServiceNode> {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let nodes = watcher.borrow_and_update().clone();
            if done(&nodes) {
                return nodes;
            }
            watcher.changed().await.expect("the watch stays open");
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("the watch did not show the change within 10 s"))
}
