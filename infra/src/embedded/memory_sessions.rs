//! `Sessions` in process memory: maps under one mutex, expiry checked on read.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::InfraResult;
use crate::sessions::{Claim, PresenceEvent, SessionRef, Sessions};

/// Everything the memory sessions hold.
#[derive(Debug, Default)]
struct State {
    /// Connections per user.
    sessions: HashMap<i64, BTreeSet<SessionRef>>,
    /// Lock key → (token, expiry).
    locks: HashMap<String, (String, Instant)>,
    /// Claim key → (value once completed, expiry).
    claims: HashMap<String, (Option<String>, Instant)>,
    /// The number of claims at which expired ones are next swept out.
    claims_sweep_at: usize,
    /// Group → node → (online members counted there, expiry).
    group_online: HashMap<i64, HashMap<String, (u64, Instant)>>,
    /// Users whose friends were last told they are online.
    announced_online: std::collections::HashSet<i64>,
    /// Presence events not yet taken, oldest first.
    presence: VecDeque<PresenceEvent>,
}

/// Claims held before expired ones are first swept out.
const MIN_CLAIMS_SWEEP: usize = 4096;

/// Sessions for the embedded, single-process deployment.
#[derive(Debug)]
pub struct MemorySessions {
    state: Mutex<State>,
    /// When this memory began (unix ms): claims completed before it are not in it.
    remembered_since: i64,
}

impl Default for MemorySessions {
    fn default() -> Self {
        MemorySessions {
            state: Mutex::default(),
            remembered_since: crate::now_millis(),
        }
    }
}

impl MemorySessions {
    /// Empty sessions, remembering claims from now on.
    pub fn new() -> Self {
        Self::default()
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
        Ok(self.remembered_since)
    }

    async fn claim(&self, key: &str, ttl: Duration) -> InfraResult<Claim> {
        let mut state = self.state();
        let now = Instant::now();
        if state.claims.len() > state.claims_sweep_at.max(MIN_CLAIMS_SWEEP) {
            // Expired claims are dropped in passing, and the next sweep waits until the map
            // has doubled again: sweeping on every claim once past a size made each send cost
            // a pass over every claim of the last day.
            state.claims.retain(|_, (_, expiry)| *expiry > now);
            state.claims_sweep_at = state.claims.len() * 2;
        }
        match state.claims.get(key) {
            Some((Some(value), expiry)) if *expiry > now => Ok(Claim::Done(value.clone())),
            Some((None, expiry)) if *expiry > now => Ok(Claim::Pending),
            _ => {
                state.claims.insert(key.to_string(), (None, now + ttl));
                Ok(Claim::New {
                    remembered_since: self.remembered_since,
                })
            }
        }
    }

    async fn complete_claim(&self, key: &str, value: &str, ttl: Duration) -> InfraResult<()> {
        self.state().claims.insert(
            key.to_string(),
            (Some(value.to_string()), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn abandon_claim(&self, key: &str) -> InfraResult<()> {
        self.state().claims.remove(key);
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
