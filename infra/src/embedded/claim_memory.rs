//! The embedded de-duplication memory: the newest claims exactly, older ones as fingerprints.
//!
//! A send's claim is kept for a whole day, and keeping each one exactly (its key and the answer
//! a retry gets, some 200 bytes) grew the process by gigabytes a day under steady traffic. Only
//! the newest claims are kept exactly; an older completed claim leaves a 64-bit fingerprint of
//! its key behind, in hourly generations that are sealed into binary fuse filters (about
//! 9 bits a key). A claim whose key matches a fingerprint comes back as
//! [`Claim::Forgotten`]: the caller finds the first answer in its durable record. A key that
//! matches none was never completed here, so a new send costs no lookup at all; a false match
//! (under 0.4% of new keys in a sealed hour) costs one lookup that finds nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use xorf::{BinaryFuse8, Filter};

use crate::sessions::Claim;

/// Completed claims kept exactly before the oldest is reduced to a fingerprint: some 20 MB.
pub const EXACT_CLAIMS: usize = 65_536;

/// How long one generation of fingerprints collects keys before it is sealed.
const GENERATION: Duration = Duration::from_secs(3600);

/// Claims held exactly before expired ones are first swept out.
const MIN_SWEEP: usize = 4096;

/// Claims by key: the newest exactly, older completed ones by fingerprint.
#[derive(Debug)]
pub struct ClaimMemory {
    /// Key → (its state, expiry).
    exact: HashMap<String, (Held, Instant)>,
    /// Completed keys, oldest first, with the expiry they were completed with; a key whose
    /// entry has since changed is skipped when it comes up.
    completed: VecDeque<(String, Instant)>,
    /// The number of exact claims at which expired ones are next swept out.
    sweep_at: usize,
    /// How many completed claims are kept exactly.
    exact_capacity: usize,
    /// Fingerprints of completed claims no longer held exactly.
    fingerprints: Fingerprints,
    /// Keys are hashed with a per-process random key, so nobody can choose keys that collide.
    hasher: std::collections::hash_map::RandomState,
    /// When this memory began (unix ms), told to claimants of keys it never saw.
    remembered_since: i64,
}

impl ClaimMemory {
    /// An empty memory that began at `remembered_since` (unix ms) and keeps `exact_capacity`
    /// completed claims exactly.
    pub fn new(remembered_since: i64, exact_capacity: usize) -> Self {
        ClaimMemory {
            exact: HashMap::new(),
            completed: VecDeque::new(),
            sweep_at: 0,
            exact_capacity: exact_capacity.max(1),
            fingerprints: Fingerprints::default(),
            hasher: std::collections::hash_map::RandomState::new(),
            remembered_since,
        }
    }

    /// Claims `key` as `holder` for `ttl` unless it is held or was completed (see [`Claim`]).
    pub fn claim(&mut self, key: &str, holder: &str, ttl: Duration, now: Instant) -> Claim {
        if self.exact.len() > self.sweep_at.max(MIN_SWEEP) {
            // Expired claims are dropped in passing, and the next sweep waits until the map
            // has doubled again, so a sweep costs each claim a constant share.
            self.exact.retain(|_, (_, expiry)| *expiry > now);
            self.sweep_at = self.exact.len() * 2;
        }
        match self.exact.get(key) {
            Some((Held::Done(value), expiry)) if *expiry > now => {
                return Claim::Done(value.clone());
            }
            Some((Held::Pending(holder), expiry)) if *expiry > now => {
                return Claim::Pending {
                    holder: holder.clone(),
                };
            }
            _ => {}
        }
        self.exact.insert(
            key.to_string(),
            (Held::Pending(holder.to_string()), now + ttl),
        );
        if self.fingerprints.contains(self.fingerprint(key), now) {
            Claim::Forgotten
        } else {
            Claim::New {
                remembered_since: self.remembered_since,
            }
        }
    }

    /// Takes `key` over from `previous` as `holder` for `ttl` if `previous` still holds it
    /// pending.
    pub fn take_over(
        &mut self,
        key: &str,
        previous: &str,
        holder: &str,
        ttl: Duration,
        now: Instant,
    ) -> bool {
        match self.exact.get_mut(key) {
            Some((Held::Pending(current), expiry)) if current == previous && *expiry > now => {
                *current = holder.to_string();
                *expiry = now + ttl;
                true
            }
            _ => false,
        }
    }

