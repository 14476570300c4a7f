//! Which task node owns an object: rendezvous (highest random weight) hashing over the live
//! task nodes, so logic routes wakes and task nodes split recovery the same way, and a node
//! leaving moves only its own objects.

/// The weight of `node` for `object`: CityHash64 of both, stable across processes and builds.
fn weight(node: &str, object: &str) -> u64 {
    let mut key = Vec::with_capacity(node.len() + object.len() + 1);
    key.extend_from_slice(node.as_bytes());
    key.push(0);
    key.extend_from_slice(object.as_bytes());
    cityhasher::hash::<u64>(&key)
}

/// The owner of `object` among `nodes` (names), or `None` when there are none.
pub fn owner<'a, Node: AsRef<str>>(object: &str, nodes: &'a [Node]) -> Option<&'a Node> {
    nodes
        .iter()
        .max_by_key(|node| (weight(node.as_ref(), object), node.as_ref().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> Vec<String> {
        (0..10_000).map(|id| format!("user:{id}")).collect()
    }

    #[test]
    fn owners_spread_evenly_and_agree_whatever_the_order() {
        let nodes = ["task-a", "task-b", "task-c"];
        let reversed = ["task-c", "task-b", "task-a"];
        let mut counts = [0usize; 3];
        for object in objects() {
            let chosen = owner(&object, &nodes).unwrap();
            assert_eq!(chosen, owner(&object, &reversed).unwrap());
            counts[nodes.iter().position(|node| node == chosen).unwrap()] += 1;
        }
        for count in counts {
            assert!((3_000..3_700).contains(&count), "uneven split: {counts:?}");
        }
        assert_eq!(owner::<&str>("user:1", &[]), None);
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_objects() {
        let before = ["task-a", "task-b", "task-c"];
        let after = ["task-a", "task-c"];
        for object in objects() {
            let old = *owner(&object, &before).unwrap();
            let new = *owner(&object, &after).unwrap();
            if old != "task-b" {
                assert_eq!(old, new, "{object} moved though its owner stayed");
            }
        }
    }
}
