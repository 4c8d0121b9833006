//! [`MediaHost`]: every media session of one proxy shard, driven by the
//! [`MediaCommand`]s its B2BUA emits.
//!
//! The host routes each datagram by local port to its [`RelaySession`], keeps one
//! timer heap over all sessions and tells the runtime which UDP ports to bind and
//! unbind ([`PortChange`]). Like the rest of `media` it is sans-IO:
//!
//! ```text
//!  B2BUA ─ MediaCommand ─▶ apply ──▶ PortChange (Bind/Unbind) ─▶ runtime binds/closes sockets
//!  socket ─ (port, from, bytes) ─▶ handle_packet ─▶ Transmit ─▶ runtime sends from `from_port`
//!                                      └──────────▶ (SessionId, Event) ─▶ B2BUA
//! ```
//!
//! Timers are a lazy min-heap: a session has at most one live entry, pushed only
//! when its deadline moves *earlier* (open, resume from hold, RTP after
//! [`Event::Inactive`]). RTP pushing the inactivity deadline later costs nothing;
//! the old entry fires early, finds the session active and re-arms it. So both a
//! packet and [`MediaHost::poll_timeout`] are O(1), a timeout O(log n).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use super::command::{MediaCommand, SessionId};
use super::error::DropReason;
use super::session::RelaySession;
use super::types::{DirectionStats, Event, Leg, Transmit};

/// A socket the runtime must open or close on the media address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortChange {
    /// Bind a UDP socket on this port (RTP, or RTCP when not muxed) and feed
    /// what it receives to [`MediaHost::handle_packet`].
    Bind(u16),
    /// Close the socket on this port: its session ended.
    Unbind(u16),
}

/// Why [`MediaHost::apply`] ignored a command (each is counted in
/// [`HostTotals::ignored_commands`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandRejected {
    /// No open session has this id (never opened, or already closed).
    UnknownSession(SessionId),
    /// `Open` for a session that is already open.
    DuplicateSession(SessionId),
    /// `Open` with a port another session (or the other leg) already uses.
    PortInUse(u16),
}

impl fmt::Display for CommandRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandRejected::UnknownSession(s) => write!(f, "unknown media session {s}"),
            CommandRejected::DuplicateSession(s) => write!(f, "media session {s} already open"),
            CommandRejected::PortInUse(p) => write!(f, "media port {p} already in use"),
        }
    }
}

impl std::error::Error for CommandRejected {}

/// Counters over every session the host has run, closed ones included
/// (monotonic: fit for Prometheus counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTotals {
    /// RTP packets relayed, both directions.
    pub rtp_packets: u64,
    /// RTP bytes relayed, both directions.
    pub rtp_bytes: u64,
    /// RTCP packets relayed, both directions.
    pub rtcp_packets: u64,
    /// RTCP bytes relayed, both directions.
    pub rtcp_bytes: u64,
    /// Dropped: not valid RTP/RTCP.
    pub dropped_malformed: u64,
    /// Dropped: not from the latched source (RFC 4961).
    pub dropped_source: u64,
    /// Dropped: payload type not negotiated.
    pub dropped_payload_type: u64,
    /// Dropped: the other leg had no address yet.
    pub dropped_no_destination: u64,
    /// Dropped: arrived on a port of no session (e.g. late packets after close).
    pub dropped_unknown_port: u64,
    /// Commands ignored ([`CommandRejected`]).
    pub ignored_commands: u64,
    /// Packets the relay encoded itself (transcoding), both directions.
    pub transcoded_packets: u64,
    /// Packets the relay made up (ringback, tones, telephone-events).
    pub generated_packets: u64,
    /// Dropped: late for the transcoding reorder window, or duplicates.
    pub dropped_late: u64,
    /// Lost packets concealed by PLC/FEC when transcoding.
    pub concealed_packets: u64,
    /// DTMF digits interworked between legs.
    pub dtmf_digits: u64,
    /// Dropped: SRTP/SRTCP that failed authentication, was replayed, or
    /// could not be protected.
    pub dropped_srtp: u64,
}

impl HostTotals {
    /// Adds another host's totals (e.g. to sum the shards of a process).
    pub fn merge(&mut self, o: &HostTotals) {
        self.rtp_packets += o.rtp_packets;
        self.rtp_bytes += o.rtp_bytes;
        self.rtcp_packets += o.rtcp_packets;
        self.rtcp_bytes += o.rtcp_bytes;
        self.dropped_malformed += o.dropped_malformed;
        self.dropped_source += o.dropped_source;
        self.dropped_payload_type += o.dropped_payload_type;
        self.dropped_no_destination += o.dropped_no_destination;
        self.dropped_unknown_port += o.dropped_unknown_port;
        self.ignored_commands += o.ignored_commands;
        self.transcoded_packets += o.transcoded_packets;
        self.generated_packets += o.generated_packets;
        self.dropped_late += o.dropped_late;
        self.concealed_packets += o.concealed_packets;
        self.dtmf_digits += o.dtmf_digits;
        self.dropped_srtp += o.dropped_srtp;
    }