    /// Completes `key` with `value` for `ttl`; the oldest exact claim beyond capacity leaves
    /// its fingerprint behind.
    pub fn complete(&mut self, key: &str, value: &str, ttl: Duration, now: Instant) {
        let expiry = now + ttl;
        self.exact
            .insert(key.to_string(), (Held::Done(value.to_string()), expiry));
        self.completed.push_back((key.to_string(), expiry));
        while self.completed.len() > self.exact_capacity {
            let Some((oldest, completed_expiry)) = self.completed.pop_front() else {
                break;
            };
            let current = matches!(
                self.exact.get(&oldest),
                Some((Held::Done(_), expiry)) if *expiry == completed_expiry
            );
            if current {
                self.exact.remove(&oldest);
                if completed_expiry > now {
                    let fingerprint = self.fingerprint(&oldest);
                    self.fingerprints.insert(fingerprint, completed_expiry, now);
                }
            }
        }
    }

    /// When this memory began (unix ms).
    pub fn remembered_since(&self) -> i64 {
        self.remembered_since
    }

    /// Gives up `key`, so a retry can claim it anew.
    pub fn abandon(&mut self, key: &str) {
        self.exact.remove(key);
    }

    fn fingerprint(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }
}

/// An exact claim's state.
#[derive(Debug, PartialEq)]
enum Held {
    /// Being worked on by this holder.
    Pending(String),
    /// Completed with this answer.
    Done(String),
}

/// Fingerprints in generations: the open one exact, the sealed ones as filters.
#[derive(Debug, Default)]
struct Fingerprints {
    /// The generation collecting fingerprints now.
    open: HashSet<u64>,
    /// When the open generation began; none while it is empty.
    open_since: Option<Instant>,
    /// The latest expiry in the open generation.
    open_expiry: Option<Instant>,
    /// Sealed generations, oldest first.
    sealed: VecDeque<Sealed>,
}

/// One sealed generation and when its last fingerprint expires.
#[derive(Debug)]
struct Sealed {
    set: SealedSet,
    expiry: Instant,
}

/// A sealed generation's fingerprints.
#[derive(Debug)]
enum SealedSet {
    /// About 9 bits a fingerprint.
    Filter(BinaryFuse8),
    /// Sorted, for the rare set a filter cannot be built from.
    Sorted(Box<[u64]>),
}

impl Fingerprints {
    fn insert(&mut self, fingerprint: u64, expiry: Instant, now: Instant) {
        if self
            .open_since
            .is_some_and(|since| now.duration_since(since) >= GENERATION)
        {
            self.seal();
            // Expired generations go when a new one is sealed; until then `contains` skips
            // them. Each carries its own latest expiry.
            self.sealed.retain(|sealed| sealed.expiry > now);
        }
        self.open_since.get_or_insert(now);
        self.open_expiry = self.open_expiry.max(Some(expiry));
        self.open.insert(fingerprint);
    }

    fn contains(&self, fingerprint: u64, now: Instant) -> bool {
        self.open.contains(&fingerprint)
            || self.sealed.iter().any(|sealed| {
                sealed.expiry > now
                    && match &sealed.set {
                        SealedSet::Filter(filter) => filter.contains(&fingerprint),
                        SealedSet::Sorted(sorted) => sorted.binary_search(&fingerprint).is_ok(),
                    }
            })
    }

