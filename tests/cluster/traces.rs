//! One message's journey through the six-process cluster, as Jaeger shows it: every process
//! exports the spans of sampled messages over OTLP, the trace crosses gRPC in metadata and the
//! log in record headers, and the test reads the trace back from Jaeger's query API. Then a
//! connect node that never releases its push locks makes task redeliver, and the redelivery
//! shows in that message's trace. The processes log JSON lines, and the traced ones name the
//! trace.

use serde_json::Value;

use super::*;

/// One span as Jaeger's query API gives it.
#[derive(Debug, Clone)]
struct TracedSpan {
    id: String,
    parent: Option<String>,
    operation: String,
    service: String,
    node: String,
    start: u64,
}

/// The spans of a trace, by asking Jaeger for it.
async fn trace_spans(query: &str, trace_id: &str) -> Vec<TracedSpan> {
    let reply: Value = reqwest::get(format!("{query}/api/traces/{trace_id}"))
        .await
        .expect("Jaeger's query API")
        .json()
        .await
        .expect("a JSON answer");
    let Some(trace) = reply["data"].get(0) else {
        return Vec::new();
    };
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|span| {
            let process = &processes[span["processID"].as_str().unwrap_or_default()];
            let node = process["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|tag| tag["key"] == "service.instance.id")
                .and_then(|tag| tag["value"].as_str())
                .unwrap_or_default()
                .to_string();
            TracedSpan {
                id: span["spanID"].as_str().unwrap_or_default().to_string(),
                parent: span["references"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|reference| reference["refType"] == "CHILD_OF")
                    .and_then(|reference| reference["spanID"].as_str())
                    .map(str::to_string),
                operation: span["operationName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                service: process["serviceName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                node,
                start: span["startTime"].as_u64().unwrap_or_default(),
            }
        })
        .collect()
}

/// The id of the trace whose logic append wrote message `id`, once Jaeger has it.
async fn trace_of_message(query: &str, id: &str) -> Option<String> {
    let tags = format!("{{\"message_id\":\"{id}\"}}");
    let reply: Value = reqwest::Client::new()
        .get(format!("{query}/api/traces"))
        .query(&[
            ("service", "natter-logic"),
            ("operation", "logic.append"),
            ("tags", tags.as_str()),
            ("lookback", "1h"),
            ("limit", "5"),
        ])
        .send()
        .await
        .expect("Jaeger's query API")
        .json()
        .await
        .expect("a JSON answer");
    reply["data"]
        .get(0)
        .and_then(|trace| trace["traceID"].as_str())
        .map(str::to_string)
}

/// The chain of spans from `span` up to the trace's root, `span` first.
fn ancestry<'spans>(
    spans: &'spans [TracedSpan],
    span: &'spans TracedSpan,
) -> Vec<&'spans TracedSpan> {
    let mut chain = vec![span];
    while let Some(parent) = chain
        .last()
        .and_then(|span| span.parent.as_ref())
        .and_then(|parent| spans.iter().find(|span| &span.id == parent))
    {
        assert!(chain.len() < 64, "a cycle among the spans: {spans:#?}");
        chain.push(parent);
    }
    chain
}

/// Sends one message from `from` to the user `to` and returns its id once `receiver` has it.
async fn send_and_receive(
    from: &mut WsClient,
    receiver: &mut WsClient,
    to: i64,
    cid: &str,
) -> String {
    from.send(&ClientFrame::Send {
        cid: cid.into(),
        to: format!("user:{to}"),
        kind: "text".into(),
        body: format!("traced {cid}"),
        reply_to: None,
    })
    .await
    .expect("send");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.next_frame(left).await {
            Ok(Some(ServerFrame::Msg(message))) if message.cid == cid => return message.id,
            Ok(Some(_)) => {}
            other => panic!("the message {cid} did not arrive: {other:?}"),
        }
    }
}

