//! A deterministic simulated network for sans-IO nodes.
//!
//! Nodes (anything implementing [`Node`]) own one or more addresses; the
//! network carries datagrams between them with a configurable one-way delay
//! per direction and a deterministic loss pattern ("drop the Nth packet
//! matching a predicate"). [`Sim::run_until`] jumps the virtual clock to the
//! earliest of every node's `poll_timeout` and every in-flight arrival, so
//! hours of simulated time with sparse events run in milliseconds.
//!
//! ```text
//!   node.poll_transmit ─▶ log + loss rules ─▶ in flight (arrives now + delay)
//!        ▲                                        │
//!        └── node.handle_timeout(now) ◀── clock ──┴─▶ node.handle_datagram(now, from, to, bytes)
//! ```
//!
//! Every packet (delivered or dropped) is kept in [`Sim::packets`] with its
//! send and arrival instants, so tests assert retransmission schedules as
//! measured on the wire.
#![allow(dead_code)]

pub mod nodes;

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A sans-IO participant of the simulated network.
pub trait Node: Any {
    /// A datagram addressed to one of this node's addresses arrived.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Bytes);
    /// The clock reached (or passed) this node's `poll_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// Next datagram to send: (local address, remote address, payload).
    fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Bytes)>;
    /// When this node next wants `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// Index of a node in the simulation.
pub type NodeId = usize;

/// One datagram seen on the simulated wire.
#[derive(Clone, Debug)]
pub struct Packet {
    /// When it was sent.
    pub sent: Instant,
    /// When it arrives (or would have, if dropped).
    pub arrives: Instant,
    /// Sender address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// Payload.
    pub bytes: Bytes,
    /// Dropped by a loss rule.
    pub dropped: bool,
}

impl Packet {
    /// The payload as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The first line (request or status line).
    pub fn first_line(&self) -> String {
        self.text().lines().next().unwrap_or_default().to_string()
    }

    /// True when the first line starts with `prefix` (`"INVITE "`, `"SIP/2.0 486"`).
    pub fn starts(&self, prefix: &str) -> bool {
        self.bytes.starts_with(prefix.as_bytes())
    }
}

/// A predicate over packets, for loss rules.
pub type PacketPred = Box<dyn Fn(&Packet) -> bool>;

struct LossRule {
    pred: PacketPred,
    /// Which matches to drop (1-based); empty = every match.
    nth: Vec<usize>,
    seen: usize,
}

/// The simulated network and virtual clock.
pub struct Sim {
    start: Instant,
    now: Instant,
    nodes: Vec<Box<dyn Node>>,
    owners: HashMap<SocketAddr, NodeId>,
    default_delay: Duration,
    delays: HashMap<(SocketAddr, SocketAddr), Duration>,
    rules: Vec<LossRule>,
    in_flight: BinaryHeap<Reverse<(Instant, usize)>>,
    log: Vec<Packet>,
    steps: u64,
}

/// Guard against a node that never makes progress.
const MAX_STEPS: u64 = 50_000_000;

impl Sim {
    /// A network whose clock starts at `start`, with zero delay and no loss.
    pub fn new(start: Instant) -> Sim {
        Sim {
            start,
            now: start,
            nodes: Vec::new(),
            owners: HashMap::new(),
            default_delay: Duration::ZERO,
            delays: HashMap::new(),
            rules: Vec::new(),
            in_flight: BinaryHeap::new(),
            log: Vec::new(),
            steps: 0,
        }
    }

