//! The de-duplication claims of concurrent sends, and their completions, gathered: while a few
//! calls to the sessions backend are out, what arrives waits and goes in the next call, one
//! Redis script for all of it instead of a trip each. In a profile of logic at 2,000 messages a
//! second a third of its CPU was its Redis client writing one command at a time, two per send;
//! an idle process adds no delay, since a lone claim goes at once. Sessions in this process
//! (the embedded deployment) are called at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use natter_infra::Sessions;
use natter_infra::error::InfraResult;
use natter_infra::gathered_calls::GatheredCalls;
use natter_infra::sessions::Claim;

/// Calls out at once, of each kind: a call waits for Redis alone, so a few keep the sends
/// flowing while one is slow.
const CALLS_IN_FLIGHT: usize = 4;
/// Items one call carries at most: one Redis script each (`KEYS_PER_SCRIPT` there), so a
/// failed call leaves none of its claims taken while its sends are told it failed.
const MOST_PER_CALL: usize = 256;

/// The claims and completions of one logic process's sends, gathered into calls to the
/// sessions backend.
#[derive(Clone)]
pub(crate) struct ClaimBatcher {
    claims: GatheredCalls<String, Claim>,
    completions: GatheredCalls<(String, String), ()>,
}

impl ClaimBatcher {
    /// Claims through `sessions` as `holder`, pending for `pending_ttl`; completed claims are
    /// kept for `done_ttl`. Sessions in this process (the embedded deployment) are called at
    /// once: gathering would only make each send wait for the others.
    pub(crate) fn new(
        sessions: Arc<dyn Sessions>,
        holder: Arc<str>,
        pending_ttl: Duration,
        done_ttl: Duration,
    ) -> ClaimBatcher {
        let gather = sessions.is_remote();
        let claiming = Arc::clone(&sessions);
        let claims = GatheredCalls::new(
            "natter_claim_batch_size",
            gather,
            CALLS_IN_FLIGHT,
            MOST_PER_CALL,
            Arc::new(move |keys: Vec<String>| {
                let (sessions, holder) = (Arc::clone(&claiming), Arc::clone(&holder));
                Box::pin(async move { sessions.claim_many(&keys, &holder, pending_ttl).await })
                    as BoxFuture<'static, _>
            }),
        );
        let completions = GatheredCalls::new(
            "natter_claim_completion_batch_size",
            gather,
            CALLS_IN_FLIGHT,
            MOST_PER_CALL,
            Arc::new(move |entries: Vec<(String, String)>| {
                let sessions = Arc::clone(&sessions);
                Box::pin(async move {
                    sessions.complete_many(&entries, done_ttl).await?;
                    Ok(vec![(); entries.len()])
                }) as BoxFuture<'static, _>
            }),
        );
        ClaimBatcher {
            claims,
            completions,
        }
    }

    /// Claims `key` (see [`Sessions::claim`]) with whatever other claims wait.
    pub(crate) async fn claim(&self, key: String) -> InfraResult<Claim> {
        self.claims.ask(key).await
    }

    /// Completes the claim of `key` with `value` (see [`Sessions::complete_claim`]) with
    /// whatever other completions wait.
    pub(crate) async fn complete(&self, key: String, value: String) -> InfraResult<()> {
        self.completions.ask((key, value)).await
    }
}