/// Waits until Jaeger holds the trace of message `id` with spans `wanted` says are enough.
async fn wait_for_trace(
    query: &str,
    id: &str,
    what: &str,
    wanted: impl Fn(&[TracedSpan]) -> bool,
) -> (String, Vec<TracedSpan>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        if let Some(trace_id) = trace_of_message(query, id).await {
            seen = trace_spans(query, &trace_id).await;
            if wanted(&seen) {
                return (trace_id, seen);
            }
        }
        assert!(
            Instant::now() < deadline,
            "Jaeger has no trace of message {id} with {what} in 30 s; it has {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_trace_crosses_every_layer_in_causal_order() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let query = required("NATTER_TEST_JAEGER_QUERY_URL");
    let mut cluster = Cluster::new("partitioned");
    cluster.set(
        "NATTER_TRACE__OTLP_ENDPOINT",
        &required("NATTER_TEST_JAEGER_OTLP_URL"),
    );
    cluster.set("NATTER_TRACE__RATIO", "1");
    cluster.set("NATTER_LOG__JSON", "true");
    cluster.start_all(&SIX).await;

    let api = ApiClient::new(API);
    let run = rand::random::<u32>();
    let ada = api
        .register(&format!("tada{run}"), PASSWORD)
        .await
        .expect("register ada");
    let bob = api
        .register(&format!("tbob{run}"), PASSWORD)
        .await
        .expect("register bob");
    api.befriend(&ada, &bob).await.expect("befriend");
    let mut ada_client = synced_client(&ada, CONNECT_URLS[0]).await;
    let mut bob_client = synced_client(&bob, CONNECT_URLS[1]).await;

    let id = send_and_receive(&mut ada_client, &mut bob_client, bob.user_id, "t1").await;
    operators_view_names_every_process(&cluster);
    let fanned_out_on_connect_2 = |spans: &[TracedSpan]| {
        spans
            .iter()
            .any(|span| span.operation == "connect.fanout" && span.node == "connect-2")
    };
    let (trace_id, spans) = wait_for_trace(&query, &id, "a fan-out on connect-2", |spans| {
        fanned_out_on_connect_2(spans) && spans.iter().any(|span| span.operation == "connect.send")
    })
    .await;
    let services: BTreeSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
    for service in ["natter-connect", "natter-logic", "natter-task"] {
        assert!(services.contains(service), "no {service} span: {spans:#?}");
    }
    // From the recipient's fan-out back to the sender's `send`, every hop in order: each span
    // is the child of the one before and starts no earlier (the processes share one clock).
    let fanout = spans
        .iter()
        .find(|span| span.operation == "connect.fanout" && span.node == "connect-2")
        .expect("the fan-out");
    let chain = ancestry(&spans, fanout);
    let hops: Vec<(&str, &str)> = chain
        .iter()
        .rev()
        .map(|span| (span.operation.as_str(), span.node.as_str()))
        .collect();
    let expected = [
        ("connect.send", "connect-1"),
        ("logic.append", "logic-1"),
        ("task.deliver", ""),
        ("task.push", ""),
        ("connect.fanout", "connect-2"),
    ];
    let mut hop = hops.iter();
    for (operation, node) in expected {
        assert!(
            hop.any(|(seen, on)| *seen == operation && (node.is_empty() || *on == node)),
            "no {operation} (on {node:?}) in causal order in {hops:?}"
        );
    }
    for pair in chain.windows(2) {
        let (child, parent) = (pair[0], pair[1]);
        assert!(
            parent.start <= child.start,
            "{} starts before its parent {}: {hops:?}",
            child.operation,
            parent.operation
        );
    }
    for operation in ["logic.validate", "logic.dedup", "task.number", "task.lock"] {
        assert!(
            spans.iter().any(|span| span.operation == operation),
            "no {operation} span in {spans:#?}"
        );
    }

    // Logs that name a trace name this one: the processes log JSON lines.
    let logs = cluster.all_logs();
    let json_lines: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        json_lines.iter().any(|line| line["node"] == "logic-1"),
        "no JSON log line from logic-1 in:\n{logs}"
    );
    assert!(
        json_lines
            .iter()
            .filter(|line| line.get("trace_id").is_some())
            .all(|line| line["trace_id"].as_str().is_some_and(|id| id.len() == 32)),
        "a malformed trace id in:\n{logs}"
    );

    // A connect node that never confirms a push: task redelivers after the lock expires, and
    // the redelivery is part of the message's trace.
    drop(bob_client);
    cluster.terminate("connect-2");
    cluster.set("NATTER_CONNECT__HOLD_PUSH_LOCKS", "true");
    cluster.start("connect-2");
    cluster.wait_healthy("connect-2").await;
    let mut bob_client = synced_client(&bob, CONNECT_URLS[1]).await;
    let id = send_and_receive(&mut ada_client, &mut bob_client, bob.user_id, "t2").await;
    let (redelivered_trace, spans) = wait_for_trace(&query, &id, "a redelivery", |spans| {
        spans.iter().any(|span| {
            span.operation == "connect.fanout"
                && ancestry(spans, span)
                    .iter()
                    .any(|ancestor| ancestor.operation == "task.redeliver")
        })
    })
    .await;
    assert_ne!(
        redelivered_trace, trace_id,
        "each message has its own trace"
    );
    let redelivery = spans
        .iter()
        .find(|span| span.operation == "task.redeliver")
        .expect("a redelivery span");
    assert!(
        spans
            .iter()
            .any(|span| span.operation == "connect.send" && span.node == "connect-1"),
        "the redelivered message's trace lost its start: {spans:#?}"
    );
    assert_eq!(redelivery.service, "natter-task");
}

/// `natter status` prints every process healthy, the connections on each connect node and
/// the lag of the partitions the task processes own.
fn operators_view_names_every_process(cluster: &Cluster) {
    let output = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["status", "--config"])
        .arg(config_path("api-1"))
        .envs(
            cluster
                .environment
                .iter()
                .map(|(name, value)| (name, value)),
        )
        .output()
        .expect("run natter status");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "natter status failed: {}{}",
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    for name in SIX {
        let line = text
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"));
        assert!(line.contains(" ok"), "{name} is not healthy:\n{text}");
        if name.starts_with("connect") {
            let connections: u64 = line
                .split_whitespace()
                .last()
                .and_then(|count| count.parse().ok())
                .unwrap_or_else(|| panic!("no connection count for {name}:\n{text}"));
            assert!(connections >= 1, "{name} holds a client:\n{text}");
        }
    }
    assert!(
        text.lines()
            .any(|line| line.starts_with("inbox/") && line.contains("task-")),
        "no inbox partition with its owner and lag in:\n{text}"
    );
}
