//! Docker does not run here, so the deployment files are checked for what can be checked
//! without it: they parse, every natter layer is deployed (task and connect with replicas),
//! every service runs the layer it is named after, every configuration key they set exists,
//! and the ports they publish are the ones the configuration binds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use natter::cluster::Layer;
use natter::config::NatterConfig;
use serde_yaml_ng::Value;

fn deployments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deployments")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn layers() -> Vec<&'static str> {
    Layer::value_variants()
        .iter()
        .map(|layer| layer.name())
        .collect()
}

/// The `a.b` path of a `NATTER_A__B` variable.
fn key_of(variable: &str) -> Option<String> {
    let rest = variable.strip_prefix("NATTER_")?;
    Some(rest.to_lowercase().replace("__", "."))
}

/// Does `path` (dotted) name a key of natter's configuration?
fn is_config_key(path: &str) -> bool {
    let defaults = serde_json::to_value(NatterConfig::default()).expect("config as JSON");
    let mut here = &defaults;
    for part in path.split('.') {
        match here.get(part) {
            Some(next) => here = next,
            None => return false,
        }
    }
    true
}

/// A configuration file as natter loads it: unknown keys are refused.
fn loads(text: &str, name: &str) -> NatterConfig {
    let folder = tempfile::tempdir().expect("temporary folder");
    let path = folder.path().join("natter.toml");
    std::fs::write(&path, text).expect("write");
    NatterConfig::load(Some(&path)).unwrap_or_else(|error| panic!("{name} does not load: {error}"))
}

fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

#[test]
fn the_compose_file_deploys_every_layer_with_real_keys() {
    let mut compose: Value =
        serde_yaml_ng::from_str(&read(&deployments().join("docker-compose.yml"))).expect("YAML");
    // The natter services share their settings through YAML merge keys (`<<: *natter`).
    compose.apply_merge().expect("merge keys");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for needed in ["kafka", "redis", "etcd", "postgres", "prometheus"] {
        assert!(names.contains(needed), "compose lacks {needed}: {names:?}");
    }
    let config = loads(
        &read(&deployments().join("natter.toml")),
        "deployments/natter.toml",
    );
    for layer in layers() {
        let service = &services[layer];
        assert!(
            service.is_mapping(),
            "compose has no service for layer {layer}"
        );
        let command: Vec<&str> = service["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{layer} has no command"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            &command[..2],
            ["serve", layer],
            "service {layer} runs its layer"
        );
        assert!(command.contains(&"/etc/natter/natter.toml"));
        let mounts = format!("{:?}", service["volumes"]);
        assert!(
            mounts.contains("./natter.toml:/etc/natter/natter.toml"),
            "{layer} mounts the shared config"
        );
        let environment = service["environment"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{layer} has no environment"));
        for variable in environment.keys().filter_map(Value::as_str) {
            let key = key_of(variable)
                .unwrap_or_else(|| panic!("{layer} sets {variable}, not a natter variable"));
            assert!(
                is_config_key(&key),
                "{layer} sets {variable}, but natter has no {key}"
            );
        }
    }
    for scaled in ["task", "connect"] {
        let replicas = services[scaled]["deploy"]["replicas"].as_u64().unwrap_or(1);
        assert!(replicas >= 2, "{scaled} runs replicas, not {replicas}");
    }
    // The published ports are the ones the shared configuration binds.
    let published = |service: &str| format!("{:?}", services[service]["ports"]);
    assert!(published("api").contains(&format!(":{}", port_of(&config.listen.api))));
    assert!(published("connect").contains(&format!(":{}", port_of(&config.listen.ws))));
    // Every process is reached where the config says its peers will find it.
    assert_eq!(config.cluster.etcd, ["http://etcd:2379"]);
    assert_eq!(config.cluster.kafka.bootstrap, ["kafka:9092"]);
    assert!(config.cluster.redis_url.contains("redis:6379"));
    assert!(config.cluster.database_url.contains("@postgres:5432/"));
}

#[test]
fn prometheus_scrapes_every_layer_where_metrics_are_served() {
    let prometheus: Value =
        serde_yaml_ng::from_str(&read(&deployments().join("prometheus.yml"))).expect("YAML");
    let discovery = &prometheus["scrape_configs"][0]["dns_sd_configs"][0];
    let names: Vec<&str> = discovery["names"]
        .as_sequence()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, layers(), "every layer is scraped");
    let config = loads(
        &read(&deployments().join("natter.toml")),
        "deployments/natter.toml",
    );
    assert_eq!(
        discovery["port"].as_u64(),
        Some(u64::from(port_of(&config.listen.api))),
        "/metrics is on each process's HTTP port"
    );
}

