//! Calls to a remote backend made for many callers at once: while a few calls are out, what
//! the callers ask waits and goes in the next call, and each caller gets its own answer. A
//! busy process makes one trip for many asks; an idle one adds no delay, since a lone ask goes
//! at once. A backend in the same process is called once an ask, since no trip is saved.

use std::sync::Arc;

use futures_util::future::{BoxFuture, join_all};
use tokio::sync::oneshot;

use crate::error::{InfraError, InfraResult};
use crate::gather::{Gatherer, split_by_size};

/// One item waiting for its call, and where its answer goes.
type Waiting<Item, Answer> = (Item, oneshot::Sender<InfraResult<Answer>>);

/// One call for the items gathered, answering each in the order asked.
pub type Call<Item, Answer> =
    Arc<dyn Fn(Vec<Item>) -> BoxFuture<'static, InfraResult<Vec<Answer>>> + Send + Sync>;

/// Items gathered into calls of `call`, or each in a call of its own when gathering saves
/// nothing (a backend in this process).
pub struct GatheredCalls<Item, Answer> {
    waiting: Arc<Gatherer<Waiting<Item, Answer>>>,
    call: Call<Item, Answer>,
    /// Items one call carries at most.
    most_per_call: usize,
    /// The histogram of the calls' sizes on `/metrics`.
    sizes: &'static str,
    gather: bool,
}

impl<Item, Answer> Clone for GatheredCalls<Item, Answer> {
    fn clone(&self) -> Self {
        GatheredCalls {
            waiting: Arc::clone(&self.waiting),
            call: Arc::clone(&self.call),
            most_per_call: self.most_per_call,
            sizes: self.sizes,
            gather: self.gather,
        }
    }
}

impl<Item: Send + 'static, Answer: Send + 'static> GatheredCalls<Item, Answer> {
    /// Calls of `call` carrying at most `most_per_call` items, up to `in_flight` out at once,
    /// their sizes recorded in the histogram `sizes`; with `gather` off, one call an item.
    pub fn new(
        sizes: &'static str,
        gather: bool,
        in_flight: usize,
        most_per_call: usize,
        call: Call<Item, Answer>,
    ) -> Self {
        GatheredCalls {
            waiting: Arc::new(Gatherer::new(in_flight)),
            call,
            most_per_call: most_per_call.max(1),
            sizes,
            gather,
        }
    }

    /// Whether items are gathered (the backend is remote) rather than called one by one.
    pub fn gathers(&self) -> bool {
        self.gather
    }

    /// `item`'s answer, from a call with whatever else waits.
    pub async fn ask(&self, item: Item) -> InfraResult<Answer> {
        if !self.gather {
            let mut answers = (self.call)(vec![item]).await?;
            return answers
                .pop()
                .ok_or_else(|| InfraError::Corrupt("a call answered nothing".into()));
        }
        let (reply, answer) = oneshot::channel();
        if self.waiting.push([(item, reply)]) {
            // A task of its own, so a caller that gives up cannot strand the others' items.
            tokio::spawn(self.clone().send_while_waiting());
        }
        answer.await.unwrap_or_else(|_| {
            Err(InfraError::Unavailable(
                "a gathered call lost its answer".into(),
            ))
        })
    }

    /// Sends what waits, a call at a time (several at once when more waits than one call
    /// takes), until nothing does.
    async fn send_while_waiting(self) {
        while let Some(waiting) = self.waiting.take() {
            let calls = split_by_size(waiting, self.most_per_call, |_| 1);
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
                let error = format!("{} answers for {asked} items", answers.len());
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Items asked for at once: calls of at most the bound, each item answered with its own
    /// answer; and a failed call fails each of its items with its text.
    #[tokio::test]
    async fn gathered_items_get_their_own_answers_in_calls_of_bounded_size() {
        const MOST: usize = 256;
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let doubling: GatheredCalls<u32, u32> = GatheredCalls::new(
            "natter_test_batch_size",
            true,
            4,
            MOST,
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
        assert!(sizes.iter().all(|size| *size <= MOST), "{sizes:?}");
        assert!(sizes.len() < 600, "nothing was gathered: {sizes:?}");

        let failing: GatheredCalls<u32, u32> = GatheredCalls::new(
            "natter_test_batch_size",
            true,
            4,
            MOST,
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

    /// Not gathering, each item is a call of its own.
    #[tokio::test]
    async fn without_gathering_each_item_is_its_own_call() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let echo: GatheredCalls<u32, u32> = GatheredCalls::new(
            "natter_test_batch_size",
            false,
            4,
            256,
            Arc::new(move |items: Vec<u32>| {
                seen.lock().unwrap().push(items.len());
                Box::pin(async move { Ok(items) }) as BoxFuture<'static, _>
            }),
        );
        let answers = join_all((0..10).map(|item| echo.ask(item))).await;
        assert_eq!(
            answers.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(*sizes.lock().unwrap(), vec![1; 10]);
    }
}
