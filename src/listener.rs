//! Listening sockets with a deep accept queue.

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may hold completed but not yet accepted (it caps this at
/// `net.core.somaxconn`). The standard library's 128 overflows under a burst of reconnects,
/// which costs each dropped client a one-second SYN retransmit.
const ACCEPT_QUEUE: u32 = 4096;

/// Binds `address` with a deep accept queue, saying what for when it fails.
pub(crate) async fn bind(address: &str, what: &str) -> anyhow::Result<TcpListener> {
    let resolved = tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("resolving {address} for {what}"))?
        .next()
        .with_context(|| format!("{address} (for {what}) resolves to no address"))?;
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if resolved.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(resolved)?;
        socket.listen(ACCEPT_QUEUE)
    };
    listen().with_context(|| format!("binding {what} to {address}"))
}
