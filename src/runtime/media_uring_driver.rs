//! The io_uring media driver's thread ([`super::media_uring`] has the
//! overview): its ring, the armed receives and their fixed-file slots, and
//! the loop that turns each batch of completions into host calls and sends.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::media::Transmit;

use super::media::{MediaPlane, lock};
use super::media_sockets::Sock;
use super::media_uring::{Ctl, Uring, nofile_limit, sockaddr};
use super::media_uring_mem::{BufRing, SendSlots};

/// `slot_of` entry of a port with no fixed-file slot.
const NO_SLOT: u32 = u32::MAX;
/// Most fixed-file slots (also bounded by RLIMIT_NOFILE).
const MAX_SLOTS: u32 = 65536;

/// Submission queue entries.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries (multishot receives post many per submission).
const CQ_ENTRIES: u32 = 8192;
/// Completions to wait for before the coalescing delay is cut short.
const BATCH: usize = 64;
/// Buffer group id of the receive buffers.
const BGID: u16 = 0;

const KIND_SHIFT: u32 = 62;
const KIND_RECV: u64 = 0;
const KIND_SEND: u64 = 1;
const KIND_WAKE: u64 = 2;
const KIND_CANCEL: u64 = 3;

fn recv_data(port: u16, generation: u32) -> u64 {
    (KIND_RECV << KIND_SHIFT) | (u64::from(port) << 32) | u64::from(generation)
}

/// One received datagram of a batch, its payload still in a ring buffer.
struct Received {
    /// Index (in the driver's `planes`) of the plane owning `port`.
    plane: u8,
    port: u16,
    from: SocketAddr,
    bid: u16,
    start: usize,
    len: usize,
}

/// A port's socket as the driver receives on it.
struct Armed {
    generation: u32,
    sock: Arc<Sock>,
    /// Its fixed-file slot, or [`NO_SLOT`] (then used by descriptor).
    slot: u32,
}

impl Armed {
    fn target(&self) -> Target {
        if self.slot == NO_SLOT {
            Target::Fd(types::Fd(self.sock.as_raw()))
        } else {
            Target::Fixed(types::Fixed(self.slot))
        }
    }
}

enum Target {
    Fd(types::Fd),
    Fixed(types::Fixed),
}

pub(super) struct Driver {
    // Field order is drop order: the ring goes before the memory it uses.
    ring: IoUring,
    bufs: BufRing,
    sends: SendSlots,
    /// The planes this thread moves media for (each shard's ports are its
    /// own, so a port belongs to exactly one of them).
    planes: Vec<Arc<MediaPlane>>,
    /// Which planes have not stopped ([`Ctl::Stop`]); the thread ends with
    /// the last.
    running: Vec<bool>,
    /// Plane index by port, set when the port is armed.
    plane_of: Box<[u8]>,
    handle: Arc<Uring>,
    /// The receive template (name length) shared by every multishot recvmsg.
    msghdr: Box<libc::msghdr>,
    /// port → its armed multishot receive.
    armed: HashMap<u16, Armed>,
    /// Cancelled receives until their last completion.
    retiring: HashMap<(u16, u32), Armed>,
    /// Fixed-file slot by port ([`NO_SLOT`]: not armed, or no slot).
    slot_of: Box<[u32]>,
    free_slots: Vec<u32>,
    next_generation: u32,
    coalesce_us: u32,
}

