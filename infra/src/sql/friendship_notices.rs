//! Friendship changes announced through PostgreSQL's `NOTIFY`, so that a store sharing its
//! database with other writers (a cluster's processes) may still remember who is friends with
//! whom. Each change announces its pair inside its own transaction, so the notice goes out when
//! the change commits; a follower forgets the pair when told. A follower that is not listening
//! may miss a notice, so its memory answers nothing from the moment it stops listening until it
//! listens again and has started over.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::friendship_cache::FriendshipCache;

/// The channel the changes are announced on.
const CHANNEL: &str = "natter_friendships";

/// The pause before listening again after the notices stopped.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The statement announcing that the friendship of `a` and `b` changed. A literal, because
/// `NOTIFY` takes no parameters; it is built from two integers only.
pub(crate) fn announcement(a: i64, b: i64) -> String {
    format!("NOTIFY {CHANNEL}, '{} {}'", a.min(b), a.max(b))
}

/// The pair a notice names.
fn pair_of(payload: &str) -> Option<(i64, i64)> {
    let (a, b) = payload.split_once(' ')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Keeps `cache` told of every change announced in the database at `url`, for as long as the
/// task runs; the cache is trusted only while the notices are being received.
pub(crate) async fn follow(url: String, cache: Arc<FriendshipCache>) {
    loop {
        match listen(&url).await {
            Ok(mut listener) => {
                // Anything changed before now may be remembered wrongly: start from nothing.
                cache.start_over();
                tracing::info!("remembering friendships, told of changes by the database");
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notice)) => match pair_of(notice.payload()) {
                            Some((a, b)) => cache.forget(a, b),
                            None => {
                                // Not ours to read: forget everything rather than guess.
                                tracing::warn!(
                                    payload = notice.payload(),
                                    "an unreadable friendship notice"
                                );
                                cache.start_over();
                            }
                        },
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "friendship notices failed");
                            break;
                        }
                    }
                }
                cache.distrust();
                tracing::warn!("friendship notices stopped; asking the database until they resume");
            }
            Err(error) => {
                tracing::warn!(%error, "listening for friendship notices failed; retrying");
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_names_its_pair_in_either_order() {
        assert_eq!(announcement(9, 4), "NOTIFY natter_friendships, '4 9'");
        assert_eq!(announcement(4, 9), announcement(9, 4));
        assert_eq!(pair_of("4 9"), Some((4, 9)));
        assert_eq!(pair_of("4"), None);
        assert_eq!(pair_of("four 9"), None);
    }
}
