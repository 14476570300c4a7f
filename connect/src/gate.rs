//! The limits on sockets that have not finished their handshake: a deadline to finish it, and
//! a cap on how many one source address may hold at once. A socket that never sends an
//! upgrade (or trickles one) costs a file descriptor until it is closed; without these, a few
//! processes opening sockets and sending nothing take every descriptor and lock real clients
//! out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

/// How long a socket may take to finish its handshake, and how many one address may have
/// in it at once.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandshakeLimits {
    /// From accepting a socket to its completed upgrade (WebSocket) or its first request's
    /// headers (HTTP), in milliseconds; a socket still short of it then is closed.
    pub timeout_ms: u64,
    /// Sockets one source address may have in the handshake at once; more are closed as
    /// soon as they are accepted.
    pub per_address: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            timeout_ms: 10_000,
            per_address: 64,
        }
    }
}

impl HandshakeLimits {
    /// The deadline to finish a handshake.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// Counts the sockets in the handshake per source address.
#[derive(Debug)]
pub struct HandshakeGate {
    per_address: usize,
    in_handshake: Mutex<HashMap<IpAddr, usize>>,
}

/// One socket's place in the handshake; dropping it gives the place back.
#[derive(Debug)]
pub struct HandshakeTicket {
    gate: Arc<HandshakeGate>,
    address: IpAddr,
}

impl HandshakeGate {
    /// A gate that lets `per_address` sockets of one address into the handshake at once.
    pub fn new(per_address: usize) -> Arc<Self> {
        Arc::new(HandshakeGate {
            per_address: per_address.max(1),
            in_handshake: Mutex::new(HashMap::new()),
        })
    }

    /// A place in the handshake for a socket from `address`, or `None` if that address
    /// already holds all of its places (the socket should be closed at once).
    pub fn enter(self: &Arc<Self>, address: IpAddr) -> Option<HandshakeTicket> {
        let mut counts = self.counts();
        let count = counts.entry(address).or_insert(0);
        if *count >= self.per_address {
            metrics::counter!("natter_handshakes_refused_total", "reason" => "per_address")
                .increment(1);
            return None;
        }
        *count += 1;
        Some(HandshakeTicket {
            gate: Arc::clone(self),
            address,
        })
    }

    /// The next socket `listener` accepts whose address has a place in the handshake; a
    /// socket over its address's cap is closed unread. A failed accept (out of file
    /// descriptors, say) pauses briefly rather than spinning, and the loop goes on: the
    /// connections already open are served meanwhile.
    pub async fn accept(self: &Arc<Self>, listener: &TcpListener) -> (TcpStream, HandshakeTicket) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if let Some(ticket) = self.enter(peer.ip()) {
                        return (stream, ticket);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Sockets from `address` in the handshake now.
    pub fn in_handshake(&self, address: IpAddr) -> usize {
        self.counts().get(&address).copied().unwrap_or(0)
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A count is a plain number: a panic elsewhere cannot leave it half-written.
        self.in_handshake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                // Addresses come and go; an idle one keeps no entry.
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_places_and_no_more_and_each_ticket_gives_its_place_back() {
        let gate = HandshakeGate::new(2);
        let noisy: IpAddr = "127.0.0.2".parse().expect("address");
        let quiet: IpAddr = "127.0.0.1".parse().expect("address");
        let first = gate.enter(noisy).expect("first place");
        let _second = gate.enter(noisy).expect("second place");
        assert!(gate.enter(noisy).is_none(), "a third socket is refused");
        assert!(
            gate.enter(quiet).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert_eq!(gate.in_handshake(noisy), 1);
        assert!(
            gate.enter(noisy).is_some(),
            "a place given back is taken again"
        );
    }

    #[test]
    fn an_address_with_nobody_in_the_handshake_keeps_no_entry() {
        let gate = HandshakeGate::new(4);
        let address: IpAddr = "::1".parse().expect("address");
        drop(gate.enter(address));
        assert!(gate.counts().is_empty());
    }
}
