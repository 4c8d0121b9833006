//! The media plane of one shard: a [`MediaHost`] behind its own mutex (RTP never
//! waits on the proxy lock), the UDP sockets its sessions need and their readers.
//!
//! ```text
//!  Shards::send / timer task ─ proxy.poll_media_command ─▶ queue (under the proxy lock)
//!                              └─ after unlock: apply_pending ─▶ MediaHost ─ PortChange
//!                                   binds/closes the sockets at once (before the shard
//!                                   transmits the SDP that names them), sends what the
//!                                   commands produced, kicks the control task if needed
//!  control task (one per shard) ◀─ kick: events, an earlier deadline
//!    handle_timeout at the host's poll_timeout (±1 ms) · sendto · events ─▶ proxy shard
//!  io_uring driver (one thread for all shards by default; media_uring.rs)
//!    ─ batch of receives ─▶ lock host ─ handle_packet × n ─ batched sends submitted ─ unlock
//!  or, where io_uring is unavailable, reader tasks (one per port, tokio; media_tokio.rs)
//!    ─ recv ─▶ lock host ─ handle_packet ─ sendto ─ unlock
//! ```
//!
//! Every path sends what the host produced before it unlocks the host, so
//! the packets of one stream leave in the order the host made them even
//! when a timer (control task) and a received packet (driver thread) both
//! produce some at once. Sending after the unlock once put a
//! telephone-event's marker packet behind the event's next packet on the
//! wire (`tests/peers_media.rs`, in-band trunk to caller).
//!
//! Ports are bound synchronously in [`MediaPlane::apply_pending`] (see
//! [`super::media_sockets`]): the shard calls it after the proxy produced a
//! SIP message and before it transmits it, so a peer that starts sending RTP
//! the instant it reads our offer or answer finds the port open. When the
//! control task bound them, some time after the message had left, the first
//! packets of a call could meet a closed port (ICMP port unreachable).
//!
//! The media plane produces timed output of its own (ringback, digits played
//! as tones or telephone-events, ptime conversion): a packet every 20 ms that
//! no incoming packet triggers. The control task therefore sleeps until the
//! host's [`MediaHost::poll_timeout`] itself (tokio's timer: 1 ms resolution),
//! not on a coarse tick, and sends the [`Transmit`]s the timeout produced
//! itself. The deadline it sleeps on is published in `wake_at`; whoever
//! changes the host (a reader, [`MediaPlane::apply_pending`]) kicks it only
//! when the host's next deadline became earlier than that, so a relayed
//! packet costs one atomic load, not a wake-up. Idle, it wakes once a second.
//! Measured with `tests/peers_media.rs` (ringback to a caller on 127.0.0.1):
//! with the former 100 ms–1 s tick, whose transmits only left when some
//! packet arrived, a silent caller got no ringback at all and a talking one
//! got it in bursts (117 of 146 gaps under 5 ms, up to 121 ms apart); now
//! both get a packet every 20.0 ms (stdev 0.4–0.9 ms, none under 15 ms or
//! over 25 ms). Idle CPU is unchanged (one wake-up a second per shard).
//!
//! Receive paths, chosen once per plane ([`IoChoice`], env
//! `CALLGATE_MEDIA_IO=tokio|uring`, default: io_uring when the kernel allows
//! it): the io_uring driver ([`super::media_uring`]) or one tokio task per
//! port ([`super::media_tokio`]). Transmits of the control task and of
//! `apply_pending`, and on the tokio path every relayed packet, go straight
//! out with a non-blocking `sendto` on their `from_port` socket (a full send
//! buffer drops the packet, as the network would).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::media::{
    DirectionStats, Event, HostTotals, MediaCommand, MediaHost, PortChange, SessionId, Transmit,
};

use super::media_sockets::{Sock, Sockets};
use super::media_uring::{Ctl, Uring};

/// Where media events go: the proxy shard's `handle_media_event`.
pub(super) type EventSink = Arc<dyn Fn(SessionId, Event) + Send + Sync>;

