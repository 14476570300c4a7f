//! The embedded deployment: every layer in one process, on the embedded adapters.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use natter_api::ApiState;
use natter_connect::{ConnectServer, ConnectService};
use natter_infra::embedded::{MemorySessions, StaticRegistry, open_sqlite};
use natter_infra::ids::IdGenerator;
use natter_infra::registry::ServiceNode;
use natter_infra::sql::SqlLog;
use natter_infra::sql::SqlStore;
use natter_infra::{MessageLog, Registry, Sessions, Store};
use natter_logic::LogicService;
use natter_proto::handle::{ConnectHandle, LogicHandle, TaskHandle};
use natter_proto::token::TokenKeys;
use natter_task::delivery::Deliverer;
use natter_task::{ConnectDirectory, TaskService};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::NatterConfig;
use crate::listener::bind;
use crate::telemetry;

/// A running embedded natter.
#[derive(Debug)]
pub struct RunningSystem {
    /// Where the REST API listens.
    pub api_addr: SocketAddr,
    /// Where the WebSocket endpoint listens.
    pub ws_addr: SocketAddr,
    /// The secret tokens are signed with (tests forge expired tokens with it).
    pub tokens: TokenKeys,
    connect: Arc<ConnectServer>,
    task: TaskService,
    stop_api: watch::Sender<bool>,
    api: JoinHandle<()>,
    ws: JoinHandle<()>,
    pool: natter_infra::sql::SqlDatabase,
}

/// The signing secret: configured, or generated once and kept in the data directory.
async fn token_secret(config: &NatterConfig) -> anyhow::Result<Vec<u8>> {
    if !config.auth.jwt_secret.is_empty() {
        return Ok(config.auth.jwt_secret.as_bytes().to_vec());
    }
    let path = config.node.data_dir.join("jwt-secret");
    match tokio::fs::read_to_string(&path).await {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(secret.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!("{} is shorter than 32 characters", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context(format!("reading {}", path.display())),
    }
    let secret = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    tokio::fs::create_dir_all(&config.node.data_dir).await?;
    write_private(&path, &secret)
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// Write a file only its owner can read.
async fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let path = path.to_path_buf();
    let contents = contents.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        options.open(&path)?.write_all(contents.as_bytes())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The embedded database file.
pub fn database_path(config: &NatterConfig) -> std::path::PathBuf {
    config.node.data_dir.join("natter.db")
}

impl RunningSystem {
    /// Start every layer of the embedded deployment.
    pub async fn start(config: &NatterConfig) -> anyhow::Result<RunningSystem> {
        telemetry::describe_metrics();
        let database = database_path(config);
        let pool = open_sqlite(&database)
            .await
            .with_context(|| format!("opening {}", database.display()))?;
        // This process is the database's only writer, so the store may remember memberships.
        let store: Arc<dyn Store> = Arc::new(SqlStore::sole_writer(pool.clone()));
        let log: Arc<dyn MessageLog> = Arc::new(SqlLog::new(pool.clone())?);
        let sessions: Arc<dyn Sessions> = Arc::new(MemorySessions::new());
        let registry = StaticRegistry::new(config.node.id);
        let node_id = registry.allocate_node_id(&config.node.name).await?;
        let ids =
            Arc::new(IdGenerator::new(node_id).context("the node id must be between 0 and 1023")?);
        let tokens = TokenKeys::new(&token_secret(config).await?);

        // Wiring order breaks the cycle logic → task → connect → logic: task starts with an
        // empty directory of connect nodes and learns the local one once it exists.
        let directory = Arc::new(ConnectDirectory::new());
        // Locks live in memory here, so checking for a release often costs nothing.
        let mut task_config = config.task.clone();
        task_config
            .release_poll_max_ms
            .get_or_insert(natter_task::config::EMBEDDED_RELEASE_POLL_MAX_MS);
        let task = TaskService::new(Deliverer::new(
            task_config,
            Arc::clone(&store),
            Arc::clone(&log),
            Arc::clone(&sessions),
            Arc::clone(&directory),
        ));
        let logic = LogicHandle::InProcess(Arc::new(LogicService::new(
            config.logic.clone(),
            Arc::clone(&store),
            log,
            Arc::clone(&sessions),
            Arc::clone(&ids),
            TaskHandle::InProcess(Arc::new(task.clone())),
        )));
        let connect = ConnectServer::new(
            config.connect.clone(),
            config.node.name.clone(),
            logic.clone(),
            sessions,
            tokens.clone(),
        );
        directory.insert(
            &config.node.name,
            ConnectHandle::InProcess(Arc::new(ConnectService::new(Arc::clone(&connect)))),
        );
        for layer in ["api", "logic", "task", "connect"] {
            registry
                .register(&ServiceNode {
                    layer: layer.into(),
                    node: config.node.name.clone(),
                    address: String::new(),
                })
                .await?;
        }
        task.recover().await?;

        let ws_listener = bind(&config.listen.ws, "the WebSocket endpoint").await?;
        let ws_addr = ws_listener.local_addr()?;
        let ws = tokio::spawn(Arc::clone(&connect).serve(ws_listener, config.listen.handshake));

        let api_listener = bind(&config.listen.api, "the API").await?;
        let api_addr = api_listener.local_addr()?;
        let mut api_config = config.api.clone();
        if api_config.public_ws_url.is_empty() {
            // The page's own host, this process's WebSocket port.
            api_config.public_ws_url = format!("ws://{{host}}:{}/ws", ws_addr.port());
        }
        let router = natter_api::router(ApiState {
            config: api_config,
            store,
            logic,
            tokens: tokens.clone(),
            ids,
            blobs: Arc::new(natter_infra::embedded::DirBlobs::new(
                config.node.data_dir.join("blobs"),
            )),
        });
        let (stop_api, stopping) = watch::channel(false);
        let api = crate::http::serve_http(api_listener, router, stopping, config.listen.handshake);
        tracing::info!(%api_addr, %ws_addr, data = %config.node.data_dir.display(), "natter is up");
        Ok(RunningSystem {
            api_addr,
            ws_addr,
            tokens,
            connect,
            task,
            stop_api,
            api,
            ws,
            pool,
        })
    }

    /// Stop accepting, close every connection, finish requests, close the database.
    pub async fn shutdown(self) {
        self.connect.shutdown();
        self.task.stop();
        self.stop_api.send_replace(true);
        let _ = self.ws.await;
        let _ = self.api.await;
        // Give closing connections a moment to say goodbye and unregister.
        for _ in 0..50 {
            if self.connect.connection_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.pool.close().await;
        tracing::info!("natter stopped");
    }
}
