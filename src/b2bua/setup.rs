//! Call set-up: the caller's INVITE, leg B attempts with failover, relaying
//! provisional and final responses, CANCEL, and the ACK of our 2xx.
//! RFC 3261 §13 (INVITE), §9 (CANCEL), §13.3.1.4 (2xx retransmission),
//! RFC 3262 (PRACK toward a trunk that insists on 100rel).

use std::time::Instant;

use bytes::Bytes;

use crate::dialplan::MediaMode;
use crate::media::{Leg, LegConfig, MediaCommand, RelayConfig};
use crate::sip::message::{Header, HeaderName, Message, Method, Uri};
use crate::sip::transaction::{Endpoint, TxId};
use crate::sip::transport::{Flow, Transport};

use super::call::{Call, CallState, CallTimer, MediaState, Pending, Retransmit, Target};
use super::dialog::{self, Dialog, Local};
use super::sdp_plan::{self, LegOrigin};
use super::{B2bua, NewCall};

/// Methods we answer or relay in a dialog (Allow, RFC 3261 §20.5).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK, MESSAGE, NOTIFY";

/// `application/sdp`.
pub(crate) const SDP: &str = "application/sdp";

impl B2bua {
    /// Takes over a new INVITE the dial plan routed to the B2BUA: answers
    /// 100, opens the media session (anchored calls) and tries the first trunk.
    pub fn new_call(&mut self, now: Instant, ep: &mut Endpoint, nc: NewCall) {
        let local_a = self.local(nc.flow);
        let a_tag = self.new_tag();
        let reject = |ep: &mut Endpoint, code: u16, reason: &str, warning: Option<String>| {
            let extra = warning
                .map(|w| {
                    vec![Header::new(
                        HeaderName::Warning,
                        format!("399 callgate \"{w}\""),
                    )]
                })
                .unwrap_or_default();
            ep.send_response(
                now,
                nc.tx,
                dialog::response(&nc.invite, code, reason, &a_tag, extra, None),
            );
        };
        let Some(a) = Dialog::uas(&nc.invite, nc.flow, local_a, a_tag.clone()) else {
            reject(
                ep,
                400,
                "Bad Request",
                Some("missing From/To/Contact".into()),
            );
            return;
        };
        let a_offer = match sdp_plan::body_sdp(&nc.invite) {
            Ok(o) => o,
            Err(e) => {
                let (code, reason) = e.status();
                reject(ep, code, reason, Some(e.to_string()));
                return;
            }
        };
        if nc.targets.is_empty() {
            reject(ep, 404, "Not Found", None);
            return;
        }
        ep.send_response(
            now,
            nc.tx,
            dialog::response(&nc.invite, 100, "Trying", &a_tag, Vec::new(), None),
        );
        let ports = match nc.media {
            MediaMode::Bypass => None,
            MediaMode::Anchor => match self.allocate_pair() {
                Some(p) => Some(p),
                None => {
                    reject(
                        ep,
                        503,
                        "Service Unavailable",
                        Some("no media ports left".into()),
                    );
                    return;
                }
            },
        };
        let id = self.next_token() >> 16;
        let b_dtmf = nc.targets[0].trunk.policy.dtmf;
        let from = nc.invite.from_hdr();
        let b = self.leg_b_dialog(
            &nc.targets[0],
            &nc.to_user,
            &nc.from_user,
            from.as_ref().and_then(|f| f.display.clone()),
        );
        let media = MediaState {
            mode: nc.media,
            ports,
            session: None,
            a_offer: a_offer.clone(),
            b_offer: None,
            b_answer: None,
            a_latest: a_offer.clone(),
            origin: [
                LegOrigin::new(self.next_token() >> 12),
                LegOrigin::new(self.next_token() >> 12),
            ],
            codecs: [Vec::new(), Vec::new()],
            on_hold: false,
            a_committed: None,
            ringback_playing: false,
        };
        let mut call = Call {
            id,
            state: CallState::Calling,
            started: now,
            answered: None,
            a_tx: Some(nc.tx),
            a_listener: nc.listener,
            max_forwards: nc.invite.max_forwards().map_or(70, |m| m.saturating_sub(1)),
            a_invite: std::sync::Arc::new(nc.invite),
            a,
            b,
            b_invite: None,
            b_tx: None,
            b_provisional: false,
            cancel_pending: false,
            b_ack: None,
            b_ack_held: false,
            attempt: 0,
            targets: nc.targets,
            to_user: nc.to_user,
            from_user: nc.from_user,
            from_display: from.and_then(|f| f.display),
            media,
            pending: Default::default(),
            sent_acks: Default::default(),
            retransmits: Vec::new(),
            awaiting: 0,
            offer_in: [None, None],
            offer_out: [None, None],
            last_failure: None,
            ringback: nc.ringback,
            dtmf: [nc.a_dtmf, b_dtmf],
        };
        if let Some([pa, pb]) = ports {
            let session = (u64::from(self.cfg.shard) << 48) | (id & 0xffff_ffff_ffff);
            call.media.session = Some(session);
            let a_sdp = call.media.a_offer.as_ref();
            let ssrc_seed = self.next_token();
            self.media_out.push_back(MediaCommand::Open {
                session,
                a: LegConfig {
                    ports: pa,
                    remote_rtp: a_sdp.and_then(sdp_plan::rtp_addr),
                    remote_rtcp: a_sdp.and_then(sdp_plan::rtcp_addr),
                    codecs: Vec::new(),
                },
                b: LegConfig {
                    ports: pb,
                    remote_rtp: None,
                    remote_rtcp: None,
                    codecs: Vec::new(),
                },
                ssrc_seed,
                config: RelayConfig {
                    inactivity_timeout: self.cfg.media.rtp_timeout,
                    ..RelayConfig::default()
                },
            });
        }
        self.by_call_id.insert(call.a.call_id.clone(), (id, Leg::A));
        self.by_tx.insert(nc.tx, id);
        tracing::debug!(call = id, "b2bua call started");
        self.start_attempt(now, ep, &mut call);
        if self.is_finished(&call) {
            self.finish(now, ep, &mut call);
        } else {
            self.calls.insert(id, call);
        }
    }

