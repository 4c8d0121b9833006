//! Forwarding (RFC 3261 §16.6): copy the request, decrement Max-Forwards,
//! Record-Route, push our Via with a unique branch, send on the target flow.
//! Also the stateless paths: ACK for 2xx (§16.11 behaviour for requests
//! without a transaction) and responses matching no transaction (§16.7).

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::time::Instant;

use crate::dialplan::{TransportKind, Trunk};
use crate::sip::message::{Header, HeaderName, Message, Method, StartLine, text};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Flow, ListenerId, Transport};

use super::context::{Branch, BranchState};
use super::request::loop_hash;
use super::{Proxy, ProxyTimer};

/// Every branch we generate starts with this, followed by the loop hash.
pub(super) const BRANCH_PREFIX: &str = "z9hG4bKcg";

/// Append [`BRANCH_PREFIX`] and the loop hash as 8 hex digits: the marker
/// §16.3 step 4 loop detection looks for in our Vias.
pub(super) fn push_branch_prefix(out: &mut Vec<u8>, loop_hash: u32) {
    out.extend_from_slice(BRANCH_PREFIX.as_bytes());
    text::push_hex(out, u64::from(loop_hash), 8);
}

/// A hasher with a fixed seed: branch parts that must come out the same for
/// a retransmission (and across shards), with no random source in the core.
pub(super) fn stable_hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(0x6361_6c6c_6761_7465).build_hasher()
}

impl Proxy {
    /// The flow toward a trunk: sent from a socket of the other side than
    /// the request came in on (client → carrier), same transport and family.
    pub(super) fn trunk_flow(&self, ingress: ListenerId, trunk: &Trunk) -> Flow {
        let transport = match trunk.transport {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
        };
        Flow {
            listener: self.egress_socket(ingress, transport, trunk.address),
            transport,
            remote: trunk.address,
            conn: None,
        }
    }

    fn egress_socket(
        &self,
        ingress: ListenerId,
        transport: Transport,
        remote: SocketAddr,
    ) -> ListenerId {
        let in_side = self.cfg.sockets.get(ingress).map(|s| s.side);
        let fits = |s: &super::LocalSocket| {
            s.transport == transport && s.addr.is_ipv4() == remote.is_ipv4()
        };
        let socks = &self.cfg.sockets;
        socks
            .iter()
            .position(|s| fits(s) && Some(s.side) != in_side)
            .or_else(|| socks.iter().position(fits))
            .or_else(|| socks.iter().position(|s| s.transport == transport))
            .unwrap_or(ingress)
    }

    /// Our Via for a new branch (§16.6 step 8): `branch` is the loop-hash
    /// prefix plus `.shard.counter`, unique per shard.
    fn branch_via(&mut self, listener: ListenerId, transport: Transport, hash: u32) -> Header {
        self.counter += 1;
        let (shard, counter) = (self.cfg.shard, self.counter);
        self.via_header(listener, transport, |v| {
            push_branch_prefix(v, hash);
            v.push(b'.');
            text::push_hex(v, shard as u64, 0);
            v.push(b'.');
            text::push_hex(v, counter, 0);
        })
    }

    /// `Via: SIP/2.0/<transport> <sent-by>;branch=<branch>;rport`, the
    /// branch written by `branch`.
    fn via_header(
        &self,
        listener: ListenerId,
        transport: Transport,
        branch: impl FnOnce(&mut Vec<u8>),
    ) -> Header {
        Header::build(HeaderName::Via, |v| {
            v.extend_from_slice(b"SIP/2.0/");
            v.extend_from_slice(transport.via_token().as_bytes());
            v.push(b' ');
            v.extend_from_slice(self.sent_by(listener).as_bytes());
            v.extend_from_slice(b";branch=");
            branch(v);
            v.extend_from_slice(b";rport");
        })
    }

