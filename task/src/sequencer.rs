//! Numbering the partitioned log: a task process owns partitions (not objects), reads each in
//! offset order and gives every record the next seq of its object.
//!
//! The numbering depends only on the partition's records and on the state at the offset it
//! resumes from, and that state is in the store: each batch's rows (object, seq, message) and
//! the partition's next offset are committed in one transaction, which fails if the stored
//! offset moved since the batch was read. So a successor taking over a dead owner's partition
//! resumes exactly where the last commit left it, and two processes that both believe they own
//! a partition for a moment cannot both number one record. Producers learn their records'
//! seqs by asking ([`Sequencer::sequence`]); the ask is also what wakes the numbering, and a
//! slow poll numbers records whose producer died before asking.
//!
//! An ask hands in the record's message too, so a run of asked records from the next offset
//! on is numbered without reading it back from the broker: the partition is read only where
//! asks leave a hole (a producer that died, or an ask that is late), and by the slow poll.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use natter_infra::InfraError;
use natter_infra::cluster::{Fetched, KafkaPartitions, PartitionRecord};
use natter_infra::error::InfraResult;
use natter_infra::sql::SqlLog;
use natter_proto::ObjectId;
use natter_proto::placement::LogPartition;
use natter_proto::v1::Message;
use natter_proto::{trace_context, trace_continued};
use tokio::sync::{Notify, oneshot};
use tracing::{Instrument, Span};

/// How long the record at the next offset may be missing from asks about later records before
/// the partition is read instead: asks sent together can arrive out of order, and one that just
/// missed its partition's request waits in logic for the next. 10 ms rather than 3 halved the
/// reads at 2,000 msg/s with no change in latency (BENCHMARKS.md, 2026-12-08); a producer that
/// died costs its successors' records those milliseconds once.
const HOLE_GRACE: Duration = Duration::from_millis(10);
/// How often an owned partition is read when nobody asks (records whose producer died).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The most bytes one read of a partition asks for.
const FETCH_BYTES: i32 = 1 << 20;
/// Offsets whose seq a partition remembers; older ones are looked up in the store.
const REMEMBERED_OFFSETS: usize = 65_536;
/// Message ids a partition remembers to recognise a record produced twice (a retried
/// produce, a retried send finishing under the same id).
const REMEMBERED_IDS: usize = 4_096;
/// How long an ask waits for its records to be numbered.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a partition nobody owns here and nobody asks about keeps being read.
const UNOWNED_IDLE: Duration = Duration::from_secs(30);
/// The pause after a failed read or commit.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often a partition's delivered offset is written when it moved.
const DELIVERED_EVERY: Duration = Duration::from_secs(1);

/// A record whose seq a producer waits for.
struct Ask {
    offset: i64,
    object: ObjectId,
    id: u64,
    /// The record's message as the producer gave it, until it is numbered.
    message: Option<Message>,
    reply: oneshot::Sender<InfraResult<u64>>,
}

/// A produced record a producer asks the seq of: where it is, what it is, and (from a
/// producer that sends it) its message as a read of the record gives it back.
#[derive(Debug, Clone)]
pub struct AskedRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// The object it was appended to.
    pub object: ObjectId,
    /// The message id it carries.
    pub id: u64,
    /// The message, with `object` set and seq 0 ([`natter_infra::cluster::read_back`]).
    pub message: Option<Message>,
}

/// Asked records numbered in one batch at most.
const MOST_ASKED_PER_BATCH: usize = 4096;

/// One partition's numbering state.
#[derive(Default)]
struct NumberingState {
    /// The first offset not numbered yet; None until read from the store.
    next_offset: Option<i64>,
    /// Asks not answered yet.
    asks: Vec<Ask>,
    /// (offset, seq) of the newest numbered records, in offset order.
    offsets: VecDeque<(i64, u64)>,
    /// The seq of each recently numbered (object, message id), oldest first in `id_order`.
    ids: HashMap<(ObjectId, u64), u64>,
    id_order: VecDeque<(ObjectId, u64)>,
    /// When someone last asked about this partition.
    last_ask: Option<Instant>,
    /// Numbered records not known to be delivered: offset → (object, a seq at or past the
    /// record's). The first is where a successor must start looking.
    undelivered: BTreeMap<i64, (ObjectId, u64)>,
    /// Records not known delivered, as last read ([`PartitionNumbering::report_lag`]).
    lag: i64,
    /// The delivered offset as last written (or read) in the store.
    stored_delivered: i64,
    /// When the delivered offset was last written.
    delivered_written: Option<Instant>,
}

