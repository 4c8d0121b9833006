//! Incoming requests: validation (RFC 3261 §16.3), Route preprocessing
//! (§16.4), target selection (§16.5: dialog table, then the dial plan),
//! CANCEL (§16.10) and requests addressed to the gateway itself.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use crate::dialplan::{Decision, ForkMode, RouteMode, RouteQuery};
use crate::sip::message::{self, Header, HeaderName, Message, Method, Scheme, Uri};
use crate::sip::transaction::TxId;
use crate::sip::transport::Flow;

use super::context::{Context, Target};
use super::stats::ProxyStats;
use super::{Proxy, ProxyError};

/// Option tags the proxy supports in Proxy-Require (none: §16.3 step 5).
const SUPPORTED_PROXY_EXTENSIONS: [&str; 0] = [];

impl Proxy {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        tx: Option<TxId>,
        flow: Flow,
        mut msg: Message,
    ) {
        if self.b2bua.owns_call_id(msg.call_id()) {
            self.b2bua
                .on_request(now, &mut self.endpoint, tx, flow, msg);
            return;
        }
        let Some(tx) = tx else {
            // An ACK for a 2xx (no transaction): forward statelessly.
            self.forward_ack(now, flow, msg);
            return;
        };
        if msg.method() == Some(&Method::Cancel) {
            self.on_cancel(now, tx, &msg);
            return;
        }
        match self.route_request(now, tx, flow, &mut msg) {
            Ok(None) => {}
            // The request itself moves to the B2BUA (no copy of it).
            Ok(Some(decision)) => self.hand_to_b2bua(now, tx, flow, msg, decision),
            Err(e) => {
                let (code, reason) = e.status();
                let mut extra = Vec::new();
                if let ProxyError::BadExtension(tags) = &e {
                    extra.push(Header::new(HeaderName::Unsupported, tags.join(", ")));
                }
                if matches!(e, ProxyError::Draining) {
                    extra.push(Header::new(HeaderName::RetryAfter, "30"));
                }
                tracing::debug!(call_id = %String::from_utf8_lossy(msg.call_id()), %e, "request answered by proxy");
                self.respond(now, tx, &msg, code, &reason, extra);
            }
        }
    }

    /// Validate, preprocess and route one request; Ok(None) means a context
    /// with at least one branch was started or the request was answered
    /// locally, Ok(Some) that the dial plan gives this new INVITE to the
    /// B2BUA (the caller hands it over with [`Proxy::hand_to_b2bua`]).
    fn route_request(
        &mut self,
        now: Instant,
        tx: TxId,
        flow: Flow,
        msg: &mut Message,
    ) -> Result<Option<Decision>, ProxyError> {
        let uri = msg.uri().cloned().ok_or(ProxyError::NoRoute)?;
        if uri.scheme() == Scheme::Other {
            return Err(ProxyError::UnsupportedScheme);
        }
        let loop_hash = loop_hash(msg);
        if self.is_loop(msg, loop_hash) {
            return Err(ProxyError::LoopDetected);
        }
        let unsupported: Vec<String> = msg
            .option_tags(HeaderName::ProxyRequire)
            .iter()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .filter(|t| !SUPPORTED_PROXY_EXTENSIONS.contains(&t.as_str()))
            .collect();
        if !unsupported.is_empty() {
            return Err(ProxyError::BadExtension(unsupported));
        }
        // §16.4: remove Route values that name us.
        while msg.routes().first().is_some_and(|r| self.is_us(&r.uri)) {
            msg.pop_first_value(HeaderName::Route);
        }
        let is_options_to_us =
            msg.method() == Some(&Method::Options) && uri.user().is_none() && self.is_us(&uri);
        if msg.max_forwards() == Some(0) && !is_options_to_us {
            return Err(ProxyError::TooManyHops);
        }
        if is_options_to_us && msg.routes().is_empty() {
            // Keep-alive probes from peers (interop: 200, or 503 while draining).
            if self.draining {
                return Err(ProxyError::Draining);
            }
            let allow = Header::new(
                HeaderName::Allow,
                "INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY",
            );
            self.respond(
                now,
                tx,
                msg,
                200,
                "OK",
                vec![allow, Header::new(HeaderName::Accept, "application/sdp")],
            );
            return Ok(None);
        }
        let is_invite = msg.method() == Some(&Method::Invite);
        let in_dialog = msg.to_tag_ref().is_some();
        let (targets, parallel) = if in_dialog {
            self.in_dialog_targets(now, flow, msg)?
        } else {
            if self.draining {
                return Err(ProxyError::Draining);
            }
            let decision = self.route_by_plan(flow, msg);
            if is_invite
                && let Decision::Forward {
                    mode: RouteMode::B2bua,
                    ..
                } = &decision
            {
                ProxyStats::bump(&self.stats.calls);
                return Ok(Some(decision));
            }
            self.targets_of(decision, flow, msg)?
        };
        if is_invite {
            // §16.2: answer 100 at once so the caller stops retransmitting.
            self.respond(now, tx, msg, 100, "Trying", Vec::new());
            if !in_dialog {
                ProxyStats::bump(&self.stats.calls);
            }
        }
        let record_route = !in_dialog && creates_dialog(msg.method());
        // The request moves into its context (the caller only uses `msg` to
        // answer an error, and none can happen past this point): no copy.
        let request = Message {
            start: msg.start.clone(),
            headers: std::mem::take(&mut msg.headers),
            body: std::mem::take(&mut msg.body),
        };
        let mut ctx = Context::new(request, flow, is_invite, record_route, targets);
        ctx.loop_hash = loop_hash;
        self.contexts.insert(tx, Box::new(ctx));
        ProxyStats::bump(&self.stats.pending_requests);
        if parallel {
            // §16.6: fork to every target at once; the first 2xx wins.
            while self.start_next_branch(now, tx) {}
        } else {
            self.start_next_branch(now, tx);
        }
        Ok(None)
    }

    /// Targets of an in-dialog request: the dialog's other end, a remaining
    /// Route to a configured trunk, or (dialog unknown) the dial plan.
    fn in_dialog_targets(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: &mut Message,
    ) -> Result<(Vec<Target>, bool), ProxyError> {
        if let Some(route) = msg.routes().first()
            && let Some(addr) = route.uri.socket_addr()
            && let Some(trunk) = self.plan.trunk_by_addr(addr).cloned()
        {
            let flow = self.trunk_flow(flow.listener, &trunk);
            return Ok((
                vec![Target {
                    name: trunk.name,
                    flow,
                    uri: None,
                }],
                false,
            ));
        }
        let from_tag = msg.from_tag_ref().unwrap_or_default();
        let to_tag = msg.to_tag_ref().unwrap_or_default();
        if let Some(target) = self.dialogs.target(now, msg.call_id(), from_tag, to_tag) {
            let route_flow = msg
                .routes()
                .first()
                .and_then(|r| r.uri.socket_addr())
                .map(|addr| Flow {
                    remote: addr,
                    conn: None,
                    ..target
                });
            let target = Target {
                name: "dialog".into(),
                flow: route_flow.unwrap_or(target),
                uri: None,
            };
            return Ok((vec![target], false));
        }
        self.initial_targets(flow, msg)
    }

    /// Targets of a request routed by the dial plan (initial requests and
    /// in-dialog requests of dialogs we never saw).
    fn initial_targets(
        &mut self,
        flow: Flow,
        msg: &mut Message,
    ) -> Result<(Vec<Target>, bool), ProxyError> {
        let decision = self.route_by_plan(flow, msg);
        self.targets_of(decision, flow, msg)
    }

    /// Hands a new INVITE the dial plan gave to the B2BUA over to it.
    fn hand_to_b2bua(
        &mut self,
        now: Instant,
        tx: TxId,
        flow: Flow,
        msg: Message,
        decision: Decision,
    ) {
        let Decision::Forward {
            trunks,
            ruri_user,
            from_user,
            media,
            ringback,
            ..
        } = decision
        else {
            return;
        };
        let to_user =
            ruri_user.unwrap_or_else(|| msg.uri().map(Uri::user_decoded).unwrap_or_default());
        let from_user = from_user.unwrap_or_else(|| {
            msg.from_hdr()
                .map(|f| f.uri.user_decoded())
                .unwrap_or_default()
        });
        let targets = trunks
            .iter()
            .map(|t| crate::b2bua::Target {
                flow: self.trunk_flow(flow.listener, t),
                trunk: t.clone(),
            })
            .collect();
        let listener = self
            .cfg
            .sockets
            .get(flow.listener)
            .map_or_else(String::new, |s| s.listener.clone());
        let a_dtmf = self
            .plan
            .trunk_by_addr(flow.remote)
            .map_or(crate::dialplan::DtmfMode::Rfc4733, |t| t.policy.dtmf);
        self.b2bua.new_call(
            now,
            &mut self.endpoint,
            crate::b2bua::NewCall {
                tx,
                flow,
                invite: msg,
                listener,
                targets,
                media,
                to_user,
                from_user,
                ringback,
                a_dtmf,
            },
        );
    }

    /// Targets of a proxied request from a dial-plan decision.
    fn targets_of(
        &mut self,
        decision: Decision,
        flow: Flow,
        msg: &mut Message,
    ) -> Result<(Vec<Target>, bool), ProxyError> {
        let uri = msg.uri().cloned().ok_or(ProxyError::NoRoute)?;
        let from = msg.from_hdr();
        match decision {
            Decision::Forward {
                trunks,
                ruri_user: new_user,
                from_user: new_from,
                fork,
                ..
            } => {
                if let (Some(user), Some(from)) = (new_from, from) {
                    rewrite_from_user(msg, &from, &user);
                }
                // The dial plan picked the next hop: routes a peer preloaded
                // are not honoured (an SBC does not source-route for clients).
                msg.remove_headers(HeaderName::Route);
                let base = match new_user {
                    Some(u) => uri.with_user(&u),
                    None => uri.clone(),
                };
                let targets = trunks
                    .iter()
                    .map(|t| {
                        let flow = self.trunk_flow(flow.listener, t);
                        let uri = if self.is_us(&base) {
                            retarget_host(&base, t.address)
                        } else {
                            base.clone()
                        };
                        Target {
                            name: t.name.clone(),
                            flow,
                            uri: Some(uri),
                        }
                    })
                    .collect::<Vec<_>>();
                if targets.is_empty() {
                    return Err(ProxyError::NoRoute);
                }
                Ok((targets, fork == ForkMode::Parallel))
            }
            Decision::Reject { status, reason, .. } => Err(ProxyError::Rejected { status, reason }),
            Decision::NoRoute => Err(ProxyError::NoRoute),
        }
    }

    /// Ask the dial plan where a request goes (pure: the plan's `route`).
    pub(super) fn route_by_plan(&self, flow: Flow, msg: &Message) -> Decision {
        let ruri_user = msg.uri().map(Uri::user_decoded_cow).unwrap_or_default();
        let from = msg.from_hdr();
        let from_user = from
            .as_ref()
            .map(|f| f.uri.user_decoded_cow())
            .unwrap_or_default();
        let listener = self
            .cfg
            .sockets
            .get(flow.listener)
            .map_or("", |s| s.listener.as_str());
        let source_trunk = self
            .plan
            .trunk_by_addr(flow.remote)
            .map(|t| t.name.as_str());
        self.plan.route(&RouteQuery {
            ruri_user: &ruri_user,
            from_user: &from_user,
            source_listener: listener,
            source_trunk,
            source_addr: flow.remote,
        })
    }

    /// §16.10: answer the CANCEL, cancel every pending branch, and make sure
    /// the INVITE ends with 487.
    fn on_cancel(&mut self, now: Instant, tx: TxId, cancel: &Message) {
        let Some(invite_tx) = self.endpoint.find_invite_server_tx(cancel) else {
            self.respond(
                now,
                tx,
                cancel,
                481,
                "Call/Transaction Does Not Exist",
                Vec::new(),
            );
            return;
        };
        self.respond(now, tx, cancel, 200, "OK", Vec::new());
        self.cancel_context(now, invite_tx);
    }

    /// True when a URI names one of our sockets or our FQDN.
    pub(super) fn is_us(&self, uri: &Uri) -> bool {
        if let Some(fqdn) = &self.plan.gateway.fqdn
            && uri.host().eq_ignore_ascii_case(fqdn.as_bytes())
        {
            return true;
        }
        match uri.socket_addr() {
            Some(addr) => self.cfg.sockets.iter().any(|s| s.addr == addr),
            None => false,
        }
    }

    /// §16.3 step 4: a Via of ours carrying the same loop hash means the
    /// request came back unchanged (a spiral changes the Request-URI).
    fn is_loop(&self, msg: &Message, hash: u32) -> bool {
        let mut marker = Vec::with_capacity(20);
        super::forward::push_branch_prefix(&mut marker, hash);
        // Cheap pre-check on the raw lines: only parse Vias if one carries the marker.
        let finder = memchr::memmem::Finder::new(&marker);
        let marked = msg
            .headers_of(HeaderName::Via)
            .any(|h| finder.find(h.value()).is_some());
        if !marked {
            return false;
        }
        let fqdn = self.plan.gateway.fqdn.as_deref();
        msg.vias().iter().any(|v| {
            let host = std::str::from_utf8(&v.host).unwrap_or("");
            let ours = fqdn.is_some_and(|f| f.eq_ignore_ascii_case(host))
                || self.cfg.sockets.iter().any(|s| {
                    let ip = host.trim_start_matches('[').trim_end_matches(']');
                    ip.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip == s.addr.ip())
                        && v.port.unwrap_or(5060) == s.addr.port()
                });
            ours && v.branch().is_some_and(|b| b.starts_with(&marker))
        })
    }
}

