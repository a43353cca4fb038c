//! A TCP proxy that can cut a backend off: put it between the server under test and its
//! database or its S3 service, then [`Proxy::cut`] the line and [`Proxy::restore`] it.
//!
//! While cut, every live connection is closed and every new one is accepted and closed at
//! once, as a crashed database host or a failed load balancer in front of S3 does: the
//! client sees its connection end, not a hang. While stalled ([`Proxy::stall`]), nothing
//! passes either way but every connection stays open, as across a network partition: the
//! client sees a hang.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A proxy listening on `127.0.0.1:<port>`, forwarding to one target. Stops on drop.
pub struct Proxy {
    /// The address clients connect to.
    pub address: SocketAddr,
    target: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    cut: AtomicBool,
    stalled: AtomicBool,
    next_id: AtomicU64,
    /// The forwarding task of every live connection, to abort on [`Proxy::cut`].
    live: Mutex<HashMap<u64, AbortHandle>>,
    /// Connections accepted (forwarded or refused), for tests that want to see traffic.
    accepted: AtomicU64,
}

impl Proxy {
    /// Starts forwarding `127.0.0.1:<random port>` to `target` (`host:port`).
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(State::default());
        let task = tokio::spawn(accept_loop(listener, target.to_owned(), Arc::clone(&state)));
        Proxy {
            address,
            target: target.to_owned(),
            state,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Where connections are forwarded to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes every live connection and refuses new ones (accepted, then closed at once)
    /// until [`Proxy::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        let live: Vec<AbortHandle> = self
            .state
            .live
            .lock()
            .expect("the proxy's connection list")
            .drain()
            .map(|(_, handle)| handle)
            .collect();
        // Aborting a forwarding task drops both of its sockets: the connection closes.
        for handle in live {
            handle.abort();
        }
    }

    /// Stops every byte, both ways, on live and new connections, keeping them all open
    /// (new ones are accepted and held), until [`Proxy::restore`] or [`Proxy::cut`].
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again: new connections after a cut, held bytes after a stall.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
        self.state.stalled.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Connections forwarded right now.
    pub fn live_connections(&self) -> usize {
        self.state
            .live
            .lock()
            .expect("the proxy's connection list")
            .len()
    }

    /// Connections accepted since start (forwarded or refused).
    pub fn accepted_connections(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, target: String, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        state.accepted.fetch_add(1, Ordering::SeqCst);
        if state.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let id = state.next_id.fetch_add(1, Ordering::SeqCst);
        let task_state = Arc::clone(&state);
        let target = target.clone();
        // Registered before it can finish (it waits for the lock), so its own removal
        // below never runs before the insertion.
        let mut live = state.live.lock().expect("the proxy's connection list");
        let task = tokio::spawn(async move {
            forward(client, &target, &task_state).await;
            task_state
                .live
                .lock()
                .expect("the proxy's connection list")
                .remove(&id);
        });
        live.insert(id, task.abort_handle());
    }
}

/// How often a stalled connection looks whether it may go on.
const STALL_POLL: Duration = Duration::from_millis(20);

async fn wait_while_stalled(state: &State) {
    while state.stalled.load(Ordering::SeqCst) {
        tokio::time::sleep(STALL_POLL).await;
    }
}

async fn forward(client: TcpStream, target: &str, state: &State) {
    wait_while_stalled(state).await;
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::join!(
        pump(client_read, upstream_write, state),
        pump(upstream_read, client_write, state)
    );
}

/// Copies one direction until EOF or an error, holding each chunk while stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, state: &State) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        wait_while_stalled(state).await;
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server; returns its address.
    async fn echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    loop {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if socket.write_all(&buffer[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping").await?;
        let mut buffer = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer or a close within 5 s")?;
        Ok(buffer[..read].to_vec())
    }

    #[tokio::test]
    async fn forwards_cuts_and_restores() {
        let proxy = Proxy::start(&echo().await).await;
        let mut first = TcpStream::connect(proxy.address).await.unwrap();
        assert_eq!(round_trip(&mut first).await.unwrap(), b"ping");
        assert_eq!(proxy.live_connections(), 1);

        proxy.cut();
        // The live connection is closed: EOF or a reset, never an answer.
        let after_cut = round_trip(&mut first).await;
        assert!(
            after_cut.as_ref().map(Vec::is_empty).unwrap_or(true),
            "a cut connection still answered: {after_cut:?}"
        );
        // A new one is accepted and closed at once.
        let mut refused = TcpStream::connect(proxy.address).await.unwrap();
        let refused_answer = round_trip(&mut refused).await;
        assert!(
            refused_answer.as_ref().map(Vec::is_empty).unwrap_or(true),
            "a connection made while cut was forwarded: {refused_answer:?}"
        );

        proxy.restore();
        let mut again = TcpStream::connect(proxy.address).await.unwrap();
        assert_eq!(round_trip(&mut again).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn stalls_and_resumes() {
        let proxy = Proxy::start(&echo().await).await;
        let mut live = TcpStream::connect(proxy.address).await.unwrap();
        assert_eq!(round_trip(&mut live).await.unwrap(), b"ping");

        proxy.stall();
        let mut new = TcpStream::connect(proxy.address).await.unwrap();
        for stream in [&mut live, &mut new] {
            stream.write_all(b"ping").await.unwrap();
            let mut buffer = [0u8; 4];
            let read =
                tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await;
            assert!(read.is_err(), "a stalled connection answered: {read:?}");
        }

        proxy.restore();
        for stream in [&mut live, &mut new] {
            let mut buffer = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buffer))
                .await
                .expect("the held bytes pass once restored")
                .unwrap();
            assert_eq!(&buffer, b"ping");
        }
    }
}
