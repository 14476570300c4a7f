//! `Sessions` in process memory: maps under one mutex, expiry checked on read.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::claim_memory::{ClaimMemory, EXACT_CLAIMS};
use crate::error::InfraResult;
use crate::sessions::{Claim, PresenceEvent, SessionRef, Sessions};

/// Everything the memory sessions hold.
#[derive(Debug, Default)]
struct State {
    /// Connections per user.
    sessions: HashMap<i64, BTreeSet<SessionRef>>,
    /// Lock key → (token, expiry).
    locks: HashMap<String, (String, Instant)>,
    /// Group → node → (online members counted there, expiry).
    group_online: HashMap<i64, HashMap<String, (u64, Instant)>>,
    /// Users whose friends were last told they are online.
    announced_online: std::collections::HashSet<i64>,
    /// Presence events not yet taken, oldest first.
    presence: VecDeque<PresenceEvent>,
}

/// Sessions for the embedded, single-process deployment.
#[derive(Debug)]
pub struct MemorySessions {
    state: Mutex<State>,
    /// De-duplication claims, under a lock of their own: every send takes it. They also
    /// know when this memory began: claims completed before it are not in it.
    claims: Mutex<ClaimMemory>,
}

impl Default for MemorySessions {
    fn default() -> Self {
        Self::with_exact_claims(EXACT_CLAIMS)
    }
}

impl MemorySessions {
    /// Empty sessions, remembering claims from now on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty sessions that keep `exact_claims` completed claims exactly and older ones as
    /// fingerprints (see [`ClaimMemory`]).
    pub fn with_exact_claims(exact_claims: usize) -> Self {
        MemorySessions {
            state: Mutex::default(),
            claims: Mutex::new(ClaimMemory::new(crate::now_millis(), exact_claims)),
        }
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, ClaimMemory> {
        // As with the other maps, a poisoned lock is taken over: at worst a retry is looked
        // up in the durable record.
        self.claims
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave these maps half-updated in a way that
        // matters more than losing every session, so a poisoned lock is simply taken over.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Sessions for MemorySessions {
    async fn add_session(&self, user: i64, session: &SessionRef) -> InfraResult<()> {
        self.state()
            .sessions
            .entry(user)
            .or_default()
            .insert(session.clone());
        Ok(())
    }

    async fn remove_session(&self, user: i64, session: &SessionRef) -> InfraResult<()> {
        let mut state = self.state();
        if let Some(sessions) = state.sessions.get_mut(&user) {
            sessions.remove(session);
            if sessions.is_empty() {
                state.sessions.remove(&user);
            }
        }
        Ok(())
    }

    async fn sessions(&self, user: i64) -> InfraResult<Vec<SessionRef>> {
        Ok(self
            .state()
            .sessions
            .get(&user)
            .map(|sessions| sessions.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn online_among(&self, users: &[i64]) -> InfraResult<Vec<i64>> {
        let state = self.state();
        Ok(users
            .iter()
            .copied()
            .filter(|user| state.sessions.contains_key(user))
            .collect())
    }

    async fn set_announced_presence(&self, user: i64, online: bool) -> InfraResult<bool> {
        let mut state = self.state();
        Ok(if online {
            state.announced_online.insert(user)
        } else {
            state.announced_online.remove(&user)
        })
    }

    async fn remove_node_sessions(&self, node: &str) -> InfraResult<Vec<i64>> {
        let mut state = self.state();
        let mut users = Vec::new();
        state.sessions.retain(|user, sessions| {
            let before = sessions.len();
            sessions.retain(|session| session.node != node);
            if sessions.len() < before {
                users.push(*user);
            }
            !sessions.is_empty()
        });
        users.sort_unstable();
        Ok(users)
    }

    async fn node_session_count(&self, node: &str) -> InfraResult<u64> {
        let state = self.state();
        let held = state
            .sessions
            .values()
            .flatten()
            .filter(|session| session.node == node)
            .count();
        Ok(held as u64)
    }

    async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> InfraResult<bool> {
        let mut state = self.state();
        let now = Instant::now();
        match state.locks.get(key) {
            Some((_, expiry)) if *expiry > now => Ok(false),
            _ => {
                state
                    .locks
                    .insert(key.to_string(), (token.to_string(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release_lock(&self, key: &str, token: &str) -> InfraResult<bool> {
        let mut state = self.state();
        let held = matches!(
            state.locks.get(key),
            Some((holder, expiry)) if holder == token && *expiry > Instant::now()
        );
        if held {
            state.locks.remove(key);
        }
        Ok(held)
    }

    async fn lock_holder(&self, key: &str) -> InfraResult<Option<String>> {
        let mut state = self.state();
        match state.locks.get(key) {
            Some((holder, expiry)) if *expiry > Instant::now() => Ok(Some(holder.clone())),
            Some(_) => {
                state.locks.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn memory_began(&self) -> InfraResult<i64> {
        Ok(self.claims().remembered_since())
    }

    async fn claim(&self, key: &str, holder: &str, ttl: Duration) -> InfraResult<Claim> {
        Ok(self.claims().claim(key, holder, ttl, Instant::now()))
    }

    async fn take_over_claim(
        &self,
        key: &str,
        previous: &str,
        holder: &str,
        ttl: Duration,
    ) -> InfraResult<bool> {
        Ok(self
            .claims()
            .take_over(key, previous, holder, ttl, Instant::now()))
    }

    async fn complete_claim(&self, key: &str, value: &str, ttl: Duration) -> InfraResult<()> {
        self.claims().complete(key, value, ttl, Instant::now());
        Ok(())
    }

    async fn abandon_claim(&self, key: &str) -> InfraResult<()> {
        self.claims().abandon(key);
        Ok(())
    }

    async fn set_group_online(
        &self,
        node: &str,
        group: i64,
        count: u64,
        ttl: Duration,
    ) -> InfraResult<()> {
        let mut state = self.state();
        if count == 0 {
            if let Some(nodes) = state.group_online.get_mut(&group) {
                nodes.remove(node);
                if nodes.is_empty() {
                    state.group_online.remove(&group);
                }
            }
        } else {
            let expiry = Instant::now().checked_add(ttl).unwrap_or_else(far_future);
            state
                .group_online
                .entry(group)
                .or_default()
                .insert(node.to_string(), (count, expiry));
        }
        Ok(())
    }

    async fn group_online(&self, group: i64) -> InfraResult<u64> {
        let mut state = self.state();
        let now = Instant::now();
        let Some(nodes) = state.group_online.get_mut(&group) else {
            return Ok(0);
        };
        nodes.retain(|_, (_, expiry)| *expiry > now);
        let total = nodes
            .values()
            .fold(0u64, |total, (count, _)| total.saturating_add(*count));
        if nodes.is_empty() {
            state.group_online.remove(&group);
        }
        Ok(total)
    }

    async fn push_presence(&self, event: &PresenceEvent) -> InfraResult<()> {
        self.state().presence.push_back(event.clone());
        Ok(())
    }

    async fn take_presence(&self, max: usize) -> InfraResult<Vec<PresenceEvent>> {
        let mut state = self.state();
        let take = max.min(state.presence.len());
        Ok(state.presence.drain(..take).collect())
    }
}

/// An expiry for a ttl too long to add to now: about a century away.
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600))
        .unwrap_or(now)
}
