//! [`CallInfo`]: the read-only snapshot of a B2BUA call that admin `/calls`
//! shows (the runtime adds the media counters of [`CallInfo::media_session`]).

use std::time::Instant;

use crate::dialplan::MediaMode;
use crate::media::SessionId;

use super::call::Call;

/// One leg of a call as `/calls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    /// This leg's Call-ID.
    pub call_id: String,
    /// Remote party (From of leg A, To/Request-URI of leg B).
    pub peer: String,
    /// Trunk name (leg B) or listener name (leg A).
    pub via: String,
    /// Codecs negotiated on this leg (encoding/clock rate), empty before answer.
    pub codecs: Vec<String>,
    /// Local media port (anchored calls).
    pub media_port: Option<u16>,
}

/// A snapshot of one B2BUA call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// Shard-unique call number.
    pub id: u64,
    /// `calling`, `early`, `confirmed`, `ending`.
    pub state: &'static str,
    /// `anchor` or `bypass`.
    pub media_mode: &'static str,
    /// Leg A (client side, UAS) and leg B (trunk side, UAC).
    pub legs: [LegInfo; 2],
    /// The media session, when anchored.
    pub media_session: Option<SessionId>,
    /// When the INVITE arrived.
    pub started: Instant,
    /// When the call was answered.
    pub answered: Option<Instant>,
}

/// A `/calls` snapshot of `call`.
pub(crate) fn info(call: &Call) -> CallInfo {
    let peer_a = call
        .a_invite
        .from_hdr()
        .map(|f| String::from_utf8_lossy(f.uri.as_bytes()).into_owned())
        .unwrap_or_default();
    let peer_b = String::from_utf8_lossy(call.b.remote_target.as_bytes()).into_owned();
    let ports = call.media.ports;
    CallInfo {
        id: call.id,
        state: call.state.name(),
        media_mode: match call.media.mode {
            MediaMode::Anchor => "anchor",
            MediaMode::Bypass => "bypass",
        },
        legs: [
            LegInfo {
                call_id: String::from_utf8_lossy(&call.a.call_id).into_owned(),
                peer: peer_a,
                via: call.a_listener.clone(),
                codecs: call.media.codecs[0].clone(),
                media_port: ports.map(|p| p[0].rtp),
            },
            LegInfo {
                call_id: String::from_utf8_lossy(&call.b.call_id).into_owned(),
                peer: peer_b,
                via: call.trunk().map(|t| t.name.clone()).unwrap_or_default(),
                codecs: call.media.codecs[1].clone(),
                media_port: ports.map(|p| p[1].rtp),
            },
        ],
        media_session: call.media.session,
        started: call.started,
        answered: call.answered,
    }
}
