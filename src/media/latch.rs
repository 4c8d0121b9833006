//! Symmetric latching (RFC 4961, "comedia" behaviour of SBCs behind NAT).
//!
//! A leg's remote address from SDP is only a first guess: endpoints behind NAT send
//! from a translated address. The first valid packet received on the leg's port
//! *latches* the leg: from then on the relay sends to the address the packets come
//! from, and drops packets from anyone else. A latched source that has been silent
//! for `relatch_after` may be replaced by a new one; [`Latch::unlatch`] (re-INVITE,
//! forked early media switching branches) lets the next packet latch at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Outcome of [`Latch::check`] for one received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchOutcome {
    /// The packet comes from the latched source.
    Accepted,
    /// The packet latched (or re-latched) the leg to its source.
    Latched,
    /// The leg is latched to another, still active, source.
    Rejected,
}

/// Latching state of one transport flow (RTP, or RTCP when not muxed) of a leg.
#[derive(Debug, Clone)]
pub struct Latch {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    last_rx: Option<Instant>,
    relatch_after: Duration,
}

impl Latch {
    /// A latch that sends to `signalled` (the SDP address) until a packet arrives.
    pub fn new(signalled: Option<SocketAddr>, relatch_after: Duration) -> Self {
        Self {
            signalled,
            latched: None,
            last_rx: None,
            relatch_after,
        }
    }

    /// Decides whether a packet from `from` received at `now` is accepted, and
    /// latches when the leg is open or its source has been silent long enough.
    /// Call only for packets that parsed: garbage must never move a latch.
    pub fn check(&mut self, now: Instant, from: SocketAddr) -> LatchOutcome {
        match self.latched {
            Some(addr) if addr == from => {
                self.last_rx = Some(now);
                LatchOutcome::Accepted
            }
            Some(_) if !self.silent(now) => LatchOutcome::Rejected,
            _ => {
                self.latched = Some(from);
                self.last_rx = Some(now);
                LatchOutcome::Latched
            }
        }
    }

    fn silent(&self, now: Instant) -> bool {
        self.last_rx
            .is_none_or(|t| now.saturating_duration_since(t) >= self.relatch_after)
    }

    /// Opens the latch: the next valid packet from any source latches the leg.
    /// Until then packets keep going to the previously latched address.
    pub fn unlatch(&mut self) {
        self.last_rx = None;
    }

    /// Replaces the signalled address (new SDP in a re-INVITE or UPDATE) and opens
    /// the latch, so the new endpoint is latched by its first packet.
    pub fn set_signalled(&mut self, addr: Option<SocketAddr>) {
        self.signalled = addr;
        self.latched = None;
        self.last_rx = None;
    }

    /// Where packets for this flow are sent: the latched source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    /// The latched source, if any packet has been accepted yet.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_packet_latches_even_when_sdp_differs() {
        let t0 = super::super::test_epoch();
        let mut l = Latch::new(Some(addr("10.0.0.1:4000")), Duration::from_secs(2));
        assert_eq!(l.destination(), Some(addr("10.0.0.1:4000")));
        assert_eq!(
            l.check(t0, addr("203.0.113.5:61000")),
            LatchOutcome::Latched
        );
        assert_eq!(l.destination(), Some(addr("203.0.113.5:61000")));
        assert_eq!(
            l.check(t0, addr("203.0.113.5:61000")),
            LatchOutcome::Accepted
        );
        assert_eq!(l.check(t0, addr("10.0.0.1:4000")), LatchOutcome::Rejected);
    }

    #[test]
    fn relatch_only_after_silence() {
        let t0 = super::super::test_epoch();
        let gap = Duration::from_secs(2);
        let mut l = Latch::new(None, gap);
        assert_eq!(l.destination(), None);
        l.check(t0, addr("192.0.2.1:1000"));
        let t1 = t0 + gap - Duration::from_millis(1);
        assert_eq!(l.check(t1, addr("192.0.2.2:1000")), LatchOutcome::Rejected);
        // The rejected packet did not refresh the old source's activity.
        assert_eq!(
            l.check(t0 + gap, addr("192.0.2.2:1000")),
            LatchOutcome::Latched
        );
        assert_eq!(l.latched(), Some(addr("192.0.2.2:1000")));
    }

    #[test]
    fn unlatch_and_new_sdp_open_the_latch() {
        let t0 = super::super::test_epoch();
        let mut l = Latch::new(None, Duration::from_secs(60));
        l.check(t0, addr("192.0.2.1:1000"));
        l.unlatch();
        assert_eq!(
            l.destination(),
            Some(addr("192.0.2.1:1000")),
            "keeps sending meanwhile"
        );
        assert_eq!(l.check(t0, addr("192.0.2.9:9")), LatchOutcome::Latched);
        l.set_signalled(Some(addr("198.51.100.7:5004")));
        assert_eq!(l.destination(), Some(addr("198.51.100.7:5004")));
        assert_eq!(l.check(t0, addr("192.0.2.3:3")), LatchOutcome::Latched);
    }
}
