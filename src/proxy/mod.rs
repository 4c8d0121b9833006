//! The signaling controller: a stateful RFC 3261 §16 proxy driven by the
//! dial plan. One [`Proxy`] is one shard; the runtime shards calls by
//! Call-ID so a call's messages are handled in order by one shard.
//!
//! ```text
//!  bytes ─▶ parse ─▶ Endpoint (transactions) ─▶ Proxy TU
//!                                               │ request: validate (§16.3), route (dial plan
//!                                               │   or dialog table), forward (§16.6) ─▶ client tx
//!                                               │ response: pop Via, relay 1xx/2xx, collect
//!                                               │   finals, failover to the next trunk (§16.7)
//!  Transmit ◀──────────────────────────────────┘
//! ```
//!
//! Sans-IO: `handle_datagram` / `handle_stream_message` / `handle_timeout`
//! take `now`; `poll_transmit` and `poll_timeout` say what to do next.

mod context;
mod dialogs;
mod error;
mod forward;
mod request;
mod response;
mod stats;

pub use error::ProxyError;
pub use stats::{METHODS, ProxyStats, method_index};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::b2bua::{B2bua, B2buaConfig};
use crate::dialplan::{DialPlan, Side};
use crate::sip::message::{self, Header, HeaderName, Limits, ParseError};
use crate::sip::transaction::{Endpoint, Output, TimerConfig, TxId, TxMap};
use crate::sip::transport::{self, Flow, Transmit, Transport};

use context::Context;
use dialogs::DialogTable;

/// One local socket the runtime has bound; its index is the [`transport::ListenerId`].
#[derive(Debug, Clone)]
pub struct LocalSocket {
    /// Name of the dial-plan listener it belongs to.
    pub listener: String,
    /// Client or carrier side.
    pub side: Side,
    /// UDP or TCP.
    pub transport: Transport,
    /// The bound address.
    pub addr: SocketAddr,
}

impl LocalSocket {
    /// A UDP socket of listener `listener` on `side`, bound to `addr`.
    pub fn udp(listener: &str, side: Side, addr: SocketAddr) -> LocalSocket {
        LocalSocket {
            listener: listener.to_string(),
            side,
            transport: Transport::Udp,
            addr,
        }
    }
}

/// Static configuration of a proxy shard.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Bound sockets, indexed by listener id.
    pub sockets: Vec<LocalSocket>,
    /// Shard number (kept in branches so shards never collide).
    pub shard: u16,
    /// How many shards the runtime runs ([`shard_of`] picks one per Call-ID;
    /// the B2BUA makes leg B Call-IDs that land on their call's shard).
    pub shards: u16,
    /// Seed for Call-IDs, tags and branches the gateway generates (the runtime
    /// draws it at start; tests fix it).
    pub seed: u64,
    /// Entropy for the B2BUA's SRTP master keys (the runtime draws it from
    /// the OS; `None`, the default: no SRTP termination).
    pub srtp_entropy: Option<[u8; 32]>,
    /// Parser limits.
    pub limits: Limits,
    /// Answer requests at the packet's source address and port (RFC 3581
    /// behaviour for every request; what an SBC does for NATed peers).
    pub symmetric_responses: bool,
    /// Forget a dialog that saw no request for this long.
    pub dialog_idle: Duration,
}

impl ProxyConfig {
    /// Shard 0 over `sockets` with the production defaults: default parser
    /// limits, symmetric responses, dialogs forgotten after 12 idle hours.
    pub fn new(sockets: Vec<LocalSocket>) -> ProxyConfig {
        ProxyConfig {
            sockets,
            shard: 0,
            shards: 1,
            seed: 0,
            srtp_entropy: None,
            limits: Limits::default(),
            symmetric_responses: true,
            dialog_idle: Duration::from_secs(12 * 3600),
        }
    }
}