    /// Our Via/Contact for the listener of `flow`.
    pub(crate) fn local(&self, flow: Flow) -> Local {
        Local {
            sent_by: self
                .cfg
                .sent_by
                .get(flow.listener)
                .cloned()
                .unwrap_or_else(|| "callgate.invalid".into()),
            transport: flow.transport,
        }
    }

    fn allocate_pair(&mut self) -> Option<[crate::media::PortPair; 2]> {
        let alloc = self.ports.as_mut()?;
        let a = alloc.allocate().ok()?;
        match alloc.allocate() {
            Ok(b) => Some([a, b]),
            Err(_) => {
                alloc.release(a);
                None
            }
        }
    }

    /// A fresh UAC dialog toward `target` (its own Call-ID and tag).
    fn leg_b_dialog(
        &mut self,
        target: &Target,
        to_user: &str,
        from_user: &str,
        display: Option<Bytes>,
    ) -> Dialog {
        let local = self.local(target.flow);
        let host = target.trunk.address;
        let transport = match target.flow.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        let ruri = format!("sip:{to_user}@{host}{transport}");
        let remote_target = Uri::parse(Bytes::from(ruri.clone()))
            .or_else(|_| Uri::parse(Bytes::from(format!("sip:{host}"))))
            .unwrap_or_else(|_| {
                // `sip:<socket address>` always parses; keep a valid URI anyway.
                Uri::parse(Bytes::from_static(b"sip:invalid")).unwrap_or_else(|_| unreachable!())
            });
        let display = display
            .map(|d| format!("{} ", String::from_utf8_lossy(&d)))
            .unwrap_or_default();
        Dialog {
            call_id: self.new_call_id(),
            local_tag: self.new_tag(),
            local_uri: Bytes::from(format!("{display}<sip:{from_user}@{}>", local.sent_by)),
            remote_hdr: Bytes::from(format!("<sip:{to_user}@{host}>")),
            remote_tag: None,
            local_cseq: 1,
            remote_cseq: 0,
            remote_target,
            route_set: Vec::new(),
            flow: target.flow,
            local,
        }
    }

