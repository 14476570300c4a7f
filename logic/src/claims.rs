//! The de-duplication claims of concurrent sends, and their completions, gathered: while a few
//! calls to the sessions backend are out, what arrives waits and goes in the next call, one
//! Redis script for all of it instead of a trip each. In a profile of logic at 2,000 messages a
//! second a third of its CPU was its Redis client writing one command at a time, two per send;
//! an idle process adds no delay, since a lone claim goes at once. Sessions in this process
//! (the embedded deployment) are called at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use natter_infra::error::InfraResult;
use natter_infra::gather::{Gatherer, split_by_size};
use natter_infra::sessions::Claim;
use natter_infra::{InfraError, Sessions};
use tokio::sync::oneshot;

/// Calls out at once, of each kind: a call waits for Redis alone, so a few keep the sends
/// flowing while one is slow.
const CALLS_IN_FLIGHT: usize = 4;
/// Items one call carries at most: one Redis script each (`CLAIMS_PER_SCRIPT` there), so a
/// failed call leaves none of its claims taken while its sends are told it failed.
const MOST_PER_CALL: usize = 256;

/// One item waiting for its call, and where its answer goes.
type Waiting<Item, Answer> = (Item, oneshot::Sender<InfraResult<Answer>>);

/// One call for the items gathered, answering each in order.
type Call<Item, Answer> =
    Arc<dyn Fn(Vec<Item>) -> BoxFuture<'static, InfraResult<Vec<Answer>>> + Send + Sync>;

/// Items gathered into calls of `call`, or each in a call of its own when gathering saves
/// nothing (a backend in this process).
struct GatheredCalls<Item, Answer> {
    waiting: Arc<Gatherer<Waiting<Item, Answer>>>,
    call: Call<Item, Answer>,
    /// The histogram of the calls' sizes on `/metrics`.
    sizes: &'static str,
    gather: bool,
}

impl<Item, Answer> Clone for GatheredCalls<Item, Answer> {
    fn clone(&self) -> Self {
        GatheredCalls {
            waiting: Arc::clone(&self.waiting),
            call: Arc::clone(&self.call),
            sizes: self.sizes,
            gather: self.gather,
        }
    }
}

impl<Item: Send + 'static, Answer: Send + 'static> GatheredCalls<Item, Answer> {
    fn new(sizes: &'static str, gather: bool, call: Call<Item, Answer>) -> Self {
        GatheredCalls {
            waiting: Arc::new(Gatherer::new(CALLS_IN_FLIGHT)),
            call,
            sizes,
            gather,
        }
    }

    /// `item`'s answer, from a call with whatever else waits.
    async fn ask(&self, item: Item) -> InfraResult<Answer> {
        if !self.gather {
            let mut answers = (self.call)(vec![item]).await?;
            return answers
                .pop()
                .ok_or_else(|| InfraError::Corrupt("a call answered nothing".into()));
        }
        let (reply, answer) = oneshot::channel();
        if self.waiting.push([(item, reply)]) {
            // A task of its own, so a send that gives up cannot strand the others' items.
            tokio::spawn(self.clone().send_while_waiting());
        }
        answer.await.unwrap_or_else(|_| {
            Err(InfraError::Unavailable(
                "a gathered claim lost its answer".into(),
            ))
        })
    }

    /// Sends what waits, a call at a time (several at once when more waits than one call
    /// takes), until nothing does.
    async fn send_while_waiting(self) {
        while let Some(waiting) = self.waiting.take() {
            let calls = split_by_size(waiting, MOST_PER_CALL, |_| 1);
            join_all(calls.into_iter().map(|call| self.send(call))).await;
        }
    }

    /// One call for `waiting`; each item gets its own answer, or the call's failure.
    async fn send(&self, waiting: Vec<Waiting<Item, Answer>>) {
        metrics::histogram!(self.sizes).record(waiting.len() as f64);
        let (items, replies): (Vec<Item>, Vec<_>) = waiting.into_iter().unzip();
        let asked = items.len();
        match (self.call)(items).await {
            Ok(answers) if answers.len() == asked => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Ok(answers) => {
                let error = format!("{} answers for {asked} claims", answers.len());
                for reply in replies {
                    let _ = reply.send(Err(InfraError::Corrupt(error.clone())));
                }
            }
            Err(error) => {
                // The error is not `Clone`; every item in the call gets its text.
                let error = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(InfraError::Unavailable(error.clone())));
                }
            }
        }
    }
}

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
            Arc::new(move |keys: Vec<String>| {
                let (sessions, holder) = (Arc::clone(&claiming), Arc::clone(&holder));
                Box::pin(async move { sessions.claim_many(&keys, &holder, pending_ttl).await })
                    as BoxFuture<'static, _>
            }),
        );
        let completions = GatheredCalls::new(
            "natter_claim_completion_batch_size",
            gather,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Items asked for at once: calls of at most [`MOST_PER_CALL`], each item answered with its
    /// own answer; and a failed call fails each of its items with its text.
    #[tokio::test]
    async fn gathered_items_get_their_own_answers_in_calls_of_bounded_size() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let doubling: GatheredCalls<u32, u32> = GatheredCalls::new(
            "natter_test_batch_size",
            true,
            Arc::new(move |items: Vec<u32>| {
                seen.lock().unwrap().push(items.len());
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok(items.iter().map(|item| item * 2).collect())
                }) as BoxFuture<'static, _>
            }),
        );
        let answers = join_all((0..600).map(|item| doubling.ask(item))).await;
        for (item, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), 2 * item as u32);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 600);
        assert!(sizes.iter().all(|size| *size <= MOST_PER_CALL), "{sizes:?}");
        assert!(sizes.len() < 600, "nothing was gathered: {sizes:?}");

        let failing: GatheredCalls<u32, u32> = GatheredCalls::new(
            "natter_test_batch_size",
            true,
            Arc::new(|_| {
                Box::pin(async { Err(InfraError::Unavailable("redis is down".into())) })
                    as BoxFuture<'static, _>
            }),
        );
        for answer in join_all((0..3).map(|item| failing.ask(item))).await {
            let error = answer.expect_err("a failed call fails its items");
            assert!(error.to_string().contains("redis is down"), "{error}");
        }
    }
}
