//! The io_uring media driver: one thread (per `--media-threads`; one by
//! default, for every shard) moves every media socket's datagrams through
//! one ring, in batches.
//!
//! ```text
//!  apply_pending ─ bind (std socket) ─ Ctl::Arm/Disarm ─▶ queue + eventfd ─┐
//!  driver thread: io_uring_enter(submit sends, wait for completions) ◀──────┘
//!    multishot recvmsg per socket into one provided-buffer ring
//!    batch of completions ─▶ per plane (shard) in it: lock its host once
//!    ─ handle_packet × n ─ one Send SQE per Transmit, submitted ─ unlock
//! ```
//!
//! One `io_uring_enter` per batch replaces, per packet, an epoll wake-up, a
//! `recvfrom` (plus the one that finds the socket empty) and a `sendto`
//! syscall; the host lock is taken once per batch. Ports are armed and
//! disarmed by messages from the threads that apply media commands (the
//! ring is single-issuer: only this thread submits). Each armed socket is
//! also in the ring's fixed-file table (no file lookup per operation; a
//! transmit finds its socket by port in a flat table instead of the
//! plane's map), removed only after its cancelled receive's last
//! completion: the kernel keeps a file referenced while an operation uses
//! it, so no socket is closed under a send or receive.
//!
//! Measured with `make bench-relay` (bench/relay.sh, 100 and 300 calls of
//! 20 ms RTP both ways, CPU time of the whole process per relayed packet,
//! two rounds each, shared 2-core VM at load 4.5-7.7): io_uring 8.05 and
//! 8.23 µs, the tokio readers 10.65 and 10.82 µs, rtpengine in userspace
//! 12.75 and 12.04 µs. Per packet the tokio path makes a `sendto`, ~1.04
//! `recvfrom` and part of an `epoll_wait`; this driver one Send SQE and a
//! quarter of an `io_uring_enter` (strace). What is left is ~85% kernel:
//! the UDP send (~50% of the CPU, half of it the loopback delivery to the
//! receiver), the receive copy (~19%), the host (~10%).
//!
//! Used when the kernel has io_uring with the features below (5.19+:
//! provided buffer rings, multishot recvmsg; 6.1+: deferred task work);
//! otherwise the plane falls back to the tokio readers.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::media::{MediaPlane, lock};
use super::media_sockets::Sock;
use super::media_uring_driver::Driver;

/// What other threads ask of the driver.
pub(super) enum Ctl {
    /// Start receiving on `port`'s (newly bound or revived) socket, which
    /// belongs to plane `plane` (its index among the driver's planes).
    Arm {
        plane: u8,
        port: u16,
        sock: Arc<Sock>,
    },
    /// Stop receiving on `port`; the socket is released once the kernel is done.
    Disarm(u16),
    /// Plane `plane` closed: cancel its receives; the thread ends when every
    /// plane it serves has closed.
    Stop(u8),
}

/// The plane's handle on its driver thread.
pub(super) struct Uring {
    pub(super) ctl: Mutex<Vec<Ctl>>,
    pub(super) wake: OwnedFd,
}

impl Uring {
    /// Start a driver thread moving the media of `planes` (plane `i` then
    /// names itself `i` in its [`Ctl`] requests). Fails (and leaves nothing
    /// running) when the kernel refuses the ring or a feature it needs.
    pub fn start(
        planes: Vec<Arc<MediaPlane>>,
        name: String,
        coalesce_us: u32,
    ) -> io::Result<Arc<Uring>> {
        // SAFETY: eventfd has no memory-safety preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        let this = Arc::new(Uring {
            ctl: Mutex::new(Vec::new()),
            wake,
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = this.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            match Driver::new(planes, handle, coalesce_us) {
                Ok(mut d) => {
                    let _ = ready_tx.send(Ok(()));
                    d.run();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("media driver thread ended"))??;
        Ok(this)
    }

    /// Queue a request for the driver and wake it: at once, or on a
    /// signaling event loop thread when its turn ends ([`defer_wakes`]).
    pub fn send(self: &Arc<Self>, ctl: Ctl) {
        lock(&self.ctl).push(ctl);
        let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(list) => {
                if !list.iter().any(|u| Arc::ptr_eq(u, self)) {
                    list.push(self.clone());
                }
                true
            }
            None => false,
        });
        if !deferred {
            self.wake();
        }
    }

    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. A full
        // counter (EAGAIN) still leaves the driver woken.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&raw const one).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

thread_local! {
    /// On a thread that called [`defer_wakes`]: the drivers to wake at
    /// [`flush_deferred_wakes`].
    static DEFERRED: RefCell<Option<Vec<Arc<Uring>>>> = const { RefCell::new(None) };
}

/// From now on, [`Uring::send`] on this thread (a signaling event loop)
/// wakes its driver only at the next [`flush_deferred_wakes`], which the
/// loop calls before it blocks in poll(2).
///
/// The requests still reach the queue at once; only the eventfd write
/// waits for the end of the turn. Waking at every request made the driver
/// preempt the signaling thread once per port change: `media: anchor` at
/// 2000 calls/s (/tmp steady-state run, 10 s window) showed 84,909
/// wake-ups of the media thread and 84,533 involuntary switches of the
/// signaling thread, about 4.2 each per call. Sockets are still bound
/// before the SIP message naming them leaves (apply_pending); datagrams
/// arriving before their receive is armed wait in the socket's queue.
pub(super) fn defer_wakes() {
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
}

/// Wake every driver [`Uring::send`] deferred on this thread since the
/// last call.
pub(super) fn flush_deferred_wakes() {
    // wake() only writes an eventfd: nothing re-enters DEFERRED meanwhile,
    // and draining keeps the list's allocation for the next turn.
    DEFERRED.with(|d| {
        if let Some(list) = d.borrow_mut().as_mut() {
            for u in list.drain(..) {
                u.wake();
            }
        }
    });
}

/// The soft RLIMIT_NOFILE (the kernel caps a fixed-file table at it).
pub(super) fn nofile_limit() -> u64 {
    // SAFETY: all-zero is a valid rlimit; getrlimit only writes it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a pointer to a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// A `sockaddr_in`/`sockaddr_in6` as the kernel wrote it (family in host
/// order, port and address in network order).
pub(super) fn sockaddr(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*name.first()?, *name.get(1)?]));
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::from((ip, port)))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            let flow = u32::from_be_bytes(name.get(4..8)?.try_into().ok()?);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip.into(),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::sockaddr;

    #[test]
    fn parses_kernel_socket_addresses() {
        for addr in ["127.0.0.1:4000", "[::1]:5004", "[fe80::1%2]:9"] {
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            let raw = socket2::SockAddr::from(addr);
            // SAFETY: as_ptr points to raw.len() initialized bytes.
            let bytes = unsafe {
                std::slice::from_raw_parts(raw.as_ptr().cast::<u8>(), raw.len() as usize)
            };
            assert_eq!(sockaddr(bytes), Some(addr));
        }
        assert_eq!(sockaddr(&[]), None);
        assert_eq!(sockaddr(&[2, 0, 1]), None, "AF_INET, cut short");
        assert_eq!(sockaddr(&[1, 0, 0, 0, 0, 0, 0, 0]), None, "AF_UNIX");
    }
}