    /// Sends the INVITE of attempt `call.attempt` on leg B.
    pub(crate) fn start_attempt(&mut self, now: Instant, ep: &mut Endpoint, call: &mut Call) {
        let Some(target) = call.targets.get(call.attempt).cloned() else {
            return;
        };
        if call.attempt > 0 {
            let old = std::mem::replace(
                &mut call.b,
                self.leg_b_dialog(
                    &target,
                    &call.to_user,
                    &call.from_user,
                    call.from_display.clone(),
                ),
            );
            self.by_call_id.remove(&old.call_id);
            self.ended.insert(old.call_id, now);
            call.media.origin[1] = LegOrigin::new(self.next_token() >> 12);
            if let Some(session) = call.media.session {
                self.media_out.push_back(MediaCommand::Relatch {
                    session,
                    leg: Leg::B,
                });
            }
        }
        self.by_call_id
            .insert(call.b.call_id.clone(), (call.id, Leg::B));
        call.dtmf[1] = target.trunk.policy.dtmf;
        call.b_provisional = false;
        call.cancel_pending = false;
        let addr = self.cfg.media.address;
        let offer = match (&call.media.mode, &call.media.a_offer, call.media.ports) {
            (MediaMode::Bypass, offer, _) => offer.clone(),
            (MediaMode::Anchor, Some(a_offer), Some([_, pb])) => {
                let s = sdp_plan::anchored(a_offer, addr, pb.rtp);
                let s = sdp_plan::for_trunk_transcoding(&s, &target.trunk.policy);
                Some(call.media.origin[1].stamp(&s, addr))
            }
            (MediaMode::Anchor, None, Some([_, pb])) => {
                let s = sdp_plan::own_offer(addr, pb.rtp, Some(&target.trunk.policy));
                Some(call.media.origin[1].stamp(&s, addr))
            }
            (MediaMode::Anchor, _, None) => None,
        };
        call.media.b_offer = offer.clone();
        let mut extra = vec![Header::new(HeaderName::Allow, ALLOW)];
        extra.extend(crossing_headers(&call.a_invite, &target.trunk));
        let branch = self.new_branch();
        let body = offer.as_ref().map(|s| (sdp_plan::to_body(s), SDP));
        let mut invite = call.b.request(Method::Invite, &branch, extra, body);
        invite.set_header(Header::new(
            HeaderName::MaxForwards,
            call.max_forwards.to_string(),
        ));
        let tx = ep.send_request(now, call.b.flow, invite.clone());
        call.b_invite = Some(invite);
        call.b_tx = Some(tx);
        call.pending.insert(
            tx,
            Pending::Invite {
                attempt: call.attempt,
            },
        );
        self.by_tx.insert(tx, call.id);
        self.counters(&target.trunk.name).attempts += 1;
        self.schedule(
            now + self.cfg.timers.no_answer,
            call.id,
            CallTimer::NoAnswer(call.attempt),
        );
        tracing::debug!(call = call.id, trunk = %target.trunk.name, attempt = call.attempt, "INVITE on leg B");
    }

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

    fn on_provisional(&mut self, now: Instant, ep: &mut Endpoint, call: &mut Call, resp: Message) {
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
        let body = match sdp_plan::body_sdp(&resp) {
            Ok(Some(sdp_b)) => {
                self.stop_ringback(call);
                self.on_b_answer(call, &sdp_b)
            }
            _ if code == 180 && call.media.ringback_playing => return,
            _ if code == 180 => {
                // Ringback injection: 183 + SDP and our tone instead of a bare 180.
                let rb = self.start_ringback(call);
                if rb.is_some() {
                    code = 183;
                    reason = "Session Progress".into();
                }
                rb
            }
            _ => None,
        };
        let mut extra = vec![Header::new(HeaderName::Contact, call.a.local.contact())];
        if let Some(t) = call.trunk() {
            extra.extend(crossing_headers(&resp, t));
        }
        let out = dialog::response(
            &call.a_invite,
            code,
            &reason,
            &call.a.local_tag,
            extra,
            body.as_ref().map(|s| (sdp_plan::to_body(s), SDP)),
        );
        if let Some(tx) = call.a_tx {
            ep.send_response(now, tx, out);
        }
        call.state = CallState::Early;
    }

