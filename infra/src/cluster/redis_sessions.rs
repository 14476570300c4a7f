//! `Sessions` on Redis through fred.
//!
//! Keys, all under a configurable prefix:
//! - `sessions:<user>`: a set of `<connection id>@<node>`, the user's connections;
//! - `announced:<user>`: `1` or `0`, what the user's friends were last told;
//! - `node-sessions:<node>`: a set of `<user>:<connection id>`, so a dead node's sessions can
//!   be removed without a scan;
//! - `lock:<key>`: `SET NX PX` with a token, released by compare-and-delete in Lua;
//! - `claim:<key>`: a de-duplication claim, [`PENDING`] and its holder until completed with
//!   its value;
//! - `group-online:<group>`: a hash of node → `<count>:<expires at, ms>`, each node's count
//!   of the group's online members, on Redis's clock (see [`SET_GROUP_ONLINE_SCRIPT`]);
//! - `presence`: a list of presence events, oldest first (see [`encode_presence`]); taking
//!   uses `LPOP key count`, so Redis 6.2 or newer is needed.

use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;

use crate::error::{InfraError, InfraResult};
use crate::sessions::{Claim, PresenceEvent, SessionRef, Sessions};

/// The start of a claim taken but not completed, followed by its holder. Completed values
/// never start so (it holds a NUL).
const PENDING: &str = "\u{0}pending:";

/// A pending claim's value.
fn pending(holder: &str) -> String {
    format!("{PENDING}{holder}")
}

/// Replaces KEYS[1] with ARGV[2] for ARGV[3] ms if it still holds ARGV[1]; 1 if it did.
const TAKE_OVER_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";

/// Deletes each of KEYS only if it still holds the caller's token, the ARGV of the same place;
/// answers 1 or 0 a key, whether it was released.
const RELEASE_SCRIPT: &str = "local released = {} for i, key in ipairs(KEYS) do if redis.call('GET', key) == ARGV[i] then released[i] = redis.call('DEL', key) else released[i] = 0 end end return released";

/// Lua that reads KEYS[1], the time from which this Redis remembers sessions and claims, into
/// `since`, setting it to ARGV[1] (now, unix ms) if it is missing: a Redis that lost its data
/// (restarted without persistence) begins remembering anew.
macro_rules! read_memory_began {
    () => {
        r#"
local since = redis.call('GET', KEYS[1])
if not since then
  since = ARGV[1]
  redis.call('SET', KEYS[1], since)
end
"#
    };
}

/// The time a memory marker holds (unix ms), as the scripts return it.
fn memory_marker(text: &str) -> InfraResult<i64> {
    text.parse()
        .map_err(|_| InfraError::Corrupt(format!("unreadable memory marker {text:?}")))
}

/// Returns when this Redis's memory began (see [`read_memory_began`]).
const MEMORY_BEGAN_SCRIPT: &str = concat!(read_memory_began!(), "return since");