/// Longest sleep of the control task (idle, or a far deadline).
const MAX_TICK: Duration = Duration::from_secs(1);
/// Shortest sleep after a timeout run that left a deadline already due
/// (never a busy loop, whatever the host reports).
const MIN_NAP: Duration = Duration::from_millis(1);
/// `wake_at` when the control task sleeps without a deadline.
const NO_DEADLINE: u64 = u64::MAX;

/// Which receive path a plane uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IoChoice {
    /// io_uring when the kernel allows it, else tokio.
    Auto,
    /// The portable path: one tokio task per port.
    Tokio,
    /// io_uring, falling back to tokio (with a warning) when unavailable.
    Uring,
}

impl IoChoice {
    /// `CALLGATE_MEDIA_IO=tokio|uring` (anything else or unset: auto).
    pub fn from_env() -> IoChoice {
        match std::env::var("CALLGATE_MEDIA_IO").as_deref() {
            Ok("tokio") => IoChoice::Tokio,
            Ok("uring") => IoChoice::Uring,
            _ => IoChoice::Auto,
        }
    }
}

/// The receive path in use.
enum Io {
    Tokio,
    /// A driver thread, and this plane's index among the planes it serves.
    Uring(Arc<Uring>, u8),
}

/// Default of `CALLGATE_MEDIA_COALESCE_US`: how long the io_uring driver
/// may wait for more completions once one is there (io_uring's min_wait: a
/// packet arriving after a quiet spell longer than that is handled at once,
/// so only dense traffic waits). 0: no packet ever waits. Measured with
/// bench-relay's client, 300 calls (30,000 packets/s, sent in 1 ms bursts),
/// `perf stat` on callgate over 8 s at load 5-7: 0 → 8.0 µs of CPU per
/// packet, 49.8k context switches; 200 → 7.6 µs, 36.8k; 1000 → 7.1 µs, 14.1k.
/// The saving is wake-ups; the price is up to that much added delay (and
/// jitter) under load, so it stays opt-in.
const COALESCE_US: u32 = 0;

/// A snapshot of one shard's media plane for `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct MediaCounters {
    pub totals: HostTotals,
    pub ports_in_use: usize,
    pub bind_errors: u64,
    pub send_errors: u64,
}

impl MediaCounters {
    /// Add another shard's counters.
    pub fn add(&mut self, o: &MediaCounters) {
        self.totals.merge(&o.totals);
        self.ports_in_use += o.ports_in_use;
        self.bind_errors += o.bind_errors;
        self.send_errors += o.send_errors;
    }
}