    /// Leg B's SDP answer arrived (in a 18x or the 2xx): update the relay and
    /// return the SDP leg A gets (the answer to its offer), if it offered.
    pub(crate) fn on_b_answer(
        &mut self,
        call: &mut Call,
        sdp_b: &crate::sdp::Sdp,
    ) -> Option<crate::sdp::Sdp> {
        call.media.b_answer = Some(sdp_b.clone());
        call.media.codecs[1] = sdp_plan::codec_names(sdp_b);
        let addr = self.cfg.media.address;
        match (call.media.mode, call.media.ports) {
            (MediaMode::Bypass, _) | (MediaMode::Anchor, None) => {
                call.media.codecs[0] = call.media.codecs[1].clone();
                Some(sdp_b.clone())
            }
            (MediaMode::Anchor, Some([pa, _])) => {
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
                    sdp_plan::codecs_union(sdp_b, call.media.b_offer.as_ref())
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
                    sdp_plan::anchored(&ans, addr, pa.rtp)
                } else {
                    sdp_plan::transcoding_answer(&a_offer, sdp_b, addr, pa.rtp)?
                };
                let ans = call.media.origin[0].stamp(&ans, addr);
                call.media.codecs[0] = sdp_plan::codec_names(&ans);
                let a_codecs = if relay {
                    sdp_plan::codecs_union(&ans, Some(&a_offer))
                } else {
                    sdp_plan::codecs(&ans)
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
                Some(ans)
            }
        }
    }

