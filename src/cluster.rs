//! The cluster deployment: one layer per process (`natter serve api|logic|task|connect`), on
//! the shared servers (PostgreSQL or MySQL, a Kafka-protocol broker, Redis), found through etcd.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use natter_api::ApiState;
use natter_connect::{ConnectServer, ConnectService};
use natter_infra::cluster::{EtcdRegistry, KafkaLog, KafkaPartitions, LogTopology, RedisSessions};
use natter_infra::ids::IdGenerator;
use natter_infra::registry::ServiceNode;
use natter_infra::sql::{SqlDatabase, SqlLog, SqlStore, open_database};
use natter_infra::{MessageLog, Registry, Sessions, Store};
use natter_logic::LogicService;
use natter_proto::ObjectId;
use natter_proto::handle::{ConnectHandle, LogicHandle, TaskHandle};
use natter_proto::placement::Placement;
use natter_proto::token::TokenKeys;
use natter_proto::v1::connect_server::ConnectServer as ConnectGrpc;
use natter_proto::v1::logic_server::LogicServer as LogicGrpc;
use natter_proto::v1::task_server::TaskServer as TaskGrpc;
use natter_task::delivery::Deliverer;
use natter_task::sequencer::Sequencer;
use natter_task::{ConnectDirectory, TaskService};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{NatterConfig, redact_url};
use crate::listener::bind;
use crate::peers::{Peers, TaskRouter};
use crate::sequenced_log::SequencedLog;
use crate::telemetry;

/// A layer of natter, run as its own process in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Layer {
    /// The REST API.
    Api,
    /// Validation, authorisation, de-duplication, appends to the log.
    Logic,
    /// Delivery from the log to the connect nodes.
    Task,
    /// The WebSocket servers.
    Connect,
}

impl Layer {
    /// The layer's name in the registry and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Api => "api",
            Layer::Logic => "logic",
            Layer::Task => "task",
            Layer::Connect => "connect",
        }
    }
}

/// A running cluster process.
#[derive(Debug)]
pub struct RunningLayer {
    /// Which layer it runs.
    pub layer: Layer,
    /// HTTP: the REST API (api) or just `/metrics` and `/healthz`.
    pub http_addr: SocketAddr,
    /// gRPC (logic, task, connect).
    pub grpc_addr: Option<SocketAddr>,
    /// WebSocket (connect).
    pub ws_addr: Option<SocketAddr>,
    registry: EtcdRegistry,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    connect: Option<Arc<ConnectServer>>,
    task: Option<TaskService>,
    /// The database this process opened, closed (its held-back cursors written) on shutdown.
    database: Option<SqlDatabase>,
}

/// How often a task process looks for lagging objects it owns even without a change of
/// members: a safety net for wakes lost on the way (the owner unreachable for a moment).
const RECOVERY_INTERVAL: Duration = Duration::from_secs(30);

/// The shared signing secret: every api and connect process must hold the same one.
fn cluster_tokens(config: &NatterConfig) -> anyhow::Result<TokenKeys> {
    anyhow::ensure!(
        config.auth.jwt_secret.len() >= 32,
        "a cluster process needs auth.jwt_secret (at least 32 characters, the same in every \
         process), e.g. NATTER_AUTH__JWT_SECRET"
    );
    Ok(TokenKeys::new(config.auth.jwt_secret.as_bytes()))
}

async fn cluster_store(
    config: &NatterConfig,
    running: &mut RunningLayer,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = &config.cluster.database_url;
    let database = open_database(url, config.cluster.database_connections)
        .await
        .with_context(|| format!("opening the database at {}", redact_url(url)))?;
    running.database = Some(database.clone());
    Ok(Arc::new(SqlStore::new(database).following_friendships(url)))
}

/// What task processes own, as the log's topology says.
fn placement(config: &NatterConfig) -> Placement {
    let kafka = &config.cluster.kafka;
    match kafka.topology {
        LogTopology::PerObject => Placement::PerObject,
        LogTopology::Partitioned => Placement::Partitioned {
            inbox: kafka.inbox_partitions,
            groups: kafka.group_partitions,
        },
    }
}

