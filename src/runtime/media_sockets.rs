//! The UDP sockets of one shard's media plane, by local port.
//!
//! Sockets are bound **synchronously**, on the thread that applies the B2BUA's
//! commands ([`super::media::MediaPlane::apply_pending`], called by the shard
//! before it transmits the SIP message whose SDP advertises the ports): a
//! plain `bind` syscall, so the port is open when the offer or answer leaves
//! and the peer's first RTP packet waits in the socket's receive buffer
//! instead of meeting an ICMP port unreachable. Formerly the plane's control
//! task bound them some time after the SIP message had gone.
//!
//! Closing is synchronous for the table (the port is no longer listed and
//! nothing is sent from it), but the file descriptor is released by its
//! reader (a tokio task or the io_uring driver) a moment later. A port
//! reopened in that moment takes the closing socket back instead of failing
//! to bind ([`Sockets::bind`]).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};

/// One bound media socket: a plain non-blocking socket (read by the
/// io_uring driver) or one registered with the shard's tokio runtime.
#[derive(Debug)]
pub(super) enum Sock {
    /// Read by the shard's io_uring driver.
    Raw(UdpSocket),
    /// Read by a tokio task.
    Tokio(tokio::net::UdpSocket),
}

impl Sock {
    /// Its descriptor number (for io_uring, which holds its own reference
    /// to the file while an operation on it runs).
    pub fn as_raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Sock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Raw(s) => s.as_fd(),
            Sock::Tokio(s) => s.as_fd(),
        }
    }
}

/// Receive buffer per media socket: a burst of a few hundred packets while
/// the reader is busy elsewhere is queued, not dropped.
const SOCKET_RCVBUF: usize = 256 << 10;

/// A non-blocking UDP socket bound to `addr`, not yet registered anywhere.
pub(super) fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    s.set_nonblocking(true)?;
    let _ = s.set_recv_buffer_size(SOCKET_RCVBUF);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// [`bind_udp`]; when our own socket on that port was just released, its
/// last owner may be closing it on another thread right now: a few more
/// tries (bounded) until the kernel has let go of the port.
fn bind_retrying(addr: SocketAddr, was_ours: bool) -> std::io::Result<UdpSocket> {
    let tries = if was_ours { 1000 } else { 1 };
    let mut result = bind_udp(addr);
    for _ in 1..tries {
        match &result {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                std::thread::yield_now();
                result = bind_udp(addr);
            }
            _ => break,
        }
    }
    result
}

/// The media sockets of one plane.
#[derive(Debug, Default)]
pub(super) struct Sockets {
    /// Bound sockets by local port: transmits look up `from_port` here.
    open: RwLock<HashMap<u16, Arc<Sock>>>,
    /// Sockets closed but maybe still held by their reader for a moment.
    closing: Mutex<HashMap<u16, Weak<Sock>>>,
}

impl Sockets {
    /// The open sockets, to send from.
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<u16, Arc<Sock>>> {
        self.open.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `port` has an open socket.
    pub fn is_open(&self, port: u16) -> bool {
        self.read().contains_key(&port)
    }

    /// Open `port` on `addr`: a socket still closing on that address is taken
    /// back, else a new one is bound with `register` (which makes it a
    /// [`Sock`] its reader can use). The socket is listed before returning.
    pub fn bind(
        &self,
        addr: SocketAddr,
        register: impl FnOnce(UdpSocket) -> std::io::Result<Sock>,
    ) -> std::io::Result<Arc<Sock>> {
        let closing = self.closing().remove(&addr.port());
        let revived = closing
            .as_ref()
            .and_then(Weak::upgrade)
            .filter(|s| socket2::SockRef::from(s.as_ref()).local_addr().ok() == Some(addr.into()));
        let sock = match revived {
            Some(s) => s,
            None => Arc::new(register(bind_retrying(addr, closing.is_some())?)?),
        };
        self.write().insert(addr.port(), sock.clone());
        Ok(sock)
    }

    /// Forget `port`'s socket (nothing is sent from it any more); its reader
    /// releases the descriptor when it lets go of its own reference.
    pub fn unbind(&self, port: u16) -> Option<Arc<Sock>> {
        let sock = self.write().remove(&port)?;
        let mut closing = self.closing();
        closing.retain(|_, w| w.strong_count() > 0);
        closing.insert(port, Arc::downgrade(&sock));
        Some(sock)
    }

    /// Forget every socket (process exit).
    pub fn clear(&self) -> Vec<Arc<Sock>> {
        self.write().drain().map(|(_, s)| s).collect()
    }

    /// Ports whose descriptor is still open: listed ones and closing ones
    /// whose reader has not let go yet.
    #[cfg(test)]
    pub fn ports_held(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.read().keys().copied().collect();
        v.extend(
            self.closing()
                .iter()
                .filter(|(_, w)| w.strong_count() > 0)
                .map(|(p, _)| *p),
        );
        v.sort_unstable();
        v.dedup();
        v
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u16, Arc<Sock>>> {
        self.open.write().unwrap_or_else(|p| p.into_inner())
    }

    fn closing(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Weak<Sock>>> {
        self.closing.lock().unwrap_or_else(|p| p.into_inner())
    }
}
