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

/// A YAML file of the deployments folder, parsed.
fn yaml(relative: &str) -> Value {
    serde_yaml_ng::from_str(&read(&deployments().join(relative)))
        .unwrap_or_else(|error| panic!("deployments/{relative}: {error}"))
}

/// The compose file with its merge keys applied.
fn compose() -> Value {
    let mut compose = yaml("docker-compose.yml");
    compose.apply_merge().expect("merge keys");
    compose
}

/// The `host:container` mounts of a compose service, without their `:ro`.
fn mounts(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(|mount| {
            let mut parts = mount.split(':');
            let host = parts.next().unwrap_or_default().to_owned();
            let container = parts.next().unwrap_or_default().to_owned();
            (host, container)
        })
        .collect()
}

/// Where `service` mounts `host` (a path relative to deployments/), if it does.
fn mounted_at(service: &Value, host: &str) -> Option<String> {
    mounts(service)
        .into_iter()
        .find(|(from, _)| from.trim_start_matches("./") == host)
        .map(|(_, to)| to)
}

fn the_dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&deployments().join("grafana/dashboards/natter.json")))
        .expect("the dashboard is JSON")
}

/// Every alert rule of every group.
fn alert_rules() -> Vec<Value> {
    yaml("prometheus/alerts.yml")["groups"]
        .as_sequence()
        .expect("rule groups")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules").clone())
        .collect()
}

/// The PromQL of every dashboard target and every alert rule, each with where it comes from.
fn promql_expressions() -> Vec<(String, String)> {
    let mut expressions = Vec::new();
    for panel in the_dashboard()["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let title = panel["title"].as_str().unwrap_or_default();
            expressions.push((format!("panel {title}"), expr.to_owned()));
        }
    }
    for rule in alert_rules() {
        let expr = rule["expr"].as_str().expect("expr");
        let name = rule["alert"].as_str().unwrap_or_default();
        expressions.push((format!("alert {name}"), expr.to_owned()));
    }
    expressions
}

/// The `natter_…` metric names an expression reads, histogram series named by their family.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let is_name = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':';
    let mut names = BTreeSet::new();
    let mut start = 0;
    while start < bytes.len() {
        if !is_name(bytes[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        let word = &expr[start..end];
        if word.starts_with("natter_") {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word);
            names.insert(family.to_owned());
        }
        start = end;
    }
    names
}

#[test]
fn the_observability_files_parse() {
    for file in [
        "prometheus/alerts.yml",
        "grafana/provisioning/datasources/datasources.yml",
        "grafana/provisioning/dashboards/dashboards.yml",
        "loki/loki.yml",
        "vector/vector.yaml",
    ] {
        assert!(
            yaml(file).is_mapping(),
            "deployments/{file} is a YAML mapping"
        );
    }
    assert!(compose()["services"].is_mapping());
    assert!(the_dashboard().is_object());
}

