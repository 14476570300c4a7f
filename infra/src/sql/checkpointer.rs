//! SQLite's WAL checkpoints, taken off the write path: a background task copies committed
//! pages back into the database file, so no commit waits for that copy or its fsync.
//!
//! Left to itself SQLite checkpoints inside whichever commit crosses 1,000 WAL pages, which at
//! chat rates is several times a second, each stalling the group-commit writer (and every send
//! waiting on it) for the copy and an fsync. A passive checkpoint beside the writer never
//! blocks it; pages a burst rewrote many times are copied once.

use std::time::Duration;

use sqlx::AnyPool;

/// How often committed pages are copied back into the database file.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Connection setting that leaves checkpoints to [`run`].
pub const NO_AUTOMATIC_CHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0;";

/// Checkpoints `pool`'s database every [`CHECKPOINT_INTERVAL`] until the pool closes (or the
/// writer that started it stops it).
pub async fn run(pool: AnyPool) {
    let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if pool.is_closed() {
            return;
        }
        let started = std::time::Instant::now();
        // PASSIVE: copies what no reader still needs and never waits for a lock.
        let outcome: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match outcome {
            Ok((_busy, wal_pages, copied_pages)) => {
                metrics::histogram!("natter_sqlite_checkpoint_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::gauge!("natter_sqlite_wal_pages").set(wal_pages as f64);
                metrics::gauge!("natter_sqlite_wal_pages_uncopied")
                    .set((wal_pages - copied_pages).max(0) as f64);
            }
            Err(_) if pool.is_closed() => return,
            Err(error) => tracing::warn!(%error, "a WAL checkpoint failed; trying again"),
        }
    }
}
