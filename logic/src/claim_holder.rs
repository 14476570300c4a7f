//! Who holds a send's de-duplication claim: a logic process, by node name and run.

use std::time::{SystemTime, UNIX_EPOCH};

/// The holder name of this run of the logic process on `node`: the node name, then a token
/// no other run of it shares (its process id and start time).
pub(crate) fn for_this_run(node: &str) -> String {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    format!("{node}#{:x}-{started:x}", std::process::id())
}

/// Whether `other` names another run of the node `mine` names. Node names are unique in a
/// cluster (the registry keys on them), so that run has ended: this one took its place.
pub(crate) fn is_earlier_run(mine: &str, other: &str) -> bool {
    match (mine.rsplit_once('#'), other.rsplit_once('#')) {
        (Some((my_node, my_run)), Some((other_node, other_run))) => {
            my_node == other_node && my_run != other_run
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_run_of_the_same_node_is_taken_for_gone() {
        let mine = for_this_run("logic-1");
        assert!(mine.starts_with("logic-1#"));
        assert!(is_earlier_run(&mine, "logic-1#1-2"));
        assert!(!is_earlier_run(&mine, &mine), "not one's own run");
        assert!(!is_earlier_run(&mine, "logic-2#1-2"), "not another node");
        assert!(!is_earlier_run(&mine, ""), "not an unknown holder");
        assert!(!is_earlier_run("logic-1", "logic-1#1-2"));
    }
}