/// The shard (of `shards`) that owns Call-ID `call_id`: every message of a
/// call is handled in order by one shard.
pub fn shard_of(call_id: &[u8], shards: usize) -> usize {
    // FNV-1a: cheap, stable across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in call_id {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// Our sent-by for a listener: the configured FQDN or the bound address.
fn sent_by_of(plan: &DialPlan, cfg: &ProxyConfig, listener: transport::ListenerId) -> Arc<str> {
    if let Some(fqdn) = &plan.gateway.fqdn {
        return fqdn.as_str().into();
    }
    cfg.sockets
        .get(listener)
        .map_or_else(|| "callgate.invalid".into(), |s| s.addr.to_string().into())
}

/// Timers the proxy itself runs (the transaction timers live in the Endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ProxyTimer {
    /// Timer C of a client INVITE branch (§16.6 step 11).
    TimerC(TxId),
    /// 64·T1 after a CANCEL of this branch (RFC 3261 §9.1).
    CancelGiveUp(TxId),
    /// Periodic sweep of idle dialogs.
    DialogSweep,
}

/// A stateful proxy shard (sans-IO).
pub struct Proxy {
    cfg: ProxyConfig,
    plan: Arc<DialPlan>,
    endpoint: Endpoint,
    /// Response contexts by server transaction.
    /// Boxed (a `Context` is ~540 bytes): the table's resizes move 16-byte
    /// entries instead.
    contexts: TxMap<Box<Context>>,
    /// Client transaction → server transaction owning it.
    branch_owner: TxMap<TxId>,
    dialogs: DialogTable,
    timers: BinaryHeap<Reverse<(Instant, ProxyTimer)>>,
    out: VecDeque<Transmit>,
    counter: u64,
    draining: bool,
    stats: Arc<ProxyStats>,
    b2bua: B2bua,
    /// Our sent-by per listener (FQDN or bound address), formatted once per
    /// plan instead of for every Via and Record-Route.
    sent_by: Vec<Arc<str>>,
}

impl Proxy {
    /// A shard serving `plan` over the sockets in `cfg`.
    pub fn new(cfg: ProxyConfig, plan: Arc<DialPlan>, stats: Arc<ProxyStats>) -> Proxy {
        let t = plan.timers;
        let mut endpoint = Endpoint::new(TimerConfig {
            t1: t.t1,
            t2: t.t2,
            t4: t.t4,
        });
        endpoint.set_symmetric_responses(cfg.symmetric_responses);
        let sent_by: Vec<Arc<str>> = (0..cfg.sockets.len())
            .map(|i| sent_by_of(&plan, &cfg, i))
            .collect();
        let b2bua = B2bua::new(B2buaConfig {
            shard: cfg.shard,
            shards: cfg.shards,
            seed: cfg.seed,
            srtp_entropy: cfg.srtp_entropy,
            sent_by: sent_by.clone(),
            transports: cfg.sockets.iter().map(|s| s.transport).collect(),
            timers: plan.timers,
            media: plan.media.clone(),
        });
        Proxy {
            b2bua,
            dialogs: DialogTable::new(cfg.dialog_idle),
            cfg,
            plan,
            endpoint,
            contexts: TxMap::default(),
            branch_owner: TxMap::default(),
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            counter: 0,
            draining: false,
            stats,
            sent_by,
        }
    }

    /// Swap in a reloaded dial plan; calls in progress keep their state.
    pub fn set_plan(&mut self, plan: Arc<DialPlan>) {
        self.plan = plan;
        self.sent_by = (0..self.cfg.sockets.len())
            .map(|i| sent_by_of(&self.plan, &self.cfg, i))
            .collect();
        self.b2bua
            .reconfigure(self.plan.timers, self.sent_by.clone());
    }

    /// Stop taking new calls (OPTIONS get 503, new INVITEs get 503).
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Transactions the B2BUA of this shard still indexes (leak checks).
    pub fn b2bua_tracked_transactions(&self) -> usize {
        self.b2bua.tracked_transactions()
    }

    /// Call timers the B2BUA of this shard holds (bounded-memory checks).
    pub fn b2bua_pending_timers(&self) -> usize {
        self.b2bua.pending_timers()
    }

    /// One line per live transaction (diagnostics, leak checks in tests).
    pub fn describe_transactions(&self) -> Vec<String> {
        self.endpoint.describe()
    }