fn reaching_the_broker(config: &NatterConfig) -> String {
    format!(
        "reaching the broker at {:?}",
        config.cluster.kafka.bootstrap
    )
}

/// The database a layer opened with [`cluster_store`].
fn opened_database(running: &RunningLayer) -> anyhow::Result<SqlDatabase> {
    running
        .database
        .clone()
        .context("the store must be opened before the log")
}

/// Logic's log: per-object topics, or the partitioned log numbered by task.
async fn logic_log(
    config: &NatterConfig,
    running: &RunningLayer,
    task: TaskHandle,
) -> anyhow::Result<Arc<dyn MessageLog>> {
    let kafka = config.cluster.kafka.clone();
    Ok(match kafka.topology {
        LogTopology::PerObject => Arc::new(
            KafkaLog::connect(kafka)
                .await
                .with_context(|| reaching_the_broker(config))?,
        ),
        LogTopology::Partitioned => {
            let partitions = KafkaPartitions::connect(kafka)
                .await
                .with_context(|| reaching_the_broker(config))?;
            Arc::new(SequencedLog::new(
                Arc::new(partitions),
                SqlLog::reader(opened_database(running)?),
                task,
            ))
        }
    })
}

/// Task's log, and for the partitioned log the numbering of the partitions it owns.
async fn task_log(
    config: &NatterConfig,
    running: &RunningLayer,
) -> anyhow::Result<(Arc<dyn MessageLog>, Option<Arc<Sequencer>>)> {
    let kafka = config.cluster.kafka.clone();
    Ok(match kafka.topology {
        LogTopology::PerObject => (
            Arc::new(
                KafkaLog::connect(kafka)
                    .await
                    .with_context(|| reaching_the_broker(config))?,
            ),
            None,
        ),
        LogTopology::Partitioned => {
            let partitions = KafkaPartitions::connect(kafka)
                .await
                .with_context(|| reaching_the_broker(config))?;
            let numbered = Arc::new(SqlLog::new(opened_database(running)?)?);
            let sequencer = Sequencer::new(Arc::new(partitions), Arc::clone(&numbered));
            (numbered, Some(sequencer))
        }
    })
}

/// The cluster's registry in etcd.
pub(crate) async fn cluster_registry(config: &NatterConfig) -> anyhow::Result<EtcdRegistry> {
    let cluster = &config.cluster;
    EtcdRegistry::connect(
        &cluster.etcd,
        &cluster.name,
        Duration::from_millis(cluster.lease_ttl_ms),
    )
    .await
    .with_context(|| format!("reaching etcd at {:?}", cluster.etcd))
}

/// The cluster's sessions in Redis.
pub(crate) async fn cluster_sessions(config: &NatterConfig) -> anyhow::Result<Arc<dyn Sessions>> {
    let prefix = format!("{}:", config.cluster.name);
    let sessions = RedisSessions::connect(&config.cluster.redis_url, &prefix)
        .await
        .with_context(|| {
            format!(
                "reaching Redis at {}",
                redact_url(&config.cluster.redis_url)
            )
        })?;
    Ok(Arc::new(sessions))
}

/// Serves a gRPC router until stopped.
fn serve_grpc(
    listener: TcpListener,
    router: tonic::transport::server::Router<GrpcLayers>,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        if let Err(error) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!(%error, "the gRPC server stopped");
        }
    })
}

/// The layers around every gRPC service: calls continue the trace their metadata names.
type GrpcLayers = tower::layer::util::Stack<
    natter_proto::trace_context::ServerLayer,
    tower::layer::util::Identity,
>;

/// A gRPC server with [`GrpcLayers`].
fn grpc_router() -> tonic::transport::Server<GrpcLayers> {
    tonic::transport::Server::builder().layer(natter_proto::trace_context::ServerLayer)
}