/// One shard's media plane.
pub(super) struct MediaPlane {
    pub(super) host: Mutex<MediaHost>,
    /// Commands drained from the proxy, in its order, not applied yet.
    pending: Mutex<VecDeque<MediaCommand>>,
    /// Held while a batch of port changes is carried out; taken before the
    /// host lock is released, so two threads applying commands at once
    /// change sockets in command order.
    port_order: Mutex<()>,
    pub(super) sockets: Sockets,
    /// The receive path, chosen once at start.
    io: OnceLock<Io>,
    /// Tokio readers by port.
    readers: Mutex<HashMap<u16, JoinHandle<()>>>,
    /// The shard's runtime: readers run there, sockets register with it
    /// (apply_pending may run on a SIP reader thread, outside any runtime).
    runtime: Handle,
    address: Mutex<IpAddr>,
    pub(super) kick: Notify,
    /// Origin of `wake_at`.
    base: Instant,
    /// The host deadline the control task sleeps until, in ns since `base`
    /// ([`NO_DEADLINE`]: none); written under the host lock.
    wake_at: AtomicU64,
    closed: AtomicBool,
    bind_errors: AtomicU64,
    send_errors: AtomicU64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MediaPlane {
    /// A plane binding its ports on `address` (dial plan `media.address`),
    /// its tokio readers (if used) and control task on `runtime`. Give it
    /// its receive path with [`start_io`] before it opens a port.
    pub fn new(address: IpAddr, runtime: Handle) -> Arc<MediaPlane> {
        Arc::new(MediaPlane {
            host: Mutex::new(MediaHost::new()),
            pending: Mutex::new(VecDeque::new()),
            port_order: Mutex::new(()),
            sockets: Sockets::default(),
            io: OnceLock::new(),
            readers: Mutex::new(HashMap::new()),
            runtime,
            address: Mutex::new(address),
            kick: Notify::new(),
            base: Instant::now(),
            wake_at: AtomicU64::new(NO_DEADLINE),
            closed: AtomicBool::new(false),
            bind_errors: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
        })
    }

    /// A plane with a receive path of its own (one driver thread when `choice`
    /// gets io_uring).
    #[cfg(test)]
    pub fn with_io(address: IpAddr, runtime: Handle, choice: IoChoice) -> Arc<MediaPlane> {
        let plane = Self::new(address, runtime);
        start_io(std::slice::from_ref(&plane), 1, choice);
        plane
    }

    /// Whether this plane's receive path is io_uring.
    #[cfg(test)]
    pub fn uses_uring(&self) -> bool {
        matches!(self.io.get(), Some(Io::Uring(..)))
    }

    /// The io_uring driver this plane is on, and its index there.
    #[cfg(test)]
    pub fn driver(&self) -> Option<(*const Uring, u8)> {
        match self.io.get() {
            Some(Io::Uring(u, i)) => Some((Arc::as_ptr(u), *i)),
            _ => None,
        }
    }

    /// Queue the proxy's commands; call with the proxy lock held so the queue
    /// keeps the proxy's order. Returns whether there was any (then call
    /// [`Self::apply_pending`] after releasing the proxy lock).
    pub fn queue(&self, mut cmds: impl Iterator<Item = MediaCommand>) -> bool {
        let Some(first) = cmds.next() else {
            return false;
        };
        let mut q = lock(&self.pending);
        q.push_back(first);
        q.extend(cmds);
        true
    }

    /// Apply every queued command to the host, in order, and bind or close
    /// the sockets they open or close before returning: call it before
    /// transmitting the SIP message whose SDP names the ports. The queue is
    /// drained under the host lock, so two threads applying at once cannot
    /// reorder commands. Returns the ports that could not be bound (each
    /// also counted in `bind_errors` and logged).
    pub fn apply_pending(self: &Arc<Self>) -> Vec<u16> {
        let mut out = Vec::new();
        let mut host = lock(&self.host);
        let cmds: Vec<MediaCommand> = lock(&self.pending).drain(..).collect();
        let now = Instant::now();
        for cmd in cmds {
            if let Err(e) = host.apply(now, cmd) {
                tracing::debug!(error = %e, "media command ignored");
            }
        }
        // a tone or digit may start at once
        out.extend(std::iter::from_fn(|| host.poll_transmit()));
        let changes = net_port_changes(&mut host);
        // Sockets change and packets leave under the host lock: two threads'
        // commands keep their order, and so do a stream's packets against
        // those the readers and the control task send.
        let order = (!changes.is_empty()).then(|| lock(&self.port_order));
        let failed = self.change_ports(&changes);
        drop(order);
        self.send_all(&mut out);
        // Their sessions report it; the control task hands the events on.
        for &port in &failed {
            host.port_unavailable(port);
        }
        let wake = host.has_events() || self.deadline_earlier(&host);
        drop(host);
        if wake {
            self.kick.notify_one();
        }
        failed
    }

    /// Carry out net port changes (closes first); returns the ports that
    /// could not be bound.
    fn change_ports(self: &Arc<Self>, changes: &[(u16, bool)]) -> Vec<u16> {
        let mut failed = Vec::new();
        if self.closed.load(Ordering::Acquire) {
            return failed;
        }
        let address = *lock(&self.address);
        for &(port, bind) in changes {
            match (bind, self.sockets.is_open(port)) {
                (true, false) => {
                    let addr = SocketAddr::new(address, port);
                    if let Err(e) = self.open_port(addr) {
                        self.bind_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%addr, error = %e, "cannot bind media port; its leg gets no media");
                        failed.push(port);
                    }
                }
                (false, true) => self.close_port(port),
                _ => {}
            }
        }
        failed
    }

