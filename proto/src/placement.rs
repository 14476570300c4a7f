//! Which partition of a shared log topic holds an object: CityHash64 of the object's name
//! modulo the partition count, so every process (logic producing, task consuming) places an
//! object alike without asking anyone.

use std::fmt;
use std::str::FromStr;

use crate::ObjectId;
use crate::ownership;

/// The partition (0-based) of `object` among `partitions`; `partitions` of 0 counts as 1.
pub fn partition_of(object: &str, partitions: u32) -> u32 {
    let hash = cityhasher::hash::<u64>(object.as_bytes());
    (hash % u64::from(partitions.max(1))) as u32
}

/// One of the shared log's two topics: inboxes and groups are apart, so a busy group's
/// partition does not slow the inboxes placed beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Users' inboxes.
    Inbox,
    /// Groups.
    Groups,
}

impl Stream {
    /// The stream holding `object`.
    pub fn of(object: &ObjectId) -> Stream {
        match object {
            ObjectId::User(_) => Stream::Inbox,
            ObjectId::Group(_) => Stream::Groups,
        }
    }

    /// Its name in partition names and topic names.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Inbox => "inbox",
            Stream::Groups => "groups",
        }
    }
}

/// One partition of the shared log, named `inbox/<n>` or `groups/<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogPartition {
    /// Which topic.
    pub stream: Stream,
    /// Which partition of it (0-based).
    pub index: u32,
}

impl LogPartition {
    /// The partition holding `object` when its stream has `partitions` partitions.
    pub fn of(object: &ObjectId, partitions: u32) -> LogPartition {
        LogPartition {
            stream: Stream::of(object),
            index: partition_of(&object.to_string(), partitions),
        }
    }
}

impl fmt::Display for LogPartition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.stream.name(), self.index)
    }
}

/// What a task process owns: objects themselves (the per-object log) or the partitions
/// that hold them (the partitioned log), so an object's delivery runs where it is numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Each object is owned on its own.
    PerObject,
    /// Objects are owned with their partition.
    Partitioned {
        /// Partitions of the inbox topic.
        inbox: u32,
        /// Partitions of the groups topic.
        groups: u32,
    },
}

impl Placement {
    /// The name ownership is decided on for `object` (rendezvous hashing over it).
    pub fn anchor(&self, object: &ObjectId) -> String {
        match self {
            Placement::PerObject => object.to_string(),
            Placement::Partitioned { inbox, groups } => {
                let partitions = match object {
                    ObjectId::User(_) => *inbox,
                    ObjectId::Group(_) => *groups,
                };
                LogPartition::of(object, partitions).to_string()
            }
        }
    }

    /// The owner among `nodes` of `anchor` (a name [`Placement::anchor`] gives): a log
    /// partition's from the spread of its stream ([`Placement::partition_owners`]), anything
    /// else's by rendezvous hashing.
    pub fn owner<'a, Node: AsRef<str>>(&self, anchor: &str, nodes: &'a [Node]) -> Option<&'a Node> {
        if let Ok(partition) = anchor.parse::<LogPartition>()
            && let Some(&(_, owner)) = self
                .partition_owners(nodes)
                .iter()
                .find(|(owned, _)| *owned == partition)
        {
            return nodes.get(owner);
        }
        ownership::owner(anchor, nodes)
    }

    /// Each partition with its owner among `nodes` (an index into them), each stream's
    /// partitions spread evenly over the nodes ([`ownership::spread`]); none without nodes
    /// or on the per-object log.
    pub fn partition_owners<Node: AsRef<str>>(&self, nodes: &[Node]) -> Vec<(LogPartition, usize)> {
        let mut owners = Vec::new();
        for stream in [Stream::Inbox, Stream::Groups] {
            let partitions: Vec<LogPartition> = self
                .partitions()
                .into_iter()
                .filter(|partition| partition.stream == stream)
                .collect();
            let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
            owners.extend(partitions.into_iter().zip(ownership::spread(&names, nodes)));
        }
        owners
    }

    /// Every partition, for the partitioned log (none otherwise).
    pub fn partitions(&self) -> Vec<LogPartition> {
        match self {
            Placement::PerObject => Vec::new(),
            Placement::Partitioned { inbox, groups } => (0..*inbox)
                .map(|index| LogPartition {
                    stream: Stream::Inbox,
                    index,
                })
                .chain((0..*groups).map(|index| LogPartition {
                    stream: Stream::Groups,
                    index,
                }))
                .collect(),
        }
    }
}

/// The text was not `inbox/<n>` or `groups/<n>`.
#[derive(Debug, thiserror::Error)]
#[error("not a log partition: {0:?} (expected inbox/<n> or groups/<n>)")]
pub struct ParsePartitionError(pub String);

impl FromStr for LogPartition {
    type Err = ParsePartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParsePartitionError(text.chars().take(64).collect());
        let (stream, index) = text.split_once('/').ok_or_else(error)?;
        let stream = match stream {
            "inbox" => Stream::Inbox,
            "groups" => Stream::Groups,
            _ => return Err(error()),
        };
        let index = index.parse().map_err(|_| error())?;
        Ok(LogPartition { stream, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_spread_evenly_over_the_partitions() {
        let mut counts = [0usize; 64];
        for id in 0..64_000 {
            counts[partition_of(&format!("user:{id}"), 64) as usize] += 1;
        }
        for count in counts {
            assert!((800..1_200).contains(&count), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn partition_names_round_trip() {
        let partition = LogPartition::of(&ObjectId::User(1), 64);
        assert_eq!(partition.to_string(), "inbox/43");
        assert_eq!("inbox/43".parse::<LogPartition>().unwrap(), partition);
        assert_eq!(
            LogPartition::of(&ObjectId::Group(7), 64).to_string(),
            "groups/3"
        );
        for bad in ["inbox", "inbox/x", "users/1", "inbox/-1", ""] {
            assert!(bad.parse::<LogPartition>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn each_stream_is_spread_over_the_nodes_on_its_own() {
        let placement = Placement::Partitioned {
            inbox: 4,
            groups: 4,
        };
        let nodes = ["task-1", "task-2"];
        let owners = placement.partition_owners(&nodes);
        assert_eq!(owners.len(), 8);
        for stream in [Stream::Inbox, Stream::Groups] {
            let on_first = owners
                .iter()
                .filter(|(partition, owner)| partition.stream == stream && *owner == 0)
                .count();
            assert_eq!(on_first, 2, "{stream:?} split unevenly: {owners:?}");
        }
        for (partition, owner) in &owners {
            assert_eq!(
                placement.owner(&partition.to_string(), &nodes),
                Some(&nodes[*owner])
            );
        }
        // An object's name (the per-object log) and a partition past the count go by
        // rendezvous.
        for anchor in ["user:1", "inbox/9"] {
            assert_eq!(
                placement.owner(anchor, &nodes),
                ownership::owner(anchor, &nodes)
            );
        }
        assert!(placement.partition_owners::<&str>(&[]).is_empty());
        assert!(Placement::PerObject.partition_owners(&nodes).is_empty());
    }

    #[test]
    fn the_placement_is_stable_across_builds() {
        // Fixed values: a change of hash function would move every object's log between
        // partitions, and a cluster's logs with them.
        assert_eq!(partition_of("user:1", 64), 43);
        assert_eq!(partition_of("group:7", 64), 3);
        assert_eq!(partition_of("user:7530843127888744448", 64), 16);
        assert_eq!(partition_of("group:7", 1), 0);
        assert_eq!(partition_of("group:7", 0), 0, "no partitions counts as one");
    }
}