    fn record_route_header(&self, listener: ListenerId) -> Header {
        let tcp = self
            .cfg
            .sockets
            .get(listener)
            .is_some_and(|s| s.transport == Transport::Tcp);
        Header::build(HeaderName::RecordRoute, |v| {
            v.extend_from_slice(b"<sip:");
            v.extend_from_slice(self.sent_by(listener).as_bytes());
            if tcp {
                v.extend_from_slice(b";transport=tcp");
            }
            v.extend_from_slice(b";lr>");
        })
    }

    /// Start a branch to the next remaining target of a context (serial
    /// failover). Returns false when no target is left.
    pub(super) fn start_next_branch(&mut self, now: Instant, ctx_tx: TxId) -> bool {
        let Some(ctx) = self.contexts.get_mut(&ctx_tx) else {
            return false;
        };
        let Some(target) = ctx.remaining.pop_front() else {
            return false;
        };
        let mut req = ctx.request.clone();
        let hash = ctx.loop_hash;
        let (ingress, record_route, is_invite) = (ctx.ingress, ctx.record_route, ctx.is_invite);
        if let Some(uri) = target.uri {
            req.set_uri(uri);
        }
        req.decrement_max_forwards();
        if record_route {
            // RFC 5658 double Record-Route when in and out sockets differ;
            // the egress entry ends up on top.
            if ingress.listener != target.flow.listener {
                req.push_front(self.record_route_header(ingress.listener));
            }
            req.push_front(self.record_route_header(target.flow.listener));
        }
        let via = self.branch_via(target.flow.listener, target.flow.transport, hash);
        req.push_front(via);
        self.count_out(&req);
        let tx = self.endpoint.send_request(now, target.flow, req);
        tracing::debug!(target = %target.name, remote = %target.flow.remote, "branch started");
        self.branch_owner.insert(tx, ctx_tx);
        let timer_c_at = is_invite.then(|| now + self.plan.timers.timer_c);
        if let Some(at) = timer_c_at {
            self.schedule(at, ProxyTimer::TimerC(tx));
        }
        if let Some(ctx) = self.contexts.get_mut(&ctx_tx) {
            ctx.branches.push(Branch {
                tx,
                flow: target.flow,
                state: BranchState::Calling,
                cancel_pending: false,
                timed_out: false,
                timer_c_at,
            });
        }
        true
    }

    /// CANCEL branch `tx` (in Proceeding): the CANCEL is built from the
    /// INVITE its client transaction still holds (an ICT drops it only once
    /// a final response arrived, when there is nothing left to cancel).
    pub(super) fn cancel_branch(&mut self, now: Instant, tx: TxId, flow: Flow) {
        if let Some(invite) = self.endpoint.request_of(tx).cloned() {
            self.send_cancel(now, tx, flow, &invite);
        }
    }

    /// Send a CANCEL for a branch (§9.1: same Request-URI, Call-ID, From,
    /// To, CSeq number and top Via as the INVITE; Route copied).
    pub(super) fn send_cancel(&mut self, now: Instant, branch: TxId, flow: Flow, invite: &Message) {
        let give_up = now + self.plan.timers.t1 * 64;
        self.schedule(give_up, ProxyTimer::CancelGiveUp(branch));
        let Some(uri) = invite.uri().cloned() else {
            return;
        };
        let mut headers = Vec::new();
        if let Some(v) = invite.header(HeaderName::Via) {
            let top = invite.vias().into_iter().next();
            match top {
                Some(via) if v.value().contains(&b',') => {
                    let mut s = format!(
                        "SIP/2.0/{} {}",
                        String::from_utf8_lossy(&via.transport),
                        String::from_utf8_lossy(&via.host)
                    );
                    if let Some(p) = via.port {
                        s.push_str(&format!(":{p}"));
                    }
                    s.push_str(&String::from_utf8_lossy(&via.params));
                    headers.push(Header::new(HeaderName::Via, s));
                }
                _ => headers.push(v.clone()),
            }
        }
        for h in &invite.headers {
            if matches!(
                h.name,
                HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::Route
            ) {
                headers.push(h.clone());
            }
        }
        let seq = invite.cseq().map_or(1, |c| c.seq);
        headers.push(Header::new(HeaderName::CSeq, format!("{seq} CANCEL")));
        headers.push(Header::new(HeaderName::MaxForwards, "70"));
        headers.push(Header::new(HeaderName::ContentLength, "0"));
        let cancel = Message {
            start: StartLine::Request {
                method: Method::Cancel,
                uri,
            },
            headers,
            body: Default::default(),
        };
        self.count_out(&cancel);
        self.endpoint.send_request(now, flow, cancel);
    }