/// Methods whose requests create dialogs, so the proxy Record-Routes them.
fn creates_dialog(m: Option<&Method>) -> bool {
    matches!(
        m,
        Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
    )
}

/// The loop-detection hash of §16.6 step 8 over the fields a loop leaves
/// unchanged: Request-URI, tags, Call-ID, CSeq number, Proxy-Require.
pub(super) fn loop_hash(msg: &Message) -> u32 {
    let mut h = super::forward::stable_hasher();
    msg.uri().map(|u| u.as_bytes()).hash(&mut h);
    msg.from_tag_ref().hash(&mut h);
    msg.to_tag_ref().hash(&mut h);
    msg.call_id().hash(&mut h);
    msg.cseq().map(|c| c.seq).hash(&mut h);
    for t in msg.option_tags(HeaderName::ProxyRequire) {
        t.hash(&mut h);
    }
    (h.finish() & 0xffff_ffff) as u32
}

/// Replace the user part of the From URI, keeping display name and tag.
fn rewrite_from_user(msg: &mut Message, from: &message::NameAddr, user: &str) {
    let uri = from.uri.with_user(user);
    let mut v = Vec::new();
    if let Some(d) = &from.display {
        v.extend_from_slice(d);
        v.push(b' ');
    }
    v.push(b'<');
    v.extend_from_slice(uri.as_bytes());
    v.push(b'>');
    v.extend_from_slice(&from.params);
    msg.set_header(Header::new(HeaderName::From, v));
}

