//! `Sessions` on Redis through fred.
//!
//! Keys, all under a configurable prefix:
//! - `sessions:<user>`: a set of `<connection id>@<node>`, the user's connections;
//! - `node-sessions:<node>`: a set of `<user>:<connection id>`, so a dead node's sessions can
//!   be removed without a scan;
//! - `lock:<key>`: `SET NX PX` with a token, released by compare-and-delete in Lua;
//! - `claim:<key>`: a de-duplication claim, [`PENDING`] until completed with its value.

use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;

use crate::error::{InfraError, InfraResult};
use crate::sessions::{Claim, SessionRef, Sessions};

/// A claim taken but not completed. Completed values are never this (it holds a NUL).
const PENDING: &str = "\u{0}pending";

/// Deletes a key only if it still holds the caller's token.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

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

    async fn remove_node_sessions(&self, node: &str) -> InfraResult<usize> {
        let index = self.key("node-sessions", node);
        let members: Vec<String> = self.pool.smembers(&index).await?;
        let mut removed = 0;
        for member in &members {
            let Some((user, connection_id)) = member.split_once(':') else {
                continue;
            };
            let session = format!("{connection_id}@{node}");
            let gone: i64 = self.pool.srem(self.key("sessions", user), session).await?;
            removed += usize::try_from(gone).unwrap_or(0);
        }
        let _: i64 = self.pool.del(index).await?;
        Ok(removed)
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
        let deleted: i64 = self
            .pool
            .eval(RELEASE_SCRIPT, vec![self.key("lock", key)], vec![token])
            .await?;
        Ok(deleted == 1)
    }

    async fn lock_holder(&self, key: &str) -> InfraResult<Option<String>> {
        Ok(self.pool.get(self.key("lock", key)).await?)
    }

    async fn claim(&self, key: &str, ttl: Duration) -> InfraResult<Claim> {
        let key = self.key("claim", key);
        // Two tries: a claim may expire between a refused SET and the GET that follows.
        for _ in 0..2 {
            let set: Option<String> = self
                .pool
                .set(
                    &key,
                    PENDING,
                    Some(Expiration::PX(millis(ttl))),
                    Some(SetOptions::NX),
                    false,
                )
                .await?;
            if set.is_some() {
                return Ok(Claim::New);
            }
            match self.pool.get::<Option<String>, _>(&key).await? {
                Some(value) if value == PENDING => return Ok(Claim::Pending),
                Some(value) => return Ok(Claim::Done(value)),
                None => continue,
            }
        }
        Ok(Claim::Pending)
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

    async fn abandon_claim(&self, key: &str) -> InfraResult<()> {
        let _: i64 = self.pool.del(self.key("claim", key)).await?;
        Ok(())
    }
}
