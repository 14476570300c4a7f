//! Snowflake ids: 42 bits of milliseconds, 10 bits of node id, 12 bits of sequence.

use std::sync::Mutex;
use std::time::Duration;

use snowflaked::sync::Generator;

use crate::error::{InfraError, InfraResult};
use crate::now_millis;

/// Largest node id a snowflake can carry.
pub const MAX_NODE_ID: u16 = 1023;

/// How far back the clock may step before minting fails instead of waiting.
const MAX_WAIT_FOR_CLOCK: Duration = Duration::from_secs(2);

/// Bits below the milliseconds of an id: node id and sequence.
const TIME_SHIFT: u32 = 22;

/// The smallest id any node can mint at unix millisecond `millis` (ids count milliseconds
/// from the unix epoch, snowflaked's default): every id minted before it is smaller.
pub fn first_id_at(millis: i64) -> u64 {
    (millis.max(0) as u64) << TIME_SHIFT
}

/// Mints unique, time-ordered ids for one node.
#[derive(Debug)]
pub struct IdGenerator {
    generator: Generator,
    /// The newest millisecond handed out; snowflaked panics if the clock goes below it, so
    /// every call checks first under this lock.
    newest_millis: Mutex<i64>,
}

impl IdGenerator {
    /// A generator for `node_id` (at most [`MAX_NODE_ID`]).
    pub fn new(node_id: u16) -> Option<Self> {
        Some(IdGenerator {
            generator: Generator::new_checked(node_id)?,
            newest_millis: Mutex::new(0),
        })
    }

    /// The next id; waits out a small backward clock step, fails on a large one.
    pub fn next_id(&self) -> InfraResult<u64> {
        let mut newest = self
            .newest_millis
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut now = now_millis();
        if now < *newest {
            let behind = (*newest - now) as u64;
            if Duration::from_millis(behind) > MAX_WAIT_FOR_CLOCK {
                return Err(InfraError::ClockStepBack(behind));
            }
            std::thread::sleep(Duration::from_millis(behind + 1));
            now = now_millis();
            if now < *newest {
                return Err(InfraError::ClockStepBack((*newest - now) as u64));
            }
        }
        let id: u64 = self.generator.generate();
        // The generator may have moved to the next millisecond when a sequence ran out.
        *newest = now.max((id >> TIME_SHIFT) as i64);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_increasing_and_carry_the_node() {
        let generator = IdGenerator::new(5).unwrap();
        let mut previous = 0;
        for _ in 0..10_000 {
            let id = generator.next_id().unwrap();
            assert!(id > previous);
            assert_eq!((id >> 12) & 0x3ff, 5);
            previous = id;
        }
        assert!(IdGenerator::new(MAX_NODE_ID + 1).is_none());
    }

    #[test]
    fn an_id_lies_between_the_first_ids_of_the_milliseconds_around_its_minting() {
        let generator = IdGenerator::new(MAX_NODE_ID).unwrap();
        let before = now_millis();
        let id = generator.next_id().unwrap();
        let after = now_millis();
        assert!(first_id_at(before) <= id, "{id} minted after {before}");
        assert!(id < first_id_at(after + 1), "{id} minted by {after}");
    }
}
