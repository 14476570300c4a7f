//! `natter status`: the cluster as its registry and Redis see it, for an operator. Every
//! registered process with its layer, snowflake node id, address and health; the connections
//! each connect node holds; and how far behind each log partition's delivery is, as the task
//! process owning it reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use natter_infra::Registry;
use natter_infra::registry::ServiceNode;
use natter_proto::handle::TaskHandle;
use natter_proto::v1::Empty;

use crate::cluster::{cluster_registry, cluster_sessions};
use crate::config::{NatterConfig, redact_url};

/// The layers in the order they are printed.
const LAYERS: [&str; 4] = ["api", "logic", "task", "connect"];
/// How long one process gets to answer a health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster's status as text, one table of processes and one of log partitions.
pub async fn report(config: &NatterConfig) -> anyhow::Result<String> {
    let cluster = &config.cluster;
    let registry = cluster_registry(config).await?;
    let sessions = cluster_sessions(config).await?;
    let ids: BTreeMap<String, u16> = registry
        .node_ids()
        .await?
        .into_iter()
        .map(|(id, node)| (node, id))
        .collect();
    let mut text = String::new();
    writeln!(
        text,
        "natter cluster {:?} (etcd {}, Redis {})\n",
        cluster.name,
        cluster.etcd.join(","),
        redact_url(&cluster.redis_url)
    )?;
    writeln!(
        text,
        "{:<8} {:<16} {:>7} {:<28} {:<12} CONNECTIONS",
        "LAYER", "NODE", "NODE ID", "ADDRESS", "HEALTH"
    )?;
    let mut tasks = Vec::new();
    for layer in LAYERS {
        for node in registry.nodes(layer).await? {
            let health = health(&node).await;
            let connections = if layer == "connect" {
                match sessions.node_session_count(&node.node).await {
                    Ok(count) => count.to_string(),
                    Err(error) => format!("unknown ({error})"),
                }
            } else {
                String::new()
            };
            let id = ids
                .get(&node.node)
                .map_or_else(|| "-".to_string(), ToString::to_string);
            let line = format!(
                "{:<8} {:<16} {:>7} {:<28} {:<12} {connections}",
                node.layer, node.node, id, node.address, health
            );
            writeln!(text, "{}", line.trim_end())?;
            if layer == "task" {
                tasks.push(node);
            }
        }
    }
    writeln!(
        text,
        "\n{:<16} {:<16} LAG (records not delivered)",
        "PARTITION", "OWNER"
    )?;
    let mut partitions = Vec::new();
    for task in &tasks {
        match task_lag(task).await {
            Ok(lags) => partitions.extend(
                lags.into_iter()
                    .map(|(partition, records)| (partition, task.node.as_str(), records)),
            ),
            Err(error) => writeln!(text, "{:<16} {:<16} unknown ({error})", "?", task.node)?,
        }
    }
    // inbox/2 before inbox/10: by stream, then by number.
    partitions.sort_by_cached_key(|(partition, _, _)| {
        let (stream, index) = partition.split_once('/').unwrap_or((partition, ""));
        (stream.to_string(), index.parse::<u32>().unwrap_or(u32::MAX))
    });
    for (partition, owner, records) in &partitions {
        writeln!(text, "{partition:<16} {owner:<16} {records}")?;
    }
    if partitions.is_empty() && !tasks.is_empty() {
        writeln!(
            text,
            "(no task process owns a partition: the log is per object, or nothing was sent yet)"
        )?;
    }
    Ok(text)
}

/// "ok" when the process answers: the API's `/healthz`, the others' gRPC port.
async fn health(node: &ServiceNode) -> String {
    let answered = if node.layer == "api" {
        let url = format!("{}/healthz", node.address.trim_end_matches('/'));
        match reqwest::Client::new()
            .get(url)
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
        {
            Ok(reply) if reply.status().is_success() => Ok(()),
            Ok(reply) => Err(format!("HTTP {}", reply.status().as_u16())),
            Err(error) => Err(error.to_string()),
        }
    } else {
        let authority = node
            .address
            .split("://")
            .last()
            .unwrap_or_default()
            .trim_end_matches('/');
        match tokio::time::timeout(HEALTH_TIMEOUT, tokio::net::TcpStream::connect(authority)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    };
    match answered {
        Ok(()) => "ok".to_string(),
        Err(_) => "unreachable".to_string(),
    }
}

/// The partitions `task` owns with their lag, as it reports them.
async fn task_lag(task: &ServiceNode) -> anyhow::Result<Vec<(String, i64)>> {
    let handle = TaskHandle::remote(&task.address)?;
    let reply = tokio::time::timeout(HEALTH_TIMEOUT, handle.lag(Empty {}))
        .await
        .context("timed out")??;
    Ok(reply
        .partitions
        .into_iter()
        .map(|partition| (partition.partition, partition.records))
        .collect())
}