    /// Bind `addr` and start receiving on it.
    fn open_port(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<()> {
        if let Some(Io::Uring(u, plane)) = self.io.get() {
            let sock = self.sockets.bind(addr, |s| Ok(Sock::Raw(s)))?;
            u.send(Ctl::Arm {
                plane: *plane,
                port: addr.port(),
                sock,
            });
            return Ok(());
        }
        let runtime = self.runtime.clone();
        let sock = self.sockets.bind(addr, |std| {
            let _in_runtime = runtime.enter();
            tokio::net::UdpSocket::from_std(std).map(Sock::Tokio)
        })?;
        let reader = self.runtime.spawn(self.clone().read(addr.port(), sock));
        if let Some(old) = lock(&self.readers).insert(addr.port(), reader) {
            old.abort();
        }
        Ok(())
    }

    /// Close `port`: unlisted at once, its descriptor released when the
    /// aborted reader is dropped (on the shard's runtime, shortly after).
    fn close_port(&self, port: u16) {
        if let Some(Io::Uring(u, _)) = self.io.get() {
            u.send(Ctl::Disarm(port));
        } else if let Some(reader) = lock(&self.readers).remove(&port) {
            reader.abort();
        }
        self.sockets.unbind(port);
    }

    /// A send that failed after leaving the plane (io_uring completion).
    pub(super) fn note_send_error(&self) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// ns since `base` (saturating; never [`NO_DEADLINE`]).
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base)
            .as_nanos()
            .min(u128::from(NO_DEADLINE - 1)) as u64
    }

    /// The host now wants a timeout before the control task would wake.
    /// Call under the host lock (`wake_at` is written under it too).
    pub(super) fn deadline_earlier(&self, host: &MediaHost) -> bool {
        host.poll_timeout()
            .is_some_and(|t| self.nanos(t) < self.wake_at.load(Ordering::Acquire))
    }

    /// A reloaded dial plan's media address: ports bound from now on use it.
    pub fn set_address(&self, address: IpAddr) {
        *lock(&self.address) = address;
    }

    /// Counters of a session's two directions `[A→B, B→A]`.
    pub fn stats(&self, session: SessionId) -> Option<[DirectionStats; 2]> {
        lock(&self.host).stats(session)
    }

    /// Counters for `/metrics`.
    pub fn counters(&self) -> MediaCounters {
        let host = lock(&self.host);
        MediaCounters {
            totals: host.totals(),
            ports_in_use: host.ports_in_use(),
            bind_errors: self.bind_errors.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
        }
    }

    /// Ports whose socket is still open right now (closing ones included
    /// until their reader has let go).
    #[cfg(test)]
    pub fn bound_ports(&self) -> Vec<u16> {
        self.sockets.ports_held()
    }

    /// Close every socket and stop the control task (process exit).
    pub fn close_all(&self) {
        let _order = lock(&self.port_order);
        self.closed.store(true, Ordering::Release);
        if let Some(Io::Uring(u, plane)) = self.io.get() {
            u.send(Ctl::Stop(*plane));
        }
        for (_, reader) in lock(&self.readers).drain() {
            reader.abort();
        }
        drop(self.sockets.clear());
        self.kick.notify_one();
    }

    /// The control task: runs the media timers at their deadlines, sends
    /// what they produce and hands events to `sink` (never under a lock).
    pub async fn run(self: Arc<Self>, sink: EventSink) {
        let mut out: Vec<Transmit> = Vec::new();
        while !self.closed.load(Ordering::Acquire) {
            let now = Instant::now();
            let (events, next) = {
                let mut host = lock(&self.host);
                if host.poll_timeout().is_some_and(|t| t <= now) {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        host.handle_timeout(now)
                    }));
                    if ran.is_err() {
                        tracing::error!("internal error in the media timers (panic caught)");
                    }
                }
                out.extend(std::iter::from_fn(|| host.poll_transmit()));
                // Under the host lock, like every path that sends what the
                // host made: one stream's packets keep their order.
                self.send_all(&mut out);
                let events: Vec<_> = std::iter::from_fn(|| host.poll_event()).collect();
                let next = host.poll_timeout();
                self.wake_at.store(
                    next.map_or(NO_DEADLINE, |t| self.nanos(t)),
                    Ordering::Release,
                );
                (events, next)
            };
            for (session, event) in events {
                sink(session, event);
            }
            let wake = match next {
                Some(t) => t.clamp(now + MIN_NAP, now + MAX_TICK),
                None => now + MAX_TICK,
            };
            tokio::select! {
                () = self.kick.notified() => {}
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        self.close_all();
    }

    /// Send with a direct non-blocking `sendto` on each `from_port` socket
    /// (a full send buffer drops the packet, as the network would).
    pub(super) fn send_all(&self, out: &mut Vec<Transmit>) {
        if out.is_empty() {
            return;
        }
        let sockets = self.sockets.read();
        for t in out.drain(..) {
            // tokio's try_send_to would refuse a socket whose writability
            // the reactor has not reported yet.
            let sent = sockets
                .get(&t.from_port)
                .map(|s| socket2::SockRef::from(s.as_ref()).send_to(&t.bytes, &t.to.into()));
            if !matches!(sent, Some(Ok(_))) {
                self.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(from_port = t.from_port, to = %t.to, "media send failed");
            }
        }
    }
}

