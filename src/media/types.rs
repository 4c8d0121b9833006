//! The vocabulary of the relay: legs, configuration, outputs and counters of a
//! [`super::RelaySession`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ports::PortPair;
use super::rewrite::Codec;

/// One side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The calling side (leg A).
    A,
    /// The called side (leg B).
    B,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    pub(crate) fn idx(self) -> usize {
        self as usize
    }
}

/// RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Media packets (RFC 3550 §5).
    Rtp,
    /// Control packets (RFC 3550 §6), on `rtp + 1` or muxed (RFC 5761).
    Rtcp,
}

/// Timing configuration of a relay session (from the runtime configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// No RTP from either leg for this long raises [`Event::Inactive`] (e.g. 30 s).
    pub inactivity_timeout: Duration,
    /// A latched source silent this long may be replaced by a new one (RFC 4961).
    pub relatch_after: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            inactivity_timeout: Duration::from_secs(30),
            relatch_after: Duration::from_secs(2),
        }
    }
}

/// How DTMF travels on a leg (the trunk's `dtmf` option; the B2BUA maps its
/// dial-plan value to this with [`super::MediaCommand::SetDtmfMode`]).
///
/// A leg set to `Rfc4733` whose SDP negotiated no `telephone-event` cannot
/// receive events: digits toward it are played in-band instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DtmfMode {
    /// RFC 4733 telephone-event packets in the RTP stream (the default).
    #[default]
    Rfc4733,
    /// Audible tones in the audio (detected with Goertzel, ITU-T Q.24).
    Inband,
    /// SIP INFO, sent and received by the B2BUA: digits toward such a leg
    /// come out as [`Event::Dtmf`]; digits from it arrive as
    /// [`super::MediaCommand::SendDtmf`] toward the other leg.
    Info,
}

/// One leg as negotiated: local ports and what its SDP said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegConfig {
    /// Local port(s) allocated for this leg ([`super::PortAllocator`]).
    pub ports: PortPair,
    /// Remote RTP address from SDP (`c=` + `m=` port), if known yet.
    pub remote_rtp: Option<SocketAddr>,
    /// Remote RTCP address (`a=rtcp`); defaults to RTP port + 1 (RFC 3550 §11)
    /// when the leg is not muxed.
    pub remote_rtcp: Option<SocketAddr>,
    /// Codecs negotiated on this leg, for payload type mapping.
    pub codecs: Vec<Codec>,
}

/// A datagram the runtime must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Local port to send from (the destination leg's port: symmetric RTP, RFC 4961).
    pub from_port: u16,
    /// Destination address.
    pub to: SocketAddr,
    /// The rewritten packet.
    pub bytes: Bytes,
}

/// Something the B2BUA must know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A flow of `leg` latched (or re-latched) to `addr`.
    Latched {
        /// The leg whose remote address changed.
        leg: Leg,
        /// RTP or (non-muxed) RTCP.
        component: Component,
        /// The source now latched.
        addr: SocketAddr,
    },
    /// A DTMF digit from `from` that the other leg takes by SIP INFO (its
    /// DTMF mode is `info`): the B2BUA sends the INFO.
    Dtmf {
        /// The leg the digit came from.
        from: Leg,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
        /// How long it lasted.
        duration_ms: u32,
    },
    /// No RTP from either leg for the configured timeout: send BYE on both legs
    /// with a Reason header (e.g. `Reason: SIP;cause=408;text="RTP timeout"`).
    Inactive {
        /// Last RTP (or session start / resume from hold) before the silence.
        since: Instant,
    },
    /// The runtime could not bind `port` of this session (another process
    /// holds it): the leg using it gets no media, so the B2BUA ends the call
    /// instead of leaving it silent, and keeps the port out of use.
    PortUnavailable {
        /// The port that could not be bound.
        port: u16,
    },
}

/// Counters of one direction (packets received from one leg).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// RTP packets relayed.
    pub rtp_packets: u64,
    /// RTP bytes relayed.
    pub rtp_bytes: u64,
    /// RTCP packets relayed.
    pub rtcp_packets: u64,
    /// RTCP bytes relayed.
    pub rtcp_bytes: u64,
    /// Dropped: not valid RTP/RTCP.
    pub dropped_malformed: u64,
    /// Dropped: from a source other than the latched one.
    pub dropped_source: u64,
    /// Dropped: payload type not negotiated for this direction.
    pub dropped_payload_type: u64,
    /// Dropped: the other leg has no address yet.
    pub dropped_no_destination: u64,
    /// Packets sent toward the other leg that the relay encoded itself
    /// (transcoded audio; included in `rtp_packets`).
    pub transcoded_packets: u64,
    /// Packets made up by the relay toward the other leg: ringback, in-band
    /// DTMF tones, telephone-events (included in `rtp_packets`).
    pub generated_packets: u64,
    /// Dropped: arrived after later packets had been decoded (transcoding
    /// reorder window exceeded, or a duplicate).
    pub dropped_late: u64,
    /// Packets found missing and concealed (PLC, or Opus FEC) when transcoding.
    pub concealed_packets: u64,
    /// Not relayed while the relay played something itself toward the
    /// other leg (a digit or ringback): the leg's own audio is muted then.
    pub suppressed_packets: u64,
    /// DTMF digits received from this leg and interworked (any pairing but
    /// plain RFC 4733 pass-through).
    pub dtmf_digits: u64,
    /// Dropped: SRTP/SRTCP from this leg that failed authentication or was
    /// replayed, or packets toward the other leg that could not be
    /// protected (key exhausted).
    pub dropped_srtp: u64,
    /// When the last packet was relayed.
    pub last_packet: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_and_defaults() {
        assert_eq!(Leg::A.other(), Leg::B);
        assert_eq!(Leg::B.other(), Leg::A);
        assert_eq!((Leg::A.idx(), Leg::B.idx()), (0, 1));
        let c = RelayConfig::default();
        assert_eq!(c.inactivity_timeout, Duration::from_secs(30));
        assert!(c.relatch_after < c.inactivity_timeout);
        assert_eq!(DirectionStats::default().last_packet, None);
    }
}
