//! Ready-made nodes: an [`EndpointNode`] wrapping a transaction
//! [`Endpoint`] whose TU is the test itself, and a [`ScriptNode`] peer that
//! sends scripted raw datagrams and records what it receives.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::sip::message::{Limits, Message, parse_datagram};
use callgate::sip::transaction::{Endpoint, Output, TimerConfig, TxId};
use callgate::sip::transport::{Flow, Transport};

use super::Node;

/// A transaction endpoint on one address; every non-transmit output is
/// recorded with the instant it was produced.
pub struct EndpointNode {
    /// Local address.
    pub addr: SocketAddr,
    /// Transport of every flow (`Tcp` = reliable: no retransmission timers).
    pub transport: Transport,
    /// The endpoint under test.
    pub ep: Endpoint,
    /// Outputs other than transmits, in order.
    pub events: Vec<(Instant, Output)>,
    /// Datagrams that failed to parse.
    pub parse_errors: usize,
    queue: VecDeque<(SocketAddr, SocketAddr, Bytes)>,
}

impl EndpointNode {
    /// An endpoint at `addr` using `transport` for every flow.
    pub fn new(addr: SocketAddr, transport: Transport, cfg: TimerConfig) -> EndpointNode {
        EndpointNode {
            addr,
            transport,
            ep: Endpoint::new(cfg),
            events: Vec::new(),
            parse_errors: 0,
            queue: VecDeque::new(),
        }
    }

    /// The flow towards `remote`.
    pub fn flow_to(&self, remote: SocketAddr) -> Flow {
        Flow {
            listener: 0,
            transport: self.transport,
            remote,
            conn: self.transport.is_reliable().then_some(1),
        }
    }

    /// TU: send a request through a client transaction.
    pub fn send_request(&mut self, now: Instant, to: SocketAddr, req: Message) -> TxId {
        let flow = self.flow_to(to);
        let id = self.ep.send_request(now, flow, req);
        self.drain(now);
        id
    }

    /// TU: answer a server transaction.
    pub fn send_response(&mut self, now: Instant, tx: TxId, resp: Message) -> bool {
        let ok = self.ep.send_response(now, tx, resp);
        self.drain(now);
        ok
    }

    /// TU: send without a transaction.
    pub fn send_stateless(&mut self, now: Instant, to: SocketAddr, msg: Message) {
        let flow = self.flow_to(to);
        self.ep.send_stateless(flow, msg);
        self.drain(now);
    }

    /// Runtime: a transmit of `tx` failed.
    pub fn transport_error(&mut self, now: Instant, tx: TxId) {
        self.ep.handle_transport_error(now, tx);
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit(t) => self.queue.push_back((self.addr, t.flow.remote, t.bytes)),
                other => self.events.push((now, other)),
            }
        }
    }

    /// Requests reported to the TU: (instant, tx, message).
    pub fn requests(&self) -> Vec<(Instant, Option<TxId>, &Message)> {
        self.events
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Request { tx, msg, .. } => Some((*at, *tx, msg)),
                _ => None,
            })
            .collect()
    }

    /// Responses reported to the TU: (instant, tx, status code).
    pub fn responses(&self) -> Vec<(Instant, TxId, u16)> {
        self.events
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Response { tx, msg } => Some((*at, *tx, msg.code().unwrap_or(0))),
                _ => None,
            })
            .collect()
    }

    /// Events of one kind, by a short name (`"Timeout"`, `"Terminated"`,
    /// `"ServerTimeout"`, `"TransportError"`, `"StrayResponse"`): instants
    /// and transaction ids (`None` for stray responses).
    pub fn events_named(&self, name: &str) -> Vec<(Instant, Option<TxId>)> {
        self.events
            .iter()
            .filter_map(|(at, o)| {
                let (n, tx) = match o {
                    Output::Timeout { tx } => ("Timeout", Some(*tx)),
                    Output::Terminated { tx } => ("Terminated", Some(*tx)),
                    Output::ServerTimeout { tx } => ("ServerTimeout", Some(*tx)),
                    Output::TransportError { tx } => ("TransportError", Some(*tx)),
                    Output::StrayResponse { .. } => ("StrayResponse", None),
                    Output::Request { tx, .. } => ("Request", *tx),
                    Output::Response { tx, .. } => ("Response", Some(*tx)),
                    Output::Transmit(_) => ("Transmit", None),
                };
                (n == name).then_some((*at, tx))
            })
            .collect()
    }
}

