//! Errors of the media relay: configuration errors the caller must handle
//! ([`MediaError`]) and the reasons a single packet is dropped ([`DropReason`]).
//!
//! A dropped packet is never an error for the call: the relay counts it (see
//! [`super::DirectionStats`]) and goes on, because network input is untrusted.

use std::fmt;

/// Why a datagram could not be parsed as RTP (RFC 3550 §5.1) or RTCP (RFC 3550 §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the fixed header (12 bytes for RTP, 8 for RTCP).
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// CSRC list or header extension runs past the end of the datagram.
    HeaderTruncated,
    /// Padding flag set with a zero or oversized padding count.
    BadPadding,
    /// An RTCP packet's length field does not match the compound packet.
    BadRtcpLength,
    /// An RTCP packet type outside 192–223 (RFC 5761 §4), or the first packet of a
    /// compound is not SR/RR (RFC 3550 §6.1).
    BadRtcpType,
}

/// Why the relay dropped one packet; each maps to one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The bytes are not valid RTP/RTCP.
    Malformed(Malformed),
    /// The leg is latched to another source that has not been silent long enough
    /// to re-latch (RFC 4961 symmetric RTP).
    UnexpectedSource,
    /// The RTP payload type is not among the negotiated ones for this direction.
    UnknownPayloadType(u8),
    /// The packet arrived on a port that belongs to no leg of this session.
    UnknownPort(u16),
    /// The other leg has neither a latched nor a signalled (SDP) address yet.
    NoDestination,
    /// SRTP/SRTCP from an SRTP leg that failed authentication, was replayed
    /// or truncated (RFC 3711 §3.3).
    Srtp(super::srtp::SrtpError),
}

/// Errors returned to the caller (configuration and resource errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// The configured port range cannot hold a single allocation.
    InvalidRange {
        /// First port of the configured range.
        first: u16,
        /// Last port of the configured range (inclusive).
        last: u16,
    },
    /// Every port (pair) of the range is in use; the B2BUA answers 503.
    PortsExhausted {
        /// Number of allocations the range holds.
        capacity: usize,
    },
}

impl MediaError {
    /// The SIP status code a B2BUA answers with when this error blocks a call
    /// (RFC 3261 §21.5.4: 503 Service Unavailable for resource exhaustion).
    pub fn sip_status(&self) -> u16 {
        match self {
            MediaError::InvalidRange { .. } => 500,
            MediaError::PortsExhausted { .. } => 503,
        }
    }
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::InvalidRange { first, last } => {
                write!(f, "invalid RTP port range {first}-{last}")
            }
            MediaError::PortsExhausted { capacity } => {
                write!(f, "all {capacity} RTP port allocations are in use")
            }
        }
    }
}

impl std::error::Error for MediaError {}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Malformed(m) => write!(f, "malformed packet: {m:?}"),
            DropReason::UnexpectedSource => f.write_str("packet from an unexpected source"),
            DropReason::UnknownPayloadType(pt) => write!(f, "unknown payload type {pt}"),
            DropReason::UnknownPort(p) => write!(f, "packet on unknown local port {p}"),
            DropReason::NoDestination => f.write_str("no destination address for the other leg"),
            DropReason::Srtp(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_maps_to_503() {
        assert_eq!(MediaError::PortsExhausted { capacity: 1 }.sip_status(), 503);
        assert_eq!(
            MediaError::InvalidRange { first: 2, last: 1 }.sip_status(),
            500
        );
    }

    #[test]
    fn display_is_informative() {
        let e = MediaError::PortsExhausted { capacity: 500 };
        assert!(e.to_string().contains("500"));
        assert!(
            DropReason::UnknownPayloadType(77)
                .to_string()
                .contains("77")
        );
    }
}