/// The gRPC URL other processes dial for this one: the configured one, else the bound
/// address; a wildcard bind (0.0.0.0 in a container) is replaced by the address this host
/// uses to reach etcd, which its peers can reach too.
fn advertised(config: &NatterConfig, bound: SocketAddr) -> String {
    if !config.listen.grpc_advertise.is_empty() {
        return config.listen.grpc_advertise.clone();
    }
    if bound.ip().is_unspecified()
        && let Some(ip) = config.cluster.etcd.first().and_then(|etcd| route_ip(etcd))
    {
        return format!("http://{}", SocketAddr::new(ip, bound.port()));
    }
    format!("http://{bound}")
}

/// The local address of the route to `url`'s host (no packet is sent: connecting a UDP
/// socket only picks the route).
fn route_ip(url: &str) -> Option<std::net::IpAddr> {
    let authority = url.split("://").last()?.split('/').next()?;
    let target = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()?;
    let unspecified: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(unspecified).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Logic calls spread over the live logic processes.
async fn logic_handle(registry: &EtcdRegistry) -> anyhow::Result<LogicHandle> {
    let peers = Peers::follow(registry, "logic", LogicHandle::remote).await?;
    Ok(LogicHandle::Balanced(peers))
}

impl RunningLayer {
    /// Start one layer of a cluster.
    pub async fn start(layer: Layer, config: &NatterConfig) -> anyhow::Result<RunningLayer> {
        telemetry::describe_metrics();
        // Configuration mistakes first, before anything is reached over the network.
        let tokens = cluster_tokens(config)?;
        let registry = cluster_registry(config).await?;
        let node = config.node.name.clone();
        let node_id = registry.allocate_node_id(&node).await?;
        let ids =
            Arc::new(IdGenerator::new(node_id).context("etcd handed out a node id beyond 1023")?);
        tracing::info!(layer = layer.name(), node, node_id, "starting");
        let (stop, stopping) = watch::channel(false);
        let http_listener = bind(&config.listen.api, "HTTP").await?;
        let http_addr = http_listener.local_addr()?;
        let mut running = RunningLayer {
            layer,
            http_addr,
            grpc_addr: None,
            ws_addr: None,
            registry,
            stop,
            servers: Vec::new(),
            connect: None,
            task: None,
            database: None,
        };
        let registry = running.registry.clone();
        let mut http_router =
            axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let mut grpc = None;
        match layer {
            Layer::Api => {
                http_router = natter_api::router(ApiState {
                    config: config.api.clone(),
                    store: cluster_store(config, &mut running).await?,
                    logic: logic_handle(&registry).await?,
                    tokens: tokens.clone(),
                    ids,
                    blobs: Arc::new(natter_infra::embedded::DirBlobs::new(
                        config.node.data_dir.join("blobs"),
                    )),
                });
            }
            Layer::Logic => {
                let tasks = Peers::follow(&registry, "task", TaskHandle::remote).await?;
                let task = TaskHandle::Routed(Arc::new(TaskRouter::new(tasks, placement(config))));
                let store = cluster_store(config, &mut running).await?;
                let service = LogicService::new(
                    config.logic.clone().in_cluster(),
                    store,
                    logic_log(config, &running, task.clone()).await?,
                    cluster_sessions(config).await?,
                    ids,
                    task,
                )
                .on_node(&node);
                service.follow_departures();
                grpc = Some(grpc_router().add_service(LogicGrpc::new(service)));
            }
            Layer::Task => {
                let sessions = cluster_sessions(config).await?;
                let directory = Arc::new(ConnectDirectory::new());
                follow_connect_nodes(&registry, Arc::clone(&directory), Arc::clone(&sessions))
                    .await?;
                let store = cluster_store(config, &mut running).await?;
                let (log, sequencer) = task_log(config, &running).await?;
                let deliverer =
                    Deliverer::new(config.task.clone(), store, log, sessions, directory);
                let task = match sequencer {
                    Some(sequencer) => TaskService::with_sequencer(deliverer, sequencer),
                    None => TaskService::new(deliverer),
                };
                grpc = Some(grpc_router().add_service(TaskGrpc::new(task.clone())));
                running.task = Some(task);
            }
            Layer::Connect => {
                let sessions = cluster_sessions(config).await?;
                // Sessions left by an earlier run of this node under the same name are stale.
                let stale = sessions.remove_node_sessions(&node).await?;
                if !stale.is_empty() {
                    tracing::info!(
                        users = stale.len(),
                        "removed sessions of this node's previous run"
                    );
                    announce_departures(sessions.as_ref(), &node, stale).await;
                }
                let connect = ConnectServer::new(
                    config.connect.clone(),
                    node.clone(),
                    logic_handle(&registry).await?,
                    sessions,
                    tokens.clone(),
                );
                let ws_listener = bind(&config.listen.ws, "the WebSocket endpoint").await?;
                running.ws_addr = Some(ws_listener.local_addr()?);
                running.servers.push(tokio::spawn(
                    Arc::clone(&connect).serve(ws_listener, config.listen.handshake),
                ));
                grpc = Some(
                    grpc_router()
                        .add_service(ConnectGrpc::new(ConnectService::new(Arc::clone(&connect)))),
                );
                running
                    .servers
                    .push(tokio::spawn(register_again_after_expiry(
                        registry.registered_again(),
                        Arc::clone(&connect),
                    )));
                running.connect = Some(connect);
            }
        }
        running.servers.push(crate::http::serve_http(
            http_listener,
            http_router,
            stopping.clone(),
            config.listen.handshake,
        ));
        let address = match grpc {
            Some(router) => {
                let listener = bind(&config.listen.grpc, "gRPC").await?;
                let bound = listener.local_addr()?;
                running.grpc_addr = Some(bound);
                running
                    .servers
                    .push(serve_grpc(listener, router, stopping.clone()));
                advertised(config, bound)
            }
            None => format!("http://{http_addr}"),
        };
        let me = ServiceNode {
            layer: layer.name().into(),
            node: node.clone(),
            address,
        };
        registry.register(&me).await?;
        if let Some(task) = running.task.clone() {
            running.servers.push(tokio::spawn(recover_owned_objects(
                registry.clone(),
                task,
                placement(config),
                node.clone(),
                stopping,
            )));
        }
        tracing::info!(layer = layer.name(), node, %http_addr, grpc = ?running.grpc_addr, ws = ?running.ws_addr, "natter is up");
        Ok(running)
    }

    /// Resolves when this process must stop because it lost its snowflake node id.
    pub fn fenced(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut fenced = self.registry.fenced();
        async move {
            let _ = fenced.wait_for(|fenced| *fenced).await;
        }
    }

    /// Withdraw from the registry, stop serving, close connections.
    pub async fn shutdown(self) {
        if let Err(error) = self.registry.close().await {
            tracing::warn!(%error, "withdrawing from etcd failed; the lease will run out");
        }
        if let Some(connect) = &self.connect {
            connect.shutdown();
        }
        if let Some(task) = &self.task {
            task.stop();
        }
        self.stop.send_replace(true);
        for server in self.servers {
            server.abort();
            let _ = server.await;
        }
        if let Some(database) = &self.database {
            database.close().await;
        }
        tracing::info!(layer = self.layer.name(), "natter stopped");
    }
}

/// Queues a presence event for each user whose sessions on `node` were removed, for logic
/// to tell their friends once it has checked they have no other connection.
async fn announce_departures(sessions: &dyn Sessions, node: &str, users: Vec<i64>) {
    let at_ms = natter_infra::now_millis();
    for user in users {
        let event = natter_infra::sessions::PresenceEvent {
            user,
            online: false,
            node: node.to_string(),
            at_ms,
        };
        if let Err(error) = sessions.push_presence(&event).await {
            tracing::warn!(%error, user, "queueing a departed user's presence failed");
        }
    }
}

/// Keeps `directory` equal to the live connect processes; a process that leaves (stopped or
/// dead) takes its sessions with it, so nothing is pushed to it any more.
async fn follow_connect_nodes(
    registry: &EtcdRegistry,
    directory: Arc<ConnectDirectory>,
    sessions: Arc<dyn Sessions>,
) -> anyhow::Result<()> {
    let peers = Peers::follow(registry, "connect", ConnectHandle::remote).await?;
    let mut changes = peers.changes();
    let mut known: Vec<String> = Vec::new();
    let mut apply = {
        let directory = Arc::clone(&directory);
        move |peers: &Peers<ConnectHandle>| {
            let live = peers.all();
            let gone: Vec<String> = known
                .iter()
                .filter(|name| !live.iter().any(|peer| &peer.node == *name))
                .cloned()
                .collect();
            for name in &gone {
                directory.remove(name);
            }
            for peer in &live {
                directory.insert(&peer.node, peer.client.clone());
            }
            known = live.into_iter().map(|peer| peer.node).collect();
            gone
        }
    };
    apply(&peers);
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            for node in apply(&peers) {
                match sessions.remove_node_sessions(&node).await {
                    Ok(users) => {
                        tracing::info!(node, users = users.len(), "a connect process left");
                        announce_departures(sessions.as_ref(), &node, users).await;
                    }
                    Err(error) => {
                        tracing::warn!(node, %error, "removing a departed node's sessions failed")
                    }
                }
            }
        }
    });
    Ok(())
}