    /// Transactions alive (the runtime waits for zero before exiting on drain).
    pub fn active_transactions(&self) -> usize {
        self.endpoint.active_transactions()
    }

    /// Count a panic the runtime caught while this shard handled an input.
    pub fn note_internal_error(&self) {
        ProxyStats::bump(&self.stats.internal_errors);
    }

    /// Response contexts alive (a context is freed as soon as its final
    /// answer went upstream and every branch is done).
    pub fn active_contexts(&self) -> usize {
        self.contexts.len()
    }

    /// The next instruction for the media plane (B2BUA calls with `media:
    /// anchor`); the runtime applies them in order after every input.
    pub fn poll_media_command(&mut self) -> Option<crate::media::MediaCommand> {
        self.b2bua.poll_media_command()
    }

    /// The media plane reports `event` for `session` (e.g. RTP inactivity).
    pub fn handle_media_event(
        &mut self,
        now: Instant,
        session: crate::media::SessionId,
        event: crate::media::Event,
    ) {
        self.b2bua
            .handle_media_event(now, &mut self.endpoint, session, event);
        self.drive(now);
    }

    /// Snapshots of the B2BUA calls of this shard (admin `/calls`).
    pub fn calls(&self) -> Vec<crate::b2bua::CallInfo> {
        self.b2bua.calls()
    }

    /// B2BUA calls alive in this shard.
    pub fn active_calls(&self) -> usize {
        self.b2bua.active_calls()
    }

    /// Media ports the B2BUA of this shard has allocated.
    pub fn media_ports_in_use(&self) -> usize {
        self.b2bua.ports_in_use()
    }

    /// Per-trunk B2BUA attempts/answers/failures of this shard.
    pub fn trunk_counters(&self) -> Vec<(String, crate::b2bua::TrunkCounters)> {
        self.b2bua.trunk_counters()
    }

    /// Dialogs tracked for in-dialog routing.
    pub fn active_dialogs(&self) -> usize {
        self.dialogs.len()
    }

    /// A datagram arrived on `flow`.
    pub fn handle_datagram(&mut self, now: Instant, flow: Flow, data: Bytes) {
        let parsed = message::parse_datagram(data, &self.cfg.limits);
        self.handle_parsed(now, flow, parsed);
    }

    /// A message framed from a stream (see `sip::transport::StreamFramer`) arrived on `flow`.
    pub fn handle_stream_message(&mut self, now: Instant, flow: Flow, data: Bytes) {
        let parsed = message::parse_stream_message(data, &self.cfg.limits);
        self.handle_parsed(now, flow, parsed);
    }

    fn handle_parsed(
        &mut self,
        now: Instant,
        flow: Flow,
        parsed: Result<message::Message, message::ParseFailure>,
    ) {
        match parsed {
            Ok(mut msg) => {
                if msg.is_request() {
                    transport::add_received_rport(&mut msg, flow.remote);
                }
                self.endpoint.handle_message(now, flow, msg);
            }
            Err(failure) => {
                if failure.error == ParseError::KeepAlive {
                    return;
                }
                ProxyStats::bump(&self.stats.parse_errors);
                tracing::debug!(remote = %flow.remote, error = %failure.error, "unparseable message");
                // RFC 3261 §16.3 / RFC 4475: answer a broken request when we
                // have enough of it to address a response; drop broken responses.
                let has_via = failure.headers.iter().any(|h| h.name == HeaderName::Via);
                if failure.looks_like_request
                    && has_via
                    && let Some((code, reason)) = failure.error.status()
                {
                    let warning = Header::new(
                        HeaderName::Warning,
                        format!("399 {} \"{}\"", self.sent_by(flow.listener), failure.error),
                    );
                    let resp = message::error_response_from_headers(
                        &failure.headers,
                        code,
                        reason,
                        vec![warning],
                    );
                    self.count_out(&resp);
                    self.endpoint.send_stateless(flow, resp);
                }
            }
        }
        self.drive(now);
    }

