//! The `Sessions` port: who is connected where, object locks, de-duplication claims, per-node
//! group online counts and the presence-event queue.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::InfraResult;

/// One live connection of a user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionRef {
    /// The connect node holding it.
    pub node: String,
    /// The connection's id on that node.
    pub connection_id: u64,
}

/// The state of a de-duplication claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nobody held the key; the caller now does and must `complete` or `abandon` it.
    New {
        /// Claims completed from this time on (unix ms) are remembered here; an older one
        /// may have been forgotten (natter's or Redis's memory restarted), so a caller that
        /// must not repeat older work checks its durable record too.
        remembered_since: i64,
    },
    /// Nobody holds the key now and the caller does, but it may have been completed before
    /// with an answer this memory no longer keeps: the caller looks in its durable record.
    Forgotten,
    /// Someone holds it and has not finished: `holder`, as it claimed the key.
    Pending {
        /// Who is working on it (see [`Sessions::claim`]).
        holder: String,
    },
    /// It was completed with this value.
    Done(String),
}

/// A user came online (first connection) or went offline (last connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceEvent {
    /// The user whose presence changed.
    pub user: i64,
    /// True if the user came online, false if they went offline.
    pub online: bool,
    /// The connect node that saw the change.
    pub node: String,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// Shared, expiring, fast state.
#[async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Record a connection of `user`.
    async fn add_session(&self, user: i64, session: &SessionRef) -> InfraResult<()>;
    /// Forget a connection of `user`.
    async fn remove_session(&self, user: i64, session: &SessionRef) -> InfraResult<()>;
    /// Every connection of `user`.
    async fn sessions(&self, user: i64) -> InfraResult<Vec<SessionRef>>;
    /// The users among `users` with at least one connection, in the order given.
    async fn online_among(&self, users: &[i64]) -> InfraResult<Vec<i64>>;
    /// Record what `user`'s friends were last told (online or not); true if that changed it.
    /// A user never recorded counts as offline.
    async fn set_announced_presence(&self, user: i64, online: bool) -> InfraResult<bool>;
    /// Forget every session held on `node` (it stopped or died); returns the users who had
    /// one there, ascending, once each.
    async fn remove_node_sessions(&self, node: &str) -> InfraResult<Vec<i64>>;
    /// How many connections `node` holds, as recorded here.
    async fn node_session_count(&self, node: &str) -> InfraResult<u64>;

    /// Take `key` with `token` for `ttl` unless someone holds it; true if taken.
    async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> InfraResult<bool>;
    /// Release `key` only if `token` still holds it; true if released.
    async fn release_lock(&self, key: &str, token: &str) -> InfraResult<bool>;
    /// Releases each lock of `locks` (key, token) as [`Sessions::release_lock`] does, in one
    /// trip where the backend has trips; answers in the order of `locks`.
    async fn release_locks(&self, locks: &[(String, String)]) -> InfraResult<Vec<bool>> {
        let mut released = Vec::with_capacity(locks.len());
        for (key, token) in locks {
            released.push(self.release_lock(key, token).await?);
        }
        Ok(released)
    }
    /// The token holding `key`, if the lock is held and unexpired.
    async fn lock_holder(&self, key: &str) -> InfraResult<Option<String>>;

    /// When this memory began (unix ms). A store that lost everything (Redis restarted without
    /// persistence) begins anew, so a caller that sees the time change knows its sessions and
    /// claims are gone and registers them again.
    async fn memory_began(&self) -> InfraResult<i64>;

    /// Claim a de-duplication key for `ttl` as `holder` (who works on it: a claimant that
    /// finds it pending is told, and may take it over once the holder is known to be gone).
    async fn claim(&self, key: &str, holder: &str, ttl: Duration) -> InfraResult<Claim>;
    /// Whether a call goes to another process (Redis), so that gathering calls saves trips;
    /// a backend in this process answers at once and gains nothing from waiting.
    fn is_remote(&self) -> bool {
        false
    }
    /// Claims each of `keys` as [`Sessions::claim`] does, in order (a key named twice finds
    /// itself pending the second time), in one trip where the backend has trips; answers in
    /// the order of `keys`.
    async fn claim_many(
        &self,
        keys: &[String],
        holder: &str,
        ttl: Duration,
    ) -> InfraResult<Vec<Claim>> {
        let mut claims = Vec::with_capacity(keys.len());
        for key in keys {
            claims.push(self.claim(key, holder, ttl).await?);
        }
        Ok(claims)
    }
    /// Take over `key`, pending by `previous` (known to be gone), as `holder` for `ttl`; false
    /// if it is no longer `previous`'s pending claim.
    async fn take_over_claim(
        &self,
        key: &str,
        previous: &str,
        holder: &str,
        ttl: Duration,
    ) -> InfraResult<bool>;
    /// Finish a claim with the value later claimants get, kept for `ttl`.
    async fn complete_claim(&self, key: &str, value: &str, ttl: Duration) -> InfraResult<()>;
    /// Finishes each claim of `entries` (key, value) as [`Sessions::complete_claim`] does, in
    /// one trip where the backend has trips.
    async fn complete_many(&self, entries: &[(String, String)], ttl: Duration) -> InfraResult<()> {
        for (key, value) in entries {
            self.complete_claim(key, value, ttl).await?;
        }
        Ok(())
    }
    /// Give a claim up (the work failed), so a retry can claim it anew.
    async fn abandon_claim(&self, key: &str) -> InfraResult<()>;

    /// Set `node`'s count of online members of `group`, valid for `ttl` (a dead node's counts expire); a count of 0 removes it.
    async fn set_group_online(
        &self,
        node: &str,
        group: i64,
        count: u64,
        ttl: Duration,
    ) -> InfraResult<()>;
    /// Online members of `group`: the sum over nodes of their unexpired counts.
    async fn group_online(&self, group: i64) -> InfraResult<u64>;

    /// Append a presence event to the shared queue.
    async fn push_presence(&self, event: &PresenceEvent) -> InfraResult<()>;
    /// Take up to `max` presence events, oldest first; each event is taken by exactly one caller.
    async fn take_presence(&self, max: usize) -> InfraResult<Vec<PresenceEvent>>;
}
