//! Group commit for one SQL database: concurrent callers hand their rows to one writer task,
//! which writes everything that arrived together in one transaction.
//!
//! Log appends, stored messages and cursor raises all go through it; an embedded log append
//! writes the message's store row in the same transaction, so a send costs one commit. A batch
//! is a few statements per table whatever its size, and on SQLite one trip to the database for
//! the whole transaction ([`super::batch_insert`]); on PostgreSQL a batch of nothing but
//! appends, the task process's numbering, is one statement ([`super::append_statement`]). So
//! the cost of a commit and of its trips is shared by every message in it. The writer is the
//! only one to append to the embedded log, so it numbers appends from the ends it remembers
//! without a lock or a `MAX(seq)` per append.
//!
//! Cursors (acknowledged, read, delivered) only rise and losing the newest of them costs a
//! redelivery, not a message: a raise is remembered at once, answered, and written with the
//! next flush (every [`CURSOR_FLUSH_INTERVAL`]), the newest per key only. With the history
//! store or a server database, a flush runs on a task beside the batches, so no send waits for
//! the upserts.
//!
//! The queue is bounded. An append that finds it full is refused as overloaded, with a hint
//! when to retry, instead of waiting behind a backlog that grows without limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use natter_proto::ObjectId;
use natter_proto::v1::Message;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use super::append_statement::AppendStatement;
use super::batch_insert::{BatchInsert, Value, WriteBatch};
use super::checkpointer;
use super::database::{Dialect, stored_seq};
use super::log::committed_ends;
use super::message_columns;
use crate::error::{InfraError, InfraResult};
use crate::history::{Existing, History, Placed};
use crate::log_tail::LogTail;

/// Jobs waiting for the writer at most; an append beyond this is refused.
pub const QUEUE_CAPACITY: usize = 4096;
/// Jobs one transaction takes at most.
const MAX_JOBS_PER_BATCH: usize = 1024;
/// How often raised cursors are written (the most a crash can lose of them, which costs a
/// redelivery of that long, never a message). Cursor rows were most of a cluster's row
/// writes at 100 ms: an active user's inbox cursors rise a few times a second.
pub const CURSOR_FLUSH_INTERVAL: Duration = Duration::from_millis(500);
/// What an overloaded caller is told to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_millis(200);
/// The writer connection's SQLite page cache (negative: KiB), larger than a reader's.
const WRITER_SQLITE_CACHE: &str = "PRAGMA cache_size = -131072";
/// Objects whose log end the writer remembers at most before starting over.
const MAX_REMEMBERED_ENDS: usize = 1_000_000;

/// The handle callers write through; cheap to clone, shared by every store and log handle of
/// one database.
#[derive(Clone)]
pub struct BatchWriter {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BatchWriter")
            .field("queued", &(QUEUE_CAPACITY - self.jobs.capacity()))
            .finish_non_exhaustive()
    }
}

/// Stored messages' keys remembered at most, so a repeated store of them (task repairing
/// what logic already stored) is answered without a transaction.
const MAX_RECENTLY_STORED: usize = 200_000;

/// The `(object, seq)` keys of the messages this writer stored most recently.
#[derive(Debug, Default)]
struct RecentlyStored {
    keys: HashSet<(ObjectId, u64)>,
    order: VecDeque<(ObjectId, u64)>,
}

impl RecentlyStored {
    fn record(&mut self, key: (ObjectId, u64)) {
        if self.keys.insert(key) {
            self.order.push_back(key);
            while self.order.len() > MAX_RECENTLY_STORED {
                if let Some(oldest) = self.order.pop_front() {
                    self.keys.remove(&oldest);
                }
            }
        }
    }

    fn holds_all(&self, messages: &[Message]) -> bool {
        messages.iter().all(|message| {
            message
                .object
                .parse()
                .is_ok_and(|object| self.keys.contains(&(object, message.seq)))
        })
    }
}

/// What callers and the writer task share.
#[derive(Debug, Default)]
struct Shared {
    /// Keys of messages stored lately.
    stored: Mutex<RecentlyStored>,
    /// Raised cursors not yet written.
    pending: Mutex<PendingCursors>,
    /// The log's newest entries (the embedded log reads them instead of querying).
    tail: Arc<LogTail>,
    /// Raised to make the writer forget the log ends it remembers before its next batch.
    forgotten: AtomicU64,
}

impl Shared {
    fn stored(&self) -> MutexGuard<'_, RecentlyStored> {
        self.stored
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, PendingCursors> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Cursor raises waiting for the next flush, the newest per key.
#[derive(Clone, Debug, Default)]
struct PendingCursors {
    acknowledged: HashMap<(i64, String), u64>,
    read: HashMap<(i64, String), u64>,
    delivered: HashMap<String, u64>,
}

impl PendingCursors {
    fn is_empty(&self) -> bool {
        self.acknowledged.is_empty() && self.read.is_empty() && self.delivered.is_empty()
    }

    /// The user cursors of one kind.
    fn of_kind(&self, kind: CursorKind) -> &HashMap<(i64, String), u64> {
        match kind {
            CursorKind::Acknowledged => &self.acknowledged,
            CursorKind::Read => &self.read,
        }
    }

