//! A TCP relay on 127.0.0.1 in front of a stand-in: counts the connections the function opens to
//! that origin, and can add what a remote origin costs that loopback does not: a delay on each
//! new connection (the TCP and TLS handshakes) and on each request (the network and the
//! service's own time).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the relay adds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delay {
    /// Before each new connection is relayed.
    pub handshake: Duration,
    /// Before each chunk the client sends (one per small request) is passed on.
    pub request: Duration,
}

/// What a relay is shown of each chunk a client sends, before it is passed on (to count the
/// requests in it).
pub type Watch = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// A running relay; it lives until the process ends.
#[derive(Debug, Clone)]
pub struct Relay {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Relay {
    /// Relays every connection to `origin` (`http://127.0.0.1:port`), adding `delay`.
    pub async fn start(origin: &str, delay: Delay) -> Result<Self, String> {
        Self::watched(origin, delay, None).await
    }

    /// As [`Relay::start`], showing each chunk a client sends to `watch` first.
    pub async fn watched(origin: &str, delay: Delay, watch: Option<Watch>) -> Result<Self, String> {
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
                tokio::spawn(relay(inbound, target, delay, watch.clone()));
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

/// Pipes one connection both ways until either side closes; errors only end the connection.
async fn relay(inbound: TcpStream, target: SocketAddr, delay: Delay, watch: Option<Watch>) {
    tokio::time::sleep(delay.handshake).await;
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_server, mut to_server) = outbound.into_split();
    let requests = async {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buffer).await {
            if let Some(watch) = &watch {
                watch(&buffer[..n]);
            }
            if !delay.request.is_zero() {
                tokio::time::sleep(delay.request).await;
            }
            if to_server.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    };
    let responses = async {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(requests, responses);
}
