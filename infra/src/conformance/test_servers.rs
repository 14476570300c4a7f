//! The real servers `scripts/deps.sh` starts for the cluster tests: their URLs, and the broker
//! faults the tests inject (a broker killed, then started again on its data).

use std::path::{Path, PathBuf};

/// The URL (or folder) a `scripts/deps.sh env` variable names, or a failure that says how to
/// start the servers: these tests are never skipped.
pub fn server(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: the cluster tests need real servers. Run \
             `scripts/deps.sh up && eval \"$(scripts/deps.sh env)\"`, or scripts/test.sh"
        )
    })
}

/// Runs `scripts/deps.sh ARGS` on the servers this suite was started with.
pub fn deps(arguments: &[&str]) {
    server("NATTER_DEPS_DIR");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/deps.sh");
    let status = std::process::Command::new(script)
        .args(arguments)
        .status()
        .expect("run scripts/deps.sh");
    assert!(status.success(), "scripts/deps.sh {arguments:?} failed");
}

/// The node id of the broker of `scripts/deps.sh up kafka-cluster` leading `partition` of
/// `topic`, read from the brokers' own logs (rskafka does not expose partition leaders).
pub fn leader_of(topic: &str, partition: u32) -> i32 {
    let folder = PathBuf::from(server("NATTER_DEPS_DIR"));
    // Each broker that takes the lead logs "[Broker id=N] Leader TOPIC-P with topic id …"; the
    // newest such line (lines start with their time) names the current leader.
    let wanted = format!("] Leader {topic}-{partition} with topic id");
    let mut newest: Option<(String, i32)> = None;
    for node in 1..=3 {
        let log = folder.join(format!("kafka-cluster-{node}.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_else(|error| panic!("{log:?}: {error}"));
        for line in text.lines().filter(|line| line.contains(&wanted)) {
            if newest.as_ref().is_none_or(|(time, _)| line > time.as_str()) {
                newest = Some((line.to_owned(), node));
            }
        }
    }
    newest
        .map(|(_, node)| node)
        .unwrap_or_else(|| panic!("no broker logged that it leads {topic}-{partition}"))
}

/// One broker of `scripts/deps.sh up kafka-cluster`, killed with SIGKILL as a crash would,
/// started again when dropped, so a failing test still leaves the cluster whole.
pub struct KilledBroker(String);

impl KilledBroker {
    /// Kills broker `node` (1 to 3).
    pub fn kill(node: i32) -> KilledBroker {
        let name = format!("kafka-cluster-{node}");
        deps(&["kill", &name]);
        KilledBroker(name)
    }
}

impl Drop for KilledBroker {
    fn drop(&mut self) {
        deps(&["start", &self.0]);
    }
}