/// Registers a connect node's connections again whenever its etcd lease ran out and it
/// registered anew: meanwhile the task processes took it for dead and dropped its sessions.
async fn register_again_after_expiry(
    mut registered_again: watch::Receiver<u64>,
    connect: Arc<ConnectServer>,
) {
    while registered_again.changed().await.is_ok() {
        connect.register_connections_again().await;
    }
}

/// Recovers the lagging objects this task process owns: at start, whenever the task
/// processes change (a departed owner's objects move here), and every [`RECOVERY_INTERVAL`].
async fn recover_owned_objects(
    registry: EtcdRegistry,
    task: TaskService,
    placement: Placement,
    node: String,
    mut stopping: watch::Receiver<bool>,
) {
    let mut members = match registry.watch("task").await {
        Ok(members) => members,
        Err(error) => {
            tracing::error!(%error, "cannot watch the task processes; recovery only on a timer");
            watch::channel(Vec::new()).1
        }
    };
    loop {
        let names: Vec<String> = members
            .borrow_and_update()
            .iter()
            .map(|member| member.node.clone())
            .collect();
        if names.contains(&node) {
            if let Some(sequencer) = task.sequencer() {
                // The partitioned log: owning a partition resumes it from its delivered
                // offset, which finds the objects left undelivered, so no object is scanned.
                let partitions: Vec<_> = placement
                    .partition_owners(&names)
                    .into_iter()
                    .filter(|(_, owner)| names.get(*owner) == Some(&node))
                    .map(|(partition, _)| partition)
                    .collect();
                sequencer.own(&partitions);
            } else {
                recover_lagging_objects(&task, |object| {
                    placement
                        .owner(&placement.anchor(object), &names)
                        .is_some_and(|owner| *owner == node)
                })
                .await;
            }
        }
        tokio::select! {
            changed = members.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RECOVERY_INTERVAL) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// The per-object log: every object this process owns whose delivered cursor is behind its
/// log's end gets a delivery loop.
async fn recover_lagging_objects(task: &TaskService, owned: impl Fn(&ObjectId) -> bool) {
    match task.recover_owned(owned).await {
        Ok(lagging) => tracing::debug!(lagging, "recovered owned objects"),
        Err(error) => tracing::warn!(%error, "recovering owned objects failed; retrying later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_bind_advertises_the_route_to_etcd() {
        let mut config = NatterConfig::default();
        config.cluster.etcd = vec!["http://127.0.0.1:2379".into()];
        let wildcard: SocketAddr = "0.0.0.0:9090".parse().expect("address");
        assert_eq!(advertised(&config, wildcard), "http://127.0.0.1:9090");
        let bound: SocketAddr = "127.0.0.5:9191".parse().expect("address");
        assert_eq!(advertised(&config, bound), "http://127.0.0.5:9191");
        config.listen.grpc_advertise = "http://task-1.natter:9090".into();
        assert_eq!(advertised(&config, wildcard), "http://task-1.natter:9090");
    }
}