/// A Request-URI that named the gateway, pointed at the trunk instead.
fn retarget_host(uri: &Uri, addr: std::net::SocketAddr) -> Uri {
    let scheme: &[u8] = if uri.scheme() == Scheme::Sips {
        b"sips:"
    } else {
        b"sip:"
    };
    let params = uri.params_raw();
    let mut s = Vec::with_capacity(scheme.len() + uri.raw().len() + 48);
    s.extend_from_slice(scheme);
    if let Some(user) = uri.user() {
        s.extend_from_slice(user);
        s.push(b'@');
    }
    // As `SocketAddr`'s Display writes it: IPv6 in brackets.
    let v6 = addr.is_ipv6();
    if v6 {
        s.push(b'[');
    }
    message::text::push_ip(&mut s, addr.ip());
    if v6 {
        s.push(b']');
    }
    s.push(b':');
    message::text::push_dec(&mut s, u64::from(addr.port()));
    s.extend_from_slice(params);
    Uri::parse(bytes::Bytes::from(s)).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retarget(uri: &str, addr: &str) -> String {
        let uri = Uri::parse(bytes::Bytes::copy_from_slice(uri.as_bytes()))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let addr = addr.parse().unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(retarget_host(&uri, addr).raw()).into_owned()
    }

    #[test]
    fn retargeted_uri_keeps_scheme_user_and_parameters() {
        assert_eq!(
            retarget("sip:+4420@gw.example;user=phone", "127.0.0.1:5070"),
            "sip:+4420@127.0.0.1:5070;user=phone"
        );
        assert_eq!(retarget("sips:bob@gw", "[::1]:5061"), "sips:bob@[::1]:5061");
        assert_eq!(
            retarget("sip:gw:5060;lr", "10.0.0.2:5080"),
            "sip:10.0.0.2:5080;lr"
        );
    }
}
