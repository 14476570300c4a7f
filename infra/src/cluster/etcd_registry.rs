//! `Registry` on etcd through etcd-client.
//!
//! Keys, all under `/natter/<cluster>/`:
//! - `<layer>/<node>` → the node's gRPC address, attached to this process's lease, so a process
//!   that dies drops out when its lease expires;
//! - `node-ids/<id>` → the node name holding snowflake node id `<id>`, taken with a
//!   create-if-absent transaction on the same lease, so no two live processes share an id.
//!
//! A background task keeps the lease alive. If etcd is unreachable for longer than the lease
//! lasts, the lease expires; the task then takes a new one and puts every registration back.
//! Should another process have taken this process's node id meanwhile, ids minted from now on
//! could collide, so the registry reports itself fenced ([`EtcdRegistry::fenced`]) and the
//! process must stop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{InfraError, InfraResult};
use crate::ids::MAX_NODE_ID;
use crate::registry::{Registry, ServiceNode};

impl From<etcd_client::Error> for InfraError {
    fn from(error: etcd_client::Error) -> Self {
        InfraError::Unavailable(format!("etcd: {error}"))
    }
}

/// What this process has put under its lease, to put back on a new lease.
#[derive(Debug, Default)]
struct Held {
    lease: i64,
    registrations: BTreeMap<String, String>,
    node_id: Option<(u16, String)>,
}

/// Service registration and discovery shared by every process of a cluster.
#[derive(Clone)]
pub struct EtcdRegistry {
    client: Client,
    /// `/natter/<cluster>/`.
    root: String,
    held: Arc<Mutex<Held>>,
    fenced: watch::Receiver<bool>,
    /// How many times the lease expired and everything was registered again.
    registered_again: watch::Receiver<u64>,
    keeper: Arc<JoinHandle<()>>,
}

impl std::fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl EtcdRegistry {
    /// Connect to the etcd `endpoints` for `cluster`, with a lease of `lease_ttl`.
    pub async fn connect(
        endpoints: &[String],
        cluster: &str,
        lease_ttl: Duration,
    ) -> InfraResult<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        let mut client = tokio::time::timeout(
            Duration::from_secs(10),
            Client::connect(endpoints, Some(options)),
        )
        .await
        .map_err(|_| InfraError::Unavailable(format!("etcd at {endpoints:?}: no answer")))??;
        let ttl_seconds = lease_ttl.as_secs().max(2) as i64;
        let lease = client.lease_grant(ttl_seconds, None).await?.id();
        let held = Arc::new(Mutex::new(Held {
            lease,
            ..Held::default()
        }));
        let (fence, fenced) = watch::channel(false);
        let (again, registered_again) = watch::channel(0);
        let root = format!("/natter/{cluster}/");
        let keeper = tokio::spawn(keep_lease(
            client.clone(),
            root.clone(),
            Arc::clone(&held),
            ttl_seconds,
            LeaseSignals { fence, again },
        ));
        Ok(EtcdRegistry {
            client,
            root,
            held,
            fenced,
            registered_again,
            keeper: Arc::new(keeper),
        })
    }

    /// Becomes true if this process lost its snowflake node id to another process; from then
    /// on it must stop, as its ids could collide.
    pub fn fenced(&self) -> watch::Receiver<bool> {
        self.fenced.clone()
    }

    /// Counts the times this process's lease expired (etcd unreachable for longer than it
    /// lasts) and it registered again. Meanwhile the cluster took it for dead, and may have
    /// dropped what it held elsewhere (a connect node's sessions), which it must restore.
    pub fn registered_again(&self) -> watch::Receiver<u64> {
        self.registered_again.clone()
    }

    /// Withdraw everything this process registered, at once rather than at lease expiry.
    pub async fn close(&self) -> InfraResult<()> {
        self.keeper.abort();
        let lease = lock(&self.held).lease;
        self.client.clone().lease_revoke(lease).await?;
        Ok(())
    }

    fn layer_prefix(&self, layer: &str) -> String {
        format!("{}{layer}/", self.root)
    }

    fn lease(&self) -> i64 {
        lock(&self.held).lease
    }
}

impl Drop for EtcdRegistry {
    fn drop(&mut self) {
        // The last handle stops the keep-alive; the lease then runs out by itself.
        if Arc::strong_count(&self.keeper) == 1 {
            self.keeper.abort();
        }
    }
}

