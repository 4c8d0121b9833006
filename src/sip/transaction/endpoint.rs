//! The transaction endpoint: routes received messages to transactions
//! (§17.1.3, §17.2.3), creates transactions for the TU, drives timers.
//!
//! ```text
//!   handle_message ─┬─ request ─ ServerKey ─┬─ match ─▶ IST / NIST (retransmission, ACK)
//!                   │                       └─ none ──▶ new IST / NIST ─▶ Output::Request
//!                   │                                   (ACK: Output::Request { tx: None })
//!                   └─ response ─ ClientKey ─┬─ match ─▶ ICT / NICT ─▶ Output::Response
//!                                            └─ none ──▶ Output::StrayResponse
//!   send_request ─▶ new ICT / NICT        send_response ─▶ IST / NIST
//!   handle_timeout ─▶ due heap entries ─▶ machine.on_timer
//! ```

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Instant;

use super::index::KeyIndex;
use super::key::{ClientKey, ServerKey};
use super::slab::TxSlab;
use super::timers::{Durations, Timer, TimerHeap};
use super::tx::{Ctx, Key, Kind, Step, Tx};
use super::{Output, TimerConfig, TxId, TxState, ict, ist, nict, nist};
use crate::sip::message::{HeaderName, Message, Method};
use crate::sip::transport::{Flow, Transmit, response_target};

/// Heap entries tolerated beyond this many per live transaction before the
/// heap is compacted (cancelled timers stay in it until they surface).
const STALE_FACTOR: usize = 4;

/// Owns every client and server transaction of one SIP element (one shard).
#[derive(Debug)]
pub struct Endpoint {
    d: Durations,
    symmetric: bool,
    /// Transactions by id (a slab: an id is an index, and a freed slot is
    /// the next one reused).
    txs: TxSlab,
    /// Key → transaction matching (ids only; keys live in the `Tx`).
    index: KeyIndex,
    heap: TimerHeap,
    out: VecDeque<Output>,
}

impl Endpoint {
    /// A new endpoint with the given timer values. Responses of server
    /// transactions go back to the request's source (symmetric response
    /// routing, see [`Endpoint::set_symmetric_responses`]).
    pub fn new(cfg: TimerConfig) -> Endpoint {
        Endpoint {
            d: Durations::new(cfg),
            symmetric: true,
            txs: TxSlab::default(),
            index: KeyIndex::default(),
            heap: TimerHeap::default(),
            out: VecDeque::new(),
        }
    }

    /// Choose where server transactions send responses: `true` (default) the
    /// request's source address and port, as an SBC does for NAT; `false`
    /// the RFC 3261 §18.2.2 / RFC 3581 rules (see
    /// [`crate::sip::transport::response_target`]). Applies to transactions
    /// created afterwards.
    pub fn set_symmetric_responses(&mut self, symmetric: bool) {
        self.symmetric = symmetric;
    }

    /// A parsed message arrived on `flow`. The caller stamps requests with
    /// [`crate::sip::transport::add_received_rport`] first if it wants that.
    ///
    /// Requests are matched to a server transaction (§17.2.3, RFC 2543
    /// fallback): retransmissions are absorbed (the last response resent), an
    /// ACK for a non-2xx final is absorbed (Completed → Confirmed), an ACK for
    /// a 2xx (IST Accepted, or no transaction) becomes `Output::Request { tx:
    /// None }`, anything else creates an IST/NIST reported as
    /// `Output::Request`. Responses are matched to a client transaction
    /// (§17.1.3) or reported as `Output::StrayResponse`.
    pub fn handle_message(&mut self, now: Instant, flow: Flow, msg: Message) {
        if msg.is_request() {
            self.on_request(now, flow, msg);
        } else {
            self.on_response(now, flow, msg);
        }
        self.tidy();
    }

