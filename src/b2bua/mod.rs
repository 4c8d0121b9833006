//! The back-to-back user agent: a call joins leg A (the UAS dialog toward
//! whoever called us) and leg B (a UAC dialog toward a trunk). Nothing of one
//! leg's dialog (Call-ID, tags, CSeq, Via, Contact, route set) leaks to the
//! other; headers cross only as the trunk's header policy allows.
//!
//! The B2BUA lives inside a proxy shard and shares its transaction
//! [`Endpoint`]; the proxy hands it every request and response that belongs
//! to one of its calls (by Call-ID and client transaction). It is sans-IO:
//! media work goes out as [`MediaCommand`]s, timers through `poll_timeout`.
//!
//! * `call`: the per-call state and its diagram; `dialog`: one leg's dialog
//!   and the messages written on it; `sdp_plan`: what SDP each leg sees.
//! * `setup`: INVITE, provisional and final responses, failover, CANCEL, ACK.
//! * `midcall`: BYE, re-INVITE/UPDATE (hold, resume, codec change, 491),
//!   OPTIONS, relayed INFO, call end and clean-up.

mod call;
mod cancel;
mod dialog;
mod headers;
mod info;
mod interwork;
mod midcall;
mod offers;
mod responses;
mod sdp_plan;
mod setup;
mod srtp;
mod timers;

pub use call::Target;
pub use headers::{copy_headers, filter_headers};
pub use info::{CallInfo, LegInfo};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::dialplan::{DtmfMode, MediaConfig, MediaMode, RingbackTone, TimerConfig};
use crate::media::{Event as MediaEvent, Leg, MediaCommand, PortAllocator, SessionId};
use crate::sip::message::Message;
use crate::sip::transaction::{Endpoint, PeerKeyMap, TxId, TxMap};
use crate::sip::transport::{Flow, Transport};

use call::{Call, CallTimer};

/// Static settings of one shard's B2BUA.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    /// This shard.
    pub shard: u16,
    /// Number of shards (leg B Call-IDs are minted to land on `shard`).
    pub shards: u16,
    /// Seed for Call-IDs, tags, branches and SSRCs.
    pub seed: u64,
    /// Entropy for SRTP master keys (a CSPRNG is seeded with it; the runtime
    /// draws it from the OS). `None`: no SRTP termination, SDES offers on
    /// anchored calls get 488.
    pub srtp_entropy: Option<[u8; 32]>,
    /// Via sent-by / Contact host of each listener, by listener id.
    pub sent_by: Vec<Arc<str>>,
    /// Transport of each listener, by listener id.
    pub transports: Vec<Transport>,
    /// SIP and call timers.
    pub timers: TimerConfig,
    /// Media relay address and port range (this shard takes its slice).
    pub media: MediaConfig,
}

/// A new call handed over by the proxy: the caller's INVITE and the routing
/// decision for it.
#[derive(Debug)]
pub struct NewCall {
    /// Server transaction of the INVITE.
    pub tx: TxId,
    /// Where it came from.
    pub flow: Flow,
    /// The INVITE.
    pub invite: Message,
    /// Name of the listener it arrived on.
    pub listener: String,
    /// Trunks in failover order.
    pub targets: Vec<Target>,
    /// Anchor or bypass media.
    pub media: MediaMode,
    /// Request-URI user for leg B (after dial-plan rewriting).
    pub to_user: String,
    /// From user for leg B (after dial-plan rewriting).
    pub from_user: String,
    /// Ringback to play to the caller on a 180 without SDP.
    pub ringback: RingbackTone,
    /// DTMF mode of the caller's side (its trunk's, else RFC 4733).
    pub a_dtmf: DtmfMode,
}

/// Counters of one trunk (summed over shards by the runtime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkCounters {
    /// INVITEs sent to the trunk (each failover attempt counts).
    pub attempts: u64,
    /// 2xx answers from it.
    pub answers: u64,
    /// Failures: final non-2xx, timeout, transport error, no answer.
    pub failures: u64,
}

/// Below this many call timers the heap is never compacted.
const COMPACT_MIN_TIMERS: usize = 1024;

/// A short ASCII token the B2BUA mints (a branch, a leg-B Call-ID),
/// formatted on the stack: one is made for every request a leg sends.
#[derive(Default)]
pub(crate) struct Token {
    buf: [u8; 32],
    len: usize,
}