/// Give each of `planes` its receive path, once, before any opens a port.
/// With io_uring (as `choice` allows), `threads` driver threads (at most
/// one per plane) share the planes, plane `i` on thread `i % threads`; a
/// thread whose ring the kernel refuses leaves its planes on the tokio path.
///
/// One thread for every plane is the default (`callgate run
/// --media-threads`): each driver wake-up then handles the packets of all
/// shards at once. Measured with bench/relay.sh (callgate alone, 2 shards,
/// alternating runs): 300 calls 4.60/4.63/4.77 µs of CPU per relayed packet
/// with one thread against 5.20/5.63/5.57 with one per shard; 100 calls
/// 5.5/5.1 against 7.4/7.9. Two threads sleeping and waking apart, each
/// for half the packets, woke 4,580 times a second between them at 300
/// calls; one thread woke 1,060 times (voluntary switches over 8 s).
pub(super) fn start_io(planes: &[Arc<MediaPlane>], threads: usize, choice: IoChoice) {
    if planes.is_empty() {
        return;
    }
    let threads = threads.clamp(1, planes.len());
    let coalesce = std::env::var("CALLGATE_MEDIA_COALESCE_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(COALESCE_US);
    for k in 0..threads {
        let group: Vec<Arc<MediaPlane>> = planes.iter().skip(k).step_by(threads).cloned().collect();
        let name = if threads == 1 {
            "callgate-media".to_string()
        } else {
            format!("callgate-media{k}")
        };
        let uring = match choice {
            IoChoice::Tokio => None,
            IoChoice::Auto | IoChoice::Uring => match Uring::start(group.clone(), name, coalesce) {
                Ok(u) => {
                    tracing::info!(
                        coalesce_us = coalesce,
                        planes = group.len(),
                        "media I/O: io_uring"
                    );
                    Some(u)
                }
                Err(e) => {
                    if choice == IoChoice::Uring {
                        tracing::warn!(error = %e, "media I/O: io_uring unavailable, using tokio");
                    } else {
                        tracing::debug!(error = %e, "media I/O: io_uring unavailable, using tokio");
                    }
                    None
                }
            },
        };
        for (i, plane) in group.iter().enumerate() {
            let io = match &uring {
                // i < planes.len() <= MAX_CORES (8)
                Some(u) => Io::Uring(u.clone(), i as u8),
                None => Io::Tokio,
            };
            // Set once: planes get their path here and nowhere else.
            let _ = plane.io.set(io);
        }
    }
}

/// The host's pending port changes, reduced to the net effect per port
/// (a port closed and reopened in one batch keeps its socket), closes first
/// so a port is closed before it could be bound again.
fn net_port_changes(host: &mut MediaHost) -> Vec<(u16, bool)> {
    let mut want: Vec<(u16, bool)> = Vec::new();
    while let Some(change) = host.poll_port_change() {
        let (port, bind) = match change {
            PortChange::Bind(p) => (p, true),
            PortChange::Unbind(p) => (p, false),
        };
        match want.iter_mut().find(|(p, _)| *p == port) {
            Some(w) => w.1 = bind,
            None => want.push((port, bind)),
        }
    }
    want.sort_by_key(|&(_, bind)| bind);
    want
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