impl NumberingState {
    /// Forgets everything read from the store: another process may have moved on. What is
    /// undelivered stays: delivering it again costs a repeat clients drop, never a loss.
    fn reset(&mut self) {
        self.next_offset = None;
        self.offsets.clear();
        self.ids.clear();
        self.id_order.clear();
    }

    /// The offset delivery has reached: the first numbered record not known delivered, or
    /// `next` (the first not numbered) when there is none.
    fn first_undelivered(&self, next: i64) -> i64 {
        self.undelivered
            .keys()
            .next()
            .copied()
            .unwrap_or(next)
            .min(next)
    }

    fn remember_offset(&mut self, offset: i64, seq: u64) {
        if self.offsets.len() >= REMEMBERED_OFFSETS {
            self.offsets.pop_front();
        }
        self.offsets.push_back((offset, seq));
    }

    fn remember_id(&mut self, key: (ObjectId, u64), seq: u64) {
        if self.ids.insert(key, seq).is_none() {
            self.id_order.push_back(key);
            if self.id_order.len() > REMEMBERED_IDS
                && let Some(oldest) = self.id_order.pop_front()
            {
                self.ids.remove(&oldest);
            }
        }
    }

    /// The asked records that run without a hole from `next` on, with their messages (taken
    /// from the asks, which keep waiting for their seqs): a batch to number without reading
    /// the partition. Empty when the record at `next` was not asked about with its message
    /// (its producer died, or its ask has not come yet), which only a read can fill.
    fn take_asked_run(&mut self, next: i64) -> Vec<PartitionRecord> {
        let mut asked: Vec<&mut Ask> = self
            .asks
            .iter_mut()
            .filter(|ask| ask.offset >= next && ask.message.is_some())
            .collect();
        asked.sort_unstable_by_key(|ask| ask.offset);
        let mut run = Vec::new();
        let mut expected = next;
        for ask in asked {
            if ask.offset < expected {
                // Asked twice (a retried ask): the first ask's message is in the run.
                continue;
            }
            if ask.offset > expected || run.len() >= MOST_ASKED_PER_BATCH {
                break;
            }
            if let Some(message) = ask.message.take() {
                run.push(PartitionRecord {
                    offset: ask.offset,
                    object: ask.object,
                    message,
                });
                expected += 1;
            }
        }
        run
    }

    /// The remembered seq of a numbered offset.
    fn seq_at(&self, offset: i64) -> Option<u64> {
        self.offsets
            .binary_search_by_key(&offset, |(known, _)| *known)
            .ok()
            .map(|index| self.offsets[index].1)
    }
}

/// One partition's numbering.
struct PartitionNumbering {
    partition: LogPartition,
    state: Mutex<NumberingState>,
    wake: Notify,
    stopped: AtomicBool,
    /// Whether the ownership view says this process owns it.
    owned: AtomicBool,
}

impl PartitionNumbering {
    /// Publishes how many records of the partition are not known delivered: from the first
    /// undelivered (or the next unnumbered) record to the end readers can see.
    fn report_lag(&self, end: i64, next: i64) {
        let lag = {
            let mut state = self.state();
            state.lag = (end - state.first_undelivered(next)).max(0);
            state.lag
        };
        metrics::gauge!("natter_log_lag_records", "partition" => self.partition.to_string())
            .set(lag as f64);
    }

    fn state(&self) -> MutexGuard<'_, NumberingState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What is told when records were numbered: the objects whose logs grew.
pub type OnNumbered = Box<dyn Fn(Vec<ObjectId>) + Send + Sync>;

/// The numbering of the partitions this task process reads.
pub struct Sequencer {
    log: Arc<KafkaPartitions>,
    numbered: Arc<SqlLog>,
    on_numbered: OnceLock<OnNumbered>,
    partitions: Mutex<HashMap<LogPartition, Arc<PartitionNumbering>>>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Sequencer").finish_non_exhaustive()
    }
}