    /// Forward an ACK for a 2xx statelessly, along the dialog (§16.11 /
    /// §13.2.2.4: the ACK for a 2xx is its own transaction end to end).
    pub(super) fn forward_ack(&mut self, now: Instant, flow: Flow, mut msg: Message) {
        while msg.routes().first().is_some_and(|r| self.is_us(&r.uri)) {
            msg.pop_first_value(HeaderName::Route);
        }
        if msg.max_forwards() == Some(0) {
            return;
        }
        let (from_tag, to_tag) = (
            msg.from_tag_ref().unwrap_or_default(),
            msg.to_tag_ref().unwrap_or_default(),
        );
        let target = match self.dialogs.target(now, msg.call_id(), from_tag, to_tag) {
            Some(t) => Some(t),
            None => {
                // Not a dialog we know: the dial plan's first trunk, like the INVITE would.
                let mut probe = msg.clone();
                self.ack_fallback_target(flow, &mut probe)
            }
        };
        let Some(mut target) = target else { return };
        if let Some(addr) = msg.routes().first().and_then(|r| r.uri.socket_addr()) {
            target = Flow {
                remote: addr,
                conn: None,
                ..target
            };
        }
        msg.decrement_max_forwards();
        // A stateless branch must be the same for a retransmitted ACK.
        let mut h = stable_hasher();
        msg.top_via_ref().and_then(|v| v.branch()).hash(&mut h);
        msg.call_id().hash(&mut h);
        let (lh, ah) = (loop_hash(&msg), h.finish() & 0xffff_ffff);
        let via = self.via_header(target.listener, target.transport, |v| {
            push_branch_prefix(v, lh);
            v.extend_from_slice(b".a");
            text::push_hex(v, ah, 0);
        });
        msg.push_front(via);
        self.count_out(&msg);
        self.endpoint.send_stateless(target, msg);
    }

    fn ack_fallback_target(&mut self, flow: Flow, msg: &mut Message) -> Option<Flow> {
        let decision = self.route_by_plan(flow, msg);
        match decision {
            crate::dialplan::Decision::Forward { trunks, .. } => {
                trunks.first().map(|t| self.trunk_flow(flow.listener, t))
            }
            _ => None,
        }
    }

    /// A response no client transaction claims (§16.7 via §16.11): if the
    /// top Via is ours, pop it and send along the next Via.
    pub(super) fn forward_stray_response(&mut self, mut msg: Message) {
        let Some(top) = msg.top_via() else { return };
        let ours = top
            .branch()
            .is_some_and(|b| b.starts_with(BRANCH_PREFIX.as_bytes()));
        if !ours {
            return;
        }
        msg.pop_first_value(HeaderName::Via);
        let Some(next) = msg.top_via() else { return };
        let transport = if next.transport.eq_ignore_ascii_case(b"TCP") {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let host = next
            .param("received")
            .flatten()
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| next.host.to_vec());
        let host = String::from_utf8_lossy(&host)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return;
        };
        let port = next
            .param("rport")
            .flatten()
            .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())
            .or(next.port)
            .unwrap_or(5060);
        let remote = SocketAddr::new(ip, port);
        let listener = self.egress_socket(usize::MAX, transport, remote);
        self.count_out(&msg);
        self.endpoint.send_stateless(
            Flow {
                listener,
                transport,
                remote,
                conn: None,
            },
            msg,
        );
    }
}