#[test]
fn the_kubernetes_manifests_deploy_every_layer_with_real_keys() {
    let text = read(&deployments().join("k8s/natter.yaml"));
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).expect("YAML document"))
        .collect();
    let of_kind = |kind: &str| -> Vec<&Value> {
        documents
            .iter()
            .filter(|document| document["kind"].as_str() == Some(kind))
            .collect()
    };
    let config_map = of_kind("ConfigMap");
    let embedded = config_map[0]["data"]["natter.toml"]
        .as_str()
        .expect("natter.toml in the ConfigMap");
    let config = loads(embedded, "the ConfigMap's natter.toml");
    let deployed: Vec<&Value> = of_kind("Deployment");
    for layer in layers() {
        let deployment = deployed
            .iter()
            .find(|deployment| {
                deployment["metadata"]["name"].as_str() == Some(&format!("natter-{layer}"))
            })
            .unwrap_or_else(|| panic!("no Deployment for {layer}"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(&args[..2], ["serve", layer]);
        for variable in container["env"]
            .as_sequence()
            .expect("env")
            .iter()
            .filter_map(|entry| entry["name"].as_str())
            .filter(|name| name.starts_with("NATTER_"))
        {
            let key = key_of(variable).expect("a natter variable");
            assert!(
                is_config_key(&key),
                "{layer} sets {variable}, but natter has no {key}"
            );
        }
        let ports: BTreeSet<u64> = container["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .filter_map(|port| port["containerPort"].as_u64())
            .collect();
        assert!(ports.contains(&u64::from(port_of(&config.listen.api))));
        if layer == "connect" {
            assert!(ports.contains(&u64::from(port_of(&config.listen.ws))));
        }
        if layer != "api" {
            assert!(ports.contains(&u64::from(port_of(&config.listen.grpc))));
        }
    }
    let services: Vec<&str> = of_kind("Service")
        .iter()
        .filter_map(|service| service["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        services,
        ["natter-api", "natter-connect"],
        "how clients reach natter"
    );
}

#[test]
fn the_dockerfile_builds_the_binary_and_exposes_the_configured_ports() {
    let dockerfile = read(&deployments().join("Dockerfile"));
    assert!(dockerfile.contains("cargo build --release --locked --bin natter"));
    assert!(dockerfile.contains("FROM debian:bookworm-slim AS runtime"));
    assert!(
        dockerfile.contains("USER natter"),
        "the runtime runs unprivileged"
    );
    let config = loads(
        &read(&deployments().join("natter.toml")),
        "deployments/natter.toml",
    );
    let exposed = format!(
        "EXPOSE {} {} {}",
        port_of(&config.listen.api),
        port_of(&config.listen.ws),
        port_of(&config.listen.grpc)
    );
    assert!(
        dockerfile.contains(&exposed),
        "the Dockerfile says {exposed}"
    );
}

#[test]
fn the_local_cluster_configs_load() {
    let folder = deployments().join("local");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&folder).expect("deployments/local") {
        let path = entry.expect("entry").path();
        let config = loads(&read(&path), &path.display().to_string());
        names.push(config.node.name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "api-1",
            "connect-1",
            "connect-2",
            "logic-1",
            "logic-2",
            "task-1",
            "task-2"
        ],
        "1 api, 2 logic (scripts/cluster.sh starts the first), 2 task and 2 connect processes, \
         each named"
    );
}
