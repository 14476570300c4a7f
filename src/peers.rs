//! The live processes of one layer, each with a client, kept in step with the registry; they
//! balance calls round-robin ([`Balancer`]), and the task router built on them sends each
//! object's work to its owner (rendezvous hashing, [`natter_proto::ownership`], with each log
//! stream's partitions spread evenly).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use natter_infra::Registry;
use natter_infra::registry::ServiceNode;
use natter_proto::ObjectId;
use natter_proto::handle::{Balancer, TaskHandle};
use natter_proto::placement::{LogPartition, Placement};
use natter_proto::v1::task_server::Task;
use natter_proto::v1::{
    Audience, Empty, EphemeralPushRequest, GroupMembershipRequest, LagReply, PartitionSeqs,
    PushReply, SequenceReply, SequenceRequest, WakeRequest,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// One live process of a layer and the client that calls it.
#[derive(Clone, Debug)]
pub struct Peer<Client> {
    /// Its node name.
    pub node: String,
    /// Its gRPC address.
    pub address: String,
    /// The client calling it.
    pub client: Client,
}

/// A layer's live processes, in node-name order.
pub struct Peers<Client> {
    /// The layer's name, for errors.
    layer: String,
    current: Arc<RwLock<Vec<Peer<Client>>>>,
    rebuilt: watch::Receiver<u64>,
    next: AtomicUsize,
}

impl<Client> std::fmt::Debug for Peers<Client> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").finish_non_exhaustive()
    }
}

impl<Client: Clone + Send + Sync + 'static> Peers<Client> {
    /// Follow `layer` in `registry`, making a client for each process with `connect`; a
    /// process whose client cannot be made (a malformed address) is left out and logged.
    pub async fn follow<Connect, Error>(
        registry: &dyn Registry,
        layer: &str,
        connect: Connect,
    ) -> natter_infra::error::InfraResult<Arc<Self>>
    where
        Connect: Fn(&str) -> Result<Client, Error> + Send + Sync + 'static,
        Error: std::fmt::Display,
    {
        let mut changes = registry.watch(layer).await?;
        let current = Arc::new(RwLock::new(Vec::new()));
        // Bumped after each rebuild, so a follower that reads `all()` on a change sees the
        // new list, not the one before it.
        let (rebuilt_sender, rebuilt) = watch::channel(0u64);
        let peers = Arc::new(Peers {
            layer: layer.to_owned(),
            current: Arc::clone(&current),
            rebuilt,
            next: AtomicUsize::new(0),
        });
        let rebuild = move |nodes: &[ServiceNode]| {
            let mut current = current
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Keep the clients of processes that stayed, so their connections stay warm.
            let mut kept: BTreeMap<(String, String), Client> = current
                .drain(..)
                .map(|peer| ((peer.node, peer.address), peer.client))
                .collect();
            for node in nodes {
                let key = (node.node.clone(), node.address.clone());
                let client = match kept.remove(&key) {
                    Some(client) => client,
                    None => match connect(&node.address) {
                        Ok(client) => client,
                        Err(error) => {
                            tracing::warn!(node = node.node, address = node.address, %error, "leaving out a process with a bad address");
                            continue;
                        }
                    },
                };
                current.push(Peer {
                    node: node.node.clone(),
                    address: node.address.clone(),
                    client,
                });
            }
        };
        rebuild(&changes.borrow_and_update());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let nodes = changes.borrow_and_update().clone();
                rebuild(&nodes);
                rebuilt_sender.send_modify(|generation| *generation += 1);
            }
        });
        Ok(peers)
    }

    /// Every live process now.
    pub fn all(&self) -> Vec<Peer<Client>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The next process in turn, if any is live.
    pub fn round_robin(&self) -> Option<Peer<Client>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % current.len();
        current.get(turn).cloned()
    }

    /// The live process `choose` picks by its position among the names of all of them (in
    /// node-name order), if any.
    pub fn chosen(&self, choose: impl FnOnce(&[&str]) -> Option<usize>) -> Option<Peer<Client>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let names: Vec<&str> = current.iter().map(|peer| peer.node.as_str()).collect();
        let chosen = choose(&names)?;
        current.get(chosen).cloned()
    }

    /// Changes once after each rebuild of the live list, to wait for changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.rebuilt.clone()
    }
}

/// Calls spread round-robin over the layer's live processes.
impl<Client: Clone + Send + Sync + 'static> Balancer<Client> for Peers<Client> {
    fn pick(&self) -> Result<Client, Status> {
        self.round_robin()
            .map(|peer| peer.client)
            .ok_or_else(|| no_process(&self.layer))
    }
}

fn no_process(layer: &str) -> Status {
    Status::unavailable(format!("no live {layer} process"))
}