    fn on_request(&mut self, now: Instant, flow: Flow, msg: Message) {
        // Without a Via or CSeq the request cannot be matched nor answered.
        let Some(key) = ServerKey::of_request(&msg, None) else {
            return;
        };
        let is_ack = msg.method() == Some(&Method::Ack);
        if let Some(id) = self.index.server(&self.txs, &key)
            && let Some(tx) = self.txs.get_mut(&id)
            // RFC 2543 ACKs also match on the To tag of the response (§17.2.3).
            && !(is_ack && key.is_legacy() && tx.resp_to_tag != msg.to_tag())
        {
            let mut ctx = Ctx {
                now,
                d: &self.d,
                out: &mut self.out,
                heap: &mut self.heap,
            };
            let (step, to_tu) = match tx.kind {
                Kind::Ist => ist::on_request(tx, &mut ctx, &msg),
                _ => (nist::on_request(tx, &mut ctx), ist::Matched::Absorbed),
            };
            tx.shed_if_waiting();
            if to_tu == ist::Matched::AckToTu {
                self.out.push_back(Output::Request {
                    tx: None,
                    flow,
                    msg,
                });
            }
            if step == Step::Done {
                self.remove(id);
            }
            return;
        }
        if is_ack {
            // An ACK for a 2xx is its own transaction-less request (§17.2.3).
            self.out.push_back(Output::Request {
                tx: None,
                flow,
                msg,
            });
            return;
        }
        let id = self.alloc_id();
        let (kind, state) = if msg.method() == Some(&Method::Invite) {
            (Kind::Ist, TxState::Proceeding)
        } else {
            (Kind::Nist, TxState::Trying)
        };
        let reply = response_target(&msg, flow, self.symmetric);
        // The TU gets the request; the transaction keeps its request line and
        // Call-ID only (for `describe`): a server transaction answers with
        // what the TU builds and never reads its request again.
        let summary = Message {
            start: msg.start.clone(),
            headers: msg
                .header(HeaderName::CallId)
                .cloned()
                .into_iter()
                .collect(),
            body: Bytes::new(),
        };
        let tx = Tx::new(id, kind, state, reply, summary, Key::Server(key));
        self.txs.insert(tx);
        self.index.insert(&self.txs, id);
        self.out.push_back(Output::Request {
            tx: Some(id),
            flow,
            msg,
        });
    }

    fn on_response(&mut self, now: Instant, flow: Flow, msg: Message) {
        let found = ClientKey::of_response(&msg).and_then(|k| self.index.client(&self.txs, &k));
        let Some((id, tx)) = found.and_then(|id| self.txs.get_mut(&id).map(|tx| (id, tx))) else {
            self.out.push_back(Output::StrayResponse { flow, msg });
            return;
        };
        let mut ctx = Ctx {
            now,
            d: &self.d,
            out: &mut self.out,
            heap: &mut self.heap,
        };
        let step = match tx.kind {
            Kind::Ict => ict::on_response(tx, &mut ctx, msg),
            _ => nict::on_response(tx, &mut ctx, msg),
        };
        tx.shed_if_waiting();
        if step == Step::Done {
            self.remove(id);
        }
    }

    /// The TU sends a request: creates an ICT (INVITE) or NICT (others) and
    /// transmits it. The caller has already pushed its own Via with a unique
    /// branch. An ACK must go through [`Endpoint::send_stateless`]; if one
    /// is passed here anyway it is sent statelessly and the returned id
    /// names no transaction.
    pub fn send_request(&mut self, now: Instant, flow: Flow, req: Message) -> TxId {
        let id = self.alloc_id();
        let kind = match req.method() {
            Some(Method::Invite) => Kind::Ict,
            Some(Method::Ack) | None => {
                self.send_stateless(flow, req);
                self.txs.release(id);
                return id;
            }
            Some(_) => Kind::Nict,
        };
        let key = ClientKey::of_request(&req);
        let mut tx = Tx::new(id, kind, TxState::Calling, flow, req, Key::Client(key));
        tx.wire = tx
            .request
            .as_deref()
            .map(Message::to_bytes)
            .unwrap_or_default();
        let mut ctx = Ctx {
            now,
            d: &self.d,
            out: &mut self.out,
            heap: &mut self.heap,
        };
        match kind {
            Kind::Ict => ict::start(&mut tx, &mut ctx),
            _ => nict::start(&mut tx, &mut ctx),
        }
        self.txs.insert(tx);
        self.index.insert(&self.txs, id);
        self.tidy();
        id
    }