impl Token {
    /// `args` written into a new token (they fit: at most 30 bytes for a
    /// branch, 29 for a Call-ID).
    fn format(args: std::fmt::Arguments<'_>) -> Token {
        let mut t = Token::default();
        t.len = setup::write_small(&mut t.buf, args).len();
        t
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::ops::Deref for Token {
    type Target = str;

    fn deref(&self) -> &str {
        // Formatted from hex digits and ASCII literals only, so the
        // fallback is never taken.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// The B2BUA of one shard.
pub struct B2bua {
    cfg: B2buaConfig,
    /// Boxed (a `Call` is ~2.3 KB): `with_call` takes a call out and puts
    /// it back on every input, and the table's resizes move its entries.
    calls: HashMap<u64, Box<Call>>,
    /// Call-ID of either leg → (call, leg).
    by_call_id: PeerKeyMap<Bytes, (u64, Leg)>,
    /// Client and server transactions → call.
    by_tx: TxMap<u64>,
    /// Call-IDs of finished calls, to absorb late ACKs and answer 481.
    ended: PeerKeyMap<Bytes, Instant>,
    /// The same Call-IDs in the order they ended (`now` only grows), so
    /// expiry pops from the front instead of scanning every tombstone on
    /// each timeout (at 2,000 calls/s, 64·T1 holds ~128,000 of them).
    ended_order: VecDeque<(Instant, Bytes)>,
    ports: Option<PortAllocator>,
    media_out: VecDeque<MediaCommand>,
    timers: BinaryHeap<Reverse<(Instant, u64, CallTimer)>>,
    /// INVITE client transactions we CANCELled: abandoned if no final
    /// response comes within 64·T1 (RFC 3261 §9.1), whatever became of the call.
    cancelled: BinaryHeap<Reverse<(Instant, TxId)>>,
    counter: u64,
    trunk_counters: HashMap<String, TrunkCounters>,
    /// SRTP master keys (ChaCha-based CSPRNG seeded with
    /// [`B2buaConfig::srtp_entropy`]).
    srtp_rng: Option<rand::rngs::StdRng>,
}

impl B2bua {
    /// The B2BUA of shard `cfg.shard`, with its slice of the media port range.
    pub fn new(cfg: B2buaConfig) -> B2bua {
        let ports = shard_ports(&cfg.media, cfg.shard, cfg.shards);
        let srtp_rng = cfg
            .srtp_entropy
            .map(<rand::rngs::StdRng as rand::SeedableRng>::from_seed);
        B2bua {
            srtp_rng,
            cfg,
            calls: HashMap::new(),
            by_call_id: PeerKeyMap::default(),
            by_tx: TxMap::default(),
            ended: PeerKeyMap::default(),
            ended_order: VecDeque::new(),
            ports,
            media_out: VecDeque::new(),
            timers: BinaryHeap::new(),
            cancelled: BinaryHeap::new(),
            counter: 0,
            trunk_counters: HashMap::new(),
        }
    }

    /// New timers and sent-by values after a dial-plan reload (calls keep
    /// their state; the port range is kept until restart).
    pub fn reconfigure(&mut self, timers: TimerConfig, sent_by: Vec<Arc<str>>) {
        self.cfg.timers = timers;
        self.cfg.sent_by = sent_by;
    }

    /// Whether a request with this Call-ID belongs to a B2BUA call (alive or
    /// just finished).
    pub fn owns_call_id(&self, call_id: &[u8]) -> bool {
        self.by_call_id.contains_key(call_id) || self.ended.contains_key(call_id)
    }

    /// Whether client or server transaction `tx` belongs to a B2BUA call.
    pub fn owns_tx(&self, tx: TxId) -> bool {
        self.by_tx.contains_key(&tx)
    }

    /// A transaction ended: forget it.
    pub fn on_terminated(&mut self, tx: TxId) {
        if let Some(id) = self.by_tx.remove(&tx)
            && let Some(call) = self.calls.get_mut(&id)
        {
            call.pending.remove(&tx);
            call.sent_acks.remove(&tx);
        }
    }

    /// The next instruction for the media plane.
    pub fn poll_media_command(&mut self) -> Option<MediaCommand> {
        self.media_out.pop_front()
    }

    /// Calls alive.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Transactions the B2BUA still maps to a call (diagnostics: 0 once every
    /// transaction has ended, or the index leaks).
    pub fn tracked_transactions(&self) -> usize {
        self.by_tx.len()
    }

    /// Call timers pending, dead ones of finished calls included (checks
    /// that memory stays bounded by the calls in progress).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Media ports (pairs or muxed ports) allocated now.
    pub fn ports_in_use(&self) -> usize {
        self.ports.as_ref().map_or(0, PortAllocator::in_use)
    }

    /// Per-trunk counters of this shard.
    pub fn trunk_counters(&self) -> Vec<(String, TrunkCounters)> {
        let mut v: Vec<_> = self
            .trunk_counters
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Snapshots for admin `/calls`.
    pub fn calls(&self) -> Vec<CallInfo> {
        let mut v: Vec<CallInfo> = self.calls.values().map(|c| info::info(c)).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The earliest instant `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let call = self.timers.peek().map(|Reverse((at, _, _))| *at);
        let cancel = self.cancelled.peek().map(|Reverse((at, _))| *at);
        call.into_iter().chain(cancel).min()
    }

    /// Fire due call timers.
    pub fn handle_timeout(&mut self, now: Instant, ep: &mut Endpoint) {
        while let Some(Reverse((at, id, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.with_call(now, ep, id, |b, ep, call| b.on_timer(now, ep, call, timer));
        }
        while let Some(Reverse((at, tx))) = self.cancelled.peek().copied() {
            if at > now {
                break;
            }
            self.cancelled.pop();
            // No-op when the INVITE already ended.
            self.abandon(ep, tx);
        }
        let horizon = self.cfg.timers.t1 * 64;
        while let Some((at, _)) = self.ended_order.front() {
            if now.saturating_duration_since(*at) < horizon {
                break;
            }
            if let Some((at, k)) = self.ended_order.pop_front()
                && self.ended.get(&k) == Some(&at)
            {
                self.ended.remove(&k);
            }
        }
    }

    /// Remembers a Call-ID that no longer has a live leg, for 64·T1.
    fn tombstone(&mut self, now: Instant, call_id: Bytes) {
        self.ended.insert(call_id.clone(), now);
        self.ended_order.push_back((now, call_id));
    }

    /// The media plane reported `event` for `session`.
    pub fn handle_media_event(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        session: SessionId,
        event: MediaEvent,
    ) {
        let id = call_of_session(session);
        if self
            .calls
            .get(&id)
            .is_none_or(|c| c.media.session != Some(session))
        {
            return;
        }
        match event {
            MediaEvent::Inactive { .. } => self.with_call(now, ep, id, |b, ep, call| {
                tracing::info!(call = call.id, "RTP inactivity: ending call");
                b.end_call(now, ep, call, "SIP;cause=408;text=\"RTP timeout\"");
            }),
            MediaEvent::Dtmf {
                from,
                digit,
                duration_ms,
            } => self.with_call(now, ep, id, |b, ep, call| {
                b.dtmf_to_info(now, ep, call, from, digit, duration_ms)
            }),
            MediaEvent::Latched { .. } => {}
            MediaEvent::PortUnavailable { port } => self.with_call(now, ep, id, |b, ep, call| {
                tracing::warn!(call = call.id, port, "media port unavailable: ending call");
                call.media.unbindable.push(port);
                b.end_call(
                    now,
                    ep,
                    call,
                    "SIP;cause=503;text=\"media port unavailable\"",
                );
            }),
        }
    }

    /// Runs `f` on call `id` taken out of the table (so `f` may use `self`),
    /// then puts it back unless it finished.
    fn with_call(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        id: u64,
        f: impl FnOnce(&mut Self, &mut Endpoint, &mut Call),
    ) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        f(self, ep, &mut call);
        if self.is_finished(&call) {
            self.finish(now, ep, &mut call);
        } else {
            self.calls.insert(id, call);
        }
    }

    fn is_finished(&self, call: &Call) -> bool {
        call.state == call::CallState::Ending && call.awaiting == 0
    }

    /// Releases everything a finished call holds: media, ports, indexes.
    fn finish(&mut self, now: Instant, ep: &mut Endpoint, call: &mut Call) {
        // Requests relayed across and never answered: their server
        // transactions must still get a final response (or they would wait
        // forever in Proceeding).
        for p in call.pending.values() {
            if let call::Pending::Offer {
                server, server_req, ..
            }
            | call::Pending::Relay {
                server, server_req, ..
            } = p
            {
                let r = dialog::response(
                    server_req,
                    487,
                    "Request Terminated",
                    "cg0",
                    Vec::new(),
                    None,
                );
                ep.send_response(now, *server, r);
            }
        }
        if let Some(tx) = call.a_tx.take()
            && !call.answered()
        {
            let r = dialog::response(
                &call.a_invite,
                500,
                "Server Internal Error",
                &call.a.local_tag,
                Vec::new(),
                None,
            );
            ep.send_response(now, tx, r);
        }
        if let Some(session) = call.media.session.take() {
            self.media_out.push_back(MediaCommand::Close { session });
        }
        if let (Some(ports), Some(alloc)) = (call.media.ports.take(), self.ports.as_mut()) {
            for p in ports {
                if call.media.unbindable.contains(&p.rtp)
                    || p.rtcp.is_some_and(|r| call.media.unbindable.contains(&r))
                {
                    tracing::warn!(
                        port = p.rtp,
                        "media ports kept out of use: could not be bound"
                    );
                    continue;
                }
                alloc.release(p);
            }
        }
        // Earlier attempts' Call-IDs moved to `ended` when they were replaced.
        for k in [call.a.call_id.clone(), call.b.call_id.clone()] {
            self.by_call_id.remove(&k);
            self.tombstone(now, k);
        }
        self.compact_timers();
        // `by_tx` entries of this call go as their transactions terminate
        // (`on_terminated`; abandoned ones in `abandon`): a late answer finds
        // no call and is dropped. No scan of every live transaction here.
        tracing::debug!(call = call.id, "call finished");
    }

    /// Gives up a client transaction (no Terminated output follows, so its
    /// `by_tx` entry goes now).
    fn abandon(&mut self, ep: &mut Endpoint, tx: TxId) {
        ep.abandon_client(tx);
        self.by_tx.remove(&tx);
    }

    fn schedule(&mut self, at: Instant, id: u64, timer: CallTimer) {
        self.timers.push(Reverse((at, id, timer)));
    }

    /// Drops the timers of finished calls once they are most of the heap.
    /// They would otherwise stay until due (a no-answer timer 60 s out, a
    /// maximum-duration one 4 h out): at 2,000 short calls/s, millions of
    /// dead entries. A live call has at most a few pending, so the rebuild
    /// is amortised O(1) per timer and memory stays bounded by the calls in
    /// progress. Called by `finish`, when every live call is in `calls`
    /// (inside `with_call` the call being handled is not).
    fn compact_timers(&mut self) {
        if self.timers.len() > COMPACT_MIN_TIMERS + 8 * self.calls.len() {
            let calls = &self.calls;
            self.timers
                .retain(|Reverse((_, id, _))| calls.contains_key(id));
        }
    }

    fn next_token(&mut self) -> u64 {
        self.counter += 1;
        let mix = crate::media::session::mix;
        mix(self.cfg.seed ^ mix(self.counter))
    }

    /// A fresh RFC 3261 branch (magic cookie, shard, token): at most
    /// 9 + 4 + 1 + 16 = 30 bytes.
    fn new_branch(&mut self) -> Token {
        let token = self.next_token();
        Token::format(format_args!("z9hG4bKcb{:x}x{token:016x}", self.cfg.shard))
    }

    fn new_tag(&mut self) -> String {
        format!("cg{:016x}", self.next_token())
    }

    /// A Call-ID for leg B that the runtime's Call-ID hashing sends to this
    /// shard (bounded search; with 2 shards about 2 tries).
    fn new_call_id(&mut self) -> Bytes {
        // 16 + 4 hex digits and "@callgate": 29 bytes.
        let mut id = Token::default();
        for _ in 0..64 {
            let token = self.next_token();
            id = Token::format(format_args!("{token:016x}{:04x}@callgate", self.cfg.shard));
            if crate::proxy::shard_of(id.as_bytes(), usize::from(self.cfg.shards))
                == usize::from(self.cfg.shard)
            {
                break;
            }
        }
        Bytes::copy_from_slice(id.as_bytes())
    }

    /// The counters of `trunk`; its name is copied only the first time (this
    /// runs up to three times per call).
    fn counters(&mut self, trunk: &str) -> &mut TrunkCounters {
        if !self.trunk_counters.contains_key(trunk) {
            self.trunk_counters
                .insert(trunk.to_owned(), TrunkCounters::default());
        }
        // Present: inserted just above when it was missing.
        self.trunk_counters
            .get_mut(trunk)
            .expect("trunk counters inserted above")
    }
}

/// The media session of call `id` on `shard`: call ids are below 2^48 (a
/// token shifted right by 16), so the shard fits in the top bits and the
/// call id is recovered by [`call_of_session`].
fn session_of(shard: u16, id: u64) -> SessionId {
    (u64::from(shard) << 48) | (id & SESSION_CALL_MASK)
}

/// The call id inside a media session id (see [`session_of`]).
fn call_of_session(session: SessionId) -> u64 {
    session & SESSION_CALL_MASK
}

const SESSION_CALL_MASK: u64 = 0xffff_ffff_ffff;

/// This shard's slice of the media port range (even-aligned, so RTP/RTCP
/// pairs never straddle shards).
fn shard_ports(media: &MediaConfig, shard: u16, shards: u16) -> Option<PortAllocator> {
    let shards = u32::from(shards.max(1));
    let first = u32::from(media.port_first);
    let last = u32::from(media.port_last);
    let span = (last + 1).saturating_sub(first);
    let per = (span / shards) & !1;
    if per < 2 {
        return PortAllocator::new(media.port_first, media.port_last, false).ok();
    }
    let lo = first + per * u32::from(shard);
    let hi = if u32::from(shard) + 1 == shards {
        last
    } else {
        lo + per - 1
    };
    PortAllocator::new(lo as u16, hi as u16, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_slices_do_not_overlap() {
        let m = MediaConfig::default();
        let a = shard_ports(&m, 0, 2).unwrap();
        let b = shard_ports(&m, 1, 2).unwrap();
        assert_eq!(a.capacity() + b.capacity(), 500);
        let mut a = a;
        let mut b = b;
        let pa = a.allocate().unwrap();
        let pb = b.allocate().unwrap();
        assert_eq!(pa.rtp, 20000);
        assert_eq!(pb.rtp, 20500);
    }

    /// A B2BUA of shard `shard` of `shards` on UDP 127.0.0.1:5060.
    fn b2bua(shard: u16, shards: u16, seed: u64, timers: TimerConfig) -> B2bua {
        B2bua::new(B2buaConfig {
            shard,
            shards,
            seed,
            srtp_entropy: None,
            sent_by: vec!["127.0.0.1:5060".into()],
            transports: vec![Transport::Udp],
            timers,
            media: MediaConfig::default(),
        })
    }

    #[test]
    fn branches_and_call_ids_are_distinct_and_well_formed() {
        let mut b = b2bua(3, 4, 7, TimerConfig::default());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let br = b.new_branch();
            assert!(br.starts_with("z9hG4bKcb3x"), "{}", &*br);
            assert_eq!(br.len(), 27, "9 + 1 (shard) + 1 + 16");
            assert!(seen.insert(br.to_string()));
            let id = b.new_call_id();
            assert!(id.ends_with(b"0003@callgate") && id.len() == 29);
            assert_eq!(crate::proxy::shard_of(&id, 4), 3, "lands on its shard");
        }
    }

    #[test]
    fn tombstones_expire_after_64_t1_in_order() {
        use std::time::Duration;
        let timers = TimerConfig::default();
        let mut b = b2bua(0, 1, 1, timers);
        let mut ep = Endpoint::new(crate::sip::transaction::TimerConfig {
            t1: timers.t1,
            t2: timers.t2,
            t4: timers.t4,
        });
        let t0 = crate::sip::transaction::test_epoch();
        let horizon = timers.t1 * 64;
        b.tombstone(t0, Bytes::from_static(b"first"));
        b.tombstone(t0 + Duration::from_secs(1), Bytes::from_static(b"second"));
        b.handle_timeout(t0 + horizon - Duration::from_millis(1), &mut ep);
        assert!(b.owns_call_id(b"first") && b.owns_call_id(b"second"));
        b.handle_timeout(t0 + horizon, &mut ep);
        assert!(!b.owns_call_id(b"first"), "expired at 64·T1");
        assert!(b.owns_call_id(b"second"), "ended a second later");
        b.handle_timeout(t0 + horizon + Duration::from_secs(1), &mut ep);
        assert!(!b.owns_call_id(b"second"));
        assert!(b.ended_order.is_empty() && b.ended.is_empty());
    }
}
