//! The RTP load: every call's caller sends Opus (PT 111, 48 kHz clock, encoded
//! by callgate's encoder) and its callee 160-byte PCMU (PT 0), 20 ms frames,
//! 50 packets/s per direction, from sockets on 127.0.0.1; what comes back is
//! recorded per socket with the time the kernel queued it on our socket
//! (`SO_TIMESTAMPNS`, i.e. when the gateway's `sendto` delivered it on
//! loopback), and every send with the time just before its `sendto` (on
//! loopback the packet reaches the gateway's socket inside that call). Both
//! clocks are `CLOCK_REALTIME`, so a transcoded packet's receive time minus
//! its input's send time is how long the gateway held it.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callgate::media::codec::CodecKind;

use crate::sdp::OPUS_PT;
use crate::speech::{LOOP_FRAMES, payloads};

/// The sender's tick; every stream sends once per `SLOTS` ticks (20 ms).
const SLOT: Duration = Duration::from_millis(1);
const SLOTS: usize = 20;

/// Nanoseconds since the epoch on `CLOCK_REALTIME` (the clock of
/// `SO_TIMESTAMPNS`).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One call's two media endpoints and where each sends.
pub struct CallMedia {
    /// The caller's socket: sends Opus to `to_a`, receives the transcoded callee audio.
    pub caller: UdpSocket,
    /// The callee's socket: sends PCMU to `to_b`, receives the transcoded caller audio.
    pub callee: UdpSocket,
    pub to_a: SocketAddr,
    pub to_b: SocketAddr,
}

/// A packet received: kernel receive time and RTP header fields.
#[derive(Debug, Clone, Copy)]
pub struct Rx {
    pub at: u64,
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    /// Payload bytes (after the 12-byte header, no CSRC/extension expected).
    pub len: u16,
}

/// What the sender did: per stream the send time of each packet (index =
/// packets sent before it), and how far behind its schedule it ran.
#[derive(Default)]
pub struct Sent {
    pub times: Vec<Vec<u64>>,
    pub send_errors: u64,
    pub ticks: u64,
    /// Ticks that started more than 2 ms after they were due.
    pub ticks_late_2ms: u64,
    pub max_tick_lag: Duration,
}

/// The load running: streams `2i` (caller of call i, sends Opus) and `2i+1`
/// (its callee, sends PCMU).
pub struct Load {
    stop: Arc<AtomicBool>,
    tx: JoinHandle<Sent>,
    rx: JoinHandle<Vec<Vec<Rx>>>,
    rx_stop: tokio::sync::watch::Sender<bool>,
    /// Receive times come from the kernel (`SO_TIMESTAMPNS`), not from us.
    pub kernel_timestamps: bool,
}

impl Load {
    /// Start sending and receiving on every call's sockets.
    pub fn start(calls: Vec<CallMedia>) -> Load {
        let mut senders = Vec::with_capacity(2 * calls.len());
        let mut socks = Vec::with_capacity(2 * calls.len());
        let mut kernel_timestamps = true;
        for c in calls {
            for (sock, to, opus) in [(c.caller, c.to_a, true), (c.callee, c.to_b, false)] {
                kernel_timestamps &= timestamps::enable(&sock);
                // A bound UDP socket clones (dup) unless the process is out of fds.
                senders.push((sock.try_clone().expect("clone socket"), to, opus));
                socks.push(sock);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (rx_stop, stop_rx) = tokio::sync::watch::channel(false);
        let rx = std::thread::spawn(move || receive(socks, stop_rx));
        let tx = {
            let stop = stop.clone();
            std::thread::spawn(move || send(senders, &stop))
        };
        Load {
            stop,
            tx,
            rx,
            rx_stop,
            kernel_timestamps,
        }
    }

    /// Stop sending, let what is in flight arrive (200 ms), stop receiving.
    pub fn finish(self) -> (Sent, Vec<Vec<Rx>>) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.tx.join().unwrap_or_default();
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.rx_stop.send(true);
        let got = self.rx.join().unwrap_or_default();
        (sent, got)
    }
}

/// Every stream sends 50 packets/s, streams spread over 20 ticks of 1 ms,
/// until `stop`; a tick that starts late sends at once (nothing is skipped).
fn send(mut socks: Vec<(UdpSocket, SocketAddr, bool)>, stop: &AtomicBool) -> Sent {
    let opus = payloads(CodecKind::Opus, 48000);
    let pcmu = payloads(CodecKind::Pcmu, 8000);
    let mut out = Sent {
        times: vec![Vec::with_capacity(50 * 60); socks.len()],
        ..Sent::default()
    };
    let ssrc = |k: usize| 0x5EED_0000u32.wrapping_add(k as u32);
    let start = Instant::now();
    let mut pkt = Vec::with_capacity(1500);
    while !stop.load(Ordering::Relaxed) {
        let due = start + SLOT * out.ticks as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let lag = Instant::now().saturating_duration_since(due);
        out.max_tick_lag = out.max_tick_lag.max(lag);
        if lag > Duration::from_millis(2) {
            out.ticks_late_2ms += 1;
        }
        let slot = (out.ticks % SLOTS as u64) as usize;
        for k in (slot..socks.len()).step_by(SLOTS) {
            let (sock, to, is_opus) = &mut socks[k];
            let times = &mut out.times[k];
            let idx = times.len();
            let frame = idx % LOOP_FRAMES;
            let (pt, step, payload) = if *is_opus {
                (OPUS_PT, 960u32, &opus[frame])
            } else {
                (0, 160u32, &pcmu[frame])
            };
            pkt.clear();
            pkt.push(0x80);
            pkt.push(pt);
            pkt.extend_from_slice(&(idx as u16).to_be_bytes());
            pkt.extend_from_slice(&(idx as u32).wrapping_mul(step).to_be_bytes());
            pkt.extend_from_slice(&ssrc(k).to_be_bytes());
            pkt.extend_from_slice(payload);
            times.push(now_ns());
            if sock.send_to(&pkt, *to).is_err() {
                out.send_errors += 1;
            }
        }
        out.ticks += 1;
    }
    out
}

/// One tokio task per socket recording what arrives, until `stop`.
fn receive(socks: Vec<UdpSocket>, stop: tokio::sync::watch::Receiver<bool>) -> Vec<Vec<Rx>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let mut tasks = Vec::with_capacity(socks.len());
        for sock in socks {
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::with_capacity(50 * 60);
                let Ok(()) = sock.set_nonblocking(true) else {
                    return got;
                };
                let Ok(sock) = tokio::net::UdpSocket::from_std(sock) else {
                    return got;
                };
                loop {
                    tokio::select! {
                        r = sock.async_io(tokio::io::Interest::READABLE, || timestamps::recv(&sock)) => {
                            match r {
                                Ok(Some(rx)) => got.push(rx),
                                Ok(None) => {}
                                Err(_) => break,
                            }
                        }
                        _ = stop.changed() => break,
                    }
                }
                got
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.unwrap_or_default());
        }
        out
    })
}