    /// The TU answers server transaction `tx` (provisional or final); the
    /// transaction handles retransmission (Timer G) and state. Returns false
    /// (and sends nothing) for an unknown or terminated transaction, a client
    /// transaction, or a response the state does not allow (e.g. a second
    /// final; in IST Accepted only 2xx retransmissions pass, RFC 6026 §7.1).
    pub fn send_response(&mut self, now: Instant, tx: TxId, resp: Message) -> bool {
        self.send_response_wire(now, tx, resp).is_some()
    }

    /// [`Endpoint::send_response`], returning where the response went and
    /// its bytes as sent (shared, not copied): what the TU needs to
    /// retransmit a 2xx itself (RFC 3261 §13.3.1.4) after the transaction
    /// stopped holding it. `None` when nothing was sent.
    pub fn send_response_wire(
        &mut self,
        now: Instant,
        tx: TxId,
        resp: Message,
    ) -> Option<(Flow, Bytes)> {
        let t = self.txs.get_mut(&tx)?;
        let mut ctx = Ctx {
            now,
            d: &self.d,
            out: &mut self.out,
            heap: &mut self.heap,
        };
        let step = match t.kind {
            Kind::Ist => ist::send_response(t, &mut ctx, resp),
            Kind::Nist => nist::send_response(t, &mut ctx, resp),
            Kind::Ict | Kind::Nict => None,
        };
        let step = step?;
        let sent = (t.flow, t.wire.clone());
        t.shed_if_waiting();
        if step == Step::Done {
            self.remove(tx);
        }
        self.tidy();
        Some(sent)
    }

    /// [`Endpoint::send_stateless`] for bytes already serialised (an ACK
    /// kept for 2xx retransmissions).
    pub fn send_stateless_bytes(&mut self, flow: Flow, bytes: Bytes) {
        self.out.push_back(Output::Transmit(Transmit {
            flow,
            bytes,
            tx: None,
        }));
    }

    /// Send without a transaction (ACK for a 2xx, stateless forwarding of
    /// stray responses and 2xx retransmissions, §16.7 / §16.11).
    pub fn send_stateless(&mut self, flow: Flow, msg: Message) {
        self.send_stateless_bytes(flow, msg.to_bytes());
    }

