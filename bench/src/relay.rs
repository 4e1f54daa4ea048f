//! A TCP relay on 127.0.0.1 in front of a stand-in: counts the connections the function opens to
//! that origin, and can delay each new connection to stand for the TCP and TLS handshakes to a
//! remote origin (which loopback plain HTTP does not have).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// A running relay; it lives until the process ends.
#[derive(Debug, Clone)]
pub struct Relay {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Relay {
    /// Relays every connection to `origin` (`http://127.0.0.1:port`), after `handshake`.
    pub async fn start(origin: &str, handshake: Duration) -> Result<Self, String> {
        let target: SocketAddr = origin
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("relay target {origin}: {e}"))?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("relay: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("relay: {e}"))?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(inbound, target, handshake));
            }
        });
        Ok(Self { addr, connections })
    }

    /// `http://127.0.0.1:port`: the origin to configure instead of the stand-in's.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections the relay accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn relay(mut inbound: TcpStream, target: SocketAddr, handshake: Duration) {
    tokio::time::sleep(handshake).await;
    if let Ok(mut outbound) = TcpStream::connect(target).await {
        // Either side closing ends the relay; the error says nothing the counts need.
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}
