//! [`Call`]: the state of one B2BUA call, leg A (UAS) joined to leg B (UAC).
//!
//! ```text
//!   INVITE(A) ─▶ Calling ──1xx(B)──▶ Early ──2xx(B): ACK B, 200 to A──▶ WaitAck ──ACK(A)──▶ Confirmed
//!                  │  503/408/timeout/no answer: next trunk (new leg B)          │
//!                  │  other final(B): same final to A ─────────────┐             │ BYE either side,
//!                  │  CANCEL(A): 487 to A, CANCEL B ──▶ Ending ─────┤             │ RTP timeout, max
//!                  ▼                                                ▼             ▼ duration
//!                                                                  Done ◀── Ending (BYE answered)
//! ```
//!
//! Re-INVITE/UPDATE offers are relayed across in any confirmed state; an
//! offer arriving on a leg where one of ours is outstanding gets 491
//! (RFC 3261 §14.1, RFC 3311 §5.2).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::dialplan::{DtmfMode, MediaMode, RingbackTone, Trunk};
use crate::media::{Leg, PortPair, SessionId};
use crate::sdp::Sdp;
use crate::sip::message::Message;
use crate::sip::transaction::{Endpoint, TxId};
use crate::sip::transport::Flow;

use super::dialog::Dialog;
use super::sdp_plan::LegOrigin;

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    /// INVITE sent on leg B, nothing but 100 back.
    Calling,
    /// A provisional (180/183) came back and was relayed.
    Early,
    /// 200 sent to A, waiting for its ACK.
    WaitAck,
    /// Both legs confirmed.
    Confirmed,
    /// Tearing down: waiting for BYE/CANCEL outcomes.
    Ending,
}

impl CallState {
    /// The name `/calls` shows.
    pub fn name(self) -> &'static str {
        match self {
            CallState::Calling => "calling",
            CallState::Early => "early",
            CallState::WaitAck => "answering",
            CallState::Confirmed => "confirmed",
            CallState::Ending => "ending",
        }
    }
}

/// One trunk to try, with the flow that reaches it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The trunk (name, address, policy).
    pub trunk: Trunk,
    /// Local listener, transport and remote address for it.
    pub flow: Flow,
}

/// What a client transaction of a call is for.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// The INVITE of attempt `n` on leg B.
    Invite { attempt: usize },
    /// A request whose answer changes nothing (CANCEL, PRACK, OPTIONS).
    Fire,
    /// A BYE we sent on `leg` while ending.
    Bye,
    /// An offer (re-INVITE or UPDATE) relayed onto `leg` for the server
    /// transaction `server` on the other leg, whose offer was `offer`.
    Offer {
        leg: Leg,
        server: TxId,
        server_req: Box<Message>,
        offer: Arc<Sdp>,
    },
    /// A request relayed as is onto `leg` (INFO, MESSAGE…) for `server`.
    Relay {
        leg: Leg,
        server: TxId,
        server_req: Box<Message>,
    },
}

/// A 2xx to an INVITE we retransmit until its ACK (RFC 3261 §13.3.1.4).
#[derive(Debug, Clone)]
pub(crate) struct Retransmit {
    pub leg: Leg,
    pub tx: TxId,
    pub cseq: u32,
    /// Where the 2xx went and its bytes as first sent.
    pub flow: Flow,
    pub wire: Bytes,
    pub interval: Duration,
    pub next: Instant,
    pub give_up: Instant,
    /// We offered in this 2xx (late offer): the ACK carries the answer.
    pub offered: Option<Sdp>,
}

/// Timers of a call (the B2BUA keeps one heap for all calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CallTimer {
    /// No final answer on attempt `n` in time.
    NoAnswer(usize),
    /// Retransmit pending 2xx responses.
    Retransmit,
    /// Maximum call duration reached.
    MaxDuration,
    /// Leg B never finished after CANCEL/BYE: give up (64·T1).
    GiveUp,
}

