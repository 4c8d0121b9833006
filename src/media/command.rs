//! [`MediaCommand`]: what the B2BUA asks of the media plane. The B2BUA owns
//! port allocation (so it can write SDP at once); the media host (one per
//! shard, see [`super::host`]) binds the ports, runs one [`super::RelaySession`]
//! per call and reports [`super::Event`]s back tagged with the [`SessionId`].

use std::net::SocketAddr;

use super::rewrite::Codec;
use super::srtp::SrtpKeys;
use super::types::{DtmfMode, Leg, LegConfig, RelayConfig};

/// Identifies one call's media session across the B2BUA and the media host.
pub type SessionId = u64;

/// An instruction from a B2BUA call to the media plane, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCommand {
    /// Bind the ports of both legs and start relaying (remote addresses may be
    /// unknown yet: early offer before the answer, late offer).
    Open {
        /// The session.
        session: SessionId,
        /// Leg A (client side) as known now.
        a: LegConfig,
        /// Leg B (trunk side) as known now.
        b: LegConfig,
        /// Seed for the outgoing SSRCs.
        ssrc_seed: u64,
        /// Inactivity and re-latch timing.
        config: RelayConfig,
    },
    /// A new offer/answer completed on `leg`: its remote addresses and codecs.
    UpdateLeg {
        /// The session.
        session: SessionId,
        /// Which leg.
        leg: Leg,
        /// Remote RTP address from SDP, if any.
        remote_rtp: Option<SocketAddr>,
        /// Remote RTCP address (`a=rtcp`), if any.
        remote_rtcp: Option<SocketAddr>,
        /// Codecs negotiated on this leg.
        codecs: Vec<Codec>,
    },
    /// The call went on hold (sendonly/inactive/`c=0.0.0.0`) or resumed:
    /// suspends or restarts the inactivity timer.
    Hold {
        /// The session.
        session: SessionId,
        /// On hold now?
        on_hold: bool,
    },
    /// Let the next packet on `leg` re-latch (a new answer, forked early media).
    Relatch {
        /// The session.
        session: SessionId,
        /// Which leg.
        leg: Leg,
    },
    /// Play one DTMF digit toward `leg` in that leg's DTMF mode (RFC 4733
    /// packets or in-band tones): a digit that arrived by SIP INFO.
    SendDtmf {
        /// The session.
        session: SessionId,
        /// The leg that hears the digit.
        leg: Leg,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
        /// How long the digit lasts.
        duration_ms: u32,
    },
    /// Start (`Some`) or stop (`None`) ringback toward `leg`, in its codec,
    /// from our own SSRC; real RTP from the other leg stops it too.
    Ringback {
        /// The session.
        session: SessionId,
        /// The leg that hears the tone (the caller).
        leg: Leg,
        /// Tone plan, or `None` to stop.
        plan: Option<crate::dtmf::RingbackPlan>,
    },
    /// How DTMF travels on `leg` (default RFC 4733 until told otherwise):
    /// send it once after `Open` for each leg whose trunk says otherwise.
    SetDtmfMode {
        /// The session.
        session: SessionId,
        /// Which leg.
        leg: Leg,
        /// Its mode.
        mode: DtmfMode,
    },
    /// SDES-SRTP on `leg` (RFC 3711 with RFC 4568 keys): the relay
    /// unprotects what the leg sends with `keys.remote` and protects what it
    /// sends the leg with `keys.local`; `None` makes the leg plain RTP again.
    /// The B2BUA sends it right after the `Open` or `UpdateLeg` of the same
    /// offer/answer, in the same batch (so no packet is relayed between
    /// them); a context whose key did not change keeps its state.
    Srtp {
        /// The session.
        session: SessionId,
        /// Which leg.
        leg: Leg,
        /// The leg's keys, or `None` for plain RTP.
        keys: Option<SrtpKeys>,
    },
    /// Stop relaying and unbind the session's ports (the B2BUA has already
    /// returned them to its allocator).
    Close {
        /// The session.
        session: SessionId,
    },
}

impl MediaCommand {
    /// The session this command is about.
    pub fn session(&self) -> SessionId {
        match self {
            MediaCommand::Open { session, .. }
            | MediaCommand::UpdateLeg { session, .. }
            | MediaCommand::Hold { session, .. }
            | MediaCommand::Relatch { session, .. }
            | MediaCommand::SendDtmf { session, .. }
            | MediaCommand::Ringback { session, .. }
            | MediaCommand::SetDtmfMode { session, .. }
            | MediaCommand::Srtp { session, .. }
            | MediaCommand::Close { session } => *session,
        }
    }
}
