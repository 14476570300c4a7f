//! The logic service's shared state: the ports it works through and what it remembers between
//! calls. Every rpc family (the other modules) adds its methods to [`LogicService`] and imports
//! only this module, never another family.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use natter_infra::ids::IdGenerator;
use natter_infra::positions::PositionCache;
use natter_infra::{InfraError, MessageLog, Sessions, Store};
use natter_proto::ObjectId;
use natter_proto::handle::TaskHandle;
use tonic::Status;

use crate::admission::SendAdmission;
use crate::claim_holder;
use crate::claims::ClaimBatcher;
use crate::config::LogicConfig;

/// The logic layer's service implementation.
#[derive(Clone)]
pub struct LogicService {
    pub(crate) config: LogicConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) log: Arc<dyn MessageLog>,
    pub(crate) sessions: Arc<dyn Sessions>,
    pub(crate) ids: Arc<IdGenerator>,
    /// Where wakes for grown objects go.
    pub(crate) task: TaskHandle,
    /// Groups with a `group_online` frame waiting for its interval.
    pub(crate) pending_group_counts: Arc<PendingGroupCounts>,
    /// The bound on sends in progress.
    pub(crate) admission: SendAdmission,
    /// The highest seq known to exist per object (appended here, or read as an end), so an
    /// ack within it is valid without asking the log.
    pub(crate) known_ends: Arc<PositionCache<ObjectId>>,
    /// What the history held when the de-duplication memory began.
    pub(crate) history_at_memory_start: Arc<HistoryAtMemoryStart>,
    /// The history's epoch, read once.
    pub(crate) history_epoch: Arc<tokio::sync::OnceCell<String>>,
    /// Who this process's sends hold their claims as (see [`crate::claim_holder`]).
    pub(crate) claim_holder: Arc<str>,
    /// The sends' claims and their completions, made through `sessions` as `claim_holder`.
    pub(crate) claims: ClaimBatcher,
    /// Cursor moves waiting for their receipts.
    pub(crate) receipts: Arc<crate::receipts::Receipts>,
    /// The inbox entries this process appended lately, so most delivery receipts need no
    /// query.
    pub(crate) recent_copies: Arc<crate::recent_copies::RecentCopies>,
}

impl std::fmt::Debug for LogicService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An infrastructure error as the status callers see.
pub(crate) fn status(error: InfraError) -> Status {
    error.into_status()
}

/// Groups whose `group_online` frame is waiting for its interval to pass.
#[derive(Debug, Default)]
pub struct PendingGroupCounts(Mutex<HashSet<i64>>);

impl PendingGroupCounts {
    /// Marks `group` pending; false if it was already.
    pub(crate) fn mark(&self, group: i64) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(group)
    }

    pub(crate) fn clear(&self, group: i64) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&group);
    }
}

/// The time of the newest message stored before the de-duplication memory began (keyed by
/// when it began), so a send need not search the history for a forgotten first attempt when
/// there was none, or once it is older than the de-duplication window.
#[derive(Debug, Default)]
pub struct HistoryAtMemoryStart(Mutex<Option<(i64, Option<i64>)>>);

impl HistoryAtMemoryStart {
    /// The newest earlier message's time recorded for a memory that began at `remembered_since`.
    pub(crate) fn newest_for(&self, remembered_since: i64) -> Option<Option<i64>> {
        match *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            Some((since, newest)) if since == remembered_since => Some(newest),
            _ => None,
        }
    }

    /// Records the newest earlier message's time for a memory that began at `remembered_since`.
    pub(crate) fn record(&self, remembered_since: i64, newest: Option<i64>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((remembered_since, newest));
    }
}

impl LogicService {
    /// A logic service over the given ports; wakes go to `task`.
    pub fn new(
        config: LogicConfig,
        store: Arc<dyn Store>,
        log: Arc<dyn MessageLog>,
        sessions: Arc<dyn Sessions>,
        ids: Arc<IdGenerator>,
        task: TaskHandle,
    ) -> Self {
        let holder: Arc<str> = claim_holder::for_this_run("logic").into();
        let claims = claims_of(&sessions, &holder, &config);
        LogicService {
            admission: SendAdmission::new(config.max_sends_in_flight, config.send_latency_target()),
            config,
            store,
            log,
            sessions: Arc::clone(&sessions),
            ids,
            task,
            pending_group_counts: Arc::default(),
            known_ends: Arc::default(),
            history_at_memory_start: Arc::default(),
            history_epoch: Arc::default(),
            claim_holder: holder,
            claims,
            receipts: Arc::default(),
            recent_copies: Arc::default(),
        }
    }

    /// The same service, named as the node `node` (its claims name it, so its next run can
    /// take over the sends this run leaves half done).
    pub fn on_node(mut self, node: &str) -> Self {
        self.claim_holder = claim_holder::for_this_run(node).into();
        self.claims = claims_of(&self.sessions, &self.claim_holder, &self.config);
        self
    }
}

/// The claims of sends made through `sessions` as `holder`, as `config` keeps them.
fn claims_of(
    sessions: &Arc<dyn Sessions>,
    holder: &Arc<str>,
    config: &LogicConfig,
) -> ClaimBatcher {
    ClaimBatcher::new(
        Arc::clone(sessions),
        Arc::clone(holder),
        crate::send::PENDING_CLAIM_TTL,
        config.dedup_ttl(),
    )
}