impl Node for EndpointNode {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, bytes: Bytes) {
        match parse_datagram(bytes, &Limits::default()) {
            Ok(msg) => {
                let flow = self.flow_to(from);
                self.ep.handle_message(now, flow, msg);
            }
            Err(_) => self.parse_errors += 1,
        }
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
        self.drain(now);
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Bytes)> {
        self.queue.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }
}

/// Builds the datagrams a [`ScriptNode`] answers a received one with:
/// `(delay, bytes)` pairs, sent back to the sender.
pub type Responder = Box<dyn FnMut(Instant, &Bytes) -> Vec<(Duration, Bytes)>>;

/// A scripted raw peer: sends datagrams at scheduled instants, optionally
/// answers what it receives through a [`Responder`], records its inbox.
pub struct ScriptNode {
    /// Local address.
    pub addr: SocketAddr,
    /// Received datagrams: (instant, sender, payload).
    pub inbox: Vec<(Instant, SocketAddr, Bytes)>,
    scheduled: BTreeMap<(Instant, u64), (SocketAddr, Bytes)>,
    seq: u64,
    queue: VecDeque<(SocketAddr, SocketAddr, Bytes)>,
    responder: Option<Responder>,
}

impl ScriptNode {
    /// A silent peer at `addr`.
    pub fn new(addr: SocketAddr) -> ScriptNode {
        ScriptNode {
            addr,
            inbox: Vec::new(),
            scheduled: BTreeMap::new(),
            seq: 0,
            queue: VecDeque::new(),
            responder: None,
        }
    }

    /// Answer received datagrams with `f`.
    pub fn with_responder(mut self, f: Responder) -> ScriptNode {
        self.responder = Some(f);
        self
    }

    /// Answer received datagrams with `f` from now on.
    pub fn set_responder(&mut self, f: Responder) {
        self.responder = Some(f);
    }

    /// Send `bytes` to `to` at instant `at`.
    pub fn send_at(&mut self, at: Instant, to: SocketAddr, bytes: impl Into<Bytes>) {
        self.seq += 1;
        self.scheduled.insert((at, self.seq), (to, bytes.into()));
    }

    /// Received datagrams whose first line starts with `prefix`: instants.
    pub fn received(&self, prefix: &str) -> Vec<Instant> {
        self.inbox
            .iter()
            .filter(|(_, _, b)| b.starts_with(prefix.as_bytes()))
            .map(|(at, _, _)| *at)
            .collect()
    }

    /// The last received datagram starting with `prefix`, parsed.
    pub fn last(&self, prefix: &str) -> Option<Message> {
        self.inbox
            .iter()
            .rev()
            .find(|(_, _, b)| b.starts_with(prefix.as_bytes()))
            .and_then(|(_, _, b)| parse_datagram(b.clone(), &Limits::default()).ok())
    }
}

impl Node for ScriptNode {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, bytes: Bytes) {
        self.inbox.push((now, from, bytes.clone()));
        if let Some(f) = self.responder.as_mut() {
            for (delay, out) in f(now, &bytes) {
                self.seq += 1;
                self.scheduled.insert((now + delay, self.seq), (from, out));
            }
        }
        self.handle_timeout(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (to, bytes) = entry.remove();
            self.queue.push_back((self.addr, to, bytes));
        }
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Bytes)> {
        self.queue.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.scheduled.keys().next().map(|(at, _)| *at)
    }
}