    /// Add a node owning `addrs`.
    pub fn add_node(&mut self, addrs: &[SocketAddr], node: impl Node) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(Box::new(node));
        for a in addrs {
            self.owners.insert(*a, id);
        }
        id
    }

    /// A node, downcast to its concrete type.
    pub fn node<T: Node>(&self, id: NodeId) -> &T {
        let n: &dyn Any = self.nodes[id].as_ref();
        n.downcast_ref().expect("node type")
    }

    /// A node, mutably; transmits it queues are picked up by the next run.
    pub fn node_mut<T: Node>(&mut self, id: NodeId) -> &mut T {
        let n: &mut dyn Any = self.nodes[id].as_mut();
        n.downcast_mut().expect("node type")
    }

    /// Run `f` on a node with the current virtual time.
    pub fn with<T: Node, R>(&mut self, id: NodeId, f: impl FnOnce(&mut T, Instant) -> R) -> R {
        let now = self.now;
        f(self.node_mut(id), now)
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The instant the simulation started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Clock steps taken so far (each step visits every node once).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One-way delay for every direction without its own setting.
    pub fn set_default_delay(&mut self, d: Duration) {
        self.default_delay = d;
    }

    /// One-way delay from `from` to `to`.
    pub fn set_delay(&mut self, from: SocketAddr, to: SocketAddr, d: Duration) {
        self.delays.insert((from, to), d);
    }

    /// Drop the `n`th (1-based) packet matching `pred`, counted from now.
    pub fn drop_nth(&mut self, n: usize, pred: impl Fn(&Packet) -> bool + 'static) {
        self.drop_matches(&[n], pred);
    }

    /// Drop the listed (1-based) matches of `pred`.
    pub fn drop_matches(&mut self, nth: &[usize], pred: impl Fn(&Packet) -> bool + 'static) {
        self.rules.push(LossRule {
            pred: Box::new(pred),
            nth: nth.to_vec(),
            seen: 0,
        });
    }

    /// Drop every packet matching `pred`.
    pub fn drop_all(&mut self, pred: impl Fn(&Packet) -> bool + 'static) {
        self.drop_matches(&[], pred);
    }

    /// Every packet sent so far, in send order.
    pub fn packets(&self) -> &[Packet] {
        &self.log
    }

    /// Packets matching `pred`.
    pub fn packets_where(&self, pred: impl Fn(&Packet) -> bool) -> Vec<&Packet> {
        self.log.iter().filter(|p| pred(p)).collect()
    }

    /// Send instants (relative to the start) of packets matching `pred`.
    pub fn send_times(&self, pred: impl Fn(&Packet) -> bool) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|p| pred(p))
            .map(|p| p.sent - self.start)
            .collect()
    }

    /// Advance by `d`.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(deadline);
    }

    /// Advance to `start + d`.
    pub fn run_to(&mut self, d: Duration) {
        let deadline = self.start + d;
        self.run_until(deadline);
    }

    /// Process every event up to and including `deadline`, then leave the
    /// clock at `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        loop {
            self.collect();
            let next_pkt = self.in_flight.peek().map(|Reverse((at, _))| *at);
            let next_timer = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let next = match (next_pkt, next_timer) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match next {
                Some(t) if t <= deadline => self.now = self.now.max(t),
                _ => {
                    self.now = self.now.max(deadline);
                    return;
                }
            }
            self.steps += 1;
            assert!(self.steps < MAX_STEPS, "simulation does not make progress");
            while let Some(&Reverse((at, idx))) = self.in_flight.peek() {
                if at > self.now {
                    break;
                }
                self.in_flight.pop();
                let p = &self.log[idx];
                let (from, to, bytes) = (p.from, p.to, p.bytes.clone());
                if let Some(&owner) = self.owners.get(&to) {
                    self.nodes[owner].handle_datagram(self.now, from, to, bytes);
                }
            }
            let now = self.now;
            for n in &mut self.nodes {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
        }
    }

    /// Move every queued transmit onto the wire.
    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some((from, to, bytes)) = self.nodes[i].poll_transmit() {
                let delay = self
                    .delays
                    .get(&(from, to))
                    .copied()
                    .unwrap_or(self.default_delay);
                let mut p = Packet {
                    sent: self.now,
                    arrives: self.now + delay,
                    from,
                    to,
                    bytes,
                    dropped: false,
                };
                for r in &mut self.rules {
                    if (r.pred)(&p) {
                        r.seen += 1;
                        if r.nth.is_empty() || r.nth.contains(&r.seen) {
                            p.dropped = true;
                        }
                    }
                }
                let idx = self.log.len();
                if !p.dropped {
                    self.in_flight.push(Reverse((p.arrives, idx)));
                }
                self.log.push(p);
            }
        }
    }
}
