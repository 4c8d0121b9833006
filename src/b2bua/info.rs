//! [`CallInfo`]: the read-only snapshot of a B2BUA call that admin `/calls`
//! shows (the runtime adds the media counters of [`CallInfo::media_session`]).

use std::time::Instant;

use crate::media::SessionId;

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
