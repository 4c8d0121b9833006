//! Responses on leg B to our INVITE: provisional (relayed, 100rel PRACKed,
//! early media answered), 2xx (ACK on leg B, 200 with the right SDP to the
//! caller, retransmitted until its ACK, RFC 3261 §13.3.1.4) and failures
//! (failover to the next trunk on 503/408/480/timeouts, else the final
//! answer mapped to the caller with a Reason, RFC 3326).

use std::time::Instant;

use crate::dialplan::MediaMode;
use crate::media::{Leg, MediaCommand};
use crate::sip::message::{Header, HeaderName, Message, Method};
use crate::sip::transaction::{Endpoint, TxId};

use super::B2bua;
use super::call::{Call, CallState, CallTimer, Pending, Retransmit};
use super::dialog;
use super::sdp_plan;
use super::setup::{ALLOW, SDP, crossing_headers};
use super::srtp;

impl B2bua {
    /// A response to the INVITE of attempt `attempt`.
    pub(crate) fn on_invite_response(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        attempt: usize,
        resp: Message,
    ) {
        let code = resp.code().unwrap_or(500);
        if attempt != call.attempt {
            if (200..300).contains(&code) {
                self.reject_stray_2xx(now, ep, call, &resp);
            }
            return;
        }
        match code {
            100..=199 => self.on_provisional(now, ep, call, resp),
            200..=299 => self.on_answer(now, ep, call, resp),
            _ => self.on_failure(now, ep, call, code, &resp),
        }
    }