/// Task wakes, each object's sent to the task process owning it.
#[derive(Debug)]
pub struct TaskRouter {
    peers: Arc<Peers<TaskHandle>>,
    /// What task processes own: objects, or the log partitions holding them.
    placement: Placement,
    /// The partitions' owners, worked out again only when the live task processes change.
    spread: Mutex<Spread>,
}

/// Each log partition's owner (a position among `nodes`) for one list of task processes.
#[derive(Debug, Default)]
struct Spread {
    nodes: Vec<String>,
    owners: HashMap<LogPartition, usize>,
}

impl TaskRouter {
    /// A router over the live task processes, which own what `placement` says.
    pub fn new(peers: Arc<Peers<TaskHandle>>, placement: Placement) -> Self {
        TaskRouter {
            peers,
            placement,
            spread: Mutex::new(Spread::default()),
        }
    }

    /// The live task process owning `anchor` (an object's name, or a log partition's), if
    /// any: a partition's by its stream's spread ([`Placement::partition_owners`]), anything
    /// else's by rendezvous hashing, as every task process decides what it owns.
    fn owner(&self, anchor: &str) -> Option<Peer<TaskHandle>> {
        self.peers.chosen(|names| {
            if let Ok(partition) = anchor.parse::<LogPartition>() {
                let mut spread = self
                    .spread
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if spread.nodes != names {
                    spread.owners = self.placement.partition_owners(names).into_iter().collect();
                    spread.nodes = names.iter().map(|name| (*name).to_owned()).collect();
                }
                if let Some(&owner) = spread.owners.get(&partition) {
                    return Some(owner);
                }
            }
            let owner = natter_proto::ownership::owner(anchor, names)?;
            names.iter().position(|name| name == owner)
        })
    }

    /// The ownership anchor of an object's name (the name itself when it is malformed, so
    /// the owner logs it).
    fn anchor(&self, object: &str) -> String {
        match object.parse::<ObjectId>() {
            Ok(object) => self.placement.anchor(&object),
            Err(_) => object.to_owned(),
        }
    }

    /// Runs `call` on a task process for work any of them can do: the owner of `anchor`
    /// first, then the others until one answers, so a process that died but is still
    /// registered (its lease has not run out) costs one failed call, not the work.
    async fn on_any_task<Reply, Call, Answer>(
        &self,
        anchor: &str,
        call: Call,
    ) -> Result<Response<Reply>, Status>
    where
        Call: Fn(TaskHandle) -> Answer,
        Answer: std::future::Future<Output = Result<Reply, Status>>,
    {
        let owner = self.owner(anchor).ok_or_else(|| no_process("task"))?;
        let others = self
            .peers
            .all()
            .into_iter()
            .filter(|peer| peer.node != owner.node)
            .map(|peer| peer.client);
        let mut failure = no_process("task");
        for task in std::iter::once(owner.client).chain(others) {
            match call(task).await {
                Ok(reply) => return Ok(Response::new(reply)),
                Err(status) => failure = status,
            }
        }
        Err(failure)
    }
}

#[tonic::async_trait]
impl Task for TaskRouter {
    async fn wake(&self, request: Request<WakeRequest>) -> Result<Response<Empty>, Status> {
        let mut by_owner: BTreeMap<String, (TaskHandle, Vec<String>)> = BTreeMap::new();
        for object in request.into_inner().objects {
            let owner = self
                .owner(&self.anchor(&object))
                .ok_or_else(|| no_process("task"))?;
            by_owner
                .entry(owner.node)
                .or_insert_with(|| (owner.client, Vec::new()))
                .1
                .push(object);
        }
        for (node, (task, objects)) in by_owner {
            if let Err(error) = task.wake(WakeRequest { objects }).await {
                // The owner recovers its lagging objects when it (or its successor) starts.
                tracing::warn!(node, %error, "waking a task process failed");
                return Err(error);
            }
        }
        Ok(Response::new(Empty {}))
    }