    fn add(&mut self, s: &DirectionStats) {
        self.rtp_packets += s.rtp_packets;
        self.rtp_bytes += s.rtp_bytes;
        self.rtcp_packets += s.rtcp_packets;
        self.rtcp_bytes += s.rtcp_bytes;
        self.dropped_malformed += s.dropped_malformed;
        self.dropped_source += s.dropped_source;
        self.dropped_payload_type += s.dropped_payload_type;
        self.dropped_no_destination += s.dropped_no_destination;
        self.transcoded_packets += s.transcoded_packets;
        self.generated_packets += s.generated_packets;
        self.dropped_late += s.dropped_late;
        self.concealed_packets += s.concealed_packets;
        self.dtmf_digits += s.dtmf_digits;
        self.dropped_srtp += s.dropped_srtp;
    }
}

#[derive(Debug)]
struct Entry {
    relay: RelaySession,
    /// Distinguishes this session from an earlier one with the same id in the heap.
    generation: u64,
    /// Time of this session's live heap entry (at or before its real deadline).
    scheduled: Option<Instant>,
}

/// The media sessions of one shard: command application, port routing, timers.
#[derive(Debug, Default)]
pub struct MediaHost {
    /// foldhash, not SipHash: ids and ports are ours, not a peer's choice,
    /// and both maps are looked up for every relayed packet.
    sessions: HashMap<SessionId, Entry, foldhash::fast::RandomState>,
    ports: HashMap<u16, SessionId, foldhash::fast::RandomState>,
    timers: BinaryHeap<Reverse<(Instant, SessionId, u64)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<(SessionId, Event)>,
    port_changes: VecDeque<PortChange>,
    /// Counters of closed sessions plus host-level drops and ignored commands.
    closed: HostTotals,
    next_generation: u64,
}