impl Driver {
    pub(super) fn new(
        planes: Vec<Arc<MediaPlane>>,
        handle: Arc<Uring>,
        coalesce_us: u32,
    ) -> io::Result<Driver> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(SQ_ENTRIES)?;
        let slots = nofile_limit().clamp(1, u64::from(MAX_SLOTS)) as u32;
        ring.submitter().register_files_sparse(slots)?;
        let bufs = BufRing::new()?;
        // SAFETY: the ring memory lives in `bufs`, dropped after `ring`.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.ring_addr(),
                bufs.entries(),
                BGID,
                0,
            )?
        };
        // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let mut d = Driver {
            ring,
            bufs,
            sends: SendSlots::new(),
            running: vec![true; planes.len()],
            planes,
            plane_of: vec![0; 65536].into_boxed_slice(),
            handle,
            msghdr,
            armed: HashMap::new(),
            retiring: HashMap::new(),
            slot_of: vec![NO_SLOT; 65536].into_boxed_slice(),
            free_slots: (0..slots).rev().collect(),
            next_generation: 0,
            coalesce_us,
        };
        d.arm_wake();
        d.ring.submit()?;
        Ok(d)
    }

    fn push(&mut self, sqe: squeue::Entry) {
        // SAFETY: every pointer in our SQEs (msghdr, buffers, addresses)
        // stays valid until the operation's completion (see the callers).
        while unsafe { self.ring.submission().push(&sqe) }.is_err() {
            if let Err(e) = self.ring.submit() {
                tracing::warn!(error = %e, "media ring submit failed");
            }
        }
    }

    fn arm_wake(&mut self) {
        let sqe =
            opcode::PollAdd::new(types::Fd(self.handle.wake.as_raw_fd()), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(KIND_WAKE << KIND_SHIFT);
        self.push(sqe);
    }

    fn arm(&mut self, plane: u8, port: u16, sock: Arc<Sock>) {
        if let Some(old) = self.armed.remove(&port) {
            self.retire(port, old);
        }
        self.plane_of[usize::from(port)] = plane;
        self.next_generation = self.next_generation.wrapping_add(1);
        let slot = self.take_slot(&sock);
        let armed = Armed {
            generation: self.next_generation,
            sock,
            slot,
        };
        self.arm_recv(port, &armed);
        self.slot_of[usize::from(port)] = slot;
        self.armed.insert(port, armed);
    }

    /// A fixed-file slot holding `sock`, or [`NO_SLOT`] when none is free
    /// (that socket is then used by descriptor, its sends take the plane's
    /// direct path).
    fn take_slot(&mut self, sock: &Sock) -> u32 {
        let Some(slot) = self.free_slots.pop() else {
            return NO_SLOT;
        };
        match self
            .ring
            .submitter()
            .register_files_update(slot, &[sock.as_raw()])
        {
            Ok(_) => slot,
            Err(e) => {
                tracing::debug!(error = %e, "media socket not registered with the ring");
                self.free_slots.push(slot);
                NO_SLOT
            }
        }
    }

    fn arm_recv(&mut self, port: u16, armed: &Armed) {
        let msghdr: *const libc::msghdr = self.msghdr.as_ref();
        let sqe = match armed.target() {
            Target::Fixed(f) => opcode::RecvMsgMulti::new(f, msghdr, BGID).build(),
            Target::Fd(f) => opcode::RecvMsgMulti::new(f, msghdr, BGID).build(),
        };
        self.push(sqe.user_data(recv_data(port, armed.generation)));
    }

    /// Stop receiving on `port`: no more sends from it, cancel its receive;
    /// its slot and socket go with the receive's last completion.
    fn retire(&mut self, port: u16, armed: Armed) {
        if self.slot_of[usize::from(port)] == armed.slot {
            self.slot_of[usize::from(port)] = NO_SLOT;
        }
        let sqe = opcode::AsyncCancel::new(recv_data(port, armed.generation))
            .build()
            .user_data(KIND_CANCEL << KIND_SHIFT);
        self.retiring.insert((port, armed.generation), armed);
        self.push(sqe);
    }

    /// A cancelled receive is over: free its slot, drop our socket reference.
    fn retired(&mut self, armed: Armed) {
        if armed.slot != NO_SLOT {
            match self
                .ring
                .submitter()
                .register_files_update(armed.slot, &[-1])
            {
                Ok(_) => self.free_slots.push(armed.slot),
                Err(e) => tracing::warn!(error = %e, "media ring slot not released"),
            }
        }
    }

    /// Apply the queued requests; false on Stop.
    fn control(&mut self) -> bool {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
        unsafe {
            libc::read(
                self.handle.wake.as_raw_fd(),
                (&raw mut count).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        let ctls = std::mem::take(&mut *lock(&self.handle.ctl));
        for ctl in ctls {
            match ctl {
                Ctl::Arm { plane, port, sock } => {
                    // a stopped plane's late request: its socket just drops
                    if self.running.get(usize::from(plane)) == Some(&true) {
                        self.arm(plane, port, sock);
                    }
                }
                Ctl::Disarm(port) => {
                    if let Some(armed) = self.armed.remove(&port) {
                        self.retire(port, armed);
                    }
                }
                Ctl::Stop(plane) => {
                    if !self.stop_plane(plane) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Plane `plane` closed: cancel its receives. False once no plane is
    /// left (the thread then shuts down).
    fn stop_plane(&mut self, plane: u8) -> bool {
        if let Some(running) = self.running.get_mut(usize::from(plane)) {
            *running = false;
        }
        let ports: Vec<u16> = self
            .armed
            .keys()
            .copied()
            .filter(|&p| self.plane_of[usize::from(p)] == plane)
            .collect();
        for port in ports {
            if let Some(armed) = self.armed.remove(&port) {
                self.retire(port, armed);
            }
        }
        self.running.contains(&true)
    }

    pub(super) fn run(&mut self) {
        let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(CQ_ENTRIES as usize);
        let mut batch: Vec<Received> = Vec::with_capacity(CQ_ENTRIES as usize);
        let mut out: Vec<Transmit> = Vec::new();
        loop {
            let args = types::SubmitArgs::new().min_wait_usec(self.coalesce_us);
            let want = if self.coalesce_us > 0 { BATCH } else { 1 };
            match self.ring.submitter().submit_with_args(want, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::ETIME | libc::EBUSY)
                    ) => {}
                Err(e) => {
                    tracing::error!(error = %e, "media ring wait failed; driver stops");
                    return;
                }
            }
            cqes.clear();
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            let mut keep_going = true;
            for &(data, result, flags) in &cqes {
                match data >> KIND_SHIFT {
                    KIND_RECV => self.received(data, result, flags, &mut batch),
                    KIND_SEND => {
                        let plane = self.sends.free((data & 0xffff_ffff) as usize);
                        if result < 0
                            && let Some(p) = plane.and_then(|p| self.planes.get(usize::from(p)))
                        {
                            p.note_send_error();
                        }
                    }
                    KIND_WAKE => {
                        keep_going &= self.control();
                        if !cqueue::more(flags) {
                            self.arm_wake();
                        }
                    }
                    _ => {} // a cancel's own completion
                }
            }
            if !batch.is_empty() {
                self.relay(&mut batch, &mut out);
            }
            if !keep_going {
                self.shut_down(&mut cqes);
                return;
            }
        }
    }

    /// Cancel every receive and wait (bounded) for their last completions,
    /// so no receive is left writing into buffers about to be freed.
    fn shut_down(&mut self, cqes: &mut Vec<(u64, i32, u32)>) {
        let ports: Vec<u16> = self.armed.keys().copied().collect();
        for port in ports {
            if let Some(armed) = self.armed.remove(&port) {
                self.retire(port, armed);
            }
        }
        let ts = types::Timespec::new().nsec(10_000_000);
        for _ in 0..100 {
            if self.retiring.is_empty() {
                return;
            }
            let args = types::SubmitArgs::new().timespec(&ts);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args)
                && !matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::ETIME | libc::EBUSY)
                )
            {
                break;
            }
            cqes.clear();
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(data, _, flags) in cqes.iter() {
                if data >> KIND_SHIFT == KIND_RECV && !cqueue::more(flags) {
                    let key = ((data >> 32) as u16, data as u32);
                    self.retiring.remove(&key);
                }
            }
        }
        tracing::warn!(
            left = self.retiring.len(),
            "media ring: receives not cancelled in time; buffers leaked"
        );
        self.bufs.leak();
    }

    /// A receive completion: queue the datagram, re-arm an ended receive.
    fn received(&mut self, data: u64, result: i32, flags: u32, batch: &mut Vec<Received>) {
        let port = (data >> 32) as u16;
        let generation = data as u32;
        if let Some(bid) = cqueue::buffer_select(flags) {
            match self.datagram(bid, result) {
                Some((from, start, len)) => batch.push(Received {
                    plane: self.plane_of[usize::from(port)],
                    port,
                    from,
                    bid,
                    start,
                    len,
                }),
                None => self.bufs.recycle(bid),
            }
        }
        if cqueue::more(flags) {
            return;
        }
        // The multishot receive ended: cancelled, out of buffers (ENOBUFS:
        // recycled at the end of this batch), or an error such as an ICMP
        // report. Receive again unless the port was closed.
        if let Some(armed) = self.retiring.remove(&(port, generation)) {
            self.retired(armed);
            return;
        }
        if result < 0 && result != -libc::ENOBUFS {
            tracing::trace!(port, error = -result, "media recv ended");
        }
        if let Some(armed) = self.armed.remove(&port) {
            if armed.generation == generation {
                self.arm_recv(port, &armed);
            }
            self.armed.insert(port, armed);
        }
    }

    /// Where a received datagram is: source, payload offset and length in
    /// buffer `bid`. None for errors and truncated datagrams.
    fn datagram(&self, bid: u16, result: i32) -> Option<(SocketAddr, usize, usize)> {
        let len = usize::try_from(result).ok()?;
        let buf = self.bufs.get(bid, len)?;
        let msg = types::RecvMsgOut::parse(buf, &self.msghdr).ok()?;
        if msg.is_payload_truncated() || msg.is_name_data_truncated() {
            return None;
        }
        let from = sockaddr(msg.name_data())?;
        let payload = msg.payload_data();
        // the payload is the tail of the buffer's used part
        Some((from, len - payload.len(), payload.len()))
    }

    /// Run a batch through each plane's host under one lock per plane,
    /// then queue that plane's sends (before its lock is released).
    fn relay(&mut self, batch: &mut Vec<Received>, out: &mut Vec<Transmit>) {
        for index in 0..self.planes.len() {
            // u8: a driver serves at most MAX_CORES planes
            let index = index as u8;
            if batch.iter().any(|r| r.plane == index) {
                self.relay_plane(index, batch, out);
            }
        }
        for r in batch.drain(..) {
            self.bufs.recycle(r.bid);
        }
    }

    /// [`Self::relay`] for the datagrams of plane `index`.
    fn relay_plane(&mut self, index: u8, batch: &[Received], out: &mut Vec<Transmit>) {
        let plane = Arc::clone(&self.planes[usize::from(index)]);
        let wake = {
            let mut host = lock(&plane.host);
            let now = Instant::now();
            for r in batch.iter().filter(|r| r.plane == index) {
                let Some(buf) = self.bufs.get(r.bid, r.start + r.len) else {
                    continue;
                };
                let payload = &buf[r.start..];
                let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    host.handle_packet(now, r.port, r.from, payload)
                }));
                if handled.is_err() {
                    tracing::error!(
                        port = r.port,
                        "internal error in the media relay (panic caught)"
                    );
                }
            }
            out.extend(std::iter::from_fn(|| host.poll_transmit()));
            // Sent before the host is unlocked: the control task sends what
            // timers produce under the same lock, so packets of one stream
            // leave in the order the host made them (a telephone-event's
            // marker packet once trailed the next packet of the event).
            self.queue_sends(&plane, index, out);
            host.has_events() || plane.deadline_earlier(&host)
        };
        if wake {
            plane.kick.notify_one();
        }
    }

    /// One Send SQE per transmit (submitted at once), from the
    /// port's fixed-file slot. A transmit from a port the driver has no slot
    /// for (closed, not armed yet), or beyond the in-flight sends, goes
    /// through the plane's direct path (sent, or counted as an error).
    fn queue_sends(&mut self, plane: &MediaPlane, index: u8, out: &mut Vec<Transmit>) {
        let mut rest = Vec::new();
        for t in out.drain(..) {
            let slot = self.slot_of[usize::from(t.from_port)];
            if slot == NO_SLOT {
                rest.push(t);
                continue;
            }
            match self.sends.alloc(t, index) {
                Ok((i, buf, len, addr, addr_len)) => {
                    let sqe = opcode::Send::new(types::Fixed(slot), buf, len)
                        .dest_addr(addr)
                        .dest_addr_len(addr_len)
                        .flags(libc::MSG_DONTWAIT)
                        .build()
                        .user_data((KIND_SEND << KIND_SHIFT) | i as u64);
                    // buf and addr live in the send slot until its completion.
                    self.push(sqe);
                }
                Err(t) => rest.push(t),
            }
        }
        // The ring's sends go first: they were made first.
        if let Err(e) = self.ring.submit() {
            tracing::warn!(error = %e, "media ring submit failed");
        }
        plane.send_all(&mut rest);
    }
}
