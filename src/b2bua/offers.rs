//! Mid-call offers relayed across the legs: re-INVITE and UPDATE with SDP
//! (hold/resume, address or codec change; RFC 3261 §14, RFC 3311), glare
//! answered 491 (§14.1, RFC 3311 §5.2), a second offer before the first is
//! answered 500 + Retry-After (§14.2), and an offer-less re-INVITE answered
//! with our own offer (the answer then comes in the ACK).

use std::time::Instant;

use crate::dialplan::MediaMode;
use crate::media::{Leg, MediaCommand};
use crate::sdp::Sdp;
use crate::sip::message::{Header, HeaderName, Message, Method};
use crate::sip::transaction::{Endpoint, TxId};

use super::B2bua;
use super::call::{Call, CallState, Pending};
use super::dialog;
use super::midcall::reason_of;
use super::sdp_plan;
use super::setup::{SDP, crossing_from};
use super::srtp;

impl B2bua {
    /// re-INVITE or UPDATE from `leg` (RFC 3261 §14, RFC 3311).
    pub(super) fn on_offer(
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
        if call.media.mode == MediaMode::Anchor
            && let Err(why) = self.check_offer(&offer)
        {
            let warning = Header::new(HeaderName::Warning, format!("399 callgate \"{why}\""));
            respond(ep, 488, "Not Acceptable Here", vec![warning]);
            return;
        }
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
                // Keyed for the other leg only (our key, its profile).
                let s = srtp::secure(&s, call.media.srtp[other as usize].as_ref());
                call.media.origin[other as usize].stamp(&s, addr)
            }
            _ => Sdp::clone(&offer),
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
                offer,
            },
        );
        self.by_tx.insert(ctx, call.id);
    }

    /// re-INVITE without SDP asks us to offer (§14.1): we offer the last SDP
    /// we sent on that leg and take the answer from the ACK; an UPDATE
    /// without SDP (session refresh) is simply accepted.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn offer_solicited(
        &mut self,
        now: Instant,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        msg: &Message,
        is_invite: bool,
        ep: &mut Endpoint,
    ) {
        let contact = call.dialog(leg).local.contact_header();
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
        if is_invite {
            let seq = msg.cseq().map_or(0, |c| c.seq);
            self.retransmit_2xx(now, ep, call, leg, tx, seq, resp, body);
        } else {
            ep.send_response(now, tx, resp);
        }
    }

    /// The far leg answered an offer we relayed for `server` on the other leg.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_offer_answer(
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
            call.send_ack(ep, Some(ctx), flow, &ack);
        }
        let answer = sdp_plan::body_sdp(&resp).ok().flatten();
        let addr = self.cfg.media.address;
        if call.media.mode == MediaMode::Anchor {
            // RFC 4568 §7.1.4: the offerer's (new) key, and the answerer's.
            self.take_offer_crypto(call, from, offer);
            if let Some(ans) = &answer {
                self.take_answer_crypto(call, leg, ans);
            }
        }
        let back = match (&answer, call.media.mode, call.media.ports) {
            (Some(ans), MediaMode::Anchor, Some(ports)) => {
                let port = ports[from as usize].rtp;
                let s = if sdp_plan::shares_codec(ans, offer) {
                    let s = sdp_plan::renumber_like(ans, offer);
                    let s = sdp_plan::keep_offered_dtmf(&s, offer);
                    Some(sdp_plan::anchored(&s, addr, port))
                } else {
                    sdp_plan::transcoding_answer(offer, ans, addr, port)
                };
                let crypto = call.media.srtp[from as usize].as_ref();
                s.map(|s| srtp::secure(&s, crypto))
                    .map(|s| call.media.origin[from as usize].stamp(&s, addr))
            }
            (Some(ans), _, _) => Some(Sdp::clone(ans)),
            (None, _, _) => None,
        };
        if let (Some(ans), Some(back), Some(session)) = (&answer, &back, call.media.session) {
            let sent = call.media.origin[leg as usize].last.clone();
            let relay = sdp_plan::shares_codec(ans, offer);
            for (l, remote, local, also) in [
                (leg, &**ans, &**ans, sent.as_ref()),
                (from, offer, back, Some(offer)),
            ] {
                let codecs = if relay {
                    sdp_plan::codecs_union(local, also)
                } else {
                    sdp_plan::codecs_for_peer(local, remote)
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
        let contact = call.dialog(from).local.contact_header();
        let ok = dialog::response(
            server_req,
            200,
            "OK",
            "cg0",
            vec![contact],
            back.as_ref().map(|s| (sdp_plan::to_body(s), SDP)),
        );
        if is_invite {
            let seq = server_req.cseq().map_or(0, |c| c.seq);
            self.retransmit_2xx(now, ep, call, from, server, seq, ok, None);
        } else {
            ep.send_response(now, server, ok);
        }
    }
}