impl Sequencer {
    /// A sequencer reading `log` and numbering into `numbered` (the store's log table).
    pub fn new(log: Arc<KafkaPartitions>, numbered: Arc<SqlLog>) -> Arc<Sequencer> {
        Arc::new(Sequencer {
            log,
            numbered,
            on_numbered: OnceLock::new(),
            partitions: Mutex::new(HashMap::new()),
        })
    }

    /// Sets what is told about numbered objects (delivery); only the first call counts.
    pub fn on_numbered(&self, tell: OnNumbered) {
        let _ = self.on_numbered.set(tell);
    }

    fn partitions(&self) -> MutexGuard<'_, HashMap<LogPartition, Arc<PartitionNumbering>>> {
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The numbering of `partition`, started if it is not running.
    fn numbering(self: &Arc<Self>, partition: LogPartition) -> Arc<PartitionNumbering> {
        let mut partitions = self.partitions();
        if let Some(running) = partitions.get(&partition) {
            return Arc::clone(running);
        }
        // What this process remembers of these objects may be stale: another process may
        // have numbered them since it last did.
        self.numbered.forget_remembered();
        let numbering = Arc::new(PartitionNumbering {
            partition,
            state: Mutex::new(NumberingState::default()),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            owned: AtomicBool::new(false),
        });
        partitions.insert(partition, Arc::clone(&numbering));
        metrics::gauge!("natter_sequencer_partitions").set(partitions.len() as f64);
        tracing::info!(%partition, "numbering a log partition");
        tokio::spawn(Arc::clone(self).run(Arc::clone(&numbering)));
        numbering
    }

    /// Reads the partitions this process owns (from the ownership view); stops reading
    /// those it no longer owns once nobody has asked about them for a while.
    pub fn own(self: &Arc<Self>, owned: &[LogPartition]) {
        for partition in owned {
            self.numbering(*partition)
                .owned
                .store(true, Ordering::Release);
        }
        let mut partitions = self.partitions();
        for (partition, numbering) in partitions.iter() {
            if !owned.contains(partition) {
                numbering.owned.store(false, Ordering::Release);
                numbering.wake.notify_one();
            }
        }
        partitions.retain(|_, numbering| !numbering.stopped.load(Ordering::Acquire));
    }

    /// Each partition this process owns, with its last reported lag (records), by name.
    pub fn lag(&self) -> Vec<(LogPartition, i64)> {
        let mut lags: Vec<(LogPartition, i64)> = self
            .partitions()
            .values()
            .filter(|numbering| numbering.owned.load(Ordering::Acquire))
            .map(|numbering| (numbering.partition, numbering.state().lag))
            .collect();
        lags.sort_by_key(|(partition, _)| partition.to_string());
        lags
    }

    /// An object's messages up to `seq` are delivered: its numbered records up to there no
    /// longer hold back its partition's delivered offset.
    pub fn delivered(&self, object: &ObjectId, seq: u64) {
        let partition = self.log.partition_of(object);
        let Some(numbering) = self.partitions().get(&partition).cloned() else {
            return;
        };
        numbering
            .state()
            .undelivered
            .retain(|_, (held, at)| !(held == object && *at <= seq));
    }

    /// Stops every numbering (the process is stopping).
    pub fn stop(&self) {
        for numbering in self.partitions().values() {
            numbering.stopped.store(true, Ordering::Release);
            numbering.wake.notify_one();
        }
    }

    /// The seqs of records produced to `partition`, once they are numbered and stored. Asked
    /// records that run on from the next offset to number, with their messages, are numbered
    /// without reading the partition; the others wait for a read. Any task process may
    /// answer: one that does not own the partition starts reading it, and the store keeps the
    /// two from disagreeing.
    pub async fn sequence(
        self: &Arc<Self>,
        partition: LogPartition,
        records: Vec<AskedRecord>,
    ) -> InfraResult<Vec<u64>> {
        let asked = Instant::now();
        let numbering = self.numbering(partition);
        let mut answers = Vec::with_capacity(records.len());
        {
            let mut state = numbering.state();
            state.last_ask = Some(Instant::now());
            for record in records {
                let (reply, answer) = oneshot::channel();
                state.asks.push(Ask {
                    offset: record.offset,
                    object: record.object,
                    id: record.id,
                    message: record.message,
                    reply,
                });
                answers.push(answer);
            }
        }
        numbering.wake.notify_one();
        let mut seqs = Vec::with_capacity(answers.len());
        for answer in answers {
            let seq = tokio::time::timeout(ASK_TIMEOUT, answer)
                .await
                .map_err(|_| InfraError::Unavailable(format!("{partition}: not numbered in time")))?
                .map_err(|_| {
                    InfraError::Unavailable(format!("{partition}: numbering stopped"))
                })??;
            seqs.push(seq);
        }
        metrics::histogram!("natter_sequencer_ask_seconds").record(asked.elapsed().as_secs_f64());
        Ok(seqs)
    }