/// Kernel receive timestamps (`SO_TIMESTAMPNS`, socket(7)) through
/// `recvmsg`; elsewhere than Linux x86-64/aarch64 the time of return.
mod timestamps {
    use super::*;
    use std::mem::MaybeUninit;

    /// Parse an RTP header; `None` for anything shorter than one.
    fn rtp(b: &[u8], at: u64) -> Option<Rx> {
        if b.len() < 12 {
            return None;
        }
        Some(Rx {
            at,
            seq: u16::from_be_bytes([b[2], b[3]]),
            ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            pt: b[1] & 0x7f,
            len: (b.len() - 12) as u16,
        })
    }

    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    mod sys {
        unsafe extern "C" {
            pub fn setsockopt(
                fd: i32,
                level: i32,
                name: i32,
                value: *const std::ffi::c_void,
                len: u32,
            ) -> i32;
        }
        /// <asm-generic/socket.h> (x86-64 and aarch64 use it).
        pub const SOL_SOCKET: i32 = 1;
        pub const SO_TIMESTAMPNS: i32 = 35;
        /// `struct cmsghdr` on LP64: size_t len, int level, int type, then data.
        pub const CMSG_HDR: usize = 16;
    }

    /// Ask for kernel receive timestamps on `sock`; false when unsupported.
    pub fn enable(sock: &UdpSocket) -> bool {
        #[cfg(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))]
        {
            use std::os::fd::AsRawFd;
            let on: i32 = 1;
            // SAFETY: the fd is open for the duration of the call (borrowed
            // socket) and the value points at a live i32 of the given size.
            let r = unsafe {
                sys::setsockopt(
                    sock.as_raw_fd(),
                    sys::SOL_SOCKET,
                    sys::SO_TIMESTAMPNS,
                    (&on as *const i32).cast(),
                    4,
                )
            };
            r == 0
        }
        #[cfg(not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )))]
        {
            let _ = sock;
            false
        }
    }

    /// One datagram and the time it was queued on the socket (the kernel's
    /// timestamp when present, else now). `Ok(None)`: not RTP.
    pub fn recv(sock: &tokio::net::UdpSocket) -> io::Result<Option<Rx>> {
        let mut data = [MaybeUninit::new(0u8); 2048];
        let mut ctrl = [MaybeUninit::new(0u8); 128];
        let (n, clen) = {
            let mut bufs = [socket2::MaybeUninitSlice::new(&mut data)];
            let mut msg = socket2::MsgHdrMut::new()
                .with_buffers(&mut bufs)
                .with_control(&mut ctrl);
            let n = socket2::SockRef::from(sock).recvmsg(&mut msg, 0)?;
            (n, msg.control_len())
        };
        // SAFETY: both arrays were initialised (zeroes) before the kernel
        // wrote into them, so every byte is initialised.
        let data: &[u8] = unsafe { std::slice::from_raw_parts(data.as_ptr().cast(), n.min(2048)) };
        // SAFETY: as above.
        let ctrl: &[u8] =
            unsafe { std::slice::from_raw_parts(ctrl.as_ptr().cast(), clen.min(128)) };
        Ok(rtp(data, kernel_time(ctrl).unwrap_or_else(now_ns)))
    }

    /// The `SCM_TIMESTAMPNS` control message's `struct timespec`, in ns.
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    fn kernel_time(ctrl: &[u8]) -> Option<u64> {
        let word = |b: &[u8], at: usize| -> Option<u64> {
            Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        let int = |b: &[u8], at: usize| -> Option<i32> {
            Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let mut at = 0;
        while at + sys::CMSG_HDR <= ctrl.len() {
            let len = word(ctrl, at)? as usize;
            if len < sys::CMSG_HDR {
                return None;
            }
            if int(ctrl, at + 8)? == sys::SOL_SOCKET && int(ctrl, at + 12)? == sys::SO_TIMESTAMPNS {
                let (sec, nsec) = (word(ctrl, at + 16)?, word(ctrl, at + 24)?);
                return Some(sec * 1_000_000_000 + nsec);
            }
            at += len.div_ceil(8) * 8;
        }
        None
    }

    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    fn kernel_time(_: &[u8]) -> Option<u64> {
        None
    }
}