    pub(super) fn on_provisional(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        resp: Message,
    ) {
        let code = resp.code().unwrap_or(100);
        call.b_provisional = true;
        if resp.to_tag().is_some() {
            call.b.learn_from_response(&resp);
        }
        if call.cancel_pending {
            call.cancel_pending = false;
            self.send_cancel_b(now, ep, call);
            return;
        }
        if code == 100 || call.state == CallState::Ending {
            return;
        }
        // RFC 3262 §4: a reliable provisional must be PRACKed; we terminate
        // 100rel on leg B and relay unreliably to leg A.
        if resp
            .option_tags(HeaderName::Require)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(b"100rel"))
            && let (Some(rseq), Some(cseq)) = (
                resp.header(HeaderName::RSeq)
                    .map(|h| String::from_utf8_lossy(h.value()).trim().to_string()),
                resp.cseq(),
            )
        {
            let branch = self.new_branch();
            let rack = Header::new(HeaderName::RAck, format!("{rseq} {} INVITE", cseq.seq));
            let prack = call.b.request(Method::Prack, &branch, vec![rack], None);
            let tx = ep.send_request(now, call.b.flow, prack);
            call.pending.insert(tx, Pending::Fire);
            self.by_tx.insert(tx, call.id);
        }
        let mut code = code;
        let mut reason = String::from_utf8_lossy(match &resp.start {
            crate::sip::message::StartLine::Response { reason, .. } => reason,
            _ => &b""[..],
        })
        .into_owned();
        let parsed = sdp_plan::body_sdp(&resp).ok().flatten();
        let body = match &parsed {
            Some(sdp_b) => {
                self.stop_ringback(call);
                self.on_b_answer(call, sdp_b)
            }
            _ if code == 180 && call.media.ringback_playing => return,
            _ if code == 180 => {
                // Ringback injection: 183 + SDP and our tone instead of a bare 180.
                let rb = self.start_ringback(call);
                if rb.is_some() {
                    code = 183;
                    reason = "Session Progress".into();
                }
                rb.map(std::sync::Arc::new)
            }
            _ => None,
        };
        let mut extra = vec![call.a.local.contact_header()];
        if let Some(t) = call.trunk() {
            extra.extend(crossing_headers(&resp, t));
        }
        let out = dialog::response(
            &call.a_invite,
            code,
            &reason,
            &call.a.local_tag,
            extra,
            body.as_ref()
                .map(|s| (sdp_plan::body_for(s, parsed.as_ref(), &resp.body), SDP)),
        );
        if let Some(tx) = call.a_tx {
            ep.send_response(now, tx, out);
        }
        call.state = CallState::Early;
    }

    /// Leg B's SDP answer arrived (in a 18x or the 2xx): update the relay and
    /// return the SDP leg A gets (the answer to its offer), if it offered.
    /// Unanchored, that is `sdp_b` itself (shared, not copied).
    pub(crate) fn on_b_answer(
        &mut self,
        call: &mut Call,
        sdp_b: &std::sync::Arc<crate::sdp::Sdp>,
    ) -> Option<std::sync::Arc<crate::sdp::Sdp>> {
        call.media.b_answer = Some(sdp_b.clone());
        call.media.codecs[1] = sdp_plan::codec_names(sdp_b);
        let addr = self.cfg.media.address;
        match (call.media.mode, call.media.ports) {
            (MediaMode::Bypass, _) | (MediaMode::Anchor, None) => {
                call.media.codecs[0] = call.media.codecs[1].clone();
                Some(sdp_b.clone())
            }
            (MediaMode::Anchor, Some([pa, _])) => {
                // Leg B's key when we offered it SDES.
                self.take_answer_crypto(call, Leg::B, sdp_b);
                // Relay when B kept one of the caller's codecs (or the one the
                // caller was already answered with); otherwise answer the
                // caller in its own codec and let the media plane transcode
                // (each leg then lists exactly its answer).
                let committed = call.media.a_committed.clone();
                let relay = match &committed {
                    Some(c) => sdp_plan::shares_codec(sdp_b, c),
                    None => call
                        .media
                        .a_offer
                        .as_ref()
                        .is_none_or(|o| sdp_plan::shares_codec(sdp_b, o)),
                };
                let b_codecs = if relay {
                    sdp_plan::codecs_union(sdp_b, call.media.b_offer.as_deref())
                } else {
                    sdp_plan::codecs(sdp_b)
                };
                if let Some(session) = call.media.session {
                    self.media_out.push_back(MediaCommand::UpdateLeg {
                        session,
                        leg: Leg::B,
                        remote_rtp: sdp_plan::rtp_addr(sdp_b),
                        remote_rtcp: sdp_plan::rtcp_addr(sdp_b),
                        codecs: b_codecs,
                    });
                    self.media_out.push_back(MediaCommand::Relatch {
                        session,
                        leg: Leg::B,
                    });
                }
                let a_offer = call.media.a_offer.clone()?;
                let ans = if let Some(c) = committed {
                    c
                } else if relay {
                    let ans = sdp_plan::renumber_like(sdp_b, &a_offer);
                    let ans = sdp_plan::keep_offered_dtmf(&ans, &a_offer);
                    sdp_plan::anchored(&ans, addr, pa.rtp)
                } else {
                    sdp_plan::transcoding_answer(&a_offer, sdp_b, addr, pa.rtp)?
                };
                // The caller's profile and our key for it when it spoke SDES.
                let ans = srtp::secure(&ans, call.media.srtp[0].as_ref());
                let ans = call.media.origin[0].stamp(&ans, addr);
                call.media.codecs[0] = sdp_plan::codec_names(&ans);
                let a_codecs = if relay {
                    sdp_plan::codecs_union(&ans, Some(&a_offer))
                } else {
                    sdp_plan::codecs_for_peer(&ans, &a_offer)
                };
                if let Some(session) = call.media.session {
                    self.media_out.push_back(MediaCommand::UpdateLeg {
                        session,
                        leg: Leg::A,
                        remote_rtp: sdp_plan::rtp_addr(&a_offer),
                        remote_rtcp: sdp_plan::rtcp_addr(&a_offer),
                        codecs: a_codecs,
                    });
                }
                Some(std::sync::Arc::new(ans))
            }
        }
    }

    pub(super) fn on_answer(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        resp: Message,
    ) {
        if call.state == CallState::Ending || call.answered() {
            self.reject_stray_2xx(now, ep, call, &resp);
            if call.state == CallState::Ending && !call.answered() {
                call.awaiting = call.awaiting.saturating_sub(1);
            }
            return;
        }
        call.b.learn_from_response(&resp);
        self.stop_ringback(call);
        let seq = resp.cseq().map_or(1, |c| c.seq);
        let branch = self.new_branch();
        let ack = call
            .b
            .request_with_cseq(Method::Ack, seq, &branch, Vec::new(), None);
        let sdp_b = sdp_plan::body_sdp(&resp).ok().flatten();
        let late = call.media.a_offer.is_none();
        let mut offered = None;
        let body = match (&sdp_b, late, call.media.mode) {
            // Bypass late offer: B offered in its 2xx; A answers in its ACK,
            // which we forward in the ACK to B (held until then).
            (Some(s), true, MediaMode::Bypass) => {
                call.b_ack_held = true;
                offered = Some(crate::sdp::Sdp::clone(s));
                Some(s.clone())
            }
            (Some(s), false, _) => self.on_b_answer(call, s),
            (None, false, _) => call
                .media
                .b_answer
                .clone()
                .and_then(|s| self.on_b_answer(call, &s)),
            (Some(s), true, MediaMode::Anchor) => {
                self.on_b_answer(call, s);
                let offer = self.offer_to_a(call, s);
                offered = offer.clone();
                offer.map(std::sync::Arc::new)
            }
            (None, true, _) => call.media.b_answer.clone().and_then(|s| {
                self.on_b_answer(call, &s);
                let offer = self.offer_to_a(call, &s);
                offered = offer.clone();
                offer.map(std::sync::Arc::new)
            }),
        };
        if !call.b_ack_held {
            call.send_ack(ep, call.b_tx, call.b.flow, &ack);
        }
        call.b_ack = Some(ack);
        let mut extra = vec![
            call.a.local.contact_header(),
            Header::new(HeaderName::Allow, ALLOW),
        ];
        if let Some(t) = call.trunk() {
            extra.extend(crossing_headers(&resp, t));
        }
        let ok = dialog::response(
            &call.a_invite,
            200,
            "OK",
            &call.a.local_tag,
            extra,
            body.as_ref()
                .map(|s| (sdp_plan::body_for(s, sdp_b.as_ref(), &resp.body), SDP)),
        );
        if let Some(tx) = call.a_tx {
            let a_seq = call.a_invite.cseq().map_or(1, |c| c.seq);
            self.retransmit_2xx(now, ep, call, Leg::A, tx, a_seq, ok, offered);
        }
        call.state = CallState::WaitAck;
        call.answered = Some(now);
        if let Some(t) = call.trunk().map(|t| t.name.clone()) {
            self.counters(&t).answers += 1;
        }
        self.schedule(
            now + self.cfg.timers.max_call_duration,
            call.id,
            CallTimer::MaxDuration,
        );
        tracing::debug!(call = call.id, "answered");
    }

    /// The offer we put in our 2xx to a caller that sent no SDP (late offer):
    /// what leg B answered, pointed at leg A's port.
    pub(super) fn offer_to_a(
        &mut self,
        call: &mut Call,
        sdp_b: &crate::sdp::Sdp,
    ) -> Option<crate::sdp::Sdp> {
        let [pa, _] = call.media.ports?;
        let addr = self.cfg.media.address;
        let s = sdp_plan::anchored(sdp_b, addr, pa.rtp);
        // Never B's keys toward A: A gets our key or, plain, none.
        let s = srtp::secure(&s, call.media.srtp[0].as_ref());
        Some(call.media.origin[0].stamp(&s, addr))
    }

    /// Sends a 2xx on server transaction `tx` and retransmits it until its
    /// ACK (§13.3.1.4): T1, doubling to T2 on unreliable transports; give up
    /// (and end the call) at 64·T1.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retransmit_2xx(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        cseq: u32,
        resp: Message,
        offered: Option<crate::sdp::Sdp>,
    ) {
        // The transaction keeps no copy once Accepted: keep the bytes here
        // until the ACK (or 64·T1). Unsent (no such transaction, or not one
        // that may send a 2xx), nothing is retransmitted either, but the
        // ACK timeout still ends the call.
        let (flow, wire) = ep
            .send_response_wire(now, tx, resp)
            .unwrap_or((call.dialog(leg).flow, bytes::Bytes::new()));
        let t1 = self.cfg.timers.t1;
        let reliable = call.dialog(leg).flow.transport.is_reliable();
        let next = if reliable { now + t1 * 64 } else { now + t1 };
        call.retransmits.push(Retransmit {
            leg,
            tx,
            cseq,
            flow,
            wire,
            interval: t1,
            next,
            give_up: now + t1 * 64,
            offered,
        });
        self.schedule(next, call.id, CallTimer::Retransmit);
    }

    /// A 2xx we cannot use (A gave up, or a second answer from a forking
    /// trunk): ACK it and BYE that dialog (RFC 3261 §13.2.2.4).
    pub(super) fn reject_stray_2xx(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        resp: &Message,
    ) {
        let mut d = call.b.clone();
        d.remote_tag = None;
        d.learn_from_response(resp);
        let seq = resp.cseq().map_or(1, |c| c.seq);
        if let Some(cid) = resp.header(HeaderName::CallId) {
            d.call_id = cid.value_bytes();
        }
        let branch = self.new_branch();
        ep.send_stateless(
            d.flow,
            d.request_with_cseq(Method::Ack, seq, &branch, Vec::new(), None),
        );
        d.local_cseq = seq.wrapping_add(1);
        let branch = self.new_branch();
        let bye = d.request(Method::Bye, &branch, Vec::new(), None);
        let tx = ep.send_request(now, d.flow, bye);
        call.pending.insert(tx, Pending::Fire);
        self.by_tx.insert(tx, call.id);
    }

    pub(super) fn on_failure(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        code: u16,
        resp: &Message,
    ) {
        if call.state == CallState::Ending {
            call.awaiting = call.awaiting.saturating_sub(1);
            return;
        }
        let reason = match &resp.start {
            crate::sip::message::StartLine::Response { reason, .. } => {
                String::from_utf8_lossy(reason).into_owned()
            }
            _ => String::new(),
        };
        let extra = call
            .trunk()
            .map(|t| crossing_headers(resp, t))
            .unwrap_or_default();
        self.attempt_failed(now, ep, call, code, &reason, extra);
    }

    /// The current attempt failed with `code`: try the next trunk on
    /// 503/408 (and timeouts, mapped to 408), else answer A with the failure.
    pub(crate) fn attempt_failed(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        code: u16,
        reason: &str,
        extra: Vec<Header>,
    ) {
        if let Some(t) = call.trunk().map(|t| t.name.clone()) {
            self.counters(&t).failures += 1;
        }
        call.last_failure = Some((code, reason.to_string()));
        let failover = matches!(code, 503 | 408 | 480) && call.attempt + 1 < call.targets.len();
        if failover {
            tracing::debug!(call = call.id, code, "leg B failed: next trunk");
            call.attempt += 1;
            call.state = CallState::Calling;
            self.start_attempt(now, ep, call);
            return;
        }
        let mut extra = extra;
        if !extra.iter().any(|h| h.name == HeaderName::Reason) {
            extra.push(Header::new(
                HeaderName::Reason,
                format!("SIP;cause={code};text=\"{reason}\""),
            ));
            if let Some((cause, text)) = q850_cause(code) {
                extra.push(Header::new(
                    HeaderName::Reason,
                    format!("Q.850;cause={cause};text=\"{text}\""),
                ));
            }
        }
        if let Some(tx) = call.a_tx.take() {
            ep.send_response(
                now,
                tx,
                dialog::response(&call.a_invite, code, reason, &call.a.local_tag, extra, None),
            );
        }
        call.state = CallState::Ending;
    }
}

/// The ITU-T Q.850 cause a PSTN side expects for a SIP final status (the
/// reverse of RFC 3398 §7.2.4.1 / RFC 4497 practice), sent with the SIP
/// cause in `Reason` (RFC 3326) when the trunk gave none.
pub(crate) fn q850_cause(code: u16) -> Option<(u8, &'static str)> {
    Some(match code {
        404 | 485 | 604 => (1, "Unallocated number"),
        486 | 600 => (17, "User busy"),
        408 | 504 => (102, "Recovery on timer expiry"),
        480 => (18, "No user responding"),
        403 | 603 => (21, "Call rejected"),
        410 => (22, "Number changed"),
        482 | 483 => (25, "Exchange routing error"),
        484 => (28, "Invalid number format"),
        487 => (31, "Normal, unspecified"),
        502 => (38, "Network out of order"),
        503 => (34, "No circuit/channel available"),
        488 | 606 => (65, "Bearer capability not implemented"),
        500 => (41, "Temporary failure"),
        501 => (79, "Service or option not implemented"),
        _ => return None,
    })
}
