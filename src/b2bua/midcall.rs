//! In-dialog traffic of a call: BYE from either side, re-INVITE and UPDATE
//! offers (hold, resume, codec change; 491 on glare, RFC 3261 §14.1 and
//! RFC 3311 §5.2), OPTIONS answered locally, other requests (INFO, MESSAGE,
//! NOTIFY) relayed, and ending a call (RTP timeout, maximum duration, 2xx
//! never ACKed) with a BYE on both legs.

use std::time::Instant;

use crate::dialplan::MediaMode;
use crate::media::{Leg, MediaCommand};
use crate::sip::message::{Header, HeaderName, Message, Method, StartLine};
use crate::sip::transaction::{Endpoint, TxId};
use crate::sip::transport::Flow;

use super::B2bua;
use super::call::{Call, CallState, CallTimer, Pending};
use super::dialog;
use super::info::{CallInfo, LegInfo};
use super::sdp_plan;
use super::setup::{ALLOW, SDP, crossing_from};

fn reason_of(msg: &Message) -> String {
    match &msg.start {
        StartLine::Response { reason, .. } => String::from_utf8_lossy(reason).into_owned(),
        StartLine::Request { .. } => String::new(),
    }
}

impl B2bua {
    /// A request whose Call-ID belongs to a B2BUA call (or a finished one).
    pub fn on_request(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        tx: Option<TxId>,
        _flow: Flow,
        msg: Message,
    ) {
        let Some(&(id, leg)) = self.by_call_id.get(msg.call_id()) else {
            // A finished call: absorb ACKs, answer the rest 481 (§12.2.2).
            if let Some(tx) = tx
                && msg.method() != Some(&Method::Ack)
            {
                let resp = dialog::response(
                    &msg,
                    481,
                    "Call/Transaction Does Not Exist",
                    "cg0",
                    Vec::new(),
                    None,
                );
                ep.send_response(now, tx, resp);
            }
            return;
        };
        self.with_call(now, ep, id, |b, ep, call| {
            b.on_call_request(now, ep, call, leg, tx, msg)
        });
    }

    /// A response to one of our client transactions.
    pub fn on_response(&mut self, now: Instant, ep: &mut Endpoint, tx: TxId, msg: Message) {
        let Some(&id) = self.by_tx.get(&tx) else {
            return;
        };
        self.with_call(now, ep, id, |b, ep, call| {
            let Some(p) = call.pending.get(&tx).cloned() else {
                // A retransmitted 2xx: our ACK was lost; send it again.
                if msg.code().is_some_and(|c| (200..300).contains(&c))
                    && let Some((flow, ack)) = call.sent_acks.get(&tx)
                {
                    ep.send_stateless(*flow, ack.clone());
                }
                return;
            };
            let code = msg.code().unwrap_or(500);
            if code >= 200 {
                call.pending.remove(&tx);
            }
            match p {
                Pending::Invite { attempt } => b.on_invite_response(now, ep, call, attempt, msg),
                Pending::Fire => {}
                Pending::Bye => {
                    if code >= 200 {
                        call.awaiting = call.awaiting.saturating_sub(1);
                    }
                }
                Pending::Offer {
                    leg,
                    server,
                    server_req,
                    offer,
                } => {
                    if code >= 200 {
                        b.on_offer_answer(now, ep, call, leg, server, &server_req, &offer, tx, msg);
                    }
                }
                Pending::Relay {
                    leg,
                    server,
                    server_req,
                } => {
                    if code >= 200 {
                        let _ = leg;
                        let mut extra = Vec::new();
                        if let Some(ct) = msg.header(HeaderName::ContentType) {
                            extra.push(ct.clone());
                        }
                        let mut resp = dialog::response(
                            &server_req,
                            code,
                            &reason_of(&msg),
                            "cg0",
                            extra,
                            None,
                        );
                        if !msg.body.is_empty() {
                            resp.set_body(msg.body.clone(), None);
                        }
                        ep.send_response(now, server, resp);
                    }
                }
            }
        });
    }

