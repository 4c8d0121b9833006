//! Call set-up: the caller's INVITE, leg B attempts with failover, relaying
//! provisional and final responses, CANCEL, and the ACK of our 2xx.
//! RFC 3261 §13 (INVITE), §9 (CANCEL), §13.3.1.4 (2xx retransmission),
//! RFC 3262 (PRACK toward a trunk that insists on 100rel).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::dialplan::{DtmfMode, MediaMode};
use crate::media::{Leg, LegConfig, MediaCommand, RelayConfig};
use crate::sip::message::{Header, HeaderName, Message, Method, Uri};
use crate::sip::transaction::Endpoint;
use crate::sip::transport::{Flow, Transport};

use super::call::{Call, CallState, CallTimer, MediaState, Pending, Target};
use super::dialog::{self, Dialog, Local};
use super::sdp_plan::{self, LegOrigin};
use super::srtp;
use super::{B2bua, NewCall};
use crate::media::srtp::Suite;

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
        // SRTP we cannot terminate (DTLS-SRTP, no usable a=crypto) would
        // give a call without audio: refuse it (RFC 4568 §7.1.1).
        if let (MediaMode::Anchor, Some(offer)) = (nc.media, &a_offer)
            && let Err(why) = self.check_offer(offer)
        {
            reject(ep, 488, "Not Acceptable Here", Some(why.into()));
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
            unbindable: Vec::new(),
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
            srtp: [None, None],
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
            let session = super::session_of(self.cfg.shard, id);
            call.media.session = Some(session);
            let a_sdp = call.media.a_offer.as_deref();
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
            if call.dtmf[0] != DtmfMode::Rfc4733 {
                self.media_out.push_back(MediaCommand::SetDtmfMode {
                    session,
                    leg: Leg::A,
                    mode: media_dtmf(call.dtmf[0]),
                });
            }
            // The caller's SDES key and ours for it (checked above).
            if let Some(offer) = call.media.a_offer.clone() {
                self.take_offer_crypto(&mut call, Leg::A, &offer);
            }
        }
        self.by_call_id.insert(call.a.call_id.clone(), (id, Leg::A));
        self.by_tx.insert(nc.tx, id);
        tracing::debug!(call = id, "b2bua call started");
        self.start_attempt(now, ep, &mut call);
        if self.is_finished(&call) {
            self.finish(now, ep, &mut call);
        } else {
            self.calls.insert(id, Box::new(call));
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
        let mut host_buf = [0u8; 64];
        let host = write_small(&mut host_buf, format_args!("{}", target.trunk.address));
        let transport: &[u8] = match target.flow.transport {
            Transport::Udp => b"",
            Transport::Tcp => b";transport=tcp",
        };
        let (to_user, from_user) = (to_user.as_bytes(), from_user.as_bytes());
        let ruri = concat(&[b"sip:", to_user, b"@", host, transport]);
        let remote_target = Uri::parse(ruri)
            .or_else(|_| Uri::parse(concat(&[b"sip:", host])))
            .unwrap_or_else(|_| {
                // `sip:<socket address>` always parses; keep a valid URI anyway.
                Uri::parse(Bytes::from_static(b"sip:invalid")).unwrap_or_else(|_| unreachable!())
            });
        let display = display.as_deref().map(String::from_utf8_lossy);
        let (display, space): (&[u8], &[u8]) = match &display {
            Some(d) => (d.as_bytes(), b" "),
            None => (b"", b""),
        };
        let local_uri = concat(&[
            display,
            space,
            b"<sip:",
            from_user,
            b"@",
            local.sent_by.as_bytes(),
            b">",
        ]);
        Dialog {
            call_id: self.new_call_id(),
            local_tag: self.new_tag(),
            local_uri,
            remote_hdr: concat(&[b"<sip:", to_user, b"@", host, b">"]),
            remote_tag: None,
            local_cseq: 1,
            remote_cseq: 0,
            remote_target,
            remote_contact: Bytes::new(),
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
            self.tombstone(now, old.call_id);
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
        if let Some(session) = call.media.session
            && (call.attempt == 0 && target.trunk.policy.dtmf != DtmfMode::Rfc4733
                || call.attempt > 0 && target.trunk.policy.dtmf != call.dtmf[1])
        {
            self.media_out.push_back(MediaCommand::SetDtmfMode {
                session,
                leg: Leg::B,
                mode: media_dtmf(target.trunk.policy.dtmf),
            });
        }
        call.dtmf[1] = target.trunk.policy.dtmf;
        call.b_provisional = false;
        call.cancel_pending = false;
        let addr = self.cfg.media.address;
        // Leg B speaks SDES toward a trunk marked `srtp`, or toward a trunk
        // that is not plain RTP when the caller did (each leg its own key).
        let policy = &target.trunk.policy;
        let b_crypto = match (&call.media.srtp[0], call.media.mode) {
            (a, MediaMode::Anchor) if policy.srtp || (a.is_some() && !policy.plain_rtp) => {
                let suite = a.as_ref().map_or(Suite::AesCm128HmacSha1_80, |c| c.suite);
                self.offer_crypto(suite)
            }
            _ => None,
        };
        self.set_leg_crypto(call, Leg::B, b_crypto);
        let b_crypto = call.media.srtp[1].as_ref();
        let offer = match (&call.media.mode, &call.media.a_offer, call.media.ports) {
            (MediaMode::Bypass, offer, _) => offer.clone(),
            (MediaMode::Anchor, Some(a_offer), Some([_, pb])) => {
                let s = sdp_plan::anchored(a_offer, addr, pb.rtp);
                let s = sdp_plan::for_trunk_transcoding(&s, &target.trunk.policy);
                let s = srtp::secure(&s, b_crypto);
                Some(Arc::new(call.media.origin[1].stamp(&s, addr)))
            }
            (MediaMode::Anchor, None, Some([_, pb])) => {
                let s = sdp_plan::own_offer(addr, pb.rtp, Some(&target.trunk.policy));
                let s = srtp::secure(&s, b_crypto);
                Some(Arc::new(call.media.origin[1].stamp(&s, addr)))
            }
            (MediaMode::Anchor, _, None) => None,
        };
        call.media.b_offer = offer.clone();
        let mut extra = vec![Header::new(HeaderName::Allow, ALLOW)];
        extra.extend(crossing_headers(&call.a_invite, &target.trunk));
        let branch = self.new_branch();
        // The first attempt's offer, unanchored, is the one parsed from A's
        // INVITE: its bytes go as received. (Later attempts serialise: an
        // UPDATE from A may have replaced the offer since.)
        let received = (call.attempt == 0)
            .then_some(call.media.a_offer.as_ref())
            .flatten();
        let body = offer
            .as_ref()
            .map(|s| (sdp_plan::body_for(s, received, &call.a_invite.body), SDP));
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

/// The media plane's name for a trunk's DTMF mode.
pub(crate) fn media_dtmf(mode: DtmfMode) -> crate::media::DtmfMode {
    match mode {
        DtmfMode::Rfc4733 => crate::media::DtmfMode::Rfc4733,
        DtmfMode::Inband => crate::media::DtmfMode::Inband,
        DtmfMode::Info => crate::media::DtmfMode::Info,
    }
}

/// `parts` joined in one buffer of exactly their length (one allocation,
/// none for the pieces).
pub(crate) fn concat(parts: &[&[u8]]) -> Bytes {
    let mut v = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        v.extend_from_slice(p);
    }
    Bytes::from(v)
}

/// Formats `args` into `buf` and returns what was written: short values
/// (a socket address, a token) without a heap buffer. Output longer than
/// `buf` is cut at its end (callers size `buf` for the longest value).
pub(crate) fn write_small<'a>(buf: &'a mut [u8], args: std::fmt::Arguments<'_>) -> &'a [u8] {
    let len = buf.len();
    let mut w = &mut buf[..];
    // A full buffer stops the write; what fitted is kept.
    let _ = std::io::Write::write_fmt(&mut w, args);
    let n = len - w.len();
    &buf[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_joins_exactly() {
        let b = concat(&[b"<sip:", b"alice", b"@", b"[::1]:5060", b">"]);
        assert_eq!(&b[..], b"<sip:alice@[::1]:5060>");
        assert_eq!(&concat(&[])[..], b"");
    }

    #[test]
    fn write_small_formats_and_cuts_at_the_buffer() {
        let mut buf = [0u8; 64];
        let addr: std::net::SocketAddr = "[2001:db8::1]:5070".parse().unwrap();
        assert_eq!(
            write_small(&mut buf, format_args!("{addr}")),
            b"[2001:db8::1]:5070"
        );
        let mut small = [0u8; 4];
        assert_eq!(
            write_small(&mut small, format_args!("{}", 123_456)),
            b"1234"
        );
    }
}
