//! A group's online connections in one bucket: a doubly-linked list on slab indices, so a
//! connection joins in O(1), leaves in O(1) by the handle it kept, and a push walks the list
//! without allocating.

/// No slot: the end of the list, or the end of the free chain.
const NONE: u32 = u32::MAX;

/// Where an entry sits, kept by its owner to leave in O(1). A handle outlives its entry
/// harmlessly: once the slot is reused, the generation no longer matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListHandle {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Slot<T> {
    /// The entry, or None while the slot is on the free chain.
    value: Option<T>,
    /// Bumped each time the slot is freed, so old handles stop matching.
    generation: u32,
    prev: u32,
    /// The next entry of the list, or the next free slot.
    next: u32,
}

/// An insertion-ordered list with O(1) insert at the tail and O(1) removal by handle.
#[derive(Debug)]
pub struct GroupList<T> {
    slots: Vec<Slot<T>>,
    head: u32,
    tail: u32,
    free: u32,
    len: usize,
}

impl<T> Default for GroupList<T> {
    fn default() -> Self {
        GroupList {
            slots: Vec::new(),
            head: NONE,
            tail: NONE,
            free: NONE,
            len: 0,
        }
    }
}

impl<T> GroupList<T> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries in the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is left.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `value` at the tail; the handle removes it later.
    pub fn push_back(&mut self, value: T) -> ListHandle {
        let index = if self.free != NONE {
            let index = self.free;
            let slot = &mut self.slots[index as usize];
            self.free = slot.next;
            slot.value = Some(value);
            slot.prev = self.tail;
            slot.next = NONE;
            index
        } else {
            // More than 4 billion members of one group on one bucket is not a case to serve.
            let index = u32::try_from(self.slots.len()).unwrap_or(NONE - 1);
            self.slots.push(Slot {
                value: Some(value),
                generation: 0,
                prev: self.tail,
                next: NONE,
            });
            index
        };
        if self.tail == NONE {
            self.head = index;
        } else {
            self.slots[self.tail as usize].next = index;
        }
        self.tail = index;
        self.len += 1;
        ListHandle {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// Remove the entry `handle` points at; None if it is already gone.
    pub fn remove(&mut self, handle: ListHandle) -> Option<T> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        let (prev, next) = (slot.prev, slot.next);
        slot.generation = slot.generation.wrapping_add(1);
        slot.prev = NONE;
        slot.next = self.free;
        self.free = handle.index;
        if prev == NONE {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NONE {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.len -= 1;
        value
    }

    /// The entries from oldest to newest.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            list: self,
            at: self.head,
        }
    }
}

/// Walks a [`GroupList`] from head to tail.
#[derive(Debug)]
pub struct Iter<'list, T> {
    list: &'list GroupList<T>,
    at: u32,
}

impl<'list, T> Iterator for Iter<'list, T> {
    type Item = &'list T;

    fn next(&mut self) -> Option<&'list T> {
        let slot = self.list.slots.get(self.at as usize)?;
        self.at = slot.next;
        slot.value.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn removal_from_the_middle_ends_and_reuse() {
        let mut list = GroupList::new();
        let handles: Vec<ListHandle> = (0..5).map(|value| list.push_back(value)).collect();
        assert_eq!(list.remove(handles[2]), Some(2));
        assert_eq!(list.remove(handles[0]), Some(0));
        assert_eq!(list.remove(handles[4]), Some(4));
        assert_eq!(list.iter().copied().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(list.remove(handles[2]), None, "removing twice is a no-op");
        let reused = list.push_back(9);
        assert_eq!(
            list.remove(handles[4]),
            None,
            "a stale handle cannot remove a new entry"
        );
        assert_eq!(list.iter().copied().collect::<Vec<_>>(), [1, 3, 9]);
        assert_eq!(list.remove(reused), Some(9));
        assert_eq!(list.len(), 2);
    }

    #[derive(Clone, Debug)]
    enum Operation {
        Insert(u16),
        /// Remove the live entry at this position (modulo the count), if any.
        Remove(usize),
        /// Remove through a handle that was already used.
        RemoveStale(usize),
        Walk,
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            4 => any::<u16>().prop_map(Operation::Insert),
            3 => any::<usize>().prop_map(Operation::Remove),
            1 => any::<usize>().prop_map(Operation::RemoveStale),
            1 => Just(Operation::Walk),
        ]
    }

    proptest! {
        /// The list behaves like a plain vector of (handle, value) in insertion order.
        #[test]
        fn agrees_with_a_vector_model(operations in prop::collection::vec(operation(), 0..300)) {
            let mut list = GroupList::new();
            let mut model: Vec<(ListHandle, u16)> = Vec::new();
            let mut used: Vec<ListHandle> = Vec::new();
            for operation in operations {
                match operation {
                    Operation::Insert(value) => {
                        let handle = list.push_back(value);
                        prop_assert!(model.iter().all(|(live, _)| *live != handle));
                        model.push((handle, value));
                    }
                    Operation::Remove(position) => {
                        if !model.is_empty() {
                            let (handle, value) = model.remove(position % model.len());
                            prop_assert_eq!(list.remove(handle), Some(value));
                            used.push(handle);
                        }
                    }
                    Operation::RemoveStale(position) => {
                        if !used.is_empty() {
                            let handle = used[position % used.len()];
                            prop_assert_eq!(list.remove(handle), None);
                        }
                    }
                    Operation::Walk => {}
                }
                let walked: Vec<u16> = list.iter().copied().collect();
                let expected: Vec<u16> = model.iter().map(|(_, value)| *value).collect();
                prop_assert_eq!(walked, expected);
                prop_assert_eq!(list.len(), model.len());
                prop_assert_eq!(list.is_empty(), model.is_empty());
            }
        }
    }
}