    /// One partition's loop: read what is new, number it, commit it, answer the asks.
    async fn run(self: Arc<Self>, numbering: Arc<PartitionNumbering>) {
        let partition = numbering.partition;
        // Stored under its topic's name, so another cluster's numbering in the same database
        // (another topic prefix) is never taken for this one's.
        let name = self.log.stored_name(&partition);
        // What was read while the last batch committed, and the offset it was read from.
        let mut prefetched: Option<(i64, Fetched)> = None;
        // When the record at the next offset was first missing from asks about later ones.
        let mut hole_since: Option<Instant> = None;
        // When the partition was last read; never, at first, so what is there is read at once.
        let mut last_read: Option<Instant> = None;
        loop {
            if numbering.stopped.load(Ordering::Acquire) {
                break;
            }
            let next = numbering.state().next_offset;
            let next = match next {
                Some(next) => next,
                None => match self.resume(&numbering, &name).await {
                    Ok(next) => next,
                    Err(error) => {
                        tracing::warn!(%partition, %error, "resuming a partition failed");
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                },
            };
            self.write_delivered(&numbering, &name, next).await;
            // What producers asked about, in order from `next`, needs no read: they produced
            // it and said where it went.
            let (asked_below, asked) = {
                let mut state = numbering.state();
                let below = state.asks.iter().any(|ask| ask.offset < next);
                (below, state.take_asked_run(next))
            };
            if asked_below {
                // Asked late about records numbered already (a retried ask, or numbered by
                // another process since).
                self.answer_numbered(&numbering).await;
            }
            if let Some(last) = asked.last() {
                hole_since = None;
                numbering.report_lag(last.offset + 1, next);
                metrics::counter!("natter_sequencer_batches_total", "source" => "asks")
                    .increment(1);
                prefetched = self
                    .number(&numbering, &name, next, asked, ReadAhead::No)
                    .await;
                continue;
            }
            let read_ahead = match prefetched.take() {
                Some((from, fetched)) if from == next && !fetched.records.is_empty() => {
                    Some(fetched)
                }
                _ => None,
            };
            // Only when no run was ready: what the asks beyond `next` say about the hole.
            let (asked_beyond, asked_without_message) = {
                let state = numbering.state();
                let mut beyond = state
                    .asks
                    .iter()
                    .filter(|ask| ask.offset >= next)
                    .peekable();
                let any = beyond.peek().is_some();
                (any, beyond.any(|ask| ask.message.is_none()))
            };
            if read_ahead.is_none() && !asked_without_message {
                // Read only when asks alone cannot go on: the record at `next` is still not
                // asked about a moment after a later one was (its producer died, or its ask
                // is late), or nothing was read for a while (records nobody will ask about).
                let read_due = if asked_beyond {
                    hole_since.get_or_insert_with(Instant::now).elapsed() >= HOLE_GRACE
                } else {
                    hole_since = None;
                    last_read.is_none_or(|read| read.elapsed() >= IDLE_POLL)
                };
                if !read_due {
                    if self.idle_and_unowned(&numbering) {
                        break;
                    }
                    let pause = if let Some(since) = hole_since {
                        HOLE_GRACE.saturating_sub(since.elapsed())
                    } else {
                        last_read.map_or(Duration::ZERO, |read| {
                            IDLE_POLL.saturating_sub(read.elapsed())
                        })
                    };
                    tokio::select! {
                        () = numbering.wake.notified() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            }
            let fetched = match read_ahead {
                Some(fetched) => Ok(fetched),
                None => {
                    last_read = Some(Instant::now());
                    self.log.fetch(&partition, next, FETCH_BYTES).await
                }
            };
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(error) => {
                    tracing::warn!(%partition, %error, "reading a log partition failed");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            numbering.report_lag(fetched.end, next);
            if fetched.records.is_empty() {
                self.answer_numbered(&numbering).await;
                if self.idle_and_unowned(&numbering) {
                    break;
                }
                let asked_beyond = numbering.state().asks.iter().any(|ask| ask.offset >= next);
                let pause = if asked_beyond {
                    // Asked about a record not readable yet (a replica catching up).
                    Duration::from_millis(2)
                } else {
                    IDLE_POLL
                };
                tokio::select! {
                    () = numbering.wake.notified() => {}
                    () = tokio::time::sleep(pause) => {}
                }
                continue;
            }
            hole_since = None;
            metrics::counter!("natter_sequencer_batches_total", "source" => "read").increment(1);
            prefetched = self
                .number(&numbering, &name, next, fetched.records, ReadAhead::Yes)
                .await;
        }
        numbering.stopped.store(true, Ordering::Release);
        // Another process reports it from now on.
        metrics::gauge!("natter_log_lag_records", "partition" => partition.to_string()).set(0.0);
        let asks = std::mem::take(&mut numbering.state().asks);
        for ask in asks {
            let _ = ask.reply.send(Err(InfraError::Unavailable(format!(
                "{partition}: no longer numbered here"
            ))));
        }
        tracing::info!(%partition, "stopped numbering a log partition");
    }

    /// Reads where the partition's numbering stands in the store, and has every object whose
    /// records from the delivered offset on may be undelivered delivered again: a successor's
    /// work is the records since the last delivered offset, not every object. Returns the
    /// next offset to number.
    async fn resume(&self, numbering: &PartitionNumbering, name: &str) -> InfraResult<i64> {
        let (next, delivered) = self.numbered.partition_offsets(name).await?;
        let mut objects: Vec<(i64, ObjectId)> = Vec::new();
        let mut offset = delivered;
        while offset < next {
            let fetched = self
                .log
                .fetch(&numbering.partition, offset, FETCH_BYTES)
                .await?;
            let Some(last) = fetched.records.last().map(|record| record.offset) else {
                break;
            };
            objects.extend(
                fetched
                    .records
                    .into_iter()
                    .take_while(|record| record.offset < next)
                    .map(|record| (record.offset, record.object)),
            );
            offset = last + 1;
        }
        let mut distinct: Vec<ObjectId> = objects.iter().map(|(_, object)| *object).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let ends: HashMap<ObjectId, u64> = self
            .numbered
            .committed_ends(&distinct)
            .await?
            .into_iter()
            .collect();
        {
            let mut state = numbering.state();
            for (offset, object) in &objects {
                // The object's end is at or past the record's seq: delivered once it is.
                let end = ends.get(object).copied().unwrap_or(0);
                state.undelivered.insert(*offset, (*object, end));
            }
            state.stored_delivered = state.stored_delivered.max(delivered);
            state.next_offset = Some(next);
        }
        if !distinct.is_empty() {
            tracing::info!(
                partition = %numbering.partition,
                records = objects.len(),
                objects = distinct.len(),
                "delivering what a predecessor may not have"
            );
            if let Some(tell) = self.on_numbered.get() {
                tell(distinct);
            }
        }
        Ok(next)
    }

    /// Writes the partition's delivered offset when it moved and a while has passed.
    async fn write_delivered(&self, numbering: &PartitionNumbering, name: &str, next: i64) {
        let moved_to = {
            let state = numbering.state();
            if state
                .delivered_written
                .is_some_and(|written| written.elapsed() < DELIVERED_EVERY)
            {
                return;
            }
            let delivered = state.first_undelivered(next);
            (delivered > state.stored_delivered).then_some(delivered)
        };
        numbering.state().delivered_written = Some(Instant::now());
        let Some(delivered) = moved_to else {
            return;
        };
        match self
            .numbered
            .advance_delivered_offset(name, delivered)
            .await
        {
            Ok(()) => numbering.state().stored_delivered = delivered,
            Err(error) => {
                tracing::warn!(partition = name, %error, "writing a delivered offset failed")
            }
        }
    }

    /// Whether nobody here owns or asks about the partition any more.
    fn idle_and_unowned(&self, numbering: &PartitionNumbering) -> bool {
        if numbering.owned.load(Ordering::Acquire) {
            return false;
        }
        let state = numbering.state();
        state.asks.is_empty()
            && state
                .last_ask
                .is_none_or(|asked| asked.elapsed() > UNOWNED_IDLE)
    }

    /// Numbers records from offset `from` on and commits them with the partition's offset,
    /// reading the records after them meanwhile if asked to; returns that read (and where it
    /// starts) once the commit succeeded. On failure forgets what it knew, to read it again
    /// from the store.
    async fn number(
        &self,
        numbering: &PartitionNumbering,
        name: &str,
        from: i64,
        records: Vec<PartitionRecord>,
        read_ahead: ReadAhead,
    ) -> Option<(i64, Fetched)> {
        let to = records.last().map_or(from, |record| record.offset + 1);
        // A record produced twice (same object, same message id) is numbered once; the
        // second copy's offset answers with the first's seq.
        let mut entries: Vec<(ObjectId, Message)> = Vec::with_capacity(records.len());
        let mut placed: Vec<(i64, ObjectId, Placement)> = Vec::with_capacity(records.len());
        {
            let state = numbering.state();
            let mut in_batch: HashMap<(ObjectId, u64), usize> = HashMap::new();
            for record in records {
                let key = (record.object, record.message.id);
                if let Some(seq) = state.ids.get(&key) {
                    placed.push((record.offset, record.object, Placement::Known(*seq)));
                } else if let Some(&entry) = in_batch.get(&key) {
                    placed.push((record.offset, record.object, Placement::Entry(entry)));
                } else {
                    in_batch.insert(key, entries.len());
                    placed.push((
                        record.offset,
                        record.object,
                        Placement::Entry(entries.len()),
                    ));
                    entries.push((record.object, record.message));
                }
            }
        }
        let duplicates = placed.len() - entries.len();
        if duplicates > 0 {
            metrics::counter!("natter_sequencer_duplicates_total").increment(duplicates as u64);
        }
        let keys: Vec<(ObjectId, u64)> = entries
            .iter()
            .map(|(object, message)| (*object, message.id))
            .collect();
        let started = Instant::now();
        // The next records are read while these commit: a busy partition's cycle is then the
        // commit alone. They are numbered only after this commit, so duplicates among them
        // are still recognised.
        let span = numbering_span(name, from, &entries);
        let (committed, next) = tokio::join!(
            self.numbered
                .append_from_partition(name, from, to, entries)
                .instrument(span),
            async {
                match read_ahead {
                    ReadAhead::Yes => {
                        Some(self.log.fetch(&numbering.partition, to, FETCH_BYTES).await)
                    }
                    ReadAhead::No => None,
                }
            }
        );
        match committed {
            Ok(seqs) => {
                metrics::histogram!("natter_sequencer_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("natter_sequencer_records_total").increment(placed.len() as u64);
                let mut objects: Vec<ObjectId> = keys.iter().map(|(object, _)| *object).collect();
                objects.sort_unstable();
                objects.dedup();
                {
                    let mut state = numbering.state();
                    for (key, seq) in keys.iter().zip(&seqs) {
                        state.remember_id(*key, *seq);
                    }
                    for (offset, object, placement) in placed {
                        let seq = match placement {
                            Placement::Known(seq) => seq,
                            Placement::Entry(entry) => seqs.get(entry).copied().unwrap_or(0),
                        };
                        state.remember_offset(offset, seq);
                        state.undelivered.insert(offset, (object, seq));
                    }
                    state.next_offset = Some(to);
                }
                if let Some(tell) = self.on_numbered.get() {
                    tell(objects);
                }
                self.answer_numbered(numbering).await;
                next.and_then(Result::ok).map(|fetched| (to, fetched))
            }
            Err(error) => {
                // Most likely another process numbered these records first (the offset
                // moved): start again from what the store says.
                metrics::counter!("natter_sequencer_conflicts_total").increment(1);
                tracing::warn!(partition = name, %error, from, to, "committing a numbered batch failed; reading the partition's state again");
                numbering.state().reset();
                tokio::time::sleep(RETRY_PAUSE).await;
                None
            }
        }
    }

    /// Answers every ask whose record is numbered: from memory, or from the store for one
    /// numbered before this process remembers.
    async fn answer_numbered(&self, numbering: &PartitionNumbering) {
        let (known, older) = {
            let mut state = numbering.state();
            let Some(next) = state.next_offset else {
                return;
            };
            let mut known = Vec::new();
            let mut older = Vec::new();
            let mut waiting = Vec::new();
            for ask in std::mem::take(&mut state.asks) {
                if ask.offset >= next {
                    waiting.push(ask);
                } else if let Some(seq) = state.seq_at(ask.offset) {
                    known.push((ask, seq));
                } else {
                    older.push(ask);
                }
            }
            state.asks = waiting;
            (known, older)
        };
        for (ask, seq) in known {
            let _ = ask.reply.send(Ok(seq));
        }
        for ask in older {
            let answer = match self.numbered.seq_of(&ask.object, ask.id).await {
                Ok(Some(seq)) => Ok(seq),
                Ok(None) => Err(InfraError::Unavailable(format!(
                    "{}@{}: numbered, but {} {} is not stored",
                    numbering.partition, ask.offset, ask.object, ask.id
                ))),
                Err(error) => Err(error),
            };
            let _ = ask.reply.send(answer);
        }
    }
}

/// Whether a batch's commit reads the partition's next records meanwhile: worth it after a
/// batch that had to be read, not after one producers handed in (the next likely is too).
#[derive(Clone, Copy)]
enum ReadAhead {
    Yes,
    No,
}

/// Where a fetched record's seq comes from.
enum Placement {
    /// A record numbered before (a duplicate): its seq.
    Known(u64),
    /// The entry of this batch it is (or duplicates).
    Entry(usize),
}

/// The span of numbering and storing records read from a partition, continuing the trace
/// of the first traced record.
fn numbering_span(partition: &str, from: i64, entries: &[(ObjectId, Message)]) -> Span {
    trace_context::batch_span(entries.iter().map(|(_, message)| message), |first| {
        trace_continued!(
            &first.trace_parent,
            "task.number",
            partition,
            offset = from,
            records = entries.len(),
            object = %first.object,
            message_id = first.id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ask for `offset` of `object`, with its message when `handed_in`.
    fn ask(offset: i64, object: ObjectId, handed_in: bool) -> Ask {
        let id = offset as u64 + 100;
        Ask {
            offset,
            object,
            id,
            message: handed_in.then(|| Message {
                id,
                object: object.to_string(),
                ..Message::default()
            }),
            reply: oneshot::channel().0,
        }
    }

    fn offsets(run: &[PartitionRecord]) -> Vec<i64> {
        run.iter().map(|record| record.offset).collect()
    }

    #[test]
    fn the_asked_run_is_the_asks_with_messages_from_next_to_the_first_hole() {
        let group = ObjectId::Group(7);
        let mut state = NumberingState {
            // Out of order, one asked twice, one below `next`, a hole before 9.
            asks: vec![
                ask(7, group, true),
                ask(5, group, true),
                ask(4, group, true),
                ask(6, group, true),
                ask(6, group, true),
                ask(9, group, true),
            ],
            ..NumberingState::default()
        };
        let run = state.take_asked_run(5);
        assert_eq!(offsets(&run), [5, 6, 7]);
        assert!(
            run.iter()
                .all(|record| record.message.id == record.offset as u64 + 100)
        );
        // The asks still wait for their seqs; only the messages were taken.
        assert_eq!(state.asks.len(), 6);
        assert_eq!(
            state
                .asks
                .iter()
                .filter(|ask| ask.message.is_none())
                .count(),
            3
        );
        // Numbered up to 8 now: 8 was not asked about, so only a read can go on.
        assert!(state.take_asked_run(8).is_empty());
        // An ask without its message (an older producer) is a hole too.
        state.asks.push(ask(8, group, false));
        assert!(state.take_asked_run(8).is_empty());
        state.asks.push(ask(8, group, true));
        assert_eq!(offsets(&state.take_asked_run(8)), [8, 9]);
    }
}