    /// The runtime could not deliver a transmit of transaction `tx` (TCP
    /// connect refused, ICMP unreachable): §8.1.3.1 / §17.1.4. The
    /// transaction terminates with `Output::TransportError` then
    /// `Output::Terminated`, in whatever state it was.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        let _ = now;
        if self.txs.contains_key(&tx) {
            self.out.push_back(Output::TransportError { tx });
            self.remove(tx);
            self.tidy();
        }
    }

    /// The TU gives up on a client transaction that will never finish by
    /// itself: an INVITE in Proceeding whose CANCEL got no final response
    /// within 64·T1 (RFC 3261 §9.1: "consider the original transaction
    /// cancelled and destroy the client transaction"). The transaction is
    /// removed and reports `Terminated`; late responses become stray.
    /// Returns false for an unknown or server transaction.
    pub fn abandon_client(&mut self, tx: TxId) -> bool {
        let is_client = self
            .txs
            .get(&tx)
            .is_some_and(|t| matches!(t.key, Key::Client(_)));
        if is_client {
            self.remove(tx);
            self.tidy();
        }
        is_client
    }

    /// Fire every timer due at or before `now`, in time order. A timer
    /// re-armed by its own firing is scheduled from the instant it was due,
    /// so a late call does not shift the retransmission schedule.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id, timer)) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(tx) = self.txs.get_mut(&id) else {
                continue;
            };
            if tx.timers.get(timer) != Some(at) {
                continue;
            }
            tx.timers.clear(timer);
            let mut ctx = Ctx {
                now: at,
                d: &self.d,
                out: &mut self.out,
                heap: &mut self.heap,
            };
            let step = match tx.kind {
                Kind::Ict => ict::on_timer(tx, &mut ctx, timer),
                Kind::Nict => nict::on_timer(tx, &mut ctx, timer),
                Kind::Ist => ist::on_timer(tx, &mut ctx, timer),
                Kind::Nist => nist::on_timer(tx, timer),
            };
            tx.shed_if_waiting();
            if step == Step::Done {
                self.remove(id);
            }
        }
        self.tidy();
    }

    /// The earliest instant at which [`Endpoint::handle_timeout`] must be
    /// called, `None` when no timer is armed. O(1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|(at, _, _)| at)
    }

    /// The next thing to do; drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// For a CANCEL (or any request), the INVITE server transaction it
    /// refers to (§9.2: same top-Via branch and sent-by with method INVITE;
    /// RFC 2543 fallback otherwise).
    pub fn find_invite_server_tx(&self, cancel: &Message) -> Option<TxId> {
        let key = ServerKey::of_request(cancel, Some(Method::Invite))?;
        let id = self.index.server(&self.txs, &key)?;
        (self.txs.get(&id)?.kind == Kind::Ist).then_some(id)
    }

    /// The request a client transaction sent (to build a CANCEL or an ACK),
    /// until it reaches a wait state. For a server transaction, only the
    /// request line and Call-ID of what it received.
    pub fn request_of(&self, tx: TxId) -> Option<&Message> {
        self.txs.get(&tx)?.request.as_deref()
    }

    /// One line per live transaction (id, machine, state, Call-ID, request
    /// line), sorted: for diagnostics and leak checks in tests.
    pub fn describe(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .txs
            .values()
            .map(|t| {
                let first = t.request.as_deref().map(Message::to_bytes);
                let first = first.unwrap_or_default();
                let line = first.split(|&b| b == b'\r').next().unwrap_or_default();
                format!(
                    "{:?} {:?} {:?} call-id={} {}",
                    t.id,
                    t.kind,
                    t.state,
                    String::from_utf8_lossy(t.request.as_deref().map_or(&[][..], Message::call_id)),
                    String::from_utf8_lossy(line)
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Current state of a transaction; `None` once it has terminated.
    pub fn state_of(&self, tx: TxId) -> Option<TxState> {
        self.txs.get(&tx).map(|t| t.state)
    }

    /// Number of live transactions.
    pub fn active_transactions(&self) -> usize {
        self.txs.len()
    }

    /// Entries in the key indexes (tests: they empty with the table).
    #[cfg(test)]
    pub(super) fn index_len(&self) -> usize {
        self.index.len()
    }

    /// Heap entries, stale ones included (tests of the compaction).
    #[cfg(test)]
    pub(super) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    fn alloc_id(&mut self) -> TxId {
        self.txs.alloc_id()
    }

    /// Remove a transaction, its index entry and report `Terminated`.
    fn remove(&mut self, id: TxId) {
        let Some(tx) = self.txs.get(&id) else {
            return;
        };
        self.index.remove(id, &tx.key);
        // Dropped in its slot (moving ~450 bytes out was 1 % of the proxy's
        // CPU); its pending heap entries go stale with the id.
        self.txs.remove(&id);
        self.out.push_back(Output::Terminated { tx: id });
    }

    /// Keep the heap top live (so `poll_timeout` is exact) and compact the
    /// heap when cancelled entries pile up.
    fn tidy(&mut self) {
        let txs = &self.txs;
        let live = |at: Instant, id: TxId, t: Timer| {
            txs.get(&id).is_some_and(|tx| tx.timers.get(t) == Some(at))
        };
        if self.heap.len() > 1024 + STALE_FACTOR * txs.len() {
            self.heap.retain(live);
        }
        while let Some((at, id, t)) = self.heap.peek() {
            if live(at, id, t) {
                break;
            }
            self.heap.pop();
        }
    }
}
