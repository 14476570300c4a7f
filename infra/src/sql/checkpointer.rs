//! SQLite's WAL checkpoints, taken off the write path: a background task copies committed
//! pages back into the database file, so no commit waits for that copy or its fsync.
//!
//! Left to itself SQLite checkpoints inside whichever commit crosses 1,000 WAL pages, which at
//! chat rates is several times a second, each stalling the group-commit writer (and every send
//! waiting on it) for the copy and an fsync. A passive checkpoint beside the writer never
//! blocks it; pages a burst rewrote many times are copied once.
//!
//! A passive checkpoint never brings the WAL back to its start, though: SQLite restarts the
//! log only when a write begins with every frame copied, and under steady load new frames
//! arrive while each checkpoint copies the last ones, so the file grew without end (3.3 GB in
//! 20 s at 5,000 msg/s, for a 68 MB database). Once the log passes [`RESTART_FRAMES`] this
//! task copies again at once until a copy is short, then asks the writer to catch up: between
//! two batches the writer copies what is left itself (it is the only writer, so nothing new
//! arrives meanwhile), and its next transaction starts the log over (if no reader still reads
//! from it; else a later pass asks again). The writer's connection also caps the file at
//! [`WAL_SIZE_LIMIT`] when the log restarts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Any, AnyConnection, AnyPool, Executor};

/// How often committed pages are copied back into the database file.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Connection setting that leaves checkpoints to [`run`].
pub const NO_AUTOMATIC_CHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0;";

/// WAL frames (pages) past which the writer is asked to start the log over: 256 MiB of 4 KiB
/// pages, about 1.6 s of one-to-one chat at 5,000 messages/s. Each restart stalls the writer
/// for the catch-up's two fsyncs (10–25 ms under that load), so not much less.
pub const RESTART_FRAMES: i64 = 65_536;

/// The writer connection's setting that truncates a restarted WAL file to twice
/// [`RESTART_FRAMES`]' size (512 MiB), so a burst that grew it does not keep its disk space.
pub const WAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 536870912";

/// Whether the writer should catch up with the checkpoints so the WAL can start over.
#[derive(Debug, Default)]
pub struct RestartRequest(AtomicBool);

