//! The `Task` service: wakes mark objects dirty; each dirty object gets one delivery loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use natter_infra::InfraError;
use natter_proto::ErrorCode;
use natter_proto::ObjectId;
use natter_proto::placement::LogPartition;
use natter_proto::v1::task_server::Task;
use natter_proto::v1::{
    Empty, EphemeralPushRequest, GroupMembershipRequest, LagReply, PartitionLag, PartitionRecords,
    PartitionSeqs, PushReply, SequenceReply, SequenceRequest, WakeRequest,
};
use tonic::{Request, Response, Status};

use crate::delivery::{Deliverer, EphemeralAudience};
use crate::sequencer::{AskedRecord, Sequencer};

/// The task layer's service implementation.
#[derive(Clone)]
pub struct TaskService {
    inner: Arc<Inner>,
}

struct Inner {
    deliverer: Deliverer,
    /// Objects with a running delivery loop, and whether a wake arrived since it last read.
    running: Mutex<HashMap<ObjectId, bool>>,
    /// The numbering of the partitioned log, when the log is partitioned.
    sequencer: Option<Arc<Sequencer>>,
}

impl std::fmt::Debug for TaskService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskService").finish_non_exhaustive()
    }
}

impl TaskService {
    /// A task service delivering through `deliverer`.
    pub fn new(deliverer: Deliverer) -> Self {
        TaskService {
            inner: Arc::new(Inner {
                deliverer,
                running: Mutex::new(HashMap::new()),
                sequencer: None,
            }),
        }
    }

    /// A task service that also numbers the partitioned log with `sequencer`, delivering
    /// each object as soon as its new records are numbered.
    pub fn with_sequencer(deliverer: Deliverer, sequencer: Arc<Sequencer>) -> Self {
        let service = TaskService {
            inner: Arc::new(Inner {
                deliverer,
                running: Mutex::new(HashMap::new()),
                sequencer: Some(Arc::clone(&sequencer)),
            }),
        };
        // The numbering learns what is delivered, to keep where a successor starts looking.
        let numbering = Arc::downgrade(&sequencer);
        service
            .inner
            .deliverer
            .on_delivered(Box::new(move |object, seq| {
                if let Some(sequencer) = numbering.upgrade() {
                    sequencer.delivered(object, seq);
                }
            }));
        // Weak: the sequencer lives in the service, and must not keep it alive.
        let weak = Arc::downgrade(&service.inner);
        sequencer.on_numbered(Box::new(move |objects| {
            if let Some(inner) = weak.upgrade() {
                let service = TaskService { inner };
                for object in objects {
                    service.mark_dirty(object);
                }
            }
        }));
        service
    }

    /// The numbering of the partitioned log, if this service has one.
    pub fn sequencer(&self) -> Option<&Arc<Sequencer>> {
        self.inner.sequencer.as_ref()
    }

    /// Stop delivering (the process is stopping).
    pub fn stop(&self) {
        self.inner.deliverer.stop();
        if let Some(sequencer) = &self.inner.sequencer {
            sequencer.stop();
        }
    }

    /// Schedule every object whose delivered cursor is behind its log end (after a restart).
    pub async fn recover(&self) -> Result<usize, InfraError> {
        self.recover_owned(|_| true).await
    }

    /// Schedule the objects for which `owned` holds and whose delivered cursor is behind
    /// their log end: a cluster task node recovers the objects it has just come to own.
    pub async fn recover_owned(
        &self,
        owned: impl Fn(&ObjectId) -> bool,
    ) -> Result<usize, InfraError> {
        let deliverer = &self.inner.deliverer;
        let mut lagging = 0;
        for object in deliverer.log.objects().await? {
            if !owned(&object) {
                continue;
            }
            if deliverer.log.end(&object).await? > deliverer.store.delivered_cursor(&object).await?
            {
                lagging += 1;
                self.mark_dirty(object);
            }
        }
        tracing::info!(lagging, "task recovered lagging objects");
        Ok(lagging)
    }