impl MediaHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one command at `now`. Commands must be applied in the order the
    /// B2BUA emitted them; a rejected one changes nothing but a counter.
    pub fn apply(&mut self, now: Instant, cmd: MediaCommand) -> Result<(), CommandRejected> {
        let result = self.apply_inner(now, cmd);
        if result.is_err() {
            self.closed.ignored_commands += 1;
        }
        result
    }

    fn apply_inner(&mut self, now: Instant, cmd: MediaCommand) -> Result<(), CommandRejected> {
        let id = cmd.session();
        if let MediaCommand::Open {
            a,
            b,
            ssrc_seed,
            config,
            ..
        } = cmd
        {
            if self.sessions.contains_key(&id) {
                return Err(CommandRejected::DuplicateSession(id));
            }
            let ports = local_ports(&[a.ports, b.ports]);
            for (i, p) in ports.iter().enumerate() {
                if self.ports.contains_key(p) || ports[..i].contains(p) {
                    return Err(CommandRejected::PortInUse(*p));
                }
            }
            for p in ports {
                self.ports.insert(p, id);
                self.port_changes.push_back(PortChange::Bind(p));
            }
            self.next_generation += 1;
            let entry = Entry {
                relay: RelaySession::new(now, config, a, b, ssrc_seed),
                generation: self.next_generation,
                scheduled: None,
            };
            self.sessions.insert(id, entry);
            self.reschedule(id);
            return Ok(());
        }
        let entry = self
            .sessions
            .get_mut(&id)
            .ok_or(CommandRejected::UnknownSession(id))?;
        match cmd {
            MediaCommand::Open { .. } => unreachable!("handled above"),
            MediaCommand::UpdateLeg {
                leg,
                remote_rtp,
                remote_rtcp,
                codecs,
                ..
            } => entry.relay.update_leg(leg, remote_rtp, remote_rtcp, codecs),
            MediaCommand::Hold { on_hold, .. } => entry.relay.set_on_hold(now, on_hold),
            MediaCommand::Relatch { leg, .. } => entry.relay.relatch(leg),
            MediaCommand::SendDtmf {
                leg,
                digit,
                duration_ms,
                ..
            } => entry.relay.send_dtmf(now, leg, digit, duration_ms),
            MediaCommand::Ringback { leg, plan, .. } => {
                entry.relay.ringback(now, leg, plan.as_ref())
            }
            MediaCommand::SetDtmfMode { leg, mode, .. } => entry.relay.set_dtmf_mode(leg, mode),
            MediaCommand::Srtp { leg, keys, .. } => entry.relay.set_srtp(leg, keys),
            MediaCommand::Close { .. } => {
                if let Some(e) = self.sessions.remove(&id) {
                    // Events already raised still reach the B2BUA; none are new.
                    self.closed.add(e.relay.stats(Leg::A));
                    self.closed.add(e.relay.stats(Leg::B));
                    for p in local_ports(&e.relay.ports()) {
                        self.ports.remove(&p);
                        self.port_changes.push_back(PortChange::Unbind(p));
                    }
                }
                return Ok(());
            }
        }
        // A tone or digit may start at once.
        while let Some(t) = entry.relay.poll_transmit() {
            self.transmits.push_back(t);
        }
        while let Some(e) = entry.relay.poll_event() {
            self.events.push_back((id, e));
        }
        self.reschedule(id);
        Ok(())
    }

    /// Feeds one datagram received at `now` on local `local_port` from `from`.
    /// Returns why it was dropped, if it was (the drop is counted either way).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        local_port: u16,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        let Some(&id) = self.ports.get(&local_port) else {
            self.closed.dropped_unknown_port += 1;
            return Err(DropReason::UnknownPort(local_port));
        };
        let Some(entry) = self.sessions.get_mut(&id) else {
            self.closed.dropped_unknown_port += 1;
            return Err(DropReason::UnknownPort(local_port));
        };
        let result = entry.relay.handle_packet(now, local_port, from, bytes);
        while let Some(t) = entry.relay.poll_transmit() {
            self.transmits.push_back(t);
        }
        while let Some(e) = entry.relay.poll_event() {
            self.events.push_back((id, e));
        }
        self.reschedule(id);
        result
    }

    /// Runs the timers due at `now`: inactivity ([`Event::Inactive`]) and the
    /// media timers (tones, digits, ringback the relay plays: these queue
    /// [`Transmit`]s, to send like those of [`Self::handle_packet`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.sessions.get_mut(&id) else {
                continue; // closed since
            };
            if entry.generation != generation || entry.scheduled != Some(at) {
                continue; // superseded by an earlier entry
            }
            entry.scheduled = None;
            entry.relay.handle_timeout(now);
            while let Some(t) = entry.relay.poll_transmit() {
                self.transmits.push_back(t);
            }
            while let Some(e) = entry.relay.poll_event() {
                self.events.push_back((id, e));
            }
            self.reschedule(id);
        }
    }

    /// When [`Self::handle_timeout`] must be called next (may be early: a closed
    /// or re-armed session's entry is discarded then).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Ensures the session's heap entry is at or before its relay's deadline.
    fn reschedule(&mut self, id: SessionId) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        if let Some(want) = entry.relay.poll_timeout()
            && entry.scheduled.is_none_or(|s| want < s)
        {
            entry.scheduled = Some(want);
            self.timers.push(Reverse((want, id, entry.generation)));
        }
    }

    /// Next datagram to send, until `None`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the B2BUA, until `None`.
    pub fn poll_event(&mut self) -> Option<(SessionId, Event)> {
        self.events.pop_front()
    }

    /// The runtime could not bind `port`: the session owning it (if any)
    /// reports [`Event::PortUnavailable`] through [`Self::poll_event`].
    pub fn port_unavailable(&mut self, port: u16) {
        if let Some(&session) = self.ports.get(&port) {
            self.events
                .push_back((session, Event::PortUnavailable { port }));
        }
    }

    /// Next socket to open or close, in command order, until `None`.
    pub fn poll_port_change(&mut self) -> Option<PortChange> {
        self.port_changes.pop_front()
    }

    /// Whether [`Self::poll_event`] has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether [`Self::poll_port_change`] has something.
    pub fn has_port_changes(&self) -> bool {
        !self.port_changes.is_empty()
    }

    /// Counters of a session's two directions: `[A→B, B→A]`.
    pub fn stats(&self, session: SessionId) -> Option<[DirectionStats; 2]> {
        let r = &self.sessions.get(&session)?.relay;
        Some([*r.stats(Leg::A), *r.stats(Leg::B)])
    }

    /// A session's relay, for inspection.
    pub fn session(&self, session: SessionId) -> Option<&RelaySession> {
        self.sessions.get(&session).map(|e| &e.relay)
    }

    /// Local ports owned by open sessions (each needs a bound socket).
    pub fn ports_in_use(&self) -> usize {
        self.ports.len()
    }

    /// Number of open sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Ids of the open sessions, in no particular order.
    pub fn session_ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.keys().copied()
    }

    /// Counters over all sessions ever run, closed ones included. O(sessions).
    pub fn totals(&self) -> HostTotals {
        let mut t = self.closed;
        for e in self.sessions.values() {
            t.add(e.relay.stats(Leg::A));
            t.add(e.relay.stats(Leg::B));
        }
        t
    }
}

/// Every local port of a session: RTP, then RTCP when not muxed, per leg.
fn local_ports(pairs: &[super::PortPair; 2]) -> Vec<u16> {
    pairs
        .iter()
        .flat_map(|p| std::iter::once(p.rtp).chain(p.rtcp))
        .collect()
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
