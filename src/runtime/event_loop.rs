//! Signaling event loops: threads that read the UDP listeners and fire the
//! shards' protocol timers.
//!
//! ```text
//!            poll(2) on: its UDP sockets + its wake eventfd, timeout = its
//!            │           shards' earliest timer (20 ms grid)
//!  loop k ───┤
//!            ├─ readable socket ─▶ recvfrom (MSG_DONTWAIT, ≤ BATCH) ─▶ Shards::send
//!            ├─ timer due ───────▶ Shards::fire_timers(shard)   (shards i with i % loops == k)
//!            └─ eventfd ─────────▶ another thread moved a deadline earlier: recompute
//! ```
//!
//! Why one thread (`callgate run --udp-threads 1`, the default) and not a
//! reader thread per socket: a call's messages arrive on both listeners
//! (client side and carrier side), so with a thread per socket each call's
//! state was touched, allocated and freed on both cores, and the timer
//! task freed it on a third thread. Measured with SIPp at 2000 calls/s
//! through `mode: b2bua, media: bypass` (steady state, 20 s windows,
//! alternating runs): 114-119 µs of CPU per call with a thread per socket,
//! 92-105 µs with one loop, Kamailio 90-96 µs in the same runs.
//! More threads (`--udp-threads N`) spread the sockets round-robin for
//! hosts where one core cannot carry the signaling load.

use std::mem::MaybeUninit;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::sip::transport::{Flow, Transport};

use super::shard::{ShardInput, Shards, call_id_of};

/// Datagrams read from one socket before the next one gets its turn.
const BATCH: usize = 32;

/// Longest poll(2) wait with no timer pending (a wake-up always comes
/// through the eventfd; this only bounds a lost one).
const IDLE_WAIT: Duration = Duration::from_secs(1);

thread_local! {
    /// Index of the event loop running on this thread (usize::MAX: none).
    static LOOP_INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// The eventfd another thread writes to wake an event loop out of poll(2).
pub(super) struct LoopWake {
    fd: OwnedFd,
    /// The loop it wakes.
    index: usize,
}

impl LoopWake {
    /// A non-blocking eventfd waking loop `index` (fails only when the
    /// kernel refuses one).
    pub fn new(index: usize) -> std::io::Result<LoopWake> {
        // SAFETY: plain integer arguments; the returned descriptor (checked
        // below) is owned by nobody else.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor we alone own.
        Ok(LoopWake {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            index,
        })
    }

    /// Wake the loop unless this thread is that loop (it recomputes its
    /// deadline before it next waits anyway).
    pub fn wake(&self) {
        if LOOP_INDEX.with(std::cell::Cell::get) == self.index {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. A full
        // counter (EAGAIN) means a wake-up is already pending: fine.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&raw const one).cast::<libc::c_void>(),
                8,
            )
        };
    }

    /// The descriptor a loop polls for readability.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Consume pending wake-ups (the loop, once poll(2) reported them).
    pub fn clear(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own eventfd;
        // EAGAIN (nothing pending) is fine.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut n).cast::<libc::c_void>(), 8) };
    }
}

/// Start `shards.loops()` event-loop threads; UDP socket `id` (of `udp`,
/// indexed by listener id) is read by loop `j % loops`, where `j` counts
/// the UDP sockets in listener order.
pub(super) fn start(udp: &[Option<Arc<UdpSocket>>], shards: &Shards, core: &Handle) {
    let loops = shards.loops();
    let mut mine: Vec<Vec<(usize, Arc<UdpSocket>)>> = vec![Vec::new(); loops];
    for (j, (id, sock)) in udp
        .iter()
        .enumerate()
        .filter_map(|(id, s)| Some((id, s.clone()?)))
        .enumerate()
    {
        mine[j % loops].push((id, sock));
    }
    for (k, socks) in mine.into_iter().enumerate() {
        let (shards, core) = (shards.clone(), core.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("callgate-sig{k}"))
            .spawn(move || {
                // TCP transmits and error reports spawn tokio tasks from here.
                let _in_core = core.enter();
                LOOP_INDEX.with(|i| i.set(k));
                super::media_uring::defer_wakes();
                run(k, &socks, &shards);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, event_loop = k, "cannot start a signaling thread");
        }
    }
}

/// Loop `k`: wait for its sockets, its wake eventfd or its next timer;
/// handle what is ready; repeat. Per-socket order is kept: only this
/// thread reads its sockets.
fn run(k: usize, socks: &[(usize, Arc<UdpSocket>)], shards: &Shards) {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|(_, s)| s.as_raw_fd())
        .chain(std::iter::once(shards.wake(k).raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 1 << 16];
    loop {
        let wait = shards.fire_due_timers(k).unwrap_or(IDLE_WAIT);
        // What this turn asked of the media drivers, before we sleep.
        super::media_uring::flush_deferred_wakes();
        // Round up: waking before the grid slot would only find nothing due.
        let ms = wait.as_micros().div_ceil(1000).clamp(1, 60_000) as libc::c_int;
        // SAFETY: `fds` is a valid, exclusively borrowed array of
        // `fds.len()` pollfd structs for the duration of the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc <= 0 {
            continue; // timeout, or EINTR
        }
        for (i, (id, sock)) in socks.iter().enumerate() {
            if fds[i].revents != 0 {
                read_batch(*id, sock, &mut buf, shards);
            }
        }
        if fds[socks.len()].revents != 0 {
            shards.wake(k).clear();
        }
    }
}

/// Read up to [`BATCH`] datagrams from one socket without blocking and hand
/// each to the shard owning its Call-ID.
fn read_batch(id: usize, sock: &UdpSocket, buf: &mut [MaybeUninit<u8>], shards: &Shards) {
    let sock = socket2::SockRef::from(sock);
    for _ in 0..BATCH {
        match sock.recv_from_with_flags(buf, libc::MSG_DONTWAIT) {
            Ok((n, remote)) => {
                let Some(remote) = remote.as_socket() else {
                    continue;
                };
                // SAFETY: recvfrom initialised the first `n` bytes of `buf`.
                let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
                let data = Bytes::copy_from_slice(bytes);
                let flow = Flow {
                    listener: id,
                    transport: Transport::Udp,
                    remote,
                    conn: None,
                };
                let shard = shards.pick(call_id_of(&data));
                shards.send(shard, ShardInput::Datagram { flow, data });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            // ICMP errors surface here on Linux; the socket stays usable.
            Err(e) => tracing::trace!(error = %e, "udp recv error"),
        }
    }
}
