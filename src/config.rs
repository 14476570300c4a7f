//! natter's configuration: one TOML file plus `NATTER_<SECTION>__<KEY>` environment overrides.

use std::path::{Path, PathBuf};

use natter_api::ApiConfig;
use natter_connect::{ConnectConfig, HandshakeLimits};
use natter_infra::cluster::KafkaLogConfig;
use natter_logic::LogicConfig;
use natter_task::TaskConfig;
use serde::{Deserialize, Serialize};

/// Everything a natter process reads at start.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatterConfig {
    /// This process.
    pub node: NodeConfig,
    /// Where the layers listen.
    pub listen: ListenConfig,
    /// Token signing.
    pub auth: AuthConfig,
    /// Log output.
    pub log: LogConfig,
    /// Traces of sampled messages.
    pub trace: TraceConfig,
    /// The REST API.
    pub api: ApiConfig,
    /// The logic layer.
    pub logic: LogicConfig,
    /// The task layer.
    pub task: TaskConfig,
    /// The connect layer.
    pub connect: ConnectConfig,
    /// The shared servers of a cluster deployment (`natter serve <layer>`).
    pub cluster: ClusterConfig,
}

/// Where a cluster's shared servers are; the embedded deployment reads none of this.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster's name: its etcd keys live under `/natter/<name>/`, its Redis keys start
    /// with `<name>:`.
    pub name: String,
    /// etcd endpoints.
    pub etcd: Vec<String>,
    /// How long a process stays registered after it stops renewing its etcd lease.
    pub lease_ttl_ms: u64,
    /// The relational store: `postgres://…` or `mysql://…`.
    pub database_url: String,
    /// Connections each process keeps to the database.
    pub database_connections: u32,
    /// Redis, for sessions, locks and de-duplication.
    pub redis_url: String,
    /// The Kafka-protocol broker holding the message log.
    pub kafka: KafkaLogConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "natter".into(),
            etcd: vec!["http://127.0.0.1:2379".into()],
            lease_ttl_ms: 10_000,
            database_url: "postgres://natter@127.0.0.1:5432/natter".into(),
            database_connections: 16,
            redis_url: "redis://127.0.0.1:6379".into(),
            kafka: KafkaLogConfig::default(),
        }
    }
}

/// This process's identity and data.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name (connect nodes are found by it); unique in a cluster. `{hostname}` in
    /// it becomes the machine's host name, so container replicas can share one config.
    pub name: String,
    /// The snowflake node id (0–1023) in the embedded deployment.
    pub id: u16,
    /// Where the embedded deployment keeps its database, secret and uploads.
    pub data_dir: PathBuf,
    /// Threads running the process's async work; 0 is one per core. Processes that share
    /// a machine's cores spend less on waking each other's idle threads with fewer.
    pub worker_threads: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "local".into(),
            id: 1,
            data_dir: PathBuf::from("natter-data"),
            worker_threads: 0,
        }
    }
}

/// Listening addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// HTTP: the REST API (api layer), `/metrics` and `/healthz` (every process).
    pub api: String,
    /// WebSocket endpoint (`/ws`, connect layer).
    pub ws: String,
    /// gRPC, where a cluster's logic, task and connect processes are called.
    pub grpc: String,
    /// The gRPC URL other processes dial, if not `http://<grpc>` (behind NAT or in a pod).
    pub grpc_advertise: String,
    /// How long the HTTP and WebSocket ports give a socket to finish its handshake, and how
    /// many one address may have in it at once.
    pub handshake: HandshakeLimits,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            api: "127.0.0.1:8080".into(),
            ws: "127.0.0.1:8090".into(),
            grpc: "127.0.0.1:9090".into(),
            grpc_advertise: String::new(),
            handshake: HandshakeLimits::default(),
        }
    }
}

/// Token signing.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The HS256 secret shared by API and connect; when empty the embedded deployment
    /// generates one in `<data_dir>/jwt-secret` and keeps it across restarts.
    pub jwt_secret: String,
}

/// Log output.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `natter_task=debug,info` (`RUST_LOG` wins if set).
    pub filter: String,
    /// JSON lines instead of human-readable text.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            // rskafka says at info level every time it opens a partition: once per topic.
            filter: "info,rskafka=warn".into(),
            json: false,
        }
    }
}

/// Traces of sampled messages, exported over OTLP (docs/operations.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    /// The OTLP gRPC endpoint (Jaeger or a collector, e.g. `http://127.0.0.1:4317`); empty
    /// turns tracing off, and then it costs nothing.
    pub otlp_endpoint: String,
    /// The share of messages traced, from 0 to 1 (errors answered to a client are traced
    /// whatever it is).
    pub ratio: f64,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            otlp_endpoint: String::new(),
            ratio: 0.01,
        }
    }
}