    /// Forgets the raises `written` holds, now that they are in the database; a key raised
    /// again since is kept.
    fn forget_written(&mut self, written: &PendingCursors) {
        forget(&mut self.acknowledged, &written.acknowledged);
        forget(&mut self.read, &written.read);
        forget(&mut self.delivered, &written.delivered);
    }
}

fn forget<K: std::hash::Hash + Eq>(pending: &mut HashMap<K, u64>, written: &HashMap<K, u64>) {
    for (key, seq) in written {
        if pending.get(key) == Some(seq) {
            pending.remove(key);
        }
    }
}

fn raise<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u64>, key: K, seq: u64) {
    let entry = map.entry(key).or_insert(seq);
    *entry = (*entry).max(seq);
}

/// Which cursor a raise is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorKind {
    /// What a user acknowledged of an object (`ack_cursors`).
    Acknowledged,
    /// How far a user read a conversation (`read_cursors`).
    Read,
}

/// A shared-log partition's numbered offsets moving from `from` to `to`, which commits only
/// if nobody else moved them first.
#[derive(Clone, Debug)]
pub(crate) struct PartitionAdvance {
    /// The partition's name (`inbox/3`).
    pub(crate) name: String,
    /// Its next offset as the numbering started from.
    pub(crate) from: i64,
    /// Its next offset once these entries are stored.
    pub(crate) to: i64,
}

/// One caller's write.
enum Job {
    /// Entries for the embedded log, numbered by the writer, and their rows in `messages` (the
    /// embedded log and store are one database, so a message is logged and stored in one
    /// commit); answered with their seqs.
    Append {
        entries: Vec<(ObjectId, Message)>,
        reply: oneshot::Sender<InfraResult<Vec<u64>>>,
        /// When it was queued (for the queue wait on `/metrics`).
        queued: Instant,
        /// The shared-log partition these entries were numbered from, moved in the same
        /// transaction (the partitioned cluster log); None for the embedded log.
        advance: Option<PartitionAdvance>,
    },
    /// Messages for the `messages` table (left alone where already stored).
    Messages {
        messages: Vec<Message>,
        reply: oneshot::Sender<InfraResult<()>>,
    },
    /// Write the pending cursors now, then give the connection back (the pool is closing);
    /// answered once they are written.
    Close {
        reply: oneshot::Sender<InfraResult<()>>,
    },
}

