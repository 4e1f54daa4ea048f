//! moto's server (Secrets Manager and DynamoDB, real protocol peers), started from Python on
//! 127.0.0.1; and [`MotoLink`], a switchable relay in front of it, to take the service down and
//! back, throttle it or make it hang.

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
        let (port, child) = start_python_peer("moto_server.py", "moto", "'moto[server]'")?;
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

/// Starts `script` (a file of this crate) with `$MOTO_PYTHON` (default `python3`), which must
/// have `package` (`what` names the peer in errors), and reads the port it prints on its first
/// line. The peer serves until this process exits and its stdin pipe closes.
pub(crate) fn start_python_peer(
    script: &str,
    what: &str,
    package: &str,
) -> Result<(u16, Child), String> {
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = format!("{}/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {python} {script}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("{what}: {e}"))?;
    let port: u16 = line.trim().parse().map_err(|_| {
        format!("{what} did not start with {python} (pip install {package}); it printed {line:?}")
    })?;
    Ok((port, child))
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

/// How a [`MotoLink`] treats the requests it accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkMode {
    /// Relayed to moto.
    #[default]
    Up,
    /// Answered by the link itself with DynamoDB's throttling error
    /// (`ProvisionedThroughputExceededException`, HTTP 400), as a table over its capacity does.
    Throttled,
    /// Accepted and read, never answered: a black hole.
    Hanging,
}

#[derive(Default)]
struct LinkState {
    /// The accept loop; `None` while cut.
    acceptor: Option<JoinHandle<()>>,
    /// The relayed connections, to break them when the link is cut.
    connections: Vec<AbortHandle>,
    mode: LinkMode,
}

/// DynamoDB's answer to a request over the table's capacity.
fn throttled_answer() -> String {
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"throttled by the stand-in"}"#;
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amzn-requestid: standin-throttled\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Answers every request on `inbound` with [`throttled_answer`] until the peer closes.
async fn throttle(mut inbound: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request: headers, then as many body bytes as Content-Length says.
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            match inbound.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            match inbound.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end + 4 + length);
        if inbound
            .write_all(throttled_answer().as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
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

    /// From now on, treats requests as `mode` says; connections already open are broken, so
    /// that none keeps the old treatment.
    pub fn set_mode(&self, mode: LinkMode) {
        let mut state = lock(&self.state);
        state.mode = mode;
        for connection in std::mem::take(&mut state.connections) {
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
                let mode = lock(&state).mode;
                let relay = tokio::spawn(async move {
                    match mode {
                        LinkMode::Up => {
                            if let Ok(mut outbound) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                        LinkMode::Throttled => throttle(inbound).await,
                        LinkMode::Hanging => {
                            // Hold the connection, read nothing back, until the test ends.
                            std::future::pending::<()>().await;
                            drop(inbound);
                        }
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