/// The media side of a call.
#[derive(Debug)]
pub(crate) struct MediaState {
    pub mode: MediaMode,
    /// Local ports of leg A and leg B (anchored calls).
    pub ports: Option<[PortPair; 2]>,
    /// Ports of `ports` the runtime could not bind: their pairs are kept out
    /// of the allocator when the call ends (some other process holds them).
    pub unbindable: Vec<u16>,
    /// The media host session, once opened.
    pub session: Option<SessionId>,
    /// What leg A offered in its INVITE (None: late offer). The four
    /// descriptions are shared (`Arc`): a call keeps, compares and hands them
    /// on several times, and deep copies were a quarter of the B2BUA's
    /// allocations per call.
    pub a_offer: Option<Arc<Sdp>>,
    /// What we offered to leg B in the INVITE.
    pub b_offer: Option<Arc<Sdp>>,
    /// The last answer leg B gave to our INVITE offer.
    pub b_answer: Option<Arc<Sdp>>,
    /// The last SDP leg A gave as answer or offer (latest description of A).
    pub a_latest: Option<Arc<Sdp>>,
    /// Our `o=` on each leg.
    pub origin: [LegOrigin; 2],
    /// Codec names in use per leg (for `/calls`).
    pub codecs: [Vec<String>; 2],
    /// On hold (inactivity timer suspended).
    pub on_hold: bool,
    /// An answer already given to the caller that later ones must repeat
    /// (ringback's 183): leg A's codec is fixed from then on.
    pub a_committed: Option<Sdp>,
    /// Ringback is playing toward the caller.
    pub ringback_playing: bool,
    /// SDES-SRTP per leg (`None`: plain RTP on that leg).
    pub srtp: [Option<super::srtp::LegCrypto>; 2],
}

/// One B2BUA call.
#[derive(Debug)]
pub(crate) struct Call {
    pub id: u64,
    pub state: CallState,
    pub started: Instant,
    pub answered: Option<Instant>,
    /// Leg A (toward the caller): dialog, the INVITE and its server transaction.
    pub a: Dialog,
    pub a_invite: Arc<Message>,
    pub a_tx: Option<TxId>,
    pub a_listener: String,
    /// Leg B (toward the current trunk).
    pub b: Dialog,
    pub b_invite: Option<Message>,
    pub b_tx: Option<TxId>,
    /// A provisional arrived on the current attempt (CANCEL allowed, §9.1).
    pub b_provisional: bool,
    /// A cancelled before leg B sent any provisional: CANCEL when one comes.
    pub cancel_pending: bool,
    /// ACK for leg B's 2xx (resent on 2xx retransmissions), or held until
    /// A's ACK brings the answer (bypass late offer).
    pub b_ack: Option<Message>,
    pub b_ack_held: bool,
    pub attempt: usize,
    pub targets: Vec<Target>,
    /// New Request-URI user and From user for leg B.
    pub to_user: String,
    pub from_user: String,
    pub from_display: Option<Bytes>,
    pub max_forwards: u8,
    pub media: MediaState,
    pub pending: HashMap<TxId, Pending>,
    /// ACKs we sent for 2xx answers to our INVITEs, by client transaction:
    /// resent when the 2xx is retransmitted (RFC 3261 §13.2.2.4).
    pub sent_acks: HashMap<TxId, (Flow, Bytes)>,
    pub retransmits: Vec<Retransmit>,
    /// BYEs / CANCEL outcomes still awaited while ending.
    pub awaiting: usize,
    /// Server transactions of offers received but not yet answered, per leg.
    pub offer_in: [Option<TxId>; 2],
    /// Client transactions of offers we sent, per leg.
    pub offer_out: [Option<TxId>; 2],
    /// Last failure on leg B (code, reason) for the final answer to A.
    pub last_failure: Option<(u16, String)>,
    /// Ringback plan for a 180 without SDP.
    pub ringback: RingbackTone,
    /// DTMF mode per leg (A: the caller's side, B: the trunk's policy).
    pub dtmf: [DtmfMode; 2],
}

impl Call {
    /// The dialog of `leg`.
    pub fn dialog(&mut self, leg: Leg) -> &mut Dialog {
        match leg {
            Leg::A => &mut self.a,
            Leg::B => &mut self.b,
        }
    }

    /// The trunk of the current attempt.
    pub fn trunk(&self) -> Option<&Trunk> {
        self.targets.get(self.attempt).map(|t| &t.trunk)
    }

    /// Send `ack` (for the 2xx answering our INVITE `tx` on a leg whose
    /// requests go to `flow`) and keep its bytes, resent when that 2xx is
    /// retransmitted (RFC 3261 §13.2.2.4).
    pub fn send_ack(&mut self, ep: &mut Endpoint, tx: Option<TxId>, flow: Flow, ack: &Message) {
        let wire = ack.to_bytes();
        ep.send_stateless_bytes(flow, wire.clone());
        if let Some(tx) = tx {
            self.sent_acks.insert(tx, (flow, wire));
        }
    }

    /// Whether leg B has answered (its dialog is confirmed).
    pub fn answered(&self) -> bool {
        matches!(self.state, CallState::WaitAck | CallState::Confirmed)
            || (self.state == CallState::Ending && self.answered.is_some())
    }
}
