//! In-dialog traffic of a call: BYE from either side, re-INVITE and UPDATE
//! offers (hold, resume, codec change; 491 on glare, RFC 3261 §14.1 and
//! RFC 3311 §5.2), OPTIONS answered locally, other requests (INFO, MESSAGE,
//! NOTIFY) relayed, and ending a call (RTP timeout, maximum duration, 2xx
//! never ACKed) with a BYE on both legs.

use std::time::Instant;

use crate::media::Leg;
use crate::sip::message::{Header, HeaderName, Message, Method, StartLine};
use crate::sip::transaction::{Endpoint, TxId};
use crate::sip::transport::Flow;

use super::B2bua;
use super::call::{Call, CallState, CallTimer, Pending};
use super::dialog;
use super::setup::{ALLOW, SDP, crossing_from};

/// The reason phrase of a response.
pub(super) fn reason_of(msg: &Message) -> String {
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
                    ep.send_stateless_bytes(*flow, ack.clone());
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
        if let Some(c) = msg.first_contact() {
            d.remote_target = c.uri;
            // Learned from a request: a response repeating the old Contact
            // must be parsed again.
            d.remote_contact = bytes::Bytes::new();
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
}
