//! Memory the kernel reads or writes on behalf of the io_uring media driver
//! ([`super::media_uring`]): the provided receive buffers and the in-flight
//! sends. Both are allocated once and never move, so the addresses given to
//! the kernel stay valid until the driver (which owns them and drops them
//! after its ring) is gone.

use std::alloc::Layout;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use bytes::Bytes;
use io_uring::types::BufRingEntry;

use crate::media::Transmit;

/// Receive buffers (a power of two, at most 32768). Unit tests use few, so
/// a burst runs them out and the driver's re-arming after ENOBUFS is tested.
const BUFS: u16 = if cfg!(test) { 8 } else { 1024 };
/// Bytes per receive buffer: recvmsg header + source address + datagram.
/// Audio RTP is far smaller; a longer datagram is truncated and dropped.
pub(super) const BUF_SIZE: usize = 2048;
/// Sends in flight at once (beyond: the plane's direct `sendto`).
const SEND_SLOTS: usize = 2048;
const PAGE: usize = 4096;

/// A provided-buffer ring (`IORING_REGISTER_PBUF_RING`) and its buffers.
pub(super) struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    mem: NonNull<u8>,
    mem_layout: Layout,
    tail: u16,
    /// Never freed: the kernel may still use it.
    leaked: bool,
}

// SAFETY: the raw memory is only touched by the driver thread that owns it.
unsafe impl Send for BufRing {}

impl BufRing {
    /// Every buffer handed to the kernel.
    pub fn new() -> io::Result<BufRing> {
        let oom = || io::Error::from(io::ErrorKind::OutOfMemory);
        let ring_layout =
            Layout::from_size_align(usize::from(BUFS) * size_of::<BufRingEntry>(), PAGE)
                .map_err(|_| oom())?;
        let mem_layout =
            Layout::from_size_align(usize::from(BUFS) * BUF_SIZE, PAGE).map_err(|_| oom())?;
        // SAFETY: both layouts have a non-zero size.
        let (ring, mem) = unsafe {
            (
                std::alloc::alloc_zeroed(ring_layout),
                std::alloc::alloc_zeroed(mem_layout),
            )
        };
        let (Some(ring), Some(mem)) = (NonNull::new(ring.cast()), NonNull::new(mem)) else {
            return Err(oom());
        };
        let mut b = BufRing {
            ring,
            ring_layout,
            mem,
            mem_layout,
            tail: 0,
            leaked: false,
        };
        for bid in 0..BUFS {
            b.recycle(bid);
        }
        Ok(b)
    }

    /// Address of the ring, to register.
    pub fn ring_addr(&self) -> u64 {
        self.ring.as_ptr() as u64
    }

    /// Number of ring entries, to register.
    pub fn entries(&self) -> u16 {
        BUFS
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled and
    /// has not been given back yet.
    pub fn get(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= BUFS || len > BUF_SIZE {
            return None;
        }
        // SAFETY: in bounds (checked); the kernel does not write a buffer
        // between its completion and `recycle`.
        Some(unsafe {
            std::slice::from_raw_parts(self.mem.as_ptr().add(usize::from(bid) * BUF_SIZE), len)
        })
    }

    /// Give buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        if bid >= BUFS {
            return;
        }
        let idx = usize::from(self.tail & (BUFS - 1));
        // SAFETY: idx < BUFS entries; bid's memory is in bounds.
        unsafe {
            let e = &mut *self.ring.as_ptr().add(idx);
            e.set_addr(self.mem.as_ptr().add(usize::from(bid) * BUF_SIZE) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field overlays entry 0's reserved u16, aligned;
        // the kernel reads it concurrently, hence the atomic release store.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl BufRing {
    /// Keep the memory for the rest of the process (receives that could
    /// not be cancelled may still write into it).
    pub fn leak(&mut self) {
        self.leaked = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: allocated in `new` with these layouts; the ring using
        // them was dropped before (field order of the driver).
        unsafe {
            std::alloc::dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            std::alloc::dealloc(self.mem.as_ptr(), self.mem_layout);
        }
    }
}

struct Slot {
    busy: bool,
    /// Index of the plane whose transmit this is (its send errors count there).
    plane: u8,
    bytes: Bytes,
    addr: socket2::SockAddr,
}

/// What a Send SQE points to: slot, payload, length, address, its length.
pub(super) type SendRef = (
    usize,
    *const u8,
    u32,
    *const libc::sockaddr,
    libc::socklen_t,
);

/// The sends in flight: payload, destination and socket of each, by slot.
pub(super) struct SendSlots {
    slots: Box<[Slot]>,
    free: Vec<usize>,
}

impl SendSlots {
    /// All slots free.
    pub fn new() -> SendSlots {
        let unspecified = socket2::SockAddr::from(std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        SendSlots {
            slots: (0..SEND_SLOTS)
                .map(|_| Slot {
                    busy: false,
                    plane: 0,
                    bytes: Bytes::new(),
                    addr: unspecified.clone(),
                })
                .collect(),
            free: (0..SEND_SLOTS).rev().collect(),
        }
    }

    /// Hold `t` (plane `plane`'s) until its completion; gives the transmit
    /// back when every slot is taken or it is too long for one Send.
    pub fn alloc(&mut self, t: Transmit, plane: u8) -> Result<SendRef, Transmit> {
        let Ok(len) = u32::try_from(t.bytes.len()) else {
            return Err(t);
        };
        let Some(i) = self.free.pop() else {
            return Err(t);
        };
        let s = &mut self.slots[i];
        s.busy = true;
        s.plane = plane;
        s.addr = socket2::SockAddr::from(t.to);
        s.bytes = t.bytes;
        Ok((
            i,
            s.bytes.as_ptr(),
            len,
            s.addr.as_ptr().cast(),
            s.addr.len(),
        ))
    }

    /// A send completed: release its slot; returns the plane it sent for
    /// (None for a slot not in use).
    pub fn free(&mut self, i: usize) -> Option<u8> {
        let s = self.slots.get_mut(i)?;
        if !std::mem::take(&mut s.busy) {
            return None;
        }
        s.bytes = Bytes::new();
        self.free.push(i);
        Some(s.plane)
    }
}
