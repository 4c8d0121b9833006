//! TCP connections (RFC 3261 §18): accepted and outgoing, framed with
//! [`StreamFramer`], one writer task each; reused by remote address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::sip::message::Limits;
use crate::sip::transport::{Flow, ListenerId, StreamFramer, Transmit, Transport};

use super::shard::{ShardInput, Shards, call_id_of};

#[derive(Default)]
struct Registry {
    by_id: HashMap<u64, mpsc::UnboundedSender<Bytes>>,
    by_remote: HashMap<SocketAddr, u64>,
}

/// All live TCP connections, shared by the readers and every shard.
#[derive(Clone)]
pub(super) struct TcpHub {
    reg: Arc<Mutex<Registry>>,
    next_id: Arc<AtomicU64>,
}

impl TcpHub {
    /// An empty hub.
    pub fn new() -> TcpHub {
        TcpHub {
            reg: Arc::new(Mutex::new(Registry::default())),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Accept connections on a TCP listener.
    pub fn spawn_acceptor(
        &self,
        listener: ListenerId,
        lis: tokio::net::TcpListener,
        shards: Shards,
    ) {
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                match lis.accept().await {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        hub.adopt(stream, remote, listener, shards.clone());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tcp accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    /// Register a connection id with its writer channel before the stream
    /// exists, so sends queue while an outgoing connect is in progress.
    fn register(
        &self,
        remote: SocketAddr,
    ) -> (
        u64,
        mpsc::UnboundedSender<Bytes>,
        mpsc::UnboundedReceiver<Bytes>,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        let mut reg = self.reg.lock().unwrap_or_else(|p| p.into_inner());
        reg.by_id.insert(id, tx.clone());
        reg.by_remote.insert(remote, id);
        (id, tx, rx)
    }

    /// Register an accepted stream and start its reader and writer.
    fn adopt(&self, stream: TcpStream, remote: SocketAddr, listener: ListenerId, shards: Shards) {
        let (id, _tx, rx) = self.register(remote);
        self.run_conn(stream, id, rx, remote, listener, shards);
    }

    fn run_conn(
        &self,
        stream: TcpStream,
        id: u64,
        mut rx: mpsc::UnboundedReceiver<Bytes>,
        remote: SocketAddr,
        listener: ListenerId,
        shards: Shards,
    ) {
        let (mut rd, mut wr) = stream.into_split();
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let hub = self.clone();
        tokio::spawn(async move {
            let mut framer = StreamFramer::new(Limits::default());
            let mut buf = vec![0u8; 64 * 1024];
            let flow = Flow {
                listener,
                transport: Transport::Tcp,
                remote,
                conn: Some(id),
            };
            'conn: loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_message() {
                        Ok(Some(data)) => {
                            let shard = shards.pick(call_id_of(&data));
                            shards.send(shard, ShardInput::Stream { flow, data });
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(%remote, error = ?e, "tcp framing error; closing");
                            break 'conn;
                        }
                    }
                }
            }
            hub.forget(id, remote);
        });
    }

    fn forget(&self, id: u64, remote: SocketAddr) {
        let mut reg = self.reg.lock().unwrap_or_else(|p| p.into_inner());
        reg.by_id.remove(&id);
        if reg.by_remote.get(&remote) == Some(&id) {
            reg.by_remote.remove(&remote);
        }
    }

    /// Send on the flow's connection, else any connection to the remote,
    /// else open one; report a transport error to `shard` on failure.
    pub fn send(&self, t: Transmit, shard: usize, shards: Shards) {
        let shards_for_error = shards.clone();
        let existing = {
            let reg = self.reg.lock().unwrap_or_else(|p| p.into_inner());
            t.flow
                .conn
                .and_then(|id| reg.by_id.get(&id).cloned())
                .or_else(|| {
                    reg.by_remote
                        .get(&t.flow.remote)
                        .and_then(|id| reg.by_id.get(id).cloned())
                })
        };
        if let Some(w) = existing
            && w.send(t.bytes.clone()).is_ok()
        {
            return;
        }
        // No connection: register one now (later sends queue on it) and connect.
        let (id, w, rx) = self.register(t.flow.remote);
        let _ = w.send(t.bytes.clone());
        let hub = self.clone();
        tokio::spawn(async move {
            let connect = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                TcpStream::connect(t.flow.remote),
            )
            .await;
            match connect {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    hub.run_conn(stream, id, rx, t.flow.remote, t.flow.listener, shards);
                }
                _ => {
                    tracing::debug!(remote = %t.flow.remote, "tcp connect failed");
                    hub.forget(id, t.flow.remote);
                    if let Some(tx) = t.tx {
                        shards_for_error.send(shard, ShardInput::TransportError { tx });
                    }
                }
            }
        });
    }
}
