//! [`Relay`]: a loopback TCP relay in front of a stand-in that can end the connections it holds
//! the way a server or a middlebox ends an idle keep-alive connection: with a FIN (an orderly
//! close) or a RST (a reset). Tests put it between the function and an upstream, end the pooled
//! connections while the function's process is stopped, and see what the function does next.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::lock;

/// How [`Relay::end_connections`] ends a connection, on the side of the relay's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// An orderly close: the client reads end-of-stream, and a request it writes afterwards is
    /// answered with a reset by the relay's kernel.
    Fin,
    /// An abortive close (`SO_LINGER` 0): the client's next read or write fails with
    /// "connection reset by peer".
    Rst,
    /// The connection forgotten on the way, as a NAT gateway or a load balancer forgets one
    /// past its idle timeout: nothing reaches the client until it sends, and what it sends is
    /// answered with a reset, never passed on.
    Forgotten,
}

/// How to end one relayed connection: the ending, and a signal to give once it is done.
type End = oneshot::Sender<(Ending, oneshot::Sender<()>)>;

/// A running relay to one stand-in; it lives until the process ends.
pub struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    // A std lock: held only to push or take the list, never across an await.
    open: Arc<Mutex<Vec<End>>>,
}

impl Relay {
    /// Relays every connection to `origin` (`http://127.0.0.1:port`).
    pub async fn start(origin: &str) -> std::io::Result<Self> {
        let target: SocketAddr = origin
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| std::io::Error::other(format!("relay target {origin}: {e}")))?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<End>>> = Arc::default();
        tokio::spawn({
            let accepted = Arc::clone(&accepted);
            let open = Arc::clone(&open);
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (end, ending) = oneshot::channel();
                    tokio::spawn(relay(inbound, target, ending));
                    lock(&open).push(end);
                }
            }
        });
        Ok(Self {
            addr,
            accepted,
            open,
        })
    }

    /// `http://127.0.0.1:port`: the origin to configure instead of the stand-in's.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections the relay accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Ends every connection open now, each `how`; returns how many were still open, once each
    /// of them is ended on the relay's side (a FIN or a RST is in the client's kernel by then:
    /// loopback delivers it within the close). Connections accepted later are relayed as usual.
    pub async fn end_connections(&self, how: Ending) -> usize {
        let open = std::mem::take(&mut *lock(&self.open));
        let mut ended = 0;
        for end in open {
            let (done, ended_one) = oneshot::channel();
            // A connection that already ended has dropped its receiver: nothing to end.
            if end.send((how, done)).is_ok()
                // Bounded: a relay task only ever waits on its two sockets and this signal.
                && tokio::time::timeout(Duration::from_secs(5), ended_one)
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                ended += 1;
            }
        }
        ended
    }
}

/// Pipes one connection both ways until either side closes it or the relay is told to end it.
async fn relay(
    mut inbound: TcpStream,
    target: SocketAddr,
    ending: oneshot::Receiver<(Ending, oneshot::Sender<()>)>,
) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (how, done) = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
        Ok(end) = ending => end,
    };
    drop(outbound);
    match how {
        // Nothing of the client's is left unread on an idle connection, so the close is a FIN
        // and not a reset.
        Ending::Fin => {
            let _ = inbound.shutdown().await;
        }
        Ending::Rst => {
            let _ = inbound.set_zero_linger();
        }
        Ending::Forgotten => {
            let _ = done.send(());
            // Whatever comes next (bytes, or the client's own close) is met with a reset.
            let _ = inbound.readable().await;
            let _ = inbound.set_zero_linger();
            return;
        }
    }
    drop(inbound);
    let _ = done.send(());
}
