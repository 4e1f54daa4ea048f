//! moto's Secrets Manager server, a real protocol peer, started from Python on 127.0.0.1; and
//! [`MotoLink`], a switchable relay in front of it, to take Secrets Manager down and back.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use crate::lock;

/// A running moto server. It stops when this process exits (its stdin pipe closes).
pub struct Moto {
    endpoint: String,
    addr: SocketAddr,
    _child: Child,
}

impl Moto {
    /// Starts moto with `$MOTO_PYTHON` (default `python3`), which must have `moto[server]`.
    pub fn start() -> Result<Self, String> {
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_server.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {python} {script}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("moto: {e}"))?;
        let port: u16 = line.trim().parse().map_err(|_| {
            format!(
                "moto did not start with {python} (pip install 'moto[server]'); it printed {line:?}"
            )
        })?;
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _child: child,
        })
    }

    /// `http://127.0.0.1:port`: the value for `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A new relay to this server, up.
    pub async fn link(&self) -> std::io::Result<MotoLink> {
        MotoLink::start(self.addr).await
    }
}

/// A loopback TCP relay to moto that can be cut and restored: while cut, connections to it are
/// refused and those open are broken, as when Secrets Manager is unreachable; once restored, it
/// relays to the same moto again, whose secrets are all still there. One per test, so that an
/// outage in one test leaves the others' Secrets Manager up.
pub struct MotoLink {
    addr: SocketAddr,
    target: SocketAddr,
    // A std lock: held only to swap tasks in or out, never across an await.
    state: Arc<Mutex<LinkState>>,
}

#[derive(Default)]
struct LinkState {
    /// The accept loop; `None` while cut.
    acceptor: Option<JoinHandle<()>>,
    /// The relayed connections, to break them when the link is cut.
    connections: Vec<AbortHandle>,
}

impl MotoLink {
    async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let link = Self {
            addr: listener.local_addr()?,
            target,
            state: Arc::default(),
        };
        link.accept(listener);
        Ok(link)
    }

    /// `http://127.0.0.1:port`: the Secrets Manager endpoint behind this link.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes Secrets Manager down: new connections are refused, open ones broken.
    pub async fn cut(&self) {
        let acceptor = lock(&self.state).acceptor.take();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
            // Wait until the listener is dropped (the port is free for `restore`) and no
            // connection can be added behind our back.
            let _ = acceptor.await;
        }
        for connection in std::mem::take(&mut lock(&self.state).connections) {
            connection.abort();
        }
    }

    /// Brings Secrets Manager back on the same port.
    pub async fn restore(&self) -> std::io::Result<()> {
        if lock(&self.state).acceptor.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.accept(listener);
        Ok(())
    }

    fn accept(&self, listener: TcpListener) {
        let (target, state) = (self.target, Arc::clone(&self.state));
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut state = lock(&state);
                state.connections.retain(|c| !c.is_finished());
                state.connections.push(relay.abort_handle());
            }
        });
        lock(&self.state).acceptor = Some(acceptor);
    }
}