fn lock(held: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The nodes under `prefix`, ordered by name (etcd returns keys sorted).
async fn list(
    client: &mut Client,
    layer: &str,
    prefix: &str,
) -> InfraResult<(Vec<ServiceNode>, i64)> {
    let response = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = response.header().map_or(0, |header| header.revision());
    let nodes = response
        .kvs()
        .iter()
        .filter_map(|entry| {
            let node = entry.key_str().ok()?.strip_prefix(prefix)?;
            Some(ServiceNode {
                layer: layer.to_string(),
                node: node.to_string(),
                address: entry.value_str().ok()?.to_string(),
            })
        })
        .collect();
    Ok((nodes, revision))
}

/// Takes node id key `key` for `node` under `lease` unless someone holds it; a key still held
/// by `previous_lease` (this process's own, being moved to a new lease) counts as free.
async fn take_node_id(
    client: &mut Client,
    key: &str,
    node: &str,
    lease: i64,
    previous_lease: Option<i64>,
) -> InfraResult<bool> {
    let put = TxnOp::put(key, node, Some(PutOptions::new().with_lease(lease)));
    let free = Compare::create_revision(key, CompareOp::Equal, 0);
    if client
        .txn(Txn::new().when([free]).and_then([put.clone()]))
        .await?
        .succeeded()
    {
        return Ok(true);
    }
    let Some(previous_lease) = previous_lease else {
        return Ok(false);
    };
    let ours = Compare::lease(key, CompareOp::Equal, previous_lease);
    Ok(client
        .txn(Txn::new().when([ours]).and_then([put]))
        .await?
        .succeeded())
}

/// What the lease keeper tells the rest of the process.
struct LeaseSignals {
    /// Turns true when this process lost its node id.
    fence: watch::Sender<bool>,
    /// Counts registrations made again after an expiry.
    again: watch::Sender<u64>,
}

/// Keeps the lease alive; on expiry takes a new one and puts everything back.
async fn keep_lease(
    mut client: Client,
    root: String,
    held: Arc<Mutex<Held>>,
    ttl_seconds: i64,
    signals: LeaseSignals,
) {
    let interval = Duration::from_millis((ttl_seconds as u64 * 1000 / 3).max(500));
    loop {
        let lease = lock(&held).lease;
        match renew(&mut client, lease, interval).await {
            Ok(()) => {}
            Err(RenewError::Expired) => {
                tracing::warn!(lease, "etcd lease expired; registering again");
                metrics::counter!("natter_registry_lease_renewals_total").increment(1);
                match register_again(&mut client, &root, &held, ttl_seconds, &signals.fence).await {
                    Ok(()) => {
                        signals.again.send_modify(|count| *count += 1);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "registering again in etcd failed; retrying");
                    }
                }
            }
            Err(RenewError::Failed(error)) => {
                tracing::warn!(%error, "keeping the etcd lease alive failed; retrying");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

enum RenewError {
    Expired,
    Failed(InfraError),
}

/// Sends keep-alives every `interval` until one fails or the lease turns out to be gone.
async fn renew(client: &mut Client, lease: i64, interval: Duration) -> Result<(), RenewError> {
    let (mut keeper, mut responses) = client
        .lease_keep_alive(lease)
        .await
        .map_err(|error| RenewError::Failed(error.into()))?;
    loop {
        keeper
            .keep_alive()
            .await
            .map_err(|error| RenewError::Failed(error.into()))?;
        match responses.message().await {
            Ok(Some(response)) if response.ttl() > 0 => {}
            Ok(Some(_)) => return Err(RenewError::Expired),
            Ok(None) => {
                return Err(RenewError::Failed(InfraError::Unavailable(
                    "etcd closed the keep-alive stream".into(),
                )));
            }
            Err(error) => return Err(RenewError::Failed(error.into())),
        }
        tokio::time::sleep(interval).await;
    }
}

/// A new lease with every registration and the node id put back on it.
async fn register_again(
    client: &mut Client,
    root: &str,
    held: &Mutex<Held>,
    ttl_seconds: i64,
    fence: &watch::Sender<bool>,
) -> InfraResult<()> {
    let lease = client.lease_grant(ttl_seconds, None).await?.id();
    let (previous_lease, registrations, node_id) = {
        let held = lock(held);
        (held.lease, held.registrations.clone(), held.node_id.clone())
    };
    for (key, address) in registrations {
        client
            .put(key, address, Some(PutOptions::new().with_lease(lease)))
            .await?;
    }
    if let Some((id, node)) = node_id {
        let key = format!("{root}node-ids/{id}");
        if !take_node_id(client, &key, &node, lease, Some(previous_lease)).await? {
            tracing::error!(id, node, "another process took this node id; stopping");
            fence.send_replace(true);
        }
    }
    lock(held).lease = lease;
    Ok(())
}

#[async_trait]
impl Registry for EtcdRegistry {
    async fn register(&self, node: &ServiceNode) -> InfraResult<()> {
        let key = format!("{}{}", self.layer_prefix(&node.layer), node.node);
        let lease = self.lease();
        self.client
            .clone()
            .put(
                key.as_str(),
                node.address.as_str(),
                Some(PutOptions::new().with_lease(lease)),
            )
            .await?;
        lock(&self.held)
            .registrations
            .insert(key, node.address.clone());
        Ok(())
    }

    async fn deregister(&self, node: &ServiceNode) -> InfraResult<()> {
        let key = format!("{}{}", self.layer_prefix(&node.layer), node.node);
        lock(&self.held).registrations.remove(&key);
        self.client.clone().delete(key, None).await?;
        Ok(())
    }

    async fn nodes(&self, layer: &str) -> InfraResult<Vec<ServiceNode>> {
        let prefix = self.layer_prefix(layer);
        Ok(list(&mut self.client.clone(), layer, &prefix).await?.0)
    }

    async fn watch(&self, layer: &str) -> InfraResult<watch::Receiver<Vec<ServiceNode>>> {
        let prefix = self.layer_prefix(layer);
        let mut client = self.client.clone();
        let (nodes, revision) = list(&mut client, layer, &prefix).await?;
        let (sender, receiver) = watch::channel(nodes);
        tokio::spawn(follow(client, layer.to_string(), prefix, revision, sender));
        Ok(receiver)
    }

    async fn allocate_node_id(&self, node: &str) -> InfraResult<u16> {
        if let Some((id, _)) = lock(&self.held).node_id.clone() {
            return Ok(id);
        }
        let mut client = self.client.clone();
        let lease = self.lease();
        // Start where the name hashes to, so a restarted node tends to get its id back.
        let start = node.bytes().fold(0u32, |hash, byte| {
            hash.wrapping_mul(31).wrapping_add(u32::from(byte))
        });
        let count = u32::from(MAX_NODE_ID) + 1;
        for step in 0..count {
            let id = ((start + step) % count) as u16;
            let key = format!("{}node-ids/{id}", self.root);
            if take_node_id(&mut client, &key, node, lease, None).await? {
                lock(&self.held).node_id = Some((id, node.to_string()));
                return Ok(id);
            }
        }
        Err(InfraError::Conflict(
            "every snowflake node id is held by a live process".into(),
        ))
    }

    async fn node_ids(&self) -> InfraResult<Vec<(u16, String)>> {
        let prefix = format!("{}node-ids/", self.root);
        let response = self
            .client
            .clone()
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await?;
        let mut held: Vec<(u16, String)> = response
            .kvs()
            .iter()
            .filter_map(|entry| {
                let id = entry.key_str().ok()?.strip_prefix(&prefix)?.parse().ok()?;
                Some((id, entry.value_str().ok()?.to_string()))
            })
            .collect();
        held.sort();
        Ok(held)
    }
}

/// Keeps `sender` equal to the nodes under `prefix`: every watch event triggers a fresh
/// listing (changes are rare), and a broken watch is re-established after a listing, so no
/// change is missed even across a compaction.
async fn follow(
    mut client: Client,
    layer: String,
    prefix: String,
    mut revision: i64,
    sender: watch::Sender<Vec<ServiceNode>>,
) {
    let mut backoff = Duration::from_millis(100);
    while !sender.is_closed() {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let outcome: InfraResult<()> = async {
            let mut stream = client.watch(prefix.as_str(), Some(options)).await?;
            loop {
                let changed = tokio::select! {
                    message = stream.message() => message?,
                    () = sender.closed() => return Ok(()),
                };
                let Some(response) = changed else {
                    return Err(InfraError::Unavailable("etcd closed the watch".into()));
                };
                if response.canceled() {
                    return Err(InfraError::Unavailable(format!(
                        "etcd cancelled the watch: {}",
                        response.cancel_reason()
                    )));
                }
                if response.events().is_empty() {
                    continue;
                }
                let (nodes, at) = list(&mut client, &layer, &prefix).await?;
                revision = at;
                sender.send_replace(nodes);
                backoff = Duration::from_millis(100);
            }
        }
        .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, layer, "watching etcd failed; listing again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if let Ok((nodes, at)) = list(&mut client, &layer, &prefix).await {
                revision = at;
                sender.send_if_modified(|current| {
                    let changed = *current != nodes;
                    *current = nodes;
                    changed
                });
            }
        }
    }
}
