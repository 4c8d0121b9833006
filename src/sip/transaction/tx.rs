//! State shared by the four transaction machines, and the context through
//! which they act (transmit, report to the TU, arm timers).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::key::{ClientKey, ServerKey};
use super::timers::{Durations, Timer, TimerHeap, TimerTable};
use super::{Output, TxId, TxState};
use crate::sip::message::Message;
use crate::sip::transport::{Flow, Transmit};

/// Which machine a transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// INVITE client transaction (RFC 3261 Figure 5).
    Ict,
    /// Non-INVITE client transaction (Figure 6).
    Nict,
    /// INVITE server transaction (Figure 7).
    Ist,
    /// Non-INVITE server transaction (Figure 8).
    Nist,
}

/// How a transaction is found in the endpoint's indexes.
#[derive(Clone, Debug)]
pub(super) enum Key {
    /// Client transaction key (absent when the TU sent a request without branch).
    Client(Option<ClientKey>),
    /// Server transaction key.
    Server(ServerKey),
}

/// One transaction.
#[derive(Debug)]
pub(super) struct Tx {
    /// Its id.
    pub id: TxId,
    /// Which machine.
    pub kind: Kind,
    /// Current state.
    pub state: TxState,
    /// Client: where the request goes. Server: where responses go.
    pub flow: Flow,
    /// The request that created the transaction; `None` once the
    /// transaction only waits ([`Tx::shed_if_waiting`]). Boxed: 8 bytes
    /// instead of ~200 in every lingering transaction.
    pub request: Option<Box<Message>>,
    /// Client: the serialized request. Server: the last response sent (empty
    /// before the first), resent on request retransmissions and Timer G.
    pub wire: Bytes,
    /// ICT: the ACK for a 300–699 final, resent on its retransmissions.
    pub ack: Bytes,
    /// IST: To tag of the final response (RFC 2543 ACK matching).
    pub resp_to_tag: Option<Bytes>,
    /// Current retransmission interval of Timer A, E or G.
    pub interval: Duration,
    /// Armed timers.
    pub timers: TimerTable,
    /// Index key, for removal.
    pub key: Key,
}

impl Tx {
    /// A fresh transaction in `state`.
    pub fn new(id: TxId, kind: Kind, state: TxState, flow: Flow, request: Message, key: Key) -> Tx {
        Tx {
            id,
            kind,
            state,
            flow,
            request: Some(Box::new(request)),
            wire: Bytes::new(),
            ack: Bytes::new(),
            resp_to_tag: None,
            interval: Duration::ZERO,
            timers: TimerTable::default(),
            key,
        }
    }

    /// In a wait state (ICT/NICT Completed or Accepted — Timers D/K/M; IST
    /// Completed, Confirmed or Accepted — Timers G/H/I/L; NIST Completed —
    /// Timer J) a transaction only absorbs retransmissions: its key, `wire`
    /// (server: the last response, resent in Completed) and `ack` are all it
    /// needs. The request
    /// (and, for a client, its serialized copy) is dropped so the 32 s of
    /// RFC 3261/6026 lingering hold ~1 KiB per transaction, not the whole
    /// received datagram and its parsed headers (measured: 1.1 GiB RSS at
    /// 2000 calls/s before, most of the benchmark's page-fault time).
    pub fn shed_if_waiting(&mut self) {
        let waiting = match self.kind {
            Kind::Ict | Kind::Nict => matches!(self.state, TxState::Completed | TxState::Accepted),
            Kind::Ist => matches!(
                self.state,
                TxState::Completed | TxState::Confirmed | TxState::Accepted
            ),
            Kind::Nist => self.state == TxState::Completed,
        };
        if !waiting || self.request.is_none() {
            return;
        }
        self.request = None;
        // A client resends nothing once waiting; an IST in Accepted absorbs
        // INVITE retransmissions without answering them (RFC 6026 §7.1: the
        // TU retransmits its 2xx), so its copy of the 2xx goes too.
        if matches!(self.kind, Kind::Ict | Kind::Nict)
            || (self.kind == Kind::Ist && self.state == TxState::Accepted)
        {
            self.wire = Bytes::new();
        }
    }

    /// True on a reliable transport: no retransmission timers, zero linger.
    pub fn reliable(&self) -> bool {
        self.flow.transport.is_reliable()
    }
}

/// What a machine wants done with the transaction after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Keep it.
    Stay,
    /// Remove it (the endpoint reports `Output::Terminated`).
    Done,
}

/// The endpoint pieces a machine may touch while handling one input.
pub(super) struct Ctx<'a> {
    /// The current instant (for timers: the instant the timer was due).
    pub now: Instant,
    /// Timer durations.
    pub d: &'a Durations,
    /// Output queue.
    pub out: &'a mut VecDeque<Output>,
    /// Timer heap.
    pub heap: &'a mut TimerHeap,
}

impl Ctx<'_> {
    /// Arm timer `t` of `tx` to fire `after` from now.
    pub fn arm(&mut self, tx: &mut Tx, t: Timer, after: Duration) {
        self.heap.arm(&mut tx.timers, tx.id, t, self.now, after);
    }

    /// Arm a "linger" timer (D, I, J, K): on reliable transports it is zero,
    /// so the transaction terminates at once (§17.1.1.2, §17.1.2.2, §17.2.1,
    /// §17.2.2).
    pub fn linger(&mut self, tx: &mut Tx, t: Timer, unreliable: Duration) -> Step {
        let d = Durations::linger(tx.reliable(), unreliable);
        if d.is_zero() {
            Step::Done
        } else {
            self.arm(tx, t, d);
            Step::Stay
        }
    }

    /// Queue bytes for the transport; client transmits carry their tx id.
    pub fn send(&mut self, flow: Flow, bytes: Bytes, tx: Option<TxId>) {
        self.out
            .push_back(Output::Transmit(Transmit { flow, bytes, tx }));
    }

    /// Queue a report to the TU.
    pub fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }
}
