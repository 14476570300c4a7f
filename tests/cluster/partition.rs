//! A network namespace for one cluster process, so the network between it and some servers
//! can be cut for real and healed.
//!
//! The process runs in the namespace `natter-part` (`ip netns exec`), joined to the root
//! namespace by two veth pairs: the service link carries its traffic to Redis and etcd, the
//! peer link everything else (to logic, and from clients, task and the test to it). Every
//! server of the suite listens on the root namespace's loopback only, so socat relays at both
//! ends of each link keep the addresses the process and its peers already use: inside the
//! namespace `127.0.0.1:PORT` still reaches Redis, and outside it `127.0.0.1:PORT` still
//! reaches the process. Cutting takes the root end of the service link down: packets the
//! process sends to Redis and etcd are dropped, with no reset, as in a real partition.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The namespace; a fixed name, so a run that crashed leaves nothing the next one keeps.
const NAMESPACE: &str = "natter-part";
/// The service link (Redis, etcd): root end, namespace end, and their addresses.
const SERVICE: (&str, &str, &str, &str) = ("natsvc0", "natsvc1", "10.213.1.1", "10.213.1.2");
/// The peer link (everything else).
const PEER: (&str, &str, &str, &str) = ("natpeer0", "natpeer1", "10.213.0.1", "10.213.0.2");

/// Runs `ip` with `arguments` (in the namespace when `inside`); panics with its error.
fn ip(inside: bool, arguments: &[&str]) {
    let mut command = Command::new("ip");
    if inside {
        command.args(["netns", "exec", NAMESPACE, "ip"]);
    }
    let output = command
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("cannot run ip (iproute2): {error}"));
    assert!(
        output.status.success(),
        "ip {arguments:?} failed: {}. The partition test needs root (CAP_NET_ADMIN) to make \
         network namespaces and veth pairs",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Removes what an earlier run may have left; errors mean there was nothing.
fn remove_leftovers() {
    let _ = Command::new("ip")
        .args(["netns", "delete", NAMESPACE])
        .stderr(Stdio::null())
        .status();
    for (root_end, ..) in [SERVICE, PEER] {
        let _ = Command::new("ip")
            .args(["link", "delete", root_end])
            .stderr(Stdio::null())
            .status();
    }
}

/// One process's namespace, its two links and the relays across them.
pub struct Isolation {
    relays: Vec<Child>,
}

impl Isolation {
    /// Makes the namespace and links, and relays: `cut_ports` (Redis, etcd) and `kept_ports`
    /// (logic) from inside to the root loopback over the service and peer link, and
    /// `own_ports` (what the process listens on) from the root loopback to it.
    pub fn new(cut_ports: &[u16], kept_ports: &[u16], own_ports: &[u16]) -> Isolation {
        remove_leftovers();
        ip(false, &["netns", "add", NAMESPACE]);
        ip(true, &["link", "set", "lo", "up"]);
        for (root_end, inner_end, root_address, inner_address) in [SERVICE, PEER] {
            ip(
                false,
                &[
                    "link", "add", root_end, "type", "veth", "peer", "name", inner_end,
                ],
            );
            ip(false, &["link", "set", inner_end, "netns", NAMESPACE]);
            ip(
                false,
                &[
                    "addr",
                    "add",
                    &format!("{root_address}/30"),
                    "dev",
                    root_end,
                ],
            );
            ip(
                true,
                &[
                    "addr",
                    "add",
                    &format!("{inner_address}/30"),
                    "dev",
                    inner_end,
                ],
            );
            ip(false, &["link", "set", root_end, "up"]);
            ip(true, &["link", "set", inner_end, "up"]);
        }
        let mut isolation = Isolation { relays: Vec::new() };
        for (ports, (_, _, root_address, _)) in [(cut_ports, SERVICE), (kept_ports, PEER)] {
            for port in ports {
                isolation.relay(true, "127.0.0.1", root_address, *port);
                isolation.relay(false, root_address, "127.0.0.1", *port);
            }
        }
        let (_, _, _, inner_address) = PEER;
        for port in own_ports {
            isolation.relay(false, "127.0.0.1", inner_address, *port);
            isolation.relay(true, inner_address, "127.0.0.1", *port);
        }
        isolation.wait_for_relays(own_ports);
        isolation
    }

    /// A socat relay listening on `listen:port` and connecting to `target:port`, inside the
    /// namespace or not.
    fn relay(&mut self, inside: bool, listen: &str, target: &str, port: u16) {
        let mut command = if inside {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", NAMESPACE, "socat"]);
            command
        } else {
            Command::new("socat")
        };
        // A group of its own, so the copies it forks per connection go with it.
        let child = command
            .process_group(0)
            .arg(format!("TCP-LISTEN:{port},bind={listen},fork,reuseaddr"))
            .arg(format!("TCP:{target}:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start socat (the package socat): {error}"));
        self.relays.push(child);
    }

    /// Waits until the root-side relays to the process listen (the process itself may not
    /// run yet: a connection is accepted by the relay all the same).
    fn wait_for_relays(&self, own_ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in own_ports {
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the relay on {port} never listened"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The relays inside are started the same way; give them the same moment.
        std::thread::sleep(Duration::from_millis(200));
    }

    /// The command that runs `program` inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", NAMESPACE]).arg(program);
        command
    }

    /// Cuts the process off from Redis and etcd.
    pub fn cut(&self) {
        ip(false, &["link", "set", SERVICE.0, "down"]);
    }

    /// Joins it to them again.
    pub fn heal(&self) {
        ip(false, &["link", "set", SERVICE.0, "up"]);
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        for relay in &mut self.relays {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", relay.id())])
                .stderr(Stdio::null())
                .status();
            let _ = relay.kill();
            let _ = relay.wait();
        }
        remove_leftovers();
    }
}