/// The `NATTER_<SECTION>__<KEY>` variables among `variables`: only these configure natter, so
/// other `NATTER_` variables (the scripts' `NATTER_DEPS_DIR`, say) are not refused as unknown keys.
fn configuration_variables(
    variables: impl Iterator<Item = (String, String)>,
) -> config::Map<String, String> {
    variables
        .filter(|(name, _)| {
            name.strip_prefix("NATTER_")
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect()
}

/// The configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(#[from] config::ConfigError);

impl NatterConfig {
    /// The defaults, overlaid with `file` (if given) and then the environment.
    pub fn load(file: Option<&Path>) -> Result<NatterConfig, ConfigError> {
        let defaults = config::Config::try_from(&NatterConfig::default())?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let merged = builder
            .add_source(
                config::Environment::with_prefix("NATTER")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    // Lists come comma-separated: NATTER_CLUSTER__ETCD=http://a:2379,http://b:2379
                    .list_separator(",")
                    .with_list_parse_key("cluster.etcd")
                    .with_list_parse_key("cluster.kafka.bootstrap")
                    .source(Some(configuration_variables(std::env::vars()))),
            )
            .build()?;
        let mut loaded: NatterConfig = merged.try_deserialize()?;
        if loaded.node.name.contains("{hostname}") {
            loaded.node.name = loaded.node.name.replace("{hostname}", &host_name());
        }
        Ok(loaded)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# unprintable: {error}\n"))
    }

    /// The configuration as TOML for people to read: secrets (the token secret, the admin
    /// credential, passwords in server URLs) are replaced by a note of their length, so the
    /// output can be pasted into an issue or a log.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [&mut shown.auth.jwt_secret, &mut shown.api.admin_token] {
            if !secret.is_empty() {
                *secret = format!("<redacted: {} characters>", secret.chars().count());
            }
        }
        for url in [
            &mut shown.cluster.database_url,
            &mut shown.cluster.redis_url,
        ] {
            *url = redact_url(url);
        }
        shown.to_toml()
    }
}

/// `url` with the password of its user part, if any, replaced by `***`, for logs and printed
/// configuration. The user part ends at the *last* `@`: a password typed with a raw `@` in it
/// is hidden whole, and an `@` later in the URL (in a query) hides more than needed, never less.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((user_part, host_part)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match user_part.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host_part}"),
        None => url.to_string(),
    }
}

/// This machine's host name (a container's id under Docker, the pod name on Kubernetes).
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unnamed".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn printed_configuration_hides_secrets() {
        let mut config = super::NatterConfig::default();
        config.auth.jwt_secret = "very-secret-signing-key".into();
        config.api.admin_token = "admin-credential".into();
        config.cluster.database_url = "postgres://natter:hunter2@db:5432/natter".into();
        config.cluster.redis_url = "redis://cache:6379".into();
        let printed = config.to_redacted_toml();
        for secret in ["very-secret-signing-key", "admin-credential", "hunter2"] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
        assert!(printed.contains("<redacted: 23 characters>"), "{printed}");
        assert!(
            printed.contains("postgres://natter:***@db:5432/natter"),
            "{printed}"
        );
        assert!(printed.contains("redis://cache:6379"), "{printed}");
    }

    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls_even_with_an_at_sign_in_them() {
        assert_eq!(
            redact_url("postgres://natter:secret@db:5432/natter"),
            "postgres://natter:***@db:5432/natter"
        );
        assert_eq!(
            redact_url("postgres://natter:p@ss:w@rd@db:5432/natter"),
            "postgres://natter:***@db:5432/natter"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("mysql://user@host/db"), "mysql://user@host/db");
        let mut config = NatterConfig::default();
        config.cluster.database_url = "postgres://natter:p@ss@db/natter".into();
        let printed = config.to_redacted_toml();
        assert!(!printed.contains("ss@db"), "{printed}");
        assert!(
            printed.contains("postgres://natter:***@db/natter"),
            "{printed}"
        );
    }

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("natter.toml");
        std::fs::write(
            &path,
            "[task]\nlock_ttl_ms = 500\n[listen]\nws = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let config = NatterConfig::load(Some(&path)).unwrap();
        assert_eq!(config.task.lock_ttl_ms, 500);
        assert_eq!(config.listen.ws, "127.0.0.1:1");
        assert_eq!(config.listen.api, "127.0.0.1:8080");
        std::fs::write(&path, "[task]\nlock_tl_ms = 500\n").unwrap();
        assert!(NatterConfig::load(Some(&path)).is_err());
    }

    /// The local cluster's files parse (unknown keys are refused) and keep each of the six
    /// processes sharing the machine to one worker thread.
    #[test]
    fn the_local_cluster_files_load_with_one_worker_thread_each() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deployments/local");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let config = NatterConfig::load(Some(&path)).unwrap();
            assert_eq!(config.node.worker_threads, 1, "{}", path.display());
            files += 1;
        }
        assert_eq!(files, 7, "api, two logic, two task and two connect files");
        assert_eq!(NatterConfig::default().node.worker_threads, 0);
    }

    #[test]
    fn the_printed_configuration_reads_back() {
        let printed = NatterConfig::default().to_toml();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("natter.toml");
        std::fs::write(&path, &printed).unwrap();
        assert_eq!(NatterConfig::load(Some(&path)).unwrap().to_toml(), printed);
    }

    #[test]
    fn only_section_variables_configure_natter() {
        let variables = [
            ("NATTER_TASK__LOCK_TTL_MS", "500"),
            ("NATTER_DEPS_DIR", "/tmp/x"),
            ("NATTER_TEST_REDIS_URL", "redis://x"),
            ("OTHER__KEY", "1"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let kept = configuration_variables(variables.into_iter());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["NATTER_TASK__LOCK_TTL_MS"], "500");
    }

    #[test]
    fn the_host_name_fills_a_node_name_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("natter.toml");
        std::fs::write(&path, "[node]\nname = \"connect-{hostname}\"\n").unwrap();
        let config = NatterConfig::load(Some(&path)).unwrap();
        assert!(config.node.name.starts_with("connect-"));
        assert!(!config.node.name.contains('{'), "{}", config.node.name);
        assert_eq!(config.node.name, format!("connect-{}", host_name()));
    }
}