/// Reads when this Redis's memory began (KEYS[1], see [`read_memory_began`]) and claims each of
/// KEYS[2..] in turn (pending, as ARGV[3], for ARGV[2] ms) unless it is held. Returns two values
/// a key: `1, since` when claimed, `0, value` (the pending marker or the answer) when held, and
/// `2, ''` when the key vanished between the refused `SET` and the `GET`.
const CLAIM_SCRIPT: &str = concat!(
    read_memory_began!(),
    r#"
local answers = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[3], 'PX', ARGV[2], 'NX') then
    answers[#answers + 1] = '1'
    answers[#answers + 1] = since
  else
    local value = redis.call('GET', KEYS[i])
    if value then
      answers[#answers + 1] = '0'
      answers[#answers + 1] = value
    else
      answers[#answers + 1] = '2'
      answers[#answers + 1] = ''
    end
  end
end
return answers
"#
);

/// Sets each of KEYS to the ARGV after the first (in order), expiring in ARGV[1] ms: claims
/// completed together.
const COMPLETE_SCRIPT: &str =
    "for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[1]) end return #KEYS";

/// Claims, completions or lock releases one script call takes at most: a script holds Redis
/// for its whole run.
const KEYS_PER_SCRIPT: usize = 256;

/// Sets (count > 0) or removes (count 0) one node's field of a group's online-count hash.
/// KEYS[1] is the hash; ARGV is node, count, ttl in ms. The expiry is reckoned on Redis's clock,
/// and the whole hash lives at least as long as its newest field, so abandoned groups vanish.
const SET_GROUP_ONLINE_SCRIPT: &str = r#"
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.format('%d', now + ttl))
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"#;

/// Sums the unexpired counts of a group's online-count hash, deleting expired fields (and any
/// field not in the `<count>:<expires at>` form, which can never be counted). KEYS[1] is the hash.
const GROUP_ONLINE_SCRIPT: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local count, expires = string.match(fields[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(expires) > now then
    total = total + tonumber(count)
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return total
"#;

/// The 1-based positions of the keys that name non-empty sets (users' sessions).
const ONLINE_AMONG_SCRIPT: &str = "local online = {} for i, key in ipairs(KEYS) do if redis.call('SCARD', key) > 0 then online[#online + 1] = i end end return online";

/// Users asked about in one `online_among` script call.
const ONLINE_AMONG_BATCH: usize = 500;

/// The longest ttl handed to the scripts (about 35,000 years), so the Lua arithmetic on
/// milliseconds stays exact.
const MAX_SCRIPT_TTL_MS: i64 = 1 << 50;

/// Connections kept open to Redis per process.
const POOL_SIZE: usize = 4;

impl From<fred::error::Error> for InfraError {
    fn from(error: fred::error::Error) -> Self {
        InfraError::Unavailable(format!("redis: {error}"))
    }
}

/// Sessions shared by every process of a cluster.
#[derive(Clone)]
pub struct RedisSessions {
    pool: Pool,
    prefix: String,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

impl RedisSessions {
    /// Connect to `url` (`redis://host:port/db`); every key starts with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> InfraResult<Self> {
        let config = Config::from_url(url)?;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|connection| {
                connection.connection_timeout = Duration::from_secs(5);
                connection.internal_command_timeout = Duration::from_secs(5);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
        let pool = builder.build_pool(POOL_SIZE)?;
        pool.init().await?;
        Ok(RedisSessions {
            pool,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, kind: &str, name: impl std::fmt::Display) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// The marker of when this Redis's memory began (see [`Sessions::memory_began`]).
    fn memory_key(&self) -> String {
        self.key("memory", "began")
    }

    fn presence_key(&self) -> String {
        format!("{}presence", self.prefix)
    }
}

/// A presence event as a list entry: `<user> <online 0|1> <at ms> <node>`, the node last so
/// that whatever it holds (spaces included) comes back intact.
fn encode_presence(event: &PresenceEvent) -> String {
    format!(
        "{} {} {} {}",
        event.user,
        u8::from(event.online),
        event.at_ms,
        event.node
    )
}

/// The inverse of [`encode_presence`]; `None` for anything it could not have written.
fn decode_presence(entry: &str) -> Option<PresenceEvent> {
    let mut parts = entry.splitn(4, ' ');
    let user = parts.next()?.parse().ok()?;
    let online = match parts.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let at_ms = parts.next()?.parse().ok()?;
    let node = parts.next()?.to_string();
    Some(PresenceEvent {
        user,
        online,
        node,
        at_ms,
    })
}

#[async_trait]
impl Sessions for RedisSessions {
    async fn add_session(&self, user: i64, session: &SessionRef) -> InfraResult<()> {
        let member = format!("{}@{}", session.connection_id, session.node);
        let _: i64 = self.pool.sadd(self.key("sessions", user), member).await?;
        let back = format!("{user}:{}", session.connection_id);
        let _: i64 = self
            .pool
            .sadd(self.key("node-sessions", &session.node), back)
            .await?;
        Ok(())
    }

    async fn remove_session(&self, user: i64, session: &SessionRef) -> InfraResult<()> {
        let member = format!("{}@{}", session.connection_id, session.node);
        let _: i64 = self.pool.srem(self.key("sessions", user), member).await?;
        let back = format!("{user}:{}", session.connection_id);
        let _: i64 = self
            .pool
            .srem(self.key("node-sessions", &session.node), back)
            .await?;
        Ok(())
    }

    async fn sessions(&self, user: i64) -> InfraResult<Vec<SessionRef>> {
        let members: Vec<String> = self.pool.smembers(self.key("sessions", user)).await?;
        Ok(members
            .iter()
            .filter_map(|member| {
                let (connection_id, node) = member.split_once('@')?;
                Some(SessionRef {
                    node: node.to_string(),
                    connection_id: connection_id.parse().ok()?,
                })
            })
            .collect())
    }

    async fn online_among(&self, users: &[i64]) -> InfraResult<Vec<i64>> {
        let mut online = Vec::new();
        for batch in users.chunks(ONLINE_AMONG_BATCH) {
            let keys: Vec<String> = batch
                .iter()
                .map(|user| self.key("sessions", user))
                .collect();
            let positions: Vec<usize> = self
                .pool
                .eval(ONLINE_AMONG_SCRIPT, keys, Vec::<String>::new())
                .await?;
            online.extend(
                positions
                    .into_iter()
                    .filter_map(|position| batch.get(position.checked_sub(1)?).copied()),
            );
        }
        Ok(online)
    }

    async fn set_announced_presence(&self, user: i64, online: bool) -> InfraResult<bool> {
        let value = if online { "1" } else { "0" };
        let previous: Option<String> = self
            .pool
            .set(self.key("announced", user), value, None, None, true)
            .await?;
        Ok(previous.as_deref().unwrap_or("0") != value)
    }

    async fn remove_node_sessions(&self, node: &str) -> InfraResult<Vec<i64>> {
        let index = self.key("node-sessions", node);
        let members: Vec<String> = self.pool.smembers(&index).await?;
        let mut users = Vec::new();
        for member in &members {
            let Some((user, connection_id)) = member.split_once(':') else {
                continue;
            };
            let session = format!("{connection_id}@{node}");
            let gone: i64 = self.pool.srem(self.key("sessions", user), session).await?;
            if let (true, Ok(user)) = (gone > 0, user.parse::<i64>()) {
                users.push(user);
            }
        }
        let _: i64 = self.pool.del(index).await?;
        users.sort_unstable();
        users.dedup();
        Ok(users)
    }

    async fn node_session_count(&self, node: &str) -> InfraResult<u64> {
        Ok(self.pool.scard(self.key("node-sessions", node)).await?)
    }

    async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> InfraResult<bool> {
        let set: Option<String> = self
            .pool
            .set(
                self.key("lock", key),
                token,
                Some(Expiration::PX(millis(ttl))),
                Some(SetOptions::NX),
                false,
            )
            .await?;
        Ok(set.is_some())
    }

    async fn release_lock(&self, key: &str, token: &str) -> InfraResult<bool> {
        let released = self
            .release_locks(&[(key.to_owned(), token.to_owned())])
            .await?;
        Ok(released.first() == Some(&true))
    }

    async fn release_locks(&self, locks: &[(String, String)]) -> InfraResult<Vec<bool>> {
        let mut released = Vec::with_capacity(locks.len());
        for chunk in locks.chunks(KEYS_PER_SCRIPT) {
            let keys: Vec<String> = chunk.iter().map(|(key, _)| self.key("lock", key)).collect();
            let tokens: Vec<&str> = chunk.iter().map(|(_, token)| token.as_str()).collect();
            let answers: Vec<i64> = self.pool.eval(RELEASE_SCRIPT, keys, tokens).await?;
            if answers.len() != chunk.len() {
                return Err(InfraError::Corrupt(format!(
                    "a release script answered {} values for {} locks",
                    answers.len(),
                    chunk.len()
                )));
            }
            released.extend(answers.into_iter().map(|answer| answer == 1));
        }
        Ok(released)
    }

    async fn lock_holder(&self, key: &str) -> InfraResult<Option<String>> {
        Ok(self.pool.get(self.key("lock", key)).await?)
    }

    async fn memory_began(&self) -> InfraResult<i64> {
        let since: String = self
            .pool
            .eval(
                MEMORY_BEGAN_SCRIPT,
                vec![self.memory_key()],
                vec![crate::now_millis().to_string()],
            )
            .await?;
        memory_marker(&since)
    }

    async fn claim(&self, key: &str, holder: &str, ttl: Duration) -> InfraResult<Claim> {
        let mut claims = self.claim_many(&[key.to_owned()], holder, ttl).await?;
        claims
            .pop()
            .ok_or_else(|| InfraError::Corrupt("a claim script answered nothing".into()))
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn claim_many(
        &self,
        keys: &[String],
        holder: &str,
        ttl: Duration,
    ) -> InfraResult<Vec<Claim>> {
        let now = crate::now_millis().to_string();
        let ttl = millis(ttl).min(MAX_SCRIPT_TTL_MS).to_string();
        let pending_value = pending(holder);
        let mut claims: Vec<Option<Claim>> = vec![None; keys.len()];
        // Two tries: a claim may expire between the script's refused SET and its GET.
        let mut unanswered: Vec<usize> = (0..keys.len()).collect();
        for _ in 0..2 {
            for chunk in unanswered.chunks(KEYS_PER_SCRIPT) {
                let mut script_keys = Vec::with_capacity(chunk.len() + 1);
                script_keys.push(self.memory_key());
                script_keys.extend(chunk.iter().map(|&index| self.key("claim", &keys[index])));
                let reply: Vec<String> = self
                    .pool
                    .eval(
                        CLAIM_SCRIPT,
                        script_keys,
                        vec![now.as_str(), ttl.as_str(), pending_value.as_str()],
                    )
                    .await?;
                if reply.len() != 2 * chunk.len() {
                    return Err(InfraError::Corrupt(format!(
                        "a claim script answered {} values for {} keys",
                        reply.len(),
                        chunk.len()
                    )));
                }
                for (&index, answer) in chunk.iter().zip(reply.chunks_exact(2)) {
                    claims[index] = match (answer[0].as_str(), &answer[1]) {
                        ("1", since) => Some(Claim::New {
                            remembered_since: memory_marker(since)?,
                        }),
                        ("0", value) => Some(match value.strip_prefix(PENDING) {
                            Some(holder) => Claim::Pending {
                                holder: holder.to_string(),
                            },
                            None => Claim::Done(value.clone()),
                        }),
                        _ => None,
                    };
                }
            }
            unanswered.retain(|&index| claims[index].is_none());
            if unanswered.is_empty() {
                break;
            }
        }
        // Claimed and gone twice over: someone is working on it; who is not known.
        Ok(claims
            .into_iter()
            .map(|claim| {
                claim.unwrap_or(Claim::Pending {
                    holder: String::new(),
                })
            })
            .collect())
    }

    async fn take_over_claim(
        &self,
        key: &str,
        previous: &str,
        holder: &str,
        ttl: Duration,
    ) -> InfraResult<bool> {
        let taken: i64 = self
            .pool
            .eval(
                TAKE_OVER_SCRIPT,
                vec![self.key("claim", key)],
                vec![
                    pending(previous),
                    pending(holder),
                    millis(ttl).min(MAX_SCRIPT_TTL_MS).to_string(),
                ],
            )
            .await?;
        Ok(taken == 1)
    }

    async fn complete_claim(&self, key: &str, value: &str, ttl: Duration) -> InfraResult<()> {
        let _: Option<String> = self
            .pool
            .set(
                self.key("claim", key),
                value,
                Some(Expiration::PX(millis(ttl))),
                None,
                false,
            )
            .await?;
        Ok(())
    }

    async fn complete_many(&self, entries: &[(String, String)], ttl: Duration) -> InfraResult<()> {
        let ttl = millis(ttl).min(MAX_SCRIPT_TTL_MS).to_string();
        for chunk in entries.chunks(KEYS_PER_SCRIPT) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|(key, _)| self.key("claim", key))
                .collect();
            let mut values = Vec::with_capacity(chunk.len() + 1);
            values.push(ttl.as_str());
            values.extend(chunk.iter().map(|(_, value)| value.as_str()));
            let _: i64 = self.pool.eval(COMPLETE_SCRIPT, keys, values).await?;
        }
        Ok(())
    }

    async fn abandon_claim(&self, key: &str) -> InfraResult<()> {
        let _: i64 = self.pool.del(self.key("claim", key)).await?;
        Ok(())
    }

    async fn set_group_online(
        &self,
        node: &str,
        group: i64,
        count: u64,
        ttl: Duration,
    ) -> InfraResult<()> {
        let ttl_ms = millis(ttl).min(MAX_SCRIPT_TTL_MS);
        let _: i64 = self
            .pool
            .eval(
                SET_GROUP_ONLINE_SCRIPT,
                vec![self.key("group-online", group)],
                vec![node.to_string(), count.to_string(), ttl_ms.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn group_online(&self, group: i64) -> InfraResult<u64> {
        let total: i64 = self
            .pool
            .eval(
                GROUP_ONLINE_SCRIPT,
                vec![self.key("group-online", group)],
                Vec::<String>::new(),
            )
            .await?;
        u64::try_from(total)
            .map_err(|_| InfraError::Corrupt(format!("group {group} online count {total}")))
    }

    async fn push_presence(&self, event: &PresenceEvent) -> InfraResult<()> {
        let _: i64 = self
            .pool
            .rpush(self.presence_key(), encode_presence(event))
            .await?;
        Ok(())
    }

    async fn take_presence(&self, max: usize) -> InfraResult<Vec<PresenceEvent>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let entries: Vec<Value> = self.pool.lpop(self.presence_key(), Some(max)).await?;
        // The entries are off the list once popped: an undecodable one (written by something
        // else) is logged and dropped, so it cannot take the good events of its batch with it.
        let events = entries
            .into_iter()
            .filter_map(|entry| {
                let decoded = entry.as_string().and_then(|text| decode_presence(&text));
                if decoded.is_none() {
                    metrics::counter!("natter_presence_events_corrupt_total").increment(1);
                    tracing::warn!(?entry, "dropping an undecodable presence event");
                }
                decoded
            })
            .collect();
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_entries_decode_and_junk_is_refused() {
        let event = decode_presence("42 1 1700000000000 connect 1").expect("decodes");
        assert_eq!(
            event,
            PresenceEvent {
                user: 42,
                online: true,
                node: "connect 1".into(),
                at_ms: 1_700_000_000_000,
            }
        );
        for junk in [
            "",
            "42",
            "42 2 1 node",
            "x 1 1 node",
            "42 0 y node",
            "42 0 1",
        ] {
            assert!(decode_presence(junk).is_none(), "{junk:?} decoded");
        }
    }
}
