//! Binding the dial plan's listeners and the UDP receive loops.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use std::net::UdpSocket;
use tokio::runtime::Handle;

use crate::dialplan::DialPlan;
use crate::proxy::LocalSocket;
use crate::sip::transport::{Flow, Transport};

use super::shard::{ShardInput, Shards, call_id_of};
use super::tcp::TcpHub;

/// Every bound socket, indexed like [`LocalSocket`]s (the listener id).
pub(super) struct Bound {
    /// What the proxy needs to know of each socket.
    pub sockets: Vec<LocalSocket>,
    /// The UDP socket of each listener id (None for TCP ones); blocking
    /// std sockets: one reader thread each, sends straight from the shard.
    pub udp: Vec<Option<Arc<UdpSocket>>>,
    /// The TCP listener of each listener id (None for UDP ones).
    pub tcp: Vec<Option<tokio::net::TcpListener>>,
    /// The core (runtime) each socket is registered with and read on.
    pub core_of: Vec<usize>,
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    s.set_reuse_address(true)?;
    // Bursts of 500+ calls/s: keep the kernel from dropping datagrams.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let lis = std::net::TcpListener::bind(addr)?;
    lis.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(lis)
}

/// Bind every listener of the plan (UDP then TCP, in listener order). Each
/// socket is registered with one core's runtime, round-robin, so its reads
/// never wake another thread.
pub(super) fn bind_all(plan: &DialPlan, cores: &[Handle]) -> std::io::Result<Bound> {
    let mut b = Bound {
        sockets: Vec::new(),
        udp: Vec::new(),
        tcp: Vec::new(),
        core_of: Vec::new(),
    };
    for l in &plan.listeners {
        if let Some(addr) = l.udp {
            let core = b.sockets.len() % cores.len();
            b.core_of.push(core);
            let _in_core = cores[core].enter();
            let sock = udp_socket(addr)
                .map_err(|e| std::io::Error::new(e.kind(), format!("bind udp {addr}: {e}")))?;
            b.sockets.push(LocalSocket {
                listener: l.name.clone(),
                side: l.side,
                transport: Transport::Udp,
                addr,
            });
            b.udp.push(Some(Arc::new(sock)));
            b.tcp.push(None);
        }
        if let Some(addr) = l.tcp {
            let core = b.sockets.len() % cores.len();
            b.core_of.push(core);
            let _in_core = cores[core].enter();
            let lis = tcp_listener(addr)
                .map_err(|e| std::io::Error::new(e.kind(), format!("bind tcp {addr}: {e}")))?;
            b.sockets.push(LocalSocket {
                listener: l.name.clone(),
                side: l.side,
                transport: Transport::Tcp,
                addr,
            });
            b.udp.push(None);
            b.tcp.push(Some(lis));
        }
    }
    Ok(b)
}

/// Spawn one receive loop per UDP socket and one accept loop per TCP listener.
pub(super) fn start_readers(bound: &mut Bound, shards: &Shards, hub: &TcpHub, cores: &[Handle]) {
    for (id, sock) in bound.udp.iter().enumerate() {
        let Some(sock) = sock.clone() else { continue };
        // One blocking reader thread per socket, like Kamailio's UDP
        // workers: one recvfrom per packet, no epoll round trip, and
        // per-socket order kept (a 180 never overtakes the 200 behind it).
        let (shards, core) = (shards.clone(), cores[bound.core_of[id]].clone());
        let spawned = std::thread::Builder::new()
            .name(format!("callgate-udp{id}"))
            .spawn(move || {
                // TCP transmits and error reports spawn tokio tasks from here.
                let _in_core = core.enter();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match sock.recv_from(&mut buf) {
                        Ok((n, remote)) => {
                            let data = Bytes::copy_from_slice(&buf[..n]);
                            let flow = Flow {
                                listener: id,
                                transport: Transport::Udp,
                                remote,
                                conn: None,
                            };
                            let shard = shards.pick(call_id_of(&data));
                            shards.send(shard, ShardInput::Datagram { flow, data });
                        }
                        // ICMP errors surface here on Linux; the socket stays usable.
                        Err(e) => tracing::trace!(error = %e, "udp recv error"),
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, listener = id, "cannot start a UDP reader thread");
        }
    }
    for (id, lis) in bound.tcp.iter_mut().enumerate() {
        if let Some(lis) = lis.take() {
            let _in_core = cores[bound.core_of[id]].enter();
            hub.spawn_acceptor(id, lis, shards.clone());
        }
    }
}