    /// The runtime could not deliver a transmit of client transaction `tx`.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        self.endpoint.handle_transport_error(now, tx);
        self.drive(now);
    }

    /// Time passed: fire due transaction and proxy timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.b2bua.handle_timeout(now, &mut self.endpoint);
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                ProxyTimer::TimerC(ctx_tx) => self.on_timer_c(now, ctx_tx),
                ProxyTimer::CancelGiveUp(tx) => self.on_cancel_give_up(now, tx),
                ProxyTimer::DialogSweep => {
                    self.dialogs.expire(now);
                }
            }
        }
        self.drive(now);
    }

    /// The earliest instant `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = self.timers.peek().map(|Reverse((at, _))| *at);
        [own, self.endpoint.poll_timeout(), self.b2bua.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Next datagram or stream write to perform.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// Drain the endpoint's outputs into proxy actions until it is quiet.
    fn drive(&mut self, now: Instant) {
        while let Some(o) = self.endpoint.poll_output() {
            match o {
                Output::Transmit(t) => self.out.push_back(t),
                Output::Request { tx, flow, msg } => {
                    ProxyStats::bump(
                        &self.stats.requests_in
                            [method_index(msg.method().map_or(b"", |m| m.as_bytes()))],
                    );
                    self.on_request(now, tx, flow, msg);
                }
                Output::Response { tx, msg } => {
                    ProxyStats::bump(
                        &self.stats.responses_in[usize::from(msg.code().unwrap_or(0) / 100).min(6)],
                    );
                    if self.b2bua.owns_tx(tx) {
                        self.b2bua.on_response(now, &mut self.endpoint, tx, msg);
                    } else {
                        self.on_response(now, tx, msg);
                    }
                }
                Output::StrayResponse { flow: _, msg } => self.forward_stray_response(msg),
                Output::Timeout { tx } | Output::TransportError { tx } => {
                    if self.b2bua.owns_tx(tx) {
                        self.b2bua.on_tx_failed(now, &mut self.endpoint, tx);
                    } else {
                        self.on_branch_failed(now, tx)
                    }
                }
                Output::ServerTimeout { .. } => {}
                Output::Terminated { tx } => {
                    if self.b2bua.owns_tx(tx) {
                        self.b2bua.on_terminated(tx);
                    } else {
                        self.on_terminated(tx);
                    }
                }
            }
        }
        self.stats.active_transactions.store(
            self.endpoint.active_transactions() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.stats.active_dialogs.store(
            self.dialogs.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.stats.active_calls.store(
            self.b2bua.active_calls() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.stats.media_ports_in_use.store(
            self.b2bua.ports_in_use() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn on_terminated(&mut self, tx: TxId) {
        if let Some(owner) = self.branch_owner.remove(&tx)
            && let Some(ctx) = self.contexts.get_mut(&owner)
        {
            ctx.forget_branch(tx);
        }
        if let Some(ctx) = self.contexts.get(&tx) {
            for b in ctx.branch_ids() {
                self.branch_owner.remove(&b);
            }
            if self.contexts.remove(&tx).is_some_and(|c| !c.final_sent) {
                self.stats
                    .pending_requests
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Our sent-by for a listener: the configured FQDN or the bound address.
    fn sent_by(&self, listener: transport::ListenerId) -> &str {
        self.sent_by.get(listener).map_or("callgate.invalid", |s| s)
    }

    fn schedule(&mut self, at: Instant, timer: ProxyTimer) {
        self.timers.push(Reverse((at, timer)));
    }

    fn count_out(&self, msg: &message::Message) {
        match msg.code() {
            Some(code) => {
                ProxyStats::bump(&self.stats.responses_out[usize::from(code / 100).min(6)])
            }
            None => ProxyStats::bump(
                &self.stats.requests_out[method_index(msg.method().map_or(b"", |m| m.as_bytes()))],
            ),
        }
    }

    /// Answer a server transaction from the proxy itself.
    fn respond(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &message::Message,
        code: u16,
        reason: &str,
        extra: Vec<Header>,
    ) {
        let resp = message::response_to(req, code, reason, extra);
        self.count_out(&resp);
        self.endpoint.send_response(now, tx, resp);
    }
}
