//! Shard tasks: each owns one sans-IO [`Proxy`], feeds it inputs with the
//! current time, sleeps until its `poll_timeout`, and performs its transmits.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::dialplan::DialPlan;
use crate::proxy::{Proxy, ProxyConfig, ProxyStats};
use crate::sip::message::Limits;
use crate::sip::transaction::TxId;
use crate::sip::transport::{Flow, Transmit, Transport};

use super::net::Bound;
use super::tcp::TcpHub;

/// What a shard task receives.
pub(super) enum ShardInput {
    /// A UDP datagram.
    Datagram { flow: Flow, data: Bytes },
    /// One message framed from a TCP stream.
    Stream { flow: Flow, data: Bytes },
    /// A transmit of client transaction `tx` could not be delivered.
    TransportError { tx: TxId },
    /// A reloaded dial plan.
    Reload(Arc<DialPlan>),
    /// Start draining.
    Drain,
}

/// Senders to every shard.
#[derive(Clone)]
pub(super) struct Shards {
    txs: Arc<Vec<mpsc::UnboundedSender<ShardInput>>>,
}

impl Shards {
    /// The shard owning a Call-ID.
    pub fn pick(&self, call_id: &[u8]) -> usize {
        let mut h = DefaultHasher::new();
        call_id.hash(&mut h);
        (h.finish() % self.txs.len() as u64) as usize
    }

    /// Send an input to a shard (dropped if the shard is gone: shutting down).
    pub fn send(&self, shard: usize, input: ShardInput) {
        if let Some(tx) = self.txs.get(shard) {
            let _ = tx.send(input);
        }
    }

    /// Send to every shard.
    pub fn broadcast(&self, mk: impl Fn() -> ShardInput) {
        for tx in self.txs.iter() {
            let _ = tx.send(mk());
        }
    }
}

/// Find the Call-ID value in raw message bytes without a full parse
/// (`Call-ID:` or compact `i:` at a line start, any case). Empty when absent,
/// which puts such messages on shard of the empty key (they fail parsing anyway).
pub fn call_id_of(data: &[u8]) -> &[u8] {
    let mut pos = 0;
    while let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') {
        let line_start = pos + nl + 1;
        let rest = &data[line_start..];
        let name_len = if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"call-id") {
            7
        } else if !rest.is_empty() && (rest[0] == b'i' || rest[0] == b'I') {
            1
        } else {
            pos = line_start;
            if rest.is_empty() || rest[0] == b'\r' || rest[0] == b'\n' {
                break;
            }
            continue;
        };
        let mut i = name_len;
        while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
            i += 1;
        }
        if rest.get(i) == Some(&b':') {
            i += 1;
            while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
                i += 1;
            }
            let end = rest[i..]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .map_or(rest.len(), |p| i + p);
            return &rest[i..end];
        }
        pos = line_start;
    }
    &[]
}

/// Create the shard tasks.
pub(super) fn start(
    plan: &Arc<DialPlan>,
    bound: &Bound,
    stats: &[Arc<ProxyStats>],
    hub: TcpHub,
) -> Shards {
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in stats {
        let (tx, rx) = mpsc::unbounded_channel();
        txs.push(tx);
        rxs.push(rx);
    }
    let shards = Shards { txs: Arc::new(txs) };
    for (i, rx) in rxs.into_iter().enumerate() {
        let cfg = ProxyConfig {
            sockets: bound.sockets.clone(),
            shard: i as u16,
            limits: Limits::default(),
            symmetric_responses: true,
            dialog_idle: Duration::from_secs(12 * 3600),
        };
        let proxy = Proxy::new(cfg, plan.clone(), stats[i].clone());
        let udp = bound.udp.clone();
        let ctx = ShardIo {
            index: i,
            udp,
            hub: hub.clone(),
            shards: shards.clone(),
        };
        tokio::spawn(run_shard(proxy, rx, ctx));
    }
    shards
}

struct ShardIo {
    index: usize,
    udp: Vec<Option<Arc<UdpSocket>>>,
    hub: TcpHub,
    shards: Shards,
}

async fn run_shard(mut proxy: Proxy, mut rx: mpsc::UnboundedReceiver<ShardInput>, io: ShardIo) {
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    let sleep = tokio::time::sleep_until(far());
    tokio::pin!(sleep);
    loop {
        let deadline = proxy
            .poll_timeout()
            .map_or_else(far, tokio::time::Instant::from_std);
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        tokio::select! {
            input = rx.recv() => {
                let Some(input) = input else { break };
                handle(&mut proxy, input);
                // Take what is already queued before flushing (batching).
                for _ in 0..64 {
                    match rx.try_recv() {
                        Ok(input) => handle(&mut proxy, input),
                        Err(_) => break,
                    }
                }
            }
            () = &mut sleep => {
                proxy.handle_timeout(Instant::now());
            }
        }
        if proxy.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            proxy.handle_timeout(Instant::now());
        }
        while let Some(t) = proxy.poll_transmit() {
            transmit(&io, t).await;
        }
    }
}

fn handle(proxy: &mut Proxy, input: ShardInput) {
    let now = Instant::now();
    match input {
        ShardInput::Datagram { flow, data } => proxy.handle_datagram(now, flow, data),
        ShardInput::Stream { flow, data } => proxy.handle_stream_message(now, flow, data),
        ShardInput::TransportError { tx } => proxy.handle_transport_error(now, tx),
        ShardInput::Reload(plan) => proxy.set_plan(plan),
        ShardInput::Drain => proxy.set_draining(true),
    }
}

async fn transmit(io: &ShardIo, t: Transmit) {
    match t.flow.transport {
        Transport::Udp => {
            let Some(Some(sock)) = io.udp.get(t.flow.listener) else {
                tracing::warn!(listener = t.flow.listener, "no UDP socket for transmit");
                return;
            };
            match sock.try_send_to(&t.bytes, t.flow.remote) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = sock.send_to(&t.bytes, t.flow.remote).await;
                }
                Err(e) => {
                    tracing::debug!(remote = %t.flow.remote, error = %e, "udp send failed");
                    if let Some(tx) = t.tx {
                        io.shards.send(io.index, ShardInput::TransportError { tx });
                    }
                }
            }
        }
        Transport::Tcp => io.hub.send(t, io.index, io.shards.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::call_id_of;

    #[test]
    fn finds_call_id_in_long_and_compact_forms() {
        assert_eq!(
            call_id_of(b"INVITE x SIP/2.0\r\nVia: a\r\nCall-ID: abc@h\r\n\r\n"),
            b"abc@h"
        );
        assert_eq!(call_id_of(b"INVITE x SIP/2.0\r\ni:  k1\r\n\r\n"), b"k1");
        assert_eq!(call_id_of(b"INVITE x SIP/2.0\r\nCALL-ID : z\r\n\r\n"), b"z");
        assert_eq!(
            call_id_of(b"INVITE x SIP/2.0\r\nIdentity: q\r\n\r\nbody\ni: no"),
            b""
        );
    }
}