    fn on_answer(&mut self, now: Instant, ep: &mut Endpoint, call: &mut Call, resp: Message) {
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
                offered = Some(s.clone());
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
                offer
            }
            (None, true, _) => call.media.b_answer.clone().and_then(|s| {
                self.on_b_answer(call, &s);
                let offer = self.offer_to_a(call, &s);
                offered = offer.clone();
                offer
            }),
        };
        if !call.b_ack_held {
            ep.send_stateless(call.b.flow, ack.clone());
            if let Some(tx) = call.b_tx {
                call.sent_acks.insert(tx, (call.b.flow, ack.clone()));
            }
        }
        call.b_ack = Some(ack);
        let mut extra = vec![
            Header::new(HeaderName::Contact, call.a.local.contact()),
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
            body.as_ref().map(|s| (sdp_plan::to_body(s), SDP)),
        );
        if let Some(tx) = call.a_tx {
            ep.send_response(now, tx, ok.clone());
            let a_seq = call.a_invite.cseq().map_or(1, |c| c.seq);
            self.retransmit_2xx(now, call, Leg::A, tx, a_seq, ok, offered);
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
    fn offer_to_a(&mut self, call: &mut Call, sdp_b: &crate::sdp::Sdp) -> Option<crate::sdp::Sdp> {
        let [pa, _] = call.media.ports?;
        let addr = self.cfg.media.address;
        let s = sdp_plan::anchored(sdp_b, addr, pa.rtp);
        Some(call.media.origin[0].stamp(&s, addr))
    }

    /// Remembers a 2xx to retransmit until its ACK (§13.3.1.4): T1, doubling
    /// to T2 on unreliable transports; give up (and end the call) at 64·T1.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retransmit_2xx(
        &mut self,
        now: Instant,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        cseq: u32,
        resp: Message,
        offered: Option<crate::sdp::Sdp>,
    ) {
        let t1 = self.cfg.timers.t1;
        let reliable = call.dialog(leg).flow.transport.is_reliable();
        let next = if reliable { now + t1 * 64 } else { now + t1 };
        call.retransmits.push(Retransmit {
            leg,
            tx,
            cseq,
            resp,
            interval: t1,
            next,
            give_up: now + t1 * 64,
            offered,
        });
        self.schedule(next, call.id, CallTimer::Retransmit);
    }

    /// A 2xx we cannot use (A gave up, or a second answer from a forking
    /// trunk): ACK it and BYE that dialog (RFC 3261 §13.2.2.4).
    fn reject_stray_2xx(
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

    fn on_failure(
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

    /// CANCEL the INVITE of the current attempt (§9.1).
    pub(crate) fn send_cancel_b(&mut self, now: Instant, ep: &mut Endpoint, call: &mut Call) {
        if let Some(invite_tx) = call.b_tx {
            self.cancelled.push(std::cmp::Reverse((
                now + self.cfg.timers.t1 * 64,
                invite_tx,
            )));
        }
        if let Some(cancel) = call.b_invite.as_ref().and_then(dialog::cancel_for) {
            let tx = ep.send_request(now, call.b.flow, cancel);
            call.pending.insert(tx, Pending::Fire);
            self.by_tx.insert(tx, call.id);
        }
    }

    /// CANCEL from the caller (§9.2): 200 to the CANCEL, 487 to the INVITE,
    /// and the attempt on leg B is cancelled.
    pub(crate) fn on_cancel(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        tx: TxId,
        msg: &Message,
    ) {
        let ist = ep.find_invite_server_tx(msg);
        let ok = dialog::response(msg, 200, "OK", &call.a.local_tag, Vec::new(), None);
        ep.send_response(now, tx, ok);
        if ist.is_none() || ist != call.a_tx || call.answered() || call.state == CallState::Ending {
            return;
        }
        if let Some(a_tx) = call.a_tx.take() {
            ep.send_response(
                now,
                a_tx,
                dialog::response(
                    &call.a_invite,
                    487,
                    "Request Terminated",
                    &call.a.local_tag,
                    Vec::new(),
                    None,
                ),
            );
        }
        self.abort_leg_b(now, ep, call);
    }

    /// Gives up the unanswered leg B (caller left): CANCEL it now or as soon
    /// as it sends a provisional; the call ends when its INVITE finishes.
    pub(crate) fn abort_leg_b(&mut self, now: Instant, ep: &mut Endpoint, call: &mut Call) {
        call.state = CallState::Ending;
        call.awaiting = 1;
        if call.b_provisional {
            self.send_cancel_b(now, ep, call);
        } else {
            call.cancel_pending = true;
        }
        self.schedule(now + self.cfg.timers.t1 * 64, call.id, CallTimer::GiveUp);
    }

    /// An ACK on `leg` (for one of our 2xx): stops its retransmission; a late
    /// offer's answer in it completes the media set-up.
    pub(crate) fn on_ack(&mut self, ep: &mut Endpoint, call: &mut Call, leg: Leg, msg: &Message) {
        let seq = msg.cseq().map_or(0, |c| c.seq);
        let Some(pos) = call
            .retransmits
            .iter()
            .position(|r| r.leg == leg && r.cseq == seq)
        else {
            return;
        };
        let r = call.retransmits.remove(pos);
        if leg == Leg::A && call.state == CallState::WaitAck {
            call.state = CallState::Confirmed;
        }
        if r.offered.is_none() {
            return;
        }
        let Ok(Some(answer)) = sdp_plan::body_sdp(msg) else {
            return;
        };
        self.on_ack_answer(ep, call, leg, &answer);
    }

    fn on_ack_answer(
        &mut self,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        answer: &crate::sdp::Sdp,
    ) {
        if leg == Leg::A {
            call.media.a_latest = Some(answer.clone());
        }
        call.media.codecs[leg as usize] = sdp_plan::codec_names(answer);
        if let Some(session) = call.media.session {
            let ours = call.media.origin[leg as usize].last.clone();
            self.media_out.push_back(MediaCommand::UpdateLeg {
                session,
                leg,
                remote_rtp: sdp_plan::rtp_addr(answer),
                remote_rtcp: sdp_plan::rtcp_addr(answer),
                codecs: sdp_plan::codecs_union(answer, ours.as_ref()),
            });
        }
        if leg == Leg::A && call.b_ack_held {
            call.b_ack_held = false;
            if let Some(mut ack) = call.b_ack.take() {
                ack.set_body(sdp_plan::to_body(answer), Some(SDP));
                ep.send_stateless(call.b.flow, ack.clone());
                if let Some(tx) = call.b_tx {
                    call.sent_acks.insert(tx, (call.b.flow, ack.clone()));
                }
                call.b_ack = Some(ack);
            }
        }
    }
}

/// Headers of `msg` that cross to the other leg under `trunk`'s policy.
/// Requests toward the trunk also get the policy's `add` headers.
pub(crate) fn crossing_headers(msg: &Message, trunk: &crate::dialplan::Trunk) -> Vec<Header> {
    super::copy_headers(msg, &trunk.policy.headers)
}

/// Headers of a request arriving on `from` that cross to the other leg: the
/// trunk's `add` headers only go toward the trunk (leg B).
pub(crate) fn crossing_from(
    msg: &Message,
    from: Leg,
    trunk: &crate::dialplan::Trunk,
) -> Vec<Header> {
    match from {
        Leg::A => super::copy_headers(msg, &trunk.policy.headers),
        Leg::B => super::filter_headers(msg, &trunk.policy.headers),
    }
}