#[test]
fn the_compose_file_mounts_the_observability_files_where_they_are_read() {
    let compose = compose();
    let services = &compose["services"];
    let image = |service: &str| services[service]["image"].as_str().unwrap_or_default();
    assert_eq!(image("jaeger"), "jaegertracing/jaeger:2.12.0");
    assert_eq!(image("grafana"), "grafana/grafana:11.3.0");
    assert_eq!(image("loki"), "grafana/loki:3.2.1");
    assert_eq!(image("vector"), "timberio/vector:0.42.0-debian");

    // Prometheus loads the rules file from where it is mounted.
    let rules_at = mounted_at(&services["prometheus"], "prometheus/alerts.yml")
        .expect("prometheus mounts the alert rules");
    let prometheus = yaml("prometheus.yml");
    let rule_files: Vec<&str> = prometheus["rule_files"]
        .as_sequence()
        .expect("rule_files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(rule_files, [rules_at.as_str()]);

    // Loki and Vector are started with the files they are given.
    let loki_at = mounted_at(&services["loki"], "loki/loki.yml").expect("loki's config");
    assert!(format!("{:?}", services["loki"]["command"]).contains(&loki_at));
    let vector_at = mounted_at(&services["vector"], "vector/vector.yaml").expect("vector's config");
    assert!(format!("{:?}", services["vector"]["command"]).contains(&vector_at));
    assert!(
        mounts(&services["vector"])
            .iter()
            .any(|(host, container)| host == "/var/run/docker.sock"
                && container == "/var/run/docker.sock"),
        "vector reads the containers' logs from the Docker daemon"
    );
    assert!(
        format!("{:?}", services["vector"]["volumes"]).contains("docker.sock:ro"),
        "read-only"
    );

    // Grafana finds its provisioning where it looks, and the dashboards where the provider says.
    let grafana = &services["grafana"];
    for kind in ["datasources", "dashboards"] {
        assert_eq!(
            mounted_at(grafana, &format!("grafana/provisioning/{kind}")).as_deref(),
            Some(format!("/etc/grafana/provisioning/{kind}").as_str()),
            "grafana mounts its {kind} provisioning"
        );
    }
    let dashboards_at = mounted_at(grafana, "grafana/dashboards").expect("the dashboards folder");
    let provider = yaml("grafana/provisioning/dashboards/dashboards.yml");
    assert_eq!(
        provider["providers"][0]["options"]["path"].as_str(),
        Some(dashboards_at.as_str())
    );

    // Every natter process exports traces to Jaeger and writes JSON lines.
    for layer in layers() {
        let environment = &services[layer]["environment"];
        let set = |variable: &str| environment[variable].as_str().map(str::to_owned);
        assert_eq!(
            set("NATTER_TRACE__OTLP_ENDPOINT").as_deref(),
            Some("http://jaeger:4317"),
            "{layer} exports traces"
        );
        assert_eq!(
            set("NATTER_TRACE__RATIO").as_deref(),
            Some("0.01"),
            "{layer}"
        );
        assert_eq!(set("NATTER_LOG__JSON").as_deref(), Some("true"), "{layer}");
    }
    let jaeger = format!("{:?}", services["jaeger"]);
    assert!(jaeger.contains("4317") && jaeger.contains("16686"));
}

#[test]
fn grafana_reads_the_provisioned_data_sources() {
    let datasources = yaml("grafana/provisioning/datasources/datasources.yml");
    let of_type = |kind: &str| -> Value {
        datasources["datasources"]
            .as_sequence()
            .expect("datasources")
            .iter()
            .find(|source| source["type"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} data source"))
            .clone()
    };
    let prometheus = of_type("prometheus");
    let loki = of_type("loki");
    let jaeger = of_type("jaeger");
    assert_eq!(prometheus["url"].as_str(), Some("http://prometheus:9090"));
    assert_eq!(loki["url"].as_str(), Some("http://loki:3100"));
    assert_eq!(jaeger["url"].as_str(), Some("http://jaeger:16686"));

    // Loki's lines link their trace to Jaeger.
    let derived = &loki["jsonData"]["derivedFields"][0];
    assert_eq!(derived["datasourceUid"], jaeger["uid"]);
    assert!(
        derived["matcherRegex"]
            .as_str()
            .is_some_and(|regex| regex.contains("trace_id")),
        "the derived field finds the trace_id"
    );

    // Every panel is a time series over the provisioned Prometheus.
    let prometheus_uid = prometheus["uid"].as_str().expect("a Prometheus uid");
    let dashboard = the_dashboard();
    assert_eq!(dashboard["schemaVersion"], 39);
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = &panel["title"];
        assert_eq!(panel["type"], "timeseries", "{title}");
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "{title}: ids differ"
        );
        assert!(panel["gridPos"]["w"].is_u64() && panel["gridPos"]["h"].is_u64());
        assert_eq!(panel["datasource"]["uid"], prometheus_uid, "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has queries");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], prometheus_uid, "{title}");
            assert!(target["refId"].is_string(), "{title}");
        }
    }

    // Vector labels Loki's streams by node and level only.
    let vector = yaml("vector/vector.yaml");
    let sink = vector["sinks"]
        .as_mapping()
        .expect("sinks")
        .values()
        .find(|sink| sink["type"].as_str() == Some("loki"))
        .expect("a Loki sink");
    assert_eq!(sink["endpoint"].as_str(), Some("http://loki:3100"));
    let labels: Vec<&str> = sink["labels"]
        .as_mapping()
        .expect("labels")
        .keys()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(labels, ["node", "level"]);
    let sources = format!("{:?}", vector["sources"]);
    assert!(sources.contains("docker_logs"));
    let transforms = format!("{:?}", vector["transforms"]);
    assert!(transforms.contains("parse_json(") && transforms.contains(".message"));
}

/// describe_metrics registers every metric at zero, so the text a first scrape gets names them
/// all. (The Prometheus exporter renders a histogram only once it is registered: describing it
/// is not enough.)
#[test]
fn every_metric_the_dashboard_and_the_alerts_name_is_exported() {
    natter::telemetry::describe_metrics();
    let rendered = natter::telemetry::render_metrics();
    let mut exported = BTreeSet::new();
    for line in rendered.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            exported.extend(rest.split_whitespace().next().map(str::to_owned));
        } else if !line.starts_with('#') {
            let name = line
                .split(|c: char| c == '{' || c.is_whitespace())
                .next()
                .unwrap_or_default();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            exported.insert(family.to_owned());
        }
    }
    let mut missing = BTreeSet::new();
    let mut named = 0;
    for (place, expr) in promql_expressions() {
        for name in metric_names(&expr) {
            named += 1;
            if !exported.contains(&name) {
                missing.insert(format!("{name} ({place})"));
            }
        }
    }
    assert!(named >= 10, "the files name natter's metrics: {named}");
    assert!(
        missing.is_empty(),
        "named but not exported: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
fn the_alert_rules_cover_lag_redeliveries_and_a_node_gone() {
    let rules = alert_rules();
    for rule in &rules {
        let name = &rule["alert"];
        assert!(name.is_string(), "every rule is an alert: {rule:?}");
        assert!(
            rule["labels"]["severity"].is_string(),
            "{name:?} has a severity"
        );
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation].is_string(),
                "{name:?} has a {annotation}"
            );
        }
    }
    let expr_naming = |needle: &str| -> Vec<String> {
        rules
            .iter()
            .filter_map(|rule| rule["expr"].as_str())
            .filter(|expr| expr.contains(needle))
            .map(str::to_owned)
            .collect()
    };
    assert!(!expr_naming("natter_log_lag_records").is_empty(), "log lag");
    assert!(
        !expr_naming("natter_redeliveries_total").is_empty(),
        "redeliveries"
    );
    assert!(
        !expr_naming("natter_connections_closed_slow_total").is_empty(),
        "slow consumers"
    );
    // A node gone: `up` of the job prometheus.yml scrapes natter under, for every layer.
    let job = yaml("prometheus.yml")["scrape_configs"][0]["job_name"]
        .as_str()
        .expect("job_name")
        .to_owned();
    let node_rules = expr_naming(&format!("up{{job=\"{job}\""));
    assert!(
        node_rules.iter().any(|expr| expr.contains("== 0")),
        "a node not answering: {node_rules:?}"
    );
    let absent = node_rules
        .iter()
        .find(|expr| expr.contains("absent("))
        .expect("a layer with no process left");
    for layer in layers() {
        assert!(
            absent.contains(&format!("layer=\"{layer}\"")),
            "{layer} missing"
        );
    }
}