impl Job {
    fn fail(self, error: InfraError) {
        // A caller that went away no longer wants the answer.
        match self {
            Job::Append { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Job::Messages { reply, .. } | Job::Close { reply } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

impl BatchWriter {
    /// Starts the writer task for `pool` (on the current tokio runtime).
    /// With `history`, messages are written there instead of the `messages` table.
    pub(crate) fn start(
        pool: AnyPool,
        dialect: Dialect,
        history: Option<Arc<History>>,
    ) -> BatchWriter {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared::default());
        // SQLite's WAL is copied back beside the writer, for as long as the writer runs.
        let restart = Arc::new(checkpointer::RestartRequest::default());
        let checkpoints = (dialect == Dialect::Sqlite).then(|| {
            tokio::spawn(checkpointer::run(pool.clone(), Arc::clone(&restart))).abort_handle()
        });
        let worker = Worker {
            pool,
            connection: None,
            checkpoints,
            restart,
            dialect,
            statements: Arc::new(BatchStatements::new(dialect)),
            cursor_flush: None,
            ends: HashMap::new(),
            forgotten: 0,
            shared: Arc::clone(&shared),
            history,
            known_partitions: HashSet::new(),
        };
        tokio::spawn(worker.run(queue));
        BatchWriter { jobs, shared }
    }

    /// The log's remembered newest entries.
    pub(crate) fn tail(&self) -> &Arc<LogTail> {
        &self.shared.tail
    }

    /// Appends entries to the embedded log, all in one transaction; returns their seqs in
    /// order. Refused as overloaded when the queue is full.
    pub async fn append(&self, entries: Vec<(ObjectId, Message)>) -> InfraResult<Vec<u64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.queue_append(entries, None).await
    }

    /// Appends entries numbered from a shared-log partition together with the partition's
    /// offset move (see [`PartitionAdvance`]); an empty `entries` still moves the offset.
    pub(crate) async fn append_advancing(
        &self,
        entries: Vec<(ObjectId, Message)>,
        advance: PartitionAdvance,
    ) -> InfraResult<Vec<u64>> {
        self.queue_append(entries, Some(advance)).await
    }

    /// Forgets every remembered log end and entry: another process may have written.
    pub(crate) fn forget_remembered(&self) {
        self.shared.forgotten.fetch_add(1, Ordering::AcqRel);
        self.shared.tail.clear();
    }

    async fn queue_append(
        &self,
        entries: Vec<(ObjectId, Message)>,
        advance: Option<PartitionAdvance>,
    ) -> InfraResult<Vec<u64>> {
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        match self.jobs.try_send(Job::Append {
            entries,
            reply,
            queued: started,
            advance,
        }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("natter_writer_refused_total").increment(1);
                return Err(InfraError::Overloaded {
                    what: "the log writer's queue is full".into(),
                    retry_after: RETRY_AFTER,
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(stopped()),
        }
        let outcome = answer.await.map_err(|_| stopped())?;
        // Queued, committed and answered: beside the commit time, it shows the wait.
        metrics::histogram!("natter_writer_append_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }

    /// Stores messages (idempotent on `(object, seq)`), together with whatever else is queued.
    pub async fn put_messages(&self, messages: Vec<Message>) -> InfraResult<()> {
        if messages.is_empty() || self.shared.stored().holds_all(&messages) {
            // Stored already (logic stored them, task is repairing): nothing to write.
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Messages { messages, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Writes every raised cursor, then gives the writer's connection back so the pool can
    /// close; a later write takes a new one.
    pub async fn close(&self) -> InfraResult<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Close { reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Raises a user's cursor; it is written with the next flush.
    pub fn raise_cursor(&self, kind: CursorKind, user: i64, name: &str, seq: u64) {
        let mut pending = self.shared.pending();
        let map = match kind {
            CursorKind::Acknowledged => &mut pending.acknowledged,
            CursorKind::Read => &mut pending.read,
        };
        raise(map, (user, name.to_string()), seq);
    }

    /// The raised, not yet written, value of a user's cursor.
    pub fn pending_cursor(&self, kind: CursorKind, user: i64, name: &str) -> Option<u64> {
        self.shared
            .pending()
            .of_kind(kind)
            .get(&(user, name.to_string()))
            .copied()
    }

    /// Every raised, not yet written, cursor of a user of this kind.
    pub fn pending_cursors_of(&self, kind: CursorKind, user: i64) -> Vec<(String, u64)> {
        self.shared
            .pending()
            .of_kind(kind)
            .iter()
            .filter(|((owner, _), _)| *owner == user)
            .map(|((_, name), seq)| (name.clone(), *seq))
            .collect()
    }

    /// Every raised, not yet written, cursor of this kind on `name`, by user.
    pub fn pending_cursors_named(&self, kind: CursorKind, name: &str) -> Vec<(i64, u64)> {
        self.shared
            .pending()
            .of_kind(kind)
            .iter()
            .filter(|((_, cursor), _)| cursor == name)
            .map(|((user, _), seq)| (*user, *seq))
            .collect()
    }

    /// Raises an object's delivered cursor; it is written with the next flush.
    pub fn raise_delivered(&self, object: &str, seq: u64) {
        raise(
            &mut self.shared.pending().delivered,
            object.to_string(),
            seq,
        );
    }

    /// The raised, not yet written, delivered cursor of an object.
    pub fn pending_delivered(&self, object: &str) -> Option<u64> {
        self.shared.pending().delivered.get(object).copied()
    }
}

fn stopped() -> InfraError {
    InfraError::Unavailable("the database writer has stopped".into())
}

/// The writer task's state.
struct Worker {
    pool: AnyPool,
    /// The connection every batch is written on, held between batches so its page cache
    /// stays warm (taken from the pool again after a failure).
    connection: Option<PoolConnection<Any>>,
    /// The SQLite checkpoint task, stopped with the writer.
    checkpoints: Option<AbortHandle>,
    /// Raised by the checkpoint task when the WAL should start over.
    restart: Arc<checkpointer::RestartRequest>,
    dialect: Dialect,
    statements: Arc<BatchStatements>,
    /// The cursor flush running beside the batches (with a history store or a server
    /// database); it hands back the connection when it wrote.
    cursor_flush: Option<JoinHandle<Option<PoolConnection<Any>>>>,
    /// Each object's committed log end, as far as this writer knows (the truth when it is
    /// the only appender; a failed append forgets its objects, which are then read again).
    ends: HashMap<ObjectId, u64>,
    /// The value of [`Shared::forgotten`] when `ends` was last cleared for it.
    forgotten: u64,
    shared: Arc<Shared>,
    /// Where messages go instead of the `messages` table, if anywhere.
    history: Option<Arc<History>>,
    /// Shared-log partitions whose row this writer has seen committed (rows are never
    /// deleted), which [`AppendStatement`] may move.
    known_partitions: HashSet<String>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.abort();
        }
    }
}

/// Whether a batch also writes the raised cursors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Not this time.
    No,
    /// The interval is up.
    Due,
    /// The writer closes: every raise is written before it says so.
    Closing,
}

/// A committed job's answer, sent once the log's remembered entries are up to date.
enum Reply {
    Seqs(oneshot::Sender<InfraResult<Vec<u64>>>, Vec<u64>),
    Done(oneshot::Sender<InfraResult<()>>),
}

/// What one committed job wrote: the seqs of an append, nothing otherwise.
type Written = Vec<Vec<u64>>;

impl Worker {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut flush = tokio::time::interval(CURSOR_FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut batch = Vec::new();
            let mut flush_due = false;
            tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => batch.push(job),
                    None => {
                        // Every handle is gone: write what is left, then stop.
                        self.commit(Vec::new(), Flush::Closing).await;
                        return;
                    }
                },
                _ = flush.tick() => flush_due = true,
            }
            while batch.len() < MAX_JOBS_PER_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let closing = batch.iter().any(|job| matches!(job, Job::Close { .. }));
            let flush = if closing {
                Flush::Closing
            } else if flush_due {
                Flush::Due
            } else {
                Flush::No
            };
            self.commit(batch, flush).await;
            if closing {
                self.connection = None;
            }
        }
    }

    /// Writes a batch in one transaction and answers every job in it. When the batch fails,
    /// each job is tried again on its own, so one bad job fails only its own caller.
    async fn commit(&mut self, batch: Vec<Job>, flush: Flush) {
        // With the history store a due flush runs beside the batches, and is skipped while
        // the last one still runs: its raises stay pending for the next.
        let flush = if flush == Flush::Due
            && self
                .cursor_flush
                .as_ref()
                .is_some_and(|running| !running.is_finished())
        {
            Flush::No
        } else {
            flush
        };
        // A copy: the raises stay readable as pending until the database holds them, so a
        // reader never sees a cursor fall back while a flush is under way.
        let cursors = if flush != Flush::No {
            self.shared.pending().clone()
        } else {
            PendingCursors::default()
        };
        if batch.is_empty() && cursors.is_empty() {
            return;
        }
        let started = Instant::now();
        let jobs = batch.len();
        for job in &batch {
            if let Job::Append { queued, .. } = job {
                metrics::histogram!("natter_writer_queue_wait_seconds")
                    .record(started.duration_since(*queued).as_secs_f64());
            }
        }
        if let Some(history) = self.history.clone() {
            self.commit_to_history(&history, batch, cursors, flush)
                .await;
            return;
        }
        let cursors = match (flush, self.dialect) {
            // A server database takes transactions side by side: a due flush goes beside
            // the batch, which stays one statement when it is nothing but appends (the
            // numbering of a partition, which every seq of it waits for).
            (Flush::Due, Dialect::Postgres | Dialect::MySql) => {
                self.flush_cursors_beside(cursors).await;
                if batch.is_empty() {
                    return;
                }
                PendingCursors::default()
            }
            (Flush::Closing, _) => {
                self.finish_cursor_flush().await;
                cursors
            }
            _ => cursors,
        };
        match self.write(&batch, &cursors).await {
            Ok(written) => {
                metrics::histogram!("natter_writer_batch_jobs").record(jobs as f64);
                metrics::histogram!("natter_writer_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                self.shared.pending().forget_written(&cursors);
                self.answer(batch, written);
                return;
            }
            Err(error) if jobs + usize::from(!cursors.is_empty()) <= 1 => {
                self.after_failure(&batch);
                if !cursors.is_empty() {
                    tracing::warn!(%error, "writing cursors failed; retrying with the next flush");
                }
                if let Some(job) = batch.into_iter().next() {
                    job.fail(error);
                }
                return;
            }
            Err(error) => {
                metrics::counter!("natter_writer_split_batches_total").increment(1);
                tracing::warn!(%error, jobs, "a batched write failed; writing its jobs one by one");
                self.after_failure(&batch);
            }
        }
        self.write_cursors(&cursors).await;
        for job in batch {
            let mut outcome = self
                .write(std::slice::from_ref(&job), &PendingCursors::default())
                .await;
            if outcome.is_err() && matches!(job, Job::Append { .. }) {
                // Perhaps another writer appended to these objects: read their ends again.
                self.after_failure(std::slice::from_ref(&job));
                outcome = self
                    .write(std::slice::from_ref(&job), &PendingCursors::default())
                    .await;
            }
            match outcome {
                Ok(written) => self.answer(vec![job], written),
                Err(error) => {
                    self.after_failure(std::slice::from_ref(&job));
                    job.fail(error);
                }
            }
        }
    }

    /// [`Worker::commit`] when messages live in the history store: the jobs' copies are
    /// written there in one atomic write and the jobs are answered; the cursors go to the
    /// database in a transaction of their own, beside the next batches (before the answers
    /// when the writer closes). A failed cursor write leaves them pending for the next flush
    /// and never fails the appends, which are stored by then.
    async fn commit_to_history(
        &mut self,
        history: &Arc<History>,
        batch: Vec<Job>,
        cursors: PendingCursors,
        flush: Flush,
    ) {
        let started = Instant::now();
        let jobs = batch.len();
        let mut answers = Vec::with_capacity(jobs);
        match self.write_history(history, batch).await {
            (batch, Ok(written)) => {
                metrics::histogram!("natter_writer_batch_jobs").record(jobs as f64);
                metrics::histogram!("natter_writer_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                answers.push((batch, Ok(written)));
            }
            (batch, Err(error)) if batch.len() <= 1 => answers.push((batch, Err(error))),
            (batch, Err(error)) => {
                metrics::counter!("natter_writer_split_batches_total").increment(1);
                tracing::warn!(%error, jobs, "a batched write failed; writing its jobs one by one");
                self.after_failure(&batch);
                for job in batch {
                    answers.push(self.write_history(history, vec![job]).await);
                }
            }
        }
        if flush == Flush::Closing {
            self.finish_cursor_flush().await;
            self.write_cursors(&cursors).await;
        }
        for (jobs, outcome) in answers {
            match outcome {
                Ok(written) => self.answer(jobs, written),
                Err(error) => {
                    // A failed outcome holds one job: a batch that fails is split.
                    self.after_failure(&jobs);
                    if let Some(job) = jobs.into_iter().next() {
                        job.fail(error);
                    }
                }
            }
        }
        if flush == Flush::Due {
            self.flush_cursors_beside(cursors).await;
        }
    }

    /// Starts writing `cursors` on a task of its own, so the batches that follow do not wait
    /// for the database (SQLite's upserts of a few thousand cursors take tens of ms on a slow
    /// machine). [`Worker::commit`] starts no flush while the last one still runs.
    async fn flush_cursors_beside(&mut self, cursors: PendingCursors) {
        if cursors.is_empty() {
            return;
        }
        self.finish_cursor_flush().await;
        // SQLite writes one transaction at a time: the flush takes the writer's connection,
        // which batches into the history store do not need. A server database's flush takes
        // a connection of its own, and the batches keep theirs.
        let connection = match self.dialect {
            Dialect::Sqlite => self.connection.take(),
            Dialect::Postgres | Dialect::MySql => None,
        };
        let cursor_write = self.cursor_write();
        self.cursor_flush = Some(tokio::spawn(async move {
            cursor_write.run(connection, &cursors).await
        }));
    }

    /// What writing cursors needs, to take onto a task of its own.
    fn cursor_write(&self) -> CursorWrite {
        CursorWrite {
            pool: self.pool.clone(),
            dialect: self.dialect,
            statements: Arc::clone(&self.statements),
            restart: Arc::clone(&self.restart),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits for the cursor flush running beside the batches, if any, and takes back its
    /// connection unless the writer holds one (a server database's flush borrows its own).
    async fn finish_cursor_flush(&mut self) {
        if let Some(flush) = self.cursor_flush.take()
            && let Ok(Some(connection)) = flush.await
            && self.connection.is_none()
        {
            self.connection = Some(connection);
        }
    }

    /// Numbers the appends of `jobs` and writes them, with the messages the jobs store, to the
    /// history store in one atomic write, off the runtime's threads. The jobs travel to that
    /// thread and back, so their messages are written where they lie, without a copy.
    async fn write_history(
        &mut self,
        history: &Arc<History>,
        jobs: Vec<Job>,
    ) -> (Vec<Job>, InfraResult<Written>) {
        self.forget_if_asked();
        for job in &jobs {
            if let Job::Append { entries, .. } = job {
                for (object, _) in entries {
                    if !self.ends.contains_key(object) {
                        match history.end(*object) {
                            Ok(end) => self.ends.insert(*object, end),
                            Err(error) => return (jobs, Err(error)),
                        };
                    }
                }
            }
        }
        let (numbered, written) = self.number(&jobs);
        let places: Vec<(ObjectId, u64)> = numbered
            .iter()
            .map(|(object, seq, _)| (*object, *seq))
            .collect();
        let history = Arc::clone(history);
        let joined = tokio::task::spawn_blocking(move || {
            let outcome = write_jobs(&history, &jobs, &places);
            (jobs, places, outcome)
        })
        .await;
        let (jobs, places, outcome) = match joined {
            Ok(done) => done,
            // The jobs went with the thread: their callers learn the writer stopped.
            Err(error) => {
                let error = InfraError::Unavailable(format!("the history write stopped: {error}"));
                return (Vec::new(), Err(error));
            }
        };
        if let Err(error) = outcome {
            return (jobs, Err(error));
        }
        // Known at once, not when the jobs are answered: a split batch writes its jobs one
        // after another, each numbering from the one before.
        for (object, seq) in places {
            let end = self.ends.entry(object).or_insert(0);
            *end = (*end).max(seq);
        }
        (jobs, Ok(written))
    }

    /// Clears the remembered ends if a handle asked since they were last cleared.
    fn forget_if_asked(&mut self) {
        let forgotten = self.shared.forgotten.load(Ordering::Acquire);
        if forgotten != self.forgotten {
            self.ends.clear();
            self.forgotten = forgotten;
        }
    }

    /// Numbers the appends of `jobs` from the known ends, in the order the jobs arrived: each
    /// entry's object, seq and message, and each job's seqs (none for other jobs).
    fn number<'j>(&self, jobs: &'j [Job]) -> (Vec<(ObjectId, u64, &'j Message)>, Written) {
        let mut next: HashMap<ObjectId, u64> = HashMap::new();
        let mut numbered = Vec::new();
        let mut written = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Job::Append { entries, .. } = job {
                let mut seqs = Vec::with_capacity(entries.len());
                for (object, message) in entries {
                    let seq = next
                        .get(object)
                        .or_else(|| self.ends.get(object))
                        .copied()
                        .unwrap_or(0)
                        + 1;
                    next.insert(*object, seq);
                    numbered.push((*object, seq, message));
                    seqs.push(seq);
                }
                written.push(seqs);
            } else {
                written.push(Vec::new());
            }
        }
        (numbered, written)
    }

    /// Writes raised cursors in a transaction of their own; on failure they stay pending for
    /// the next flush.
    async fn write_cursors(&mut self, cursors: &PendingCursors) {
        if cursors.is_empty() {
            return;
        }
        let connection = self.connection.take();
        self.connection = self.cursor_write().run(connection, cursors).await;
    }

    /// Forgets the ends of the objects a failed append touched: the database says again.
    fn after_failure(&mut self, jobs: &[Job]) {
        for job in jobs {
            if let Job::Append { entries, .. } = job {
                for (object, _) in entries {
                    self.ends.remove(object);
                    self.shared.tail.forget(object);
                }
            }
        }
    }

    /// Records the appended entries as the log's newest, then answers the committed jobs: a
    /// caller told its seq may wake a reader, which must find the entry remembered.
    fn answer(&mut self, batch: Vec<Job>, written: Written) {
        let mut appended: HashMap<ObjectId, Vec<Message>> = HashMap::new();
        let mut replies = Vec::with_capacity(batch.len());
        let shared = Arc::clone(&self.shared);
        let mut stored = shared.stored();
        for (job, seqs) in batch.into_iter().zip(written) {
            match job {
                Job::Append { entries, reply, .. } => {
                    for ((object, mut message), seq) in entries.into_iter().zip(&seqs) {
                        if self.ends.len() >= MAX_REMEMBERED_ENDS {
                            self.ends.clear();
                        }
                        let end = self.ends.entry(object).or_insert(0);
                        *end = (*end).max(*seq);
                        message.object = object.to_string();
                        message.seq = *seq;
                        stored.record((object, message.seq));
                        appended.entry(object).or_default().push(message);
                    }
                    replies.push(Reply::Seqs(reply, seqs));
                }
                Job::Messages { messages, reply } => {
                    for message in messages {
                        // A name that is no object was refused by the write already.
                        if let Ok(object) = message.object.parse() {
                            stored.record((object, message.seq));
                        }
                    }
                    replies.push(Reply::Done(reply));
                }
                Job::Close { reply } => replies.push(Reply::Done(reply)),
            }
        }
        drop(stored);
        for (object, messages) in appended {
            self.shared.tail.appended(object, messages);
        }
        for reply in replies {
            // A caller that went away no longer wants the answer.
            match reply {
                Reply::Seqs(reply, seqs) => {
                    let _ = reply.send(Ok(seqs));
                }
                Reply::Done(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }

    /// One transaction: the log entries, the messages and the cursors of `jobs`.
    async fn write(&mut self, jobs: &[Job], cursors: &PendingCursors) -> InfraResult<Written> {
        let mut connection = ready_connection(
            self.connection.take(),
            &self.pool,
            self.dialect,
            &self.statements,
            &self.restart,
        )
        .await?;
        let outcome = self.write_on(&mut connection, jobs, cursors).await;
        // The connection may be what failed: then the next batch takes a fresh one.
        if outcome.is_ok() {
            self.connection = Some(connection);
        }
        outcome
    }

    /// One transaction on `connection`: the log entries, the messages and the cursors of `jobs`.
    ///
    /// `&mut self` although it only reads the worker: the held connection makes the worker `Send`
    /// but not `Sync`, so a shared borrow of it may not live across an await.
    async fn write_on(
        &mut self,
        connection: &mut PoolConnection<Any>,
        jobs: &[Job],
        cursors: &PendingCursors,
    ) -> InfraResult<Written> {
        self.forget_if_asked();
        // Ends not remembered are read before the transaction: this writer is the log's only
        // one, and were it not, a stale end fails the batch on the log's key, never reuses a seq.
        let mut unknown: Vec<ObjectId> = Vec::new();
        for job in jobs {
            if let Job::Append { entries, .. } = job {
                for (object, _) in entries {
                    if !self.ends.contains_key(object) && !unknown.contains(object) {
                        unknown.push(*object);
                    }
                }
            }
        }
        if !unknown.is_empty() {
            self.ends
                .extend(committed_ends(&mut **connection, self.dialect, &unknown).await?);
        }
        // Appended rows as (object, seq, message): the embedded log is the `messages` table,
        // so an append is its row, stored under its log position without copying the message.
        let (numbered, written) = self.number(jobs);
        let appended: Vec<(String, u64, &Message)> = numbered
            .into_iter()
            .map(|(object, seq, message)| (object.to_string(), seq, message))
            .collect();
        // Partition offsets move only from where their numbering started: one moved by
        // another process makes the move fail its check, and the batch with it.
        let mut advances: Vec<&PartitionAdvance> = jobs
            .iter()
            .filter_map(|job| match job {
                Job::Append { advance, .. } => advance.as_ref(),
                _ => None,
            })
            .collect();
        advances.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(statement) = &self.statements.append_statement
            && cursors.is_empty()
            && jobs.iter().all(|job| matches!(job, Job::Append { .. }))
            && advances
                .iter()
                .all(|advance| self.known_partitions.contains(&advance.name))
        {
            statement
                .run(connection, &appended, message_values, &advances)
                .await?;
            return Ok(written);
        }
        let mut batch = WriteBatch::begin(connection, self.dialect).await?;
        // Rows and cursors go in key order: in a cluster, logic and task processes write the
        // same messages and cursors at once, and two transactions that take row locks in
        // different orders deadlock (PostgreSQL then waits `deadlock_timeout`, a second, before
        // it aborts one of them).
        let mut stored: Vec<(&str, u64, &Message)> = jobs
            .iter()
            .filter_map(|job| match job {
                Job::Messages { messages, .. } => Some(messages),
                _ => None,
            })
            .flatten()
            .map(|message| (message.object.as_str(), message.seq, message))
            .collect();
        stored.sort_unstable_by_key(|(object, seq, _)| (*object, *seq));
        stored.dedup_by_key(|(object, seq, _)| (*object, *seq));
        // Appends first and strictly: a seq taken twice fails the batch, never hides a row.
        self.statements
            .appended
            .run(&mut batch, &appended, message_values)
            .await?;
        self.statements
            .stored
            .run(&mut batch, &stored, message_values)
            .await?;
        self.statements
            .partition_known
            .run(&mut batch, &advances, |advance, values| {
                values.extend([Value::Text(&advance.name), Value::Int(0)]);
            })
            .await?;
        for advance in &advances {
            batch
                .execute(
                    &self.statements.partition_move,
                    &[
                        Value::Int(advance.from),
                        Value::Int(advance.to),
                        Value::Text(&advance.name),
                    ],
                )
                .await?;
        }
        cursor_rows(&mut batch, &self.statements, cursors).await?;
        batch.commit().await?;
        self.known_partitions
            .extend(advances.iter().map(|advance| advance.name.clone()));
        Ok(written)
    }
}

/// The raised cursors' upserts, in key order, into `batch`.
async fn cursor_rows(
    batch: &mut WriteBatch<'_>,
    statements: &BatchStatements,
    cursors: &PendingCursors,
) -> InfraResult<()> {
    for (kind, statement) in [
        (CursorKind::Acknowledged, &statements.acknowledged),
        (CursorKind::Read, &statements.read),
    ] {
        let mut raised: Vec<_> = cursors.of_kind(kind).iter().collect();
        raised.sort_unstable();
        statement
            .run(batch, &raised, |row, values| {
                values.extend([
                    Value::Int(row.0.0),
                    Value::Text(&row.0.1),
                    Value::Int(stored_seq(*row.1)),
                ]);
            })
            .await?;
    }
    let mut delivered: Vec<_> = cursors.delivered.iter().collect();
    delivered.sort_unstable();
    statements
        .delivered
        .run(batch, &delivered, |row, values| {
            values.extend([Value::Text(row.0), Value::Int(stored_seq(*row.1))]);
        })
        .await?;
    Ok(())
}

/// Everything a cursor flush needs from the writer.
struct CursorWrite {
    pool: AnyPool,
    dialect: Dialect,
    statements: Arc<BatchStatements>,
    restart: Arc<checkpointer::RestartRequest>,
    shared: Arc<Shared>,
}

impl CursorWrite {
    /// Writes `cursors` in a transaction of their own on [`ready_connection`]. Written, they
    /// are no longer pending and the connection comes back; on failure they stay pending for
    /// the next flush, and the connection, which may be what failed, is dropped.
    async fn run(
        self,
        connection: Option<PoolConnection<Any>>,
        cursors: &PendingCursors,
    ) -> Option<PoolConnection<Any>> {
        let written = async {
            let mut connection = ready_connection(
                connection,
                &self.pool,
                self.dialect,
                &self.statements,
                &self.restart,
            )
            .await?;
            let mut batch = WriteBatch::begin(&mut connection, self.dialect).await?;
            cursor_rows(&mut batch, &self.statements, cursors).await?;
            batch.commit().await?;
            Ok::<_, InfraError>(connection)
        };
        match written.await {
            Ok(connection) => {
                self.shared.pending().forget_written(cursors);
                Some(connection)
            }
            Err(error) => {
                tracing::warn!(%error, "writing cursors failed; retrying with the next flush");
                None
            }
        }
    }
}

/// The copies `jobs` hold, the appends placed where `places` (their numbering, in order) says,
/// written to `history` in one atomic write: appends refused on a taken place, stored messages
/// skipped there.
fn write_jobs(history: &History, jobs: &[Job], places: &[(ObjectId, u64)]) -> InfraResult<usize> {
    let mut places = places.iter();
    let mut appended = Vec::new();
    let mut stored = Vec::new();
    for job in jobs {
        match job {
            Job::Append { entries, .. } => {
                for (_, message) in entries {
                    let &(object, seq) = places
                        .next()
                        .ok_or_else(|| InfraError::Corrupt("an append has no seq".into()))?;
                    appended.push(Placed {
                        object,
                        seq,
                        message,
                    });
                }
            }
            Job::Messages { messages, .. } => {
                for message in messages {
                    stored.push(Placed::named(message)?);
                }
            }
            Job::Close { .. } => {}
        }
    }
    history.write_parts(&[(&appended, Existing::Refuse), (&stored, Existing::Skip)])
}

/// A `messages` row's values, in the column order of [`MESSAGE_INSERT`].
fn message_values<'r, Object: AsRef<str>>(
    row: &'r (Object, u64, &Message),
    values: &mut Vec<Value<'r>>,
) {
    let (object, seq, message) = row;
    values.extend([
        Value::Text(object.as_ref()),
        Value::Int(stored_seq(*seq)),
        Value::Int(message.id as i64),
        Value::Int(message.sender),
        Value::Int(message.peer),
        Value::Text(&message.kind),
        Value::Text(&message.body),
        Value::Int(message.ts),
        Value::Text(&message.cid),
        Value::Text(&message.target_kind),
        Value::Int(message.target_id),
        Value::Int(message.ref_id as i64),
        Value::Int(message.ref_sender),
        Value::Text(&message.ref_snippet),
        Value::Int(message.edited_at),
    ]);
}

/// How many columns a `messages` row has (see [`message_values`]).
const MESSAGE_COLUMNS: usize = 15;

/// The PostgreSQL types of a `messages` row's columns, in the order of [`message_values`].
const MESSAGE_COLUMN_TYPES: [&str; MESSAGE_COLUMNS] = [
    "text", "bigint", "bigint", "bigint", "bigint", "text", "text", "bigint", "text", "text",
    "bigint", "bigint", "bigint", "text", "bigint",
];

/// The `messages` insert, up to its row source: the store's column list, in its order.
const MESSAGE_INSERT: &str = concat!("INTO messages (", message_columns!(), ")");

/// The connection to write on: the one held (a fresh one if none), caught up with the WAL's
/// checkpoints first if the checkpoint task asked.
async fn ready_connection(
    held: Option<PoolConnection<Any>>,
    pool: &AnyPool,
    dialect: Dialect,
    statements: &BatchStatements,
    restart: &checkpointer::RestartRequest,
) -> InfraResult<PoolConnection<Any>> {
    let mut connection = match held {
        Some(connection) => connection,
        None => fresh_connection(pool, dialect, statements).await?,
    };
    if restart.take() {
        checkpointer::catch_up(&mut connection).await;
    }
    Ok(connection)
}

/// A connection from the pool, given a large page cache and what `statements` need on it.
async fn fresh_connection(
    pool: &AnyPool,
    dialect: Dialect,
    statements: &BatchStatements,
) -> InfraResult<PoolConnection<Any>> {
    let mut connection = pool.acquire().await?;
    if dialect == Dialect::Sqlite {
        // A batch touches pages all over `messages`, its indexes and the cursor tables; a
        // cache that holds them saves rereading (and respilling) them for every batch.
        connection
            .execute(sqlx::raw_sql(WRITER_SQLITE_CACHE))
            .await?;
        connection
            .execute(sqlx::raw_sql(checkpointer::WAL_SIZE_LIMIT))
            .await?;
    }
    for setup in [&statements.appended, &statements.stored]
        .into_iter()
        .filter_map(BatchInsert::setup)
    {
        connection.execute(setup).await?;
    }
    Ok(connection)
}

/// The writer's statements, in its database's dialect.
#[derive(Debug)]
struct BatchStatements {
    /// Embedded log appends: a plain insert, which fails on a seq already taken.
    appended: BatchInsert,
    /// Stored messages: left alone where already present.
    stored: BatchInsert,
    acknowledged: BatchInsert,
    read: BatchInsert,
    delivered: BatchInsert,
    /// A shared-log partition's row, made at offset 0 when missing.
    partition_known: BatchInsert,
    /// Moves a partition's offset from its first parameter to its second, or fails the
    /// `next_offset >= 0` check when the stored offset is another.
    partition_move: sqlx::SqlStr,
    /// PostgreSQL: a batch of appends to known partitions as one statement.
    append_statement: Option<AppendStatement>,
}

impl BatchStatements {
    fn new(dialect: Dialect) -> BatchStatements {
        BatchStatements {
            appended: BatchInsert::staged(dialect, MESSAGE_COLUMNS, |source| {
                format!("INSERT {MESSAGE_INSERT} {source}")
            }),
            stored: BatchInsert::staged(dialect, MESSAGE_COLUMNS, |source| {
                dialect.insert_unless_present(&format!("{MESSAGE_INSERT} {source}"), "object, seq")
            }),
            acknowledged: BatchInsert::new(dialect, 3, |source| {
                dialect.insert_or_raise(
                    "ack_cursors",
                    &format!("INTO ack_cursors (user_id, object, seq) {source}"),
                    "user_id, object",
                    "seq",
                )
            }),
            read: BatchInsert::new(dialect, 3, |source| {
                dialect.insert_or_raise(
                    "read_cursors",
                    &format!("INTO read_cursors (user_id, conversation, seq) {source}"),
                    "user_id, conversation",
                    "seq",
                )
            }),
            delivered: BatchInsert::new(dialect, 2, |source| {
                dialect.insert_or_raise(
                    "delivered_cursors",
                    &format!("INTO delivered_cursors (object, seq) {source}"),
                    "object",
                    "seq",
                )
            }),
            partition_known: BatchInsert::new(dialect, 2, |source| {
                dialect.insert_unless_present(
                    &format!("INTO log_partitions (name, next_offset) {source}"),
                    "name",
                )
            }),
            partition_move: {
                // SQLite's scripts bind every parameter as text: the casts compare numbers.
                let integer = if dialect == Dialect::MySql {
                    "SIGNED"
                } else {
                    "BIGINT"
                };
                super::batch_insert::sql_text(dialect.placeholders(&format!(
                    "UPDATE log_partitions SET next_offset = CASE \
                     WHEN next_offset = CAST(? AS {integer}) THEN CAST(? AS {integer}) \
                     ELSE -1 END WHERE name = ?"
                )))
            },
            append_statement: (dialect == Dialect::Postgres)
                .then(|| AppendStatement::new(MESSAGE_INSERT, &MESSAGE_COLUMN_TYPES)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_forgets_only_what_it_wrote() {
        let mut pending = PendingCursors::default();
        raise(&mut pending.acknowledged, (1, "user:2".into()), 4);
        raise(&mut pending.delivered, "user:2".into(), 9);
        raise(&mut pending.read, (1, "user:2".into()), 3);
        // The flush writes a copy; meanwhile the delivered cursor is raised again.
        let written = pending.clone();
        raise(&mut pending.delivered, "user:2".into(), 12);
        // A lower raise during the flush keeps the higher value, still readable.
        raise(&mut pending.acknowledged, (1, "user:2".into()), 2);
        assert_eq!(pending.acknowledged[&(1, "user:2".into())], 4);
        pending.forget_written(&written);
        assert!(pending.acknowledged.is_empty(), "written, so forgotten");
        assert!(pending.read.is_empty(), "written, so forgotten");
        assert_eq!(
            pending.delivered.get("user:2"),
            Some(&12),
            "raised after the copy was taken: kept for the next flush"
        );
    }
}
