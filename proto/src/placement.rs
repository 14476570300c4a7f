//! Which partition of a shared log topic holds an object: CityHash64 of the object's name
//! modulo the partition count, so every process (logic producing, task consuming) places an
//! object alike without asking anyone.

/// The partition (0-based) of `object` among `partitions`; `partitions` of 0 counts as 1.
pub fn partition_of(object: &str, partitions: u32) -> u32 {
    let hash = cityhasher::hash::<u64>(object.as_bytes());
    (hash % u64::from(partitions.max(1))) as u32
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
