//! Media anchoring: the sans-IO RTP/RTCP relay a B2BUA anchors calls on, with
//! transcoding, DTMF interworking and the tones the gateway plays itself.
//!
//! ```text
//!   endpoint A (maybe NATed)                callgate                       endpoint B
//!                              ┌──────────────────────────────────┐
//!   RTP ───────────────────────▶ port A ─ parse ─ latch A ─ direction A→B ─▶ port B ─▶ B (latched
//!   (from any addr: the first  │  (RFC 3550)  (RFC 4961)                │             or SDP addr)
//!    valid packet latches A)   │                                  │
//!   A ◀──────────────── port A ◀─ direction B→A ─ latch B ─ parse ◀ port B ◀──────── RTP
//!                              │  RTCP: port+1, or muxed on the RTP port and told  │
//!                              │  apart by PT 64–95 (RFC 5761); SR/RR SSRCs rewritten
//!                              └──────────────────────────────────┘
//!      ports from PortAllocator      inactivity timer → Event::Inactive → BYE both legs
//!
//!   one direction (packets from X toward Y):
//!     codec on both legs ──────────── header rewrite (PT map) ────────────────┐
//!     other audio ─ reorder ─ decode (PLC/FEC) ─ [resample] ─ encode @ Y's ptime ┤ StreamRewriter:
//!            └─ X in-band digits: Goertzel (Q.24) ─▶ 4733 / Event::Dtmf         │ our SSRC, seq +1,
//!               (passed-through audio held 40 ms for it, the tone dropped)      │
//!     telephone-event ─ Y 4733: relay (PT + 48000↔8000) │ Y in-band: tones      │ timestamps
//!                     │ Y INFO: Event::Dtmf                                      │ continuous
//!     SendDtmf / Ringback ─ injector, timed at Y's ptime (X's audio muted) ──────┘ ──▶ Y
//! ```
//!
//! * [`codec`]: G.711, G.722 and Opus codecs, PLC and a resampler for transcoding.
//! * [`ports`]: [`PortAllocator`], even/odd pairs or single muxed ports, O(1).
//! * [`rtp`]: RTP validation (via `rtp-rs`), RTCP compound checks, header rewriting.
//! * [`latch`]: symmetric latching and re-latching.
//! * [`rewrite`]: payload type maps and SSRC/sequence/timestamp continuity.
//! * [`reorder`]: the small reorder window in front of a decoder.
//! * [`transcode`]: decoder (concealment by timestamp gaps) and encoder halves.
//! * `direction` (private): one direction's pass-through / transcoding / DTMF /
//!   injected tones, per the legs' codecs and [`DtmfMode`]s.
//! * [`session`]: [`RelaySession`], tying it together with counters and the
//!   inactivity timer; [`types`]: its configuration, outputs and counters.
//! * [`host`]: [`MediaHost`], every session of a shard driven by
//!   [`MediaCommand`]s: port routing, one timer heap, bind/unbind requests.
//!
//! Like every core module it never reads the clock, opens a socket or draws
//! randomness: `runtime/` binds the ports, feeds datagrams with `now`, sends the
//! [`Transmit`]s and calls [`RelaySession::handle_timeout`] at
//! [`RelaySession::poll_timeout`] — which, while the relay plays a tone or a
//! digit, is every packet time (20 ms), and whose [`Transmit`]s must be sent
//! like those of a packet. Whatever ends a call (BYE, CANCEL, failure,
//! [`Event::Inactive`]), the caller releases [`RelaySession::into_ports`].

#![warn(missing_docs)]

pub mod codec;
pub mod command;
mod direction;
pub mod error;
pub mod host;
pub mod latch;
pub mod ports;
pub mod reorder;
pub mod rewrite;
pub mod rtp;
pub mod session;
#[cfg(test)]
mod session_tests;
pub mod srtp;
pub mod transcode;
pub mod types;

pub use command::{MediaCommand, SessionId};
pub use error::{DropReason, Malformed, MediaError};
pub use host::{CommandRejected, HostTotals, MediaHost, PortChange};
pub use latch::{Latch, LatchOutcome};
pub use ports::{PortAllocator, PortPair};
pub use rewrite::{Codec, PtMapping, StreamRewriter, map_codecs};
pub use session::RelaySession;
pub use types::{
    Component, DirectionStats, DtmfMode, Event, Leg, LegConfig, RelayConfig, Transmit,
};

/// A fixed instant for unit tests (the only clock read in this module tree).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
