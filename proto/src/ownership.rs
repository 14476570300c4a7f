//! Which task node owns an object: rendezvous (highest random weight) hashing over the live
//! task nodes, so logic routes wakes and task nodes split recovery the same way, and a node
//! leaving moves only its own objects. A few named slots (one stream's log partitions) are
//! spread with a cap on each node's share, since rendezvous alone splits four partitions over
//! two nodes unevenly more often than not.

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

/// The owner of each of `slots` (in their order) among `nodes`, as indices into `nodes`:
/// slot by slot, the highest-weight node still below its share. A share is the slots over the
/// nodes, rounded down, and as many nodes as that leaves slots over hold one more; so every
/// node ends within one slot of the others, and the answer depends on the set of nodes, not
/// their order. Empty when there are no nodes.
pub fn spread<Node: AsRef<str>>(slots: &[String], nodes: &[Node]) -> Vec<usize> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let share = slots.len() / nodes.len();
    let mut one_more_left = slots.len() % nodes.len();
    let mut held = vec![0usize; nodes.len()];
    let mut owners = Vec::with_capacity(slots.len());
    for slot in slots {
        let chosen = (0..nodes.len())
            .filter(|&node| held[node] < share || (held[node] == share && one_more_left > 0))
            .max_by(|&left, &right| {
                let (left, right) = (nodes[left].as_ref(), nodes[right].as_ref());
                weight(left, slot)
                    .cmp(&weight(right, slot))
                    .then_with(|| left.cmp(right))
            });
        // The shares add up to the slots, so some node is always below its share.
        let chosen = chosen.unwrap_or(0);
        if held[chosen] == share {
            one_more_left = one_more_left.saturating_sub(1);
        }
        held[chosen] += 1;
        owners.push(chosen);
    }
    owners
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

    fn slots(count: u32) -> Vec<String> {
        (0..count).map(|index| format!("inbox/{index}")).collect()
    }

    #[test]
    fn spread_slots_are_within_one_of_each_other_whatever_the_order() {
        for count in [1, 2, 3, 4, 5, 8, 64] {
            for nodes in [
                vec!["task-1", "task-2"],
                vec!["task-a", "task-b", "task-c"],
                vec!["t1", "t2", "t3", "t4", "t5"],
            ] {
                let owners = spread(&slots(count), &nodes);
                assert_eq!(owners.len(), count as usize);
                let mut held = vec![0usize; nodes.len()];
                for &owner in &owners {
                    held[owner] += 1;
                }
                let (most, least) = (held.iter().max().unwrap(), held.iter().min().unwrap());
                assert!(most - least <= 1, "{count} slots over {nodes:?}: {held:?}");
                let reversed: Vec<&str> = nodes.iter().rev().copied().collect();
                let named = |owners: Vec<usize>, nodes: &[&str]| -> Vec<String> {
                    owners
                        .into_iter()
                        .map(|owner| nodes[owner].to_owned())
                        .collect()
                };
                assert_eq!(
                    named(owners, &nodes),
                    named(spread(&slots(count), &reversed), &reversed),
                    "the order of the nodes changed the owners"
                );
            }
        }
        assert!(spread::<&str>(&slots(4), &[]).is_empty());
    }

    #[test]
    fn a_node_leaving_a_spread_moves_few_slots_it_did_not_hold() {
        let before = ["task-a", "task-b", "task-c"];
        let after = ["task-a", "task-c"];
        let slots = slots(64);
        let old = spread(&slots, &before);
        let new = spread(&slots, &after);
        let stayed: Vec<(usize, usize)> = old
            .into_iter()
            .zip(new)
            .filter(|&(old, _)| before[old] != "task-b")
            .collect();
        let moved = stayed
            .iter()
            .filter(|&&(old, new)| before[old] != after[new])
            .count();
        // Rendezvous alone would move none of them; the share cap moves a few (one here).
        assert!(
            moved <= 4,
            "{moved} of {} slots moved though their owner stayed",
            stayed.len()
        );
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