    /// Make sure a delivery loop runs for `object` and sees everything logged so far.
    pub fn mark_dirty(&self, object: ObjectId) {
        {
            let mut running = self.running();
            if let Some(dirty) = running.get_mut(&object) {
                *dirty = true;
                return;
            }
            running.insert(object, false);
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            loop {
                inner.deliverer.deliver_available(&object).await;
                let mut running = inner
                    .running
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match running.get_mut(&object) {
                    // A wake came while delivering: read again, it may have seen nothing new.
                    Some(dirty) if *dirty => *dirty = false,
                    _ => {
                        running.remove(&object);
                        return;
                    }
                }
            }
        });
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, bool>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[tonic::async_trait]
impl Task for TaskService {
    async fn wake(&self, request: Request<WakeRequest>) -> Result<Response<Empty>, Status> {
        for name in request.into_inner().objects {
            match name.parse::<ObjectId>() {
                Ok(object) => self.mark_dirty(object),
                Err(error) => tracing::warn!(%error, "ignoring a wake for a malformed object"),
            }
        }
        Ok(Response::new(Empty {}))
    }

    async fn update_groups(
        &self,
        request: Request<GroupMembershipRequest>,
    ) -> Result<Response<Empty>, Status> {
        self.inner
            .deliverer
            .announce_membership(request.into_inner())
            .await
            .map_err(InfraError::into_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn push_ephemeral(
        &self,
        request: Request<EphemeralPushRequest>,
    ) -> Result<Response<PushReply>, Status> {
        let EphemeralPushRequest {
            audience,
            user_ids,
            group_id,
            message,
        } = request.into_inner();
        let audience = EphemeralAudience::of_request(audience, user_ids, group_id)?;
        let connections = self
            .inner
            .deliverer
            .push_ephemeral(audience, message)
            .await
            .map_err(InfraError::into_status)?;
        Ok(Response::new(PushReply {
            connections,
            released: false,
        }))
    }

    async fn sequence(
        &self,
        request: Request<SequenceRequest>,
    ) -> Result<Response<SequenceReply>, Status> {
        let Some(sequencer) = &self.inner.sequencer else {
            return Err(ErrorCode::Internal.status("this task process numbers no partitioned log"));
        };
        // Every partition at once: each waits for its own numbering.
        let answers = request
            .into_inner()
            .partitions
            .into_iter()
            .map(|asked| async move {
                match number_partition(sequencer, asked).await {
                    Ok(seqs) => PartitionSeqs {
                        seqs,
                        error: String::new(),
                    },
                    Err(error) => PartitionSeqs {
                        seqs: Vec::new(),
                        error,
                    },
                }
            });
        let partitions = futures_util::future::join_all(answers).await;
        Ok(Response::new(SequenceReply { partitions }))
    }

    async fn lag(&self, _: Request<Empty>) -> Result<Response<LagReply>, Status> {
        let partitions = self
            .inner
            .sequencer
            .as_ref()
            .map(|sequencer| sequencer.lag())
            .unwrap_or_default()
            .into_iter()
            .map(|(partition, records)| PartitionLag {
                partition: partition.to_string(),
                records,
            })
            .collect();
        Ok(Response::new(LagReply { partitions }))
    }
}

/// The seqs of one partition's asked records, or why there are none.
async fn number_partition(
    sequencer: &Arc<Sequencer>,
    asked: PartitionRecords,
) -> Result<Vec<u64>, String> {
    let partition: LogPartition = asked
        .partition
        .parse()
        .map_err(|error| format!("{error}"))?;
    let mut records = Vec::with_capacity(asked.records.len());
    for record in asked.records {
        let object: ObjectId = record.object.parse().map_err(|error| format!("{error}"))?;
        records.push(AskedRecord {
            offset: record.offset,
            object,
            id: record.id,
            // A message that is not this record's own would be numbered as it: none is
            // better than one that disagrees.
            message: record
                .message
                .filter(|message| message.id == record.id && message.object == record.object),
        });
    }
    sequencer
        .sequence(partition, records)
        .await
        .map_err(|error| error.to_string())
}