    /// A client transaction of a call timed out (Timer B/F) or hit a
    /// transport error: treated as a 408 (RFC 3261 §8.1.3.1).
    pub fn on_tx_failed(&mut self, now: Instant, ep: &mut Endpoint, tx: TxId) {
        let Some(&id) = self.by_tx.get(&tx) else {
            return;
        };
        self.with_call(now, ep, id, |b, ep, call| {
            let Some(p) = call.pending.remove(&tx) else {
                return;
            };
            match p {
                Pending::Invite { attempt } if attempt == call.attempt => {
                    if call.state == CallState::Ending {
                        call.awaiting = call.awaiting.saturating_sub(1);
                    } else {
                        b.attempt_failed(now, ep, call, 408, "Request Timeout", Vec::new());
                    }
                }
                Pending::Bye => call.awaiting = call.awaiting.saturating_sub(1),
                Pending::Offer {
                    leg,
                    server,
                    server_req,
                    ..
                } => {
                    call.offer_out[leg as usize] = None;
                    call.offer_in[leg.other() as usize] = None;
                    let resp = dialog::response(
                        &server_req,
                        408,
                        "Request Timeout",
                        "cg0",
                        Vec::new(),
                        None,
                    );
                    ep.send_response(now, server, resp);
                }
                Pending::Relay {
                    server, server_req, ..
                } => {
                    let resp = dialog::response(
                        &server_req,
                        408,
                        "Request Timeout",
                        "cg0",
                        Vec::new(),
                        None,
                    );
                    ep.send_response(now, server, resp);
                }
                Pending::Invite { .. } | Pending::Fire => {}
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_call_request(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        tx: Option<TxId>,
        msg: Message,
    ) {
        let method = msg.method().cloned();
        if method == Some(Method::Ack) {
            self.on_ack(ep, call, leg, &msg);
            return;
        }
        let Some(tx) = tx else { return };
        let respond = |ep: &mut Endpoint, code: u16, reason: &str, extra: Vec<Header>| {
            let r = dialog::response(&msg, code, reason, "cg0", extra, None);
            ep.send_response(now, tx, r);
        };
        if method == Some(Method::Cancel) {
            if leg == Leg::A {
                self.on_cancel(now, ep, call, tx, &msg);
            } else {
                respond(ep, 481, "Call/Transaction Does Not Exist", Vec::new());
            }
            return;
        }
        // §12.2.2: in-dialog requests must carry our tag on that leg.
        if !call.dialog(leg).matches_request(&msg) {
            if msg.to_tag().is_none() && method == Some(Method::Invite) {
                respond(ep, 482, "Loop Detected", Vec::new());
            } else {
                respond(ep, 481, "Call/Transaction Does Not Exist", Vec::new());
            }
            return;
        }
        let seq = msg.cseq().map_or(0, |c| c.seq);
        let d = call.dialog(leg);
        if seq <= d.remote_cseq && d.remote_cseq != 0 {
            respond(
                ep,
                500,
                "Server Internal Error",
                vec![Header::new(HeaderName::RetryAfter, "1")],
            );
            return;
        }
        d.remote_cseq = seq;
        if let Some(c) = msg.contacts().first() {
            d.remote_target = c.uri.clone();
        }
        match method {
            Some(Method::Bye) => {
                respond(ep, 200, "OK", Vec::new());
                self.on_bye(now, ep, call, leg, &msg);
            }
            Some(Method::Invite) | Some(Method::Update) => {
                self.on_offer(now, ep, call, leg, tx, msg)
            }
            Some(Method::Options) => respond(
                ep,
                200,
                "OK",
                vec![
                    Header::new(HeaderName::Allow, ALLOW),
                    Header::new(HeaderName::Accept, SDP),
                ],
            ),
            Some(Method::Prack) => respond(ep, 481, "Call/Transaction Does Not Exist", Vec::new()),
            Some(Method::Refer) => respond(ep, 501, "Not Implemented", Vec::new()),
            Some(Method::Info) if self.dtmf_info(now, ep, call, leg, tx, &msg) => {}
            _ => self.relay(now, ep, call, leg, tx, msg),
        }
    }

    /// BYE from `leg` (already answered 200): BYE the other leg, or give up
    /// the unanswered attempt.
    fn on_bye(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        msg: &Message,
    ) {
        if call.state == CallState::Ending {
            return;
        }
        if !call.answered() {
            // A BYE before our 2xx (RFC 3261 §15: early dialog): like CANCEL.
            if leg == Leg::A {
                if let Some(a_tx) = call.a_tx.take() {
                    let r = dialog::response(
                        &call.a_invite,
                        487,
                        "Request Terminated",
                        &call.a.local_tag,
                        Vec::new(),
                        None,
                    );
                    ep.send_response(now, a_tx, r);
                }
                self.abort_leg_b(now, ep, call);
            }
            return;
        }
        let mut extra = Vec::new();
        if let Some(t) = call.trunk() {
            extra = crossing_from(msg, leg, t)
                .into_iter()
                .filter(|h| h.name == HeaderName::Reason)
                .collect();
        }
        call.state = CallState::Ending;
        call.retransmits.clear();
        self.send_bye(now, ep, call, leg.other(), extra);
        self.schedule(now + self.cfg.timers.t1 * 64, call.id, CallTimer::GiveUp);
    }

    fn send_bye(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        extra: Vec<Header>,
    ) {
        let branch = self.new_branch();
        let bye = call.dialog(leg).request(Method::Bye, &branch, extra, None);
        let flow = call.dialog(leg).flow;
        let tx = ep.send_request(now, flow, bye);
        call.pending.insert(tx, Pending::Bye);
        self.by_tx.insert(tx, call.id);
        call.awaiting += 1;
    }

    /// Ends a call from the gateway's side (RTP timeout, maximum duration,
    /// unacknowledged 2xx): BYE on both legs with `reason` (RFC 3326), or
    /// a final answer + CANCEL before answer.
    pub(crate) fn end_call(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        reason: &str,
    ) {
        if call.state == CallState::Ending {
            return;
        }
        if !call.answered() {
            if let Some(a_tx) = call.a_tx.take() {
                let r = dialog::response(
                    &call.a_invite,
                    500,
                    "Server Internal Error",
                    &call.a.local_tag,
                    vec![Header::new(HeaderName::Reason, reason)],
                    None,
                );
                ep.send_response(now, a_tx, r);
            }
            self.abort_leg_b(now, ep, call);
            return;
        }
        call.state = CallState::Ending;
        call.retransmits.clear();
        for leg in [Leg::A, Leg::B] {
            self.send_bye(
                now,
                ep,
                call,
                leg,
                vec![Header::new(HeaderName::Reason, reason)],
            );
        }
        self.schedule(now + self.cfg.timers.t1 * 64, call.id, CallTimer::GiveUp);
    }

    /// re-INVITE or UPDATE from `leg` (RFC 3261 §14, RFC 3311).
    fn on_offer(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        msg: Message,
    ) {
        let is_invite = msg.method() == Some(&Method::Invite);
        let other = leg.other();
        let respond = |ep: &mut Endpoint, code: u16, reason: &str, extra: Vec<Header>| {
            ep.send_response(
                now,
                tx,
                dialog::response(&msg, code, reason, "cg0", extra, None),
            );
        };
        if call.state != CallState::Confirmed {
            // Not before the ACK / while ending (§14.1 forbids it before ACK).
            respond(ep, 491, "Request Pending", Vec::new());
            return;
        }
        if call.offer_in[leg as usize].is_some() {
            // §14.2: a second offer before we answered the first.
            respond(
                ep,
                500,
                "Server Internal Error",
                vec![Header::new(HeaderName::RetryAfter, "2")],
            );
            return;
        }
        if call.offer_out[leg as usize].is_some() || call.offer_out[other as usize].is_some() {
            // Glare: our own offer on this leg is outstanding (§14.1, RFC 3311 §5.2).
            respond(ep, 491, "Request Pending", Vec::new());
            return;
        }
        let offer = match sdp_plan::body_sdp(&msg) {
            Ok(o) => o,
            Err(e) => {
                let (code, reason) = e.status();
                respond(ep, code, reason, Vec::new());
                return;
            }
        };
        let Some(offer) = offer else {
            self.offer_solicited(now, call, leg, tx, &msg, is_invite, ep);
            return;
        };
        let addr = self.cfg.media.address;
        let to_other = match (call.media.mode, call.media.ports) {
            (MediaMode::Anchor, Some(ports)) => {
                let mut s = sdp_plan::anchored(&offer, addr, ports[other as usize].rtp);
                if other == Leg::B
                    && let Some(t) = call.trunk()
                {
                    s = sdp_plan::for_trunk_transcoding(&s, &t.policy);
                } else if let Some(current) = call.media.origin[other as usize].last.as_ref() {
                    // Toward the caller: also offer what it uses now, so a
                    // transcoded call can stay transcoded.
                    s = sdp_plan::with_codecs_of(&s, current);
                }
                call.media.origin[other as usize].stamp(&s, addr)
            }
            _ => offer.clone(),
        };
        let hold = sdp_plan::is_hold(&offer);
        if hold != call.media.on_hold {
            call.media.on_hold = hold;
            if let Some(session) = call.media.session {
                self.media_out.push_back(MediaCommand::Hold {
                    session,
                    on_hold: hold,
                });
            }
        }
        let mut extra = Vec::new();
        if let Some(t) = call.trunk() {
            extra = crossing_from(&msg, leg, t);
        }
        let branch = self.new_branch();
        let method = if is_invite {
            Method::Invite
        } else {
            Method::Update
        };
        let req = call.dialog(other).request(
            method,
            &branch,
            extra,
            Some((sdp_plan::to_body(&to_other), SDP)),
        );
        let flow = call.dialog(other).flow;
        let ctx = ep.send_request(now, flow, req);
        call.offer_in[leg as usize] = Some(tx);
        call.offer_out[other as usize] = Some(ctx);
        call.pending.insert(
            ctx,
            Pending::Offer {
                leg: other,
                server: tx,
                server_req: Box::new(msg),
                offer: Box::new(offer),
            },
        );
        self.by_tx.insert(ctx, call.id);
    }

    /// re-INVITE without SDP asks us to offer (§14.1): we offer the last SDP
    /// we sent on that leg and take the answer from the ACK; an UPDATE
    /// without SDP (session refresh) is simply accepted.
    #[allow(clippy::too_many_arguments)]
    fn offer_solicited(
        &mut self,
        now: Instant,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        msg: &Message,
        is_invite: bool,
        ep: &mut Endpoint,
    ) {
        let contact = Header::new(HeaderName::Contact, call.dialog(leg).local.contact());
        let last = call.media.origin[leg as usize].last.clone();
        let body = if is_invite { last } else { None };
        let resp = dialog::response(
            msg,
            200,
            "OK",
            "cg0",
            vec![contact],
            body.as_ref().map(|s| (sdp_plan::to_body(s), SDP)),
        );
        ep.send_response(now, tx, resp.clone());
        if is_invite {
            let seq = msg.cseq().map_or(0, |c| c.seq);
            self.retransmit_2xx(now, call, leg, tx, seq, resp, body);
        }
    }

    /// The far leg answered an offer we relayed for `server` on the other leg.
    #[allow(clippy::too_many_arguments)]
    fn on_offer_answer(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        server: TxId,
        server_req: &Message,
        offer: &crate::sdp::Sdp,
        ctx: TxId,
        resp: Message,
    ) {
        let from = leg.other();
        call.offer_out[leg as usize] = None;
        call.offer_in[from as usize] = None;
        let code = resp.code().unwrap_or(500);
        let is_invite = server_req.method() == Some(&Method::Invite);
        if !(200..300).contains(&code) {
            let mut extra = Vec::new();
            if let Some(ra) = resp.header(HeaderName::RetryAfter) {
                extra.push(ra.clone());
            }
            ep.send_response(
                now,
                server,
                dialog::response(server_req, code, &reason_of(&resp), "cg0", extra, None),
            );
            return;
        }
        call.dialog(leg).learn_from_response(&resp);
        if is_invite {
            let seq = resp.cseq().map_or(0, |c| c.seq);
            let branch = self.new_branch();
            let ack =
                call.dialog(leg)
                    .request_with_cseq(Method::Ack, seq, &branch, Vec::new(), None);
            let flow = call.dialog(leg).flow;
            ep.send_stateless(flow, ack.clone());
            call.sent_acks.insert(ctx, (flow, ack));
        }
        let answer = sdp_plan::body_sdp(&resp).ok().flatten();
        let addr = self.cfg.media.address;
        let back = match (&answer, call.media.mode, call.media.ports) {
            (Some(ans), MediaMode::Anchor, Some(ports)) => {
                let port = ports[from as usize].rtp;
                let s = if sdp_plan::shares_codec(ans, offer) {
                    let s = sdp_plan::renumber_like(ans, offer);
                    Some(sdp_plan::anchored(&s, addr, port))
                } else {
                    sdp_plan::transcoding_answer(offer, ans, addr, port)
                };
                s.map(|s| call.media.origin[from as usize].stamp(&s, addr))
            }
            (Some(ans), _, _) => Some(ans.clone()),
            (None, _, _) => None,
        };
        if let (Some(ans), Some(back), Some(session)) = (&answer, &back, call.media.session) {
            let sent = call.media.origin[leg as usize].last.clone();
            let relay = sdp_plan::shares_codec(ans, offer);
            for (l, remote, local, also) in [
                (leg, ans, ans, sent.as_ref()),
                (from, offer, back, Some(offer)),
            ] {
                let codecs = if relay {
                    sdp_plan::codecs_union(local, also)
                } else {
                    sdp_plan::codecs(local)
                };
                self.media_out.push_back(MediaCommand::UpdateLeg {
                    session,
                    leg: l,
                    remote_rtp: sdp_plan::rtp_addr(remote),
                    remote_rtcp: sdp_plan::rtcp_addr(remote),
                    codecs,
                });
            }
        }
        if let (Some(ans), Some(back)) = (&answer, &back) {
            call.media.codecs[leg as usize] = sdp_plan::codec_names(ans);
            call.media.codecs[from as usize] = sdp_plan::codec_names(back);
        }
        let contact = Header::new(HeaderName::Contact, call.dialog(from).local.contact());
        let ok = dialog::response(
            server_req,
            200,
            "OK",
            "cg0",
            vec![contact],
            back.as_ref().map(|s| (sdp_plan::to_body(s), SDP)),
        );
        ep.send_response(now, server, ok.clone());
        if is_invite {
            let seq = server_req.cseq().map_or(0, |c| c.seq);
            self.retransmit_2xx(now, call, from, server, seq, ok, None);
        }
    }

    /// Relays an in-dialog request we do not handle ourselves (INFO,
    /// MESSAGE, NOTIFY…) to the other leg; its answer comes back.
    fn relay(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        msg: Message,
    ) {
        let other = leg.other();
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let mut extra = Vec::new();
        if let Some(t) = call.trunk() {
            extra = crossing_from(&msg, leg, t);
        }
        for name in [HeaderName::Event, HeaderName::Subject] {
            if let Some(h) = msg.header(name) {
                extra.push(h.clone());
            }
        }
        let ct = msg
            .header(HeaderName::ContentType)
            .map(|h| String::from_utf8_lossy(h.value()).into_owned());
        let body = (!msg.body.is_empty()).then(|| {
            (
                msg.body.clone(),
                ct.as_deref().unwrap_or("application/octet-stream"),
            )
        });
        let branch = self.new_branch();
        let req = call.dialog(other).request(method, &branch, extra, body);
        let flow = call.dialog(other).flow;
        let ctx = ep.send_request(now, flow, req);
        call.pending.insert(
            ctx,
            Pending::Relay {
                leg: other,
                server: tx,
                server_req: Box::new(msg),
            },
        );
        self.by_tx.insert(ctx, call.id);
    }

    pub(crate) fn on_timer(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        timer: CallTimer,
    ) {
        match timer {
            CallTimer::NoAnswer(n) => {
                if n == call.attempt && matches!(call.state, CallState::Calling | CallState::Early)
                {
                    tracing::debug!(call = call.id, "no answer from trunk");
                    if call.b_provisional {
                        self.send_cancel_b(now, ep, call);
                    } else if let Some(tx) = call.b_tx {
                        ep.abandon_client(tx);
                    }
                    self.attempt_failed(now, ep, call, 480, "Temporarily Unavailable", Vec::new());
                }
            }
            CallTimer::Retransmit => {
                let t2 = self.cfg.timers.t2;
                let mut expired = false;
                let mut next = None::<Instant>;
                for r in &mut call.retransmits {
                    if now >= r.give_up {
                        expired = true;
                        continue;
                    }
                    if r.next <= now {
                        ep.send_response(now, r.tx, r.resp.clone());
                        r.interval = (r.interval * 2).min(t2);
                        r.next = (now + r.interval).min(r.give_up);
                    }
                    next = Some(next.map_or(r.next, |n| n.min(r.next)));
                }
                if expired {
                    // §13.3.1.4: no ACK within 64·T1: end the session with BYE.
                    call.retransmits.retain(|r| now < r.give_up);
                    self.end_call(now, ep, call, "SIP;cause=408;text=\"ACK timeout\"");
                    return;
                }
                if let Some(at) = next {
                    self.schedule(at, call.id, CallTimer::Retransmit);
                }
            }
            CallTimer::MaxDuration => {
                if call.answered() {
                    self.end_call(
                        now,
                        ep,
                        call,
                        "SIP;cause=200;text=\"Maximum call duration\"",
                    );
                }
            }
            CallTimer::GiveUp => {
                if call.state == CallState::Ending {
                    let txs: Vec<TxId> = call.pending.keys().copied().collect();
                    for tx in txs {
                        ep.abandon_client(tx);
                    }
                    // `finish` answers what was relayed and never answered.
                    call.awaiting = 0;
                }
            }
        }
    }
}

/// A `/calls` snapshot of `call`.
pub(crate) fn info(call: &Call) -> CallInfo {
    let peer_a = call
        .a_invite
        .from_hdr()
        .map(|f| String::from_utf8_lossy(f.uri.as_bytes()).into_owned())
        .unwrap_or_default();
    let peer_b = String::from_utf8_lossy(call.b.remote_target.as_bytes()).into_owned();
    let ports = call.media.ports;
    CallInfo {
        id: call.id,
        state: call.state.name(),
        media_mode: match call.media.mode {
            MediaMode::Anchor => "anchor",
            MediaMode::Bypass => "bypass",
        },
        legs: [
            LegInfo {
                call_id: String::from_utf8_lossy(&call.a.call_id).into_owned(),
                peer: peer_a,
                via: call.a_listener.clone(),
                codecs: call.media.codecs[0].clone(),
                media_port: ports.map(|p| p[0].rtp),
            },
            LegInfo {
                call_id: String::from_utf8_lossy(&call.b.call_id).into_owned(),
                peer: peer_b,
                via: call.trunk().map(|t| t.name.clone()).unwrap_or_default(),
                codecs: call.media.codecs[1].clone(),
                media_port: ports.map(|p| p[1].rtp),
            },
        ],
        media_session: call.media.session,
        started: call.started,
        answered: call.answered,
    }
}