    fn seal(&mut self) {
        let keys: Vec<u64> = std::mem::take(&mut self.open).into_iter().collect();
        self.open_since = None;
        let Some(expiry) = self.open_expiry.take() else {
            return;
        };
        let set = match BinaryFuse8::try_from(keys.as_slice()) {
            Ok(filter) => SealedSet::Filter(filter),
            Err(_) => {
                let mut sorted = keys;
                sorted.sort_unstable();
                SealedSet::Sorted(sorted.into_boxed_slice())
            }
        };
        self.sealed.push_back(Sealed { set, expiry });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const PENDING: Duration = Duration::from_secs(60);

    fn complete_new(memory: &mut ClaimMemory, key: &str, now: Instant) {
        // A fresh key may falsely match a sealed filter, never an exact claim.
        assert!(matches!(
            memory.claim(key, "me", PENDING, now),
            Claim::New { .. } | Claim::Forgotten
        ));
        memory.complete(key, &format!("answer {key}"), DAY, now);
    }

    #[test]
    fn the_newest_claims_are_answered_from_memory() {
        let now = Instant::now();
        let mut memory = ClaimMemory::new(7, 4);
        assert_eq!(
            memory.claim("a", "me", PENDING, now),
            Claim::New {
                remembered_since: 7
            }
        );
        assert_eq!(
            memory.claim("a", "other", PENDING, now),
            Claim::Pending {
                holder: "me".into()
            }
        );
        // Only the holder named can be taken over from.
        assert!(!memory.take_over("a", "other", "third", PENDING, now));
        assert!(memory.take_over("a", "me", "other", PENDING, now));
        assert_eq!(
            memory.claim("a", "me", PENDING, now),
            Claim::Pending {
                holder: "other".into()
            }
        );
        memory.complete("a", "first", DAY, now);
        assert!(!memory.take_over("a", "other", "third", PENDING, now));
        assert_eq!(
            memory.claim("a", "me", PENDING, now),
            Claim::Done("first".into())
        );
        memory.abandon("b");
        assert!(matches!(
            memory.claim("b", "me", PENDING, now),
            Claim::New { .. }
        ));
        memory.abandon("b");
        assert!(matches!(
            memory.claim("b", "me", PENDING, now),
            Claim::New { .. }
        ));
    }

    #[test]
    fn older_claims_are_forgotten_but_not_unknown() {
        let start = Instant::now();
        let mut memory = ClaimMemory::new(0, 2);
        for (index, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            complete_new(&mut memory, key, start + Duration::from_secs(index as u64));
        }
        let now = start + Duration::from_secs(10);
        // Two are held exactly, the two older ones only as fingerprints.
        assert_eq!(
            memory.claim("d", "me", PENDING, now),
            Claim::Done("answer d".into())
        );
        assert_eq!(
            memory.claim("c", "me", PENDING, now),
            Claim::Done("answer c".into())
        );
        assert_eq!(memory.claim("a", "me", PENDING, now), Claim::Forgotten);
        assert_eq!(memory.claim("b", "me", PENDING, now), Claim::Forgotten);
        assert_eq!(
            memory.claim("a", "me", PENDING, now),
            Claim::Pending {
                holder: "me".into()
            }
        );
        assert!(matches!(
            memory.claim("e", "me", PENDING, now),
            Claim::New { .. }
        ));
    }

    #[test]
    fn sealed_generations_still_know_their_keys_until_they_expire() {
        let start = Instant::now();
        let mut memory = ClaimMemory::new(0, 1);
        let keys: Vec<String> = (0..5000).map(|index| format!("old-{index}")).collect();
        for key in &keys {
            complete_new(&mut memory, key, start);
        }
        // An hour later the first generation is sealed into a filter.
        let later = start + GENERATION + Duration::from_secs(1);
        for index in 0..5000 {
            complete_new(&mut memory, &format!("new-{index}"), later);
        }
        assert_eq!(memory.fingerprints.sealed.len(), 1);
        assert!(matches!(
            memory.fingerprints.sealed[0].set,
            SealedSet::Filter(_)
        ));
        let check = later + Duration::from_secs(1);
        for key in keys.iter().take(4999) {
            assert_eq!(
                memory.claim(key, "me", PENDING, check),
                Claim::Forgotten,
                "{key}"
            );
        }
        let unseen = (0..10_000)
            .filter(|index| {
                matches!(
                    memory.claim(&format!("unseen-{index}"), "me", PENDING, check),
                    Claim::Forgotten
                )
            })
            .count();
        assert!(unseen < 100, "{unseen} of 10,000 unseen keys matched");
        // Once the day is over that generation is dropped; the next is sealed and kept.
        let expired = start + DAY + Duration::from_secs(1);
        memory.complete("late", "x", DAY, expired);
        assert_eq!(memory.fingerprints.sealed.len(), 1);
        let remembered = keys
            .iter()
            .filter(|key| memory.claim(key, "me", PENDING, expired) == Claim::Forgotten)
            .count();
        assert!(remembered < 100, "{remembered} expired keys still matched");
    }
}
