//! Binding the dial plan's listeners and the UDP receive loops.

use std::net::SocketAddr;
use std::sync::Arc;

use std::net::UdpSocket;
use tokio::runtime::Handle;

use crate::dialplan::DialPlan;
use crate::proxy::LocalSocket;
use crate::sip::transport::Transport;

use super::shard::Shards;
use super::tcp::TcpHub;

/// Every bound socket, indexed like [`LocalSocket`]s (the listener id).
pub(super) struct Bound {
    /// What the proxy needs to know of each socket.
    pub sockets: Vec<LocalSocket>,
    /// The UDP socket of each listener id (None for TCP ones); blocking
    /// std sockets, read by an event loop thread ([`super::event_loop`])
    /// without blocking; sends go straight out from the shard.
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
/// TCP listener is registered with one core's runtime, round-robin, so its
/// reads never wake another thread.
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

/// Start the signaling event loops (UDP reads and timers, see
/// [`super::event_loop`]) and one accept loop per TCP listener.
pub(super) fn start_readers(bound: &mut Bound, shards: &Shards, hub: &TcpHub, cores: &[Handle]) {
    super::event_loop::start(&bound.udp, shards, &cores[0]);
    for (id, lis) in bound.tcp.iter_mut().enumerate() {
        if let Some(lis) = lis.take() {
            let _in_core = cores[bound.core_of[id]].enter();
            hub.spawn_acceptor(id, lis, shards.clone());
        }
    }
}