impl RestartRequest {
    /// Asks for a catch-up (the log is past [`RESTART_FRAMES`]).
    pub fn ask(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a catch-up was asked for since the last call. One attempt per request: a
    /// reader still on the log can keep it from starting over, and the next pass asks again.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Checkpoints `pool`'s database every [`CHECKPOINT_INTERVAL`] until the pool closes (or the
/// writer that started it stops it), asking the writer through `restart` to let the log start
/// over once it is past [`RESTART_FRAMES`].
pub async fn run(pool: AnyPool, restart: std::sync::Arc<RestartRequest>) {
    run_every(pool, restart, CHECKPOINT_INTERVAL, RESTART_FRAMES).await;
}

/// [`run`], checkpointing every `interval` and asking for a restart past `restart_frames`.
async fn run_every(
    pool: AnyPool,
    restart: std::sync::Arc<RestartRequest>,
    interval: Duration,
    restart_frames: i64,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some((wal_pages, mut took)) = checkpoint(&pool).await else {
            return;
        };
        if wal_pages <= restart_frames {
            continue;
        }
        // What the writer copies itself stalls every send waiting on it; so first copy again
        // what arrived during the last copy, which takes less each round, until a round is
        // short enough.
        for _ in 0..MAX_CONVERGING_ROUNDS {
            if took <= SHORT_CHECKPOINT {
                break;
            }
            match checkpoint(&pool).await {
                Some((_, round)) => took = round,
                None => return,
            }
        }
        restart.ask();
    }
}

/// Copies what the WAL holds beyond the last checkpoint, on the writer's own `connection`
/// between two batches, so that its next transaction can start the log over. A failure only
/// leaves the log as it was.
pub async fn catch_up(connection: &mut AnyConnection) {
    let (outcome, took) = passive_checkpoint(&mut *connection).await;
    metrics::histogram!("natter_sqlite_catch_up_seconds").record(took.as_secs_f64());
    if let Err(error) = outcome {
        tracing::warn!(%error, "catching up with the WAL checkpoints failed");
    }
}

/// A checkpoint short enough that what arrives meanwhile is a short catch-up for the writer.
const SHORT_CHECKPOINT: Duration = Duration::from_millis(3);
/// Checkpoints made back to back at most before the writer is asked to catch up anyway.
const MAX_CONVERGING_ROUNDS: usize = 10;

/// One passive checkpoint: the WAL's length in pages and how long the copy took; None once
/// the pool is closed.
async fn checkpoint(pool: &AnyPool) -> Option<(i64, Duration)> {
    if pool.is_closed() {
        return None;
    }
    let (outcome, took) = passive_checkpoint(pool).await;
    match outcome {
        Ok((_busy, wal_pages, copied_pages)) => {
            metrics::histogram!("natter_sqlite_checkpoint_seconds").record(took.as_secs_f64());
            metrics::gauge!("natter_sqlite_wal_pages").set(wal_pages as f64);
            metrics::gauge!("natter_sqlite_wal_pages_uncopied")
                .set((wal_pages - copied_pages).max(0) as f64);
            Some((wal_pages, took))
        }
        Err(_) if pool.is_closed() => None,
        Err(error) => {
            tracing::warn!(%error, "a WAL checkpoint failed; trying again");
            Some((0, took))
        }
    }
}

/// One passive checkpoint on `executor` — it copies what no reader still needs and never
/// waits for a lock — as SQLite answers it (busy, WAL pages, pages copied), and how long it
/// took.
async fn passive_checkpoint<'e>(
    executor: impl Executor<'e, Database = Any>,
) -> (Result<(i64, i64, i64), sqlx::Error>, Duration) {
    let started = std::time::Instant::now();
    let outcome = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(executor)
        .await;
    (outcome, started.elapsed())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Writes `commits` transactions of two 4 KiB rows on one connection, catching up when
    /// asked if `catch_ups`, and returns the largest the WAL file grew.
    async fn write_steadily(catch_ups: bool, commits: usize) -> u64 {
        sqlx::any::install_default_drivers();
        let folder =
            std::env::temp_dir().join(format!("natter-wal-{}-{catch_ups}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("wal.db");
        let wal = folder.join("wal.db-wal");
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA wal_autocheckpoint = 0; \
                             PRAGMA journal_size_limit = 1048576;",
                        )
                        .await?;
                    Ok(())
                })
            })
            .connect(&crate::sql::sqlite_url(&path))
            .await
            .unwrap();
        let mut writer = pool.acquire().await.unwrap();
        writer
            .execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .await
            .unwrap();
        let restart = Arc::new(RestartRequest::default());
        let checkpoints = tokio::spawn(run_every(
            pool.clone(),
            Arc::clone(&restart),
            Duration::from_millis(10),
            64,
        ));
        let mut largest = 0;
        for commit in 0..commits {
            if catch_ups && restart.take() {
                catch_up(&mut writer).await;
            }
            writer
                .execute("INSERT INTO rows (body) VALUES (randomblob(4096)), (randomblob(4096))")
                .await
                .unwrap();
            if commit % 20 == 0 {
                // Leave the checkpoints their turn, as the writer's batches do.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            largest = largest.max(std::fs::metadata(&wal).map(|meta| meta.len()).unwrap_or(0));
        }
        checkpoints.abort();
        drop(writer);
        pool.close().await;
        let _ = std::fs::remove_dir_all(&folder);
        largest
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_catches_up_when_asked_keeps_the_wal_bounded() {
        // 2,000 commits write about 16 MB of frames.
        let bounded = write_steadily(true, 2_000).await;
        assert!(
            bounded < 4 * 1024 * 1024,
            "the WAL grew to {bounded} bytes though the writer caught up"
        );
        let unbounded = write_steadily(false, 2_000).await;
        assert!(
            unbounded > 8 * 1024 * 1024,
            "without catch-ups the log never starts over ({unbounded} bytes), which is what this \
             test relies on to mean anything"
        );
    }
}
