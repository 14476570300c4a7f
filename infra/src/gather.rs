//! Items that go out together: while a few calls are out, what arrives waits and goes in the
//! next one, so a busy caller makes one call for many items and an idle one adds no delay.
//! The callers own the sending: they start a sender when [`Gatherer::push`] says so, and it
//! sends what [`Gatherer::take`] gives until that is nothing.

use std::sync::{Mutex, MutexGuard};

/// Waiting items, and how many senders take them.
#[derive(Debug)]
pub struct Gatherer<T> {
    state: Mutex<Gathered<T>>,
    /// The most senders (calls out) at once.
    senders_at_most: usize,
}

#[derive(Debug)]
struct Gathered<T> {
    waiting: Vec<T>,
    senders: usize,
}

impl<T> Gatherer<T> {
    /// A gatherer letting `senders_at_most` senders (at least one) run at once.
    pub fn new(senders_at_most: usize) -> Self {
        Gatherer {
            state: Mutex::new(Gathered {
                waiting: Vec::new(),
                senders: 0,
            }),
            senders_at_most: senders_at_most.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, Gathered<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds items to what waits; true when the caller must start a sender (fewer than the
    /// most are running, and this one is now counted).
    pub fn push(&self, items: impl IntoIterator<Item = T>) -> bool {
        let mut state = self.state();
        state.waiting.extend(items);
        let start = state.senders < self.senders_at_most;
        if start {
            state.senders += 1;
        }
        start
    }

    /// Everything waiting, for a sender to send; None when nothing waits, and the sender
    /// asking is then counted out and must stop.
    pub fn take(&self) -> Option<Vec<T>> {
        let mut state = self.state();
        if state.waiting.is_empty() {
            state.senders -= 1;
            return None;
        }
        Some(std::mem::take(&mut state.waiting))
    }
}

/// The bytes one gathered call carries at most, well under gRPC's default limit of 4 MiB a
/// message: past that the receiver would refuse the whole call, and every item in it.
pub const MOST_CALL_BYTES: usize = 1024 * 1024;

/// How many of `items`, from the first, go in one call of at most `most` bytes (by `size`):
/// at least one, so an item larger than that goes alone.
pub fn fitting<T>(items: &[T], most: usize, size: impl Fn(&T) -> usize) -> usize {
    let mut bytes = 0;
    let mut taken = 0;
    for item in items {
        let item_bytes = size(item);
        if taken > 0 && bytes + item_bytes > most {
            break;
        }
        bytes += item_bytes;
        taken += 1;
    }
    taken
}

/// Splits taken items into calls of at most `most` bytes each (by `size`), in order; an item
/// larger than that goes alone.
pub fn split_by_size<T>(mut items: Vec<T>, most: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut calls = Vec::new();
    while !items.is_empty() {
        let rest = items.split_off(fitting(&items, most, &size));
        calls.push(std::mem::replace(&mut items, rest));
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_split_by_size_in_order_and_a_large_item_goes_alone() {
        let sizes = vec![400, 400, 300, 2_000, 100, 100];
        let calls = split_by_size(sizes, 1_000, |size| *size);
        assert_eq!(
            calls,
            [vec![400, 400], vec![300], vec![2_000], vec![100, 100]]
        );
        assert!(split_by_size(Vec::<usize>::new(), 10, |size| *size).is_empty());
    }

    #[test]
    fn senders_are_started_up_to_the_most_and_stop_when_nothing_waits() {
        let gatherer = Gatherer::new(2);
        assert!(gatherer.push([1]), "the first sender starts");
        assert!(gatherer.push([2]), "a second one may run");
        assert!(!gatherer.push([3]), "a third waits for them");
        assert_eq!(gatherer.take(), Some(vec![1, 2, 3]), "one call takes all");
        assert_eq!(gatherer.take(), None, "the first sender stops");
        assert!(gatherer.push([4]), "a sender's place is free again");
        assert_eq!(gatherer.take(), Some(vec![4]));
        assert_eq!(gatherer.take(), None);
        assert_eq!(gatherer.take(), None, "the last sender stops");
        assert!(gatherer.push([5]) && gatherer.push([6]) && !gatherer.push([7]));
    }
}