    async fn update_groups(
        &self,
        request: Request<GroupMembershipRequest>,
    ) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        // Any task process can pass it on; the owner of the user's inbox is as good as any.
        let anchor = self.placement.anchor(&ObjectId::User(request.user_id));
        self.on_any_task(&anchor, |task| {
            let request = request.clone();
            async move { task.update_groups(request).await }
        })
        .await
    }

    async fn push_ephemeral(
        &self,
        request: Request<EphemeralPushRequest>,
    ) -> Result<Response<PushReply>, Status> {
        // Every task process sees every connect node; any one can do it.
        let request = request.into_inner();
        // Any anchor will do (an unknown audience is refused by whichever process gets it).
        let anchor = match Audience::try_from(request.audience) {
            Ok(Audience::Group) => ObjectId::Group(request.group_id),
            _ => ObjectId::User(request.user_ids.first().copied().unwrap_or(0)),
        };
        self.on_any_task(&self.placement.anchor(&anchor), |task| {
            let request = request.clone();
            async move { task.push_ephemeral(request).await }
        })
        .await
    }

    async fn sequence(
        &self,
        request: Request<SequenceRequest>,
    ) -> Result<Response<SequenceReply>, Status> {
        let partitions = request.into_inner().partitions;
        // Each owner is asked about its partitions in one call, every owner at once; if an
        // owner is gone, another task process starts reading its partitions.
        let mut by_owner: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, asked) in partitions.iter().enumerate() {
            let owner = self
                .owner(&asked.partition)
                .ok_or_else(|| no_process("task"))?;
            by_owner.entry(owner.node).or_default().push(index);
        }
        let calls = by_owner.values().map(|indices| {
            let request = SequenceRequest {
                partitions: indices
                    .iter()
                    .map(|&index| partitions[index].clone())
                    .collect(),
            };
            let anchor = partitions[indices[0]].partition.clone();
            async move {
                self.on_any_task(&anchor, |task| {
                    let request = request.clone();
                    async move { task.sequence(request).await }
                })
                .await
            }
        });
        let replies = futures_util::future::join_all(calls).await;
        let mut answers: Vec<PartitionSeqs> = partitions
            .iter()
            .map(|_| PartitionSeqs {
                seqs: Vec::new(),
                error: "no answer from the partition's owner".into(),
            })
            .collect();
        for (indices, reply) in by_owner.values().zip(replies) {
            match reply {
                Ok(reply) => {
                    for (&index, answer) in indices.iter().zip(reply.into_inner().partitions) {
                        answers[index] = answer;
                    }
                }
                Err(status) => {
                    for &index in indices {
                        answers[index].error = status.message().to_owned();
                    }
                }
            }
        }
        Ok(Response::new(SequenceReply {
            partitions: answers,
        }))
    }

    async fn lag(&self, _: Request<Empty>) -> Result<Response<LagReply>, Status> {
        // Every process reports the partitions it owns; together, every partition.
        let replies = futures_util::future::join_all(
            self.peers
                .all()
                .into_iter()
                .map(|peer| async move { peer.client.lag(Empty {}).await }),
        )
        .await;
        let mut partitions = Vec::new();
        for reply in replies {
            partitions.extend(reply?.partitions);
        }
        Ok(Response::new(LagReply { partitions }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_infra::embedded::StaticRegistry;
    use std::time::Duration;

    fn node(name: &str) -> ServiceNode {
        ServiceNode {
            layer: "connect".into(),
            node: name.into(),
            address: format!("http://{name}"),
        }
    }

    /// A follower woken by a change must read the list that change made: reading the one
    /// before it left a connect node out of task's directory until the next change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_is_announced_after_the_list_holds_it() {
        let registry = StaticRegistry::new(1);
        let peers = Peers::follow(&registry, "connect", |address: &str| {
            Ok::<_, std::convert::Infallible>(address.to_string())
        })
        .await
        .expect("follow");
        let mut changes = peers.changes();
        for count in 1..=200 {
            registry
                .register(&node(&format!("connect-{count:03}")))
                .await
                .expect("register");
            tokio::time::timeout(Duration::from_secs(5), changes.changed())
                .await
                .expect("a change is announced")
                .expect("the follower runs");
            assert_eq!(
                peers.all().len(),
                count,
                "the announced list holds the change"
            );
        }
        assert_eq!(peers.all().len(), 200);
    }

    /// Logic's router must send a partition's asks where task numbers it: to the owner the
    /// spread names, two of each stream's four partitions to each of two processes.
    #[tokio::test]
    async fn the_router_sends_each_partition_to_the_owner_its_stream_spread_names() {
        let registry = StaticRegistry::new(1);
        for name in ["task-1", "task-2"] {
            let mut task = node(name);
            task.layer = "task".into();
            registry.register(&task).await.expect("register");
        }
        let peers = Peers::follow(&registry, "task", |_: &str| {
            Ok::<_, std::convert::Infallible>(TaskHandle::unreachable("task"))
        })
        .await
        .expect("follow");
        let placement = Placement::Partitioned {
            inbox: 4,
            groups: 4,
        };
        let router = TaskRouter::new(peers, placement);
        let names = ["task-1", "task-2"];
        let mut held = BTreeMap::<String, usize>::new();
        for partition in placement.partitions() {
            let anchor = partition.to_string();
            let routed = router.owner(&anchor).expect("an owner").node;
            assert_eq!(Some(&routed.as_str()), placement.owner(&anchor, &names));
            *held.entry(routed).or_default() += 1;
        }
        assert_eq!(held.into_values().collect::<Vec<_>>(), [4, 4]);
        // An object's name goes by rendezvous, as on the per-object log.
        assert_eq!(
            Some(&router.owner("user:7").expect("an owner").node.as_str()),
            natter_proto::ownership::owner("user:7", &names)
        );
    }
}
