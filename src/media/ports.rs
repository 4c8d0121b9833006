//! RTP port allocation from a configured range.
//!
//! Without rtcp-mux each call leg needs a pair: an even RTP port and the next odd
//! port for RTCP (RFC 3550 §11). With rtcp-mux (RFC 5761) one port carries both.
//! Free slots are kept in a FIFO so a released port is reused as late as possible:
//! stray packets of a finished call then rarely land in a new one.

use std::collections::VecDeque;

use super::error::MediaError;

/// The local port(s) of one call leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortPair {
    /// RTP port (even unless the allocator is muxed).
    pub rtp: u16,
    /// RTCP port (`rtp + 1`), or `None` with rtcp-mux, where RTCP shares `rtp`.
    pub rtcp: Option<u16>,
}

impl PortPair {
    /// The port RTCP is sent from and received on: `rtcp`, or `rtp` when muxed.
    pub fn rtcp_port(&self) -> u16 {
        self.rtcp.unwrap_or(self.rtp)
    }
}

/// Hands out port pairs (or single muxed ports) from `first..=last` in O(1).
#[derive(Debug)]
pub struct PortAllocator {
    base: u16,
    stride: u16,
    mux: bool,
    free: VecDeque<u32>,
    used: Vec<bool>,
    in_use: usize,
}

impl PortAllocator {
    /// Creates an allocator over `first..=last`. Without `rtcp_mux` the range is
    /// cut into aligned pairs (even RTP, odd RTCP); an odd `first` skips one port.
    pub fn new(first: u16, last: u16, rtcp_mux: bool) -> Result<Self, MediaError> {
        let base = if rtcp_mux || first.is_multiple_of(2) {
            Some(first)
        } else {
            first.checked_add(1)
        };
        let stride: u16 = if rtcp_mux { 1 } else { 2 };
        let slots = match base {
            Some(b) if b <= last => {
                let span = u32::from(last) - u32::from(b) + 1;
                span / u32::from(stride)
            }
            _ => 0,
        };
        let (Some(base), true) = (base, slots > 0) else {
            return Err(MediaError::InvalidRange { first, last });
        };
        Ok(Self {
            base,
            stride,
            mux: rtcp_mux,
            free: (0..slots).collect(),
            used: vec![false; slots as usize],
            in_use: 0,
        })
    }

    /// Takes the least recently released free slot; [`MediaError::PortsExhausted`]
    /// when none is left (answer 503).
    pub fn allocate(&mut self) -> Result<PortPair, MediaError> {
        let slot = self.free.pop_front().ok_or(MediaError::PortsExhausted {
            capacity: self.capacity(),
        })?;
        self.used[slot as usize] = true;
        self.in_use += 1;
        // slot < slots, and base + slots*stride - 1 <= last: no overflow.
        let rtp = self.base + (slot as u16) * self.stride;
        Ok(PortPair {
            rtp,
            rtcp: (!self.mux).then(|| rtp + 1),
        })
    }

    /// Returns a pair to the pool. Releasing a pair twice, or one this allocator
    /// never handed out, is harmless and returns `false`.
    pub fn release(&mut self, pair: PortPair) -> bool {
        let Some(slot) = self.slot_of(pair.rtp) else {
            return false;
        };
        if !self.used[slot as usize] {
            return false;
        }
        self.used[slot as usize] = false;
        self.in_use -= 1;
        self.free.push_back(slot);
        true
    }

    /// Whether `port` (RTP or RTCP) is currently allocated.
    pub fn is_allocated(&self, port: u16) -> bool {
        let rtp = if self.mux { port } else { port & !1 };
        self.slot_of(rtp).is_some_and(|s| self.used[s as usize])
    }

    /// Number of allocations currently handed out.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Number of allocations the range holds.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    /// Whether this allocator hands out single muxed ports.
    pub fn is_muxed(&self) -> bool {
        self.mux
    }

    fn slot_of(&self, rtp: u16) -> Option<u32> {
        let off = rtp.checked_sub(self.base)?;
        if off % self.stride != 0 {
            return None;
        }
        let slot = u32::from(off / self.stride);
        ((slot as usize) < self.used.len()).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_odd_and_unique() {
        let mut a = PortAllocator::new(20001, 20010, false).unwrap();
        assert_eq!(a.capacity(), 4); // 20002..=20009
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            let p = a.allocate().unwrap();
            assert_eq!(p.rtp % 2, 0);
            assert_eq!(p.rtcp, Some(p.rtp + 1));
            assert!(p.rtp >= 20002 && p.rtp < 20010);
            assert!(seen.insert(p.rtp));
        }
        assert_eq!(a.in_use(), 4);
        assert_eq!(
            a.allocate(),
            Err(MediaError::PortsExhausted { capacity: 4 })
        );
    }

    #[test]
    fn muxed_uses_every_port() {
        let mut a = PortAllocator::new(30000, 30002, true).unwrap();
        let ports: Vec<_> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(
            ports.iter().map(|p| p.rtp).collect::<Vec<_>>(),
            [30000, 30001, 30002]
        );
        assert!(
            ports
                .iter()
                .all(|p| p.rtcp.is_none() && p.rtcp_port() == p.rtp)
        );
        assert!(a.allocate().is_err());
    }

    #[test]
    fn release_is_fifo_and_idempotent() {
        let mut a = PortAllocator::new(20000, 20005, false).unwrap();
        let p1 = a.allocate().unwrap();
        let p2 = a.allocate().unwrap();
        assert!(a.is_allocated(p1.rtp) && a.is_allocated(p1.rtp + 1));
        assert!(a.release(p1));
        assert!(!a.release(p1), "double release is a no-op");
        assert!(
            !a.release(PortPair {
                rtp: 20001,
                rtcp: None
            }),
            "not a slot"
        );
        assert!(
            !a.release(PortPair {
                rtp: 40000,
                rtcp: None
            }),
            "out of range"
        );
        assert_eq!(a.in_use(), 1);
        // FIFO: the never-used third slot comes before the just-released one.
        assert_eq!(a.allocate().unwrap().rtp, 20004);
        assert_eq!(a.allocate().unwrap().rtp, p1.rtp);
        assert!(a.release(p2));
        assert_eq!(a.in_use(), 2);
    }

    #[test]
    fn invalid_ranges_are_rejected() {
        assert!(PortAllocator::new(20001, 20001, false).is_err());
        assert!(PortAllocator::new(20010, 20000, true).is_err());
        assert!(PortAllocator::new(u16::MAX, u16::MAX, false).is_err());
        let a = PortAllocator::new(u16::MAX - 1, u16::MAX, false).unwrap();
        assert_eq!(a.capacity(), 1);
        assert!(PortAllocator::new(u16::MAX, u16::MAX, true).is_ok());
    }
}
