//! Interworking the B2BUA does between its legs beyond offer/answer:
//! ringback injection (a trunk rings with a 180 and no SDP, the caller
//! wants early media) and DTMF carried by SIP INFO on one leg and in the
//! RTP stream on the other (RFC 4733 or in-band, done by the media plane).
//!
//! ```text
//!   trunk 180 (no SDP) ─▶ caller 183 + SDP (caller's codec) ─▶ media: Ringback(plan)
//!   trunk 183/200 SDP  ─▶ media: Ringback(None); the caller's answer stays as sent
//!   INFO dtmf-relay on X, other leg not INFO ─▶ 200, media: SendDtmf(other)
//!   media Event::Dtmf(from X), other leg INFO ─▶ INFO application/dtmf-relay on other
//! ```

use std::time::Instant;

use bytes::Bytes;

use crate::dialplan::{DtmfMode, MediaMode, RingbackTone};
use crate::dtmf::{self, Digit, RingbackPlan};
use crate::media::{Leg, MediaCommand};
use crate::sip::message::{HeaderName, Message, Method};
use crate::sip::transaction::{Endpoint, TxId};

use super::B2bua;
use super::call::{Call, Pending};
use super::dialog;
use super::sdp_plan;

fn plan_of(tone: RingbackTone) -> Option<RingbackPlan> {
    match tone {
        RingbackTone::None => None,
        RingbackTone::Us => Some(RingbackPlan::Us),
        RingbackTone::Uk => Some(RingbackPlan::Uk),
        RingbackTone::Eu => Some(RingbackPlan::Eu),
    }
}

impl B2bua {
    /// A 180 without SDP arrived on leg B: when the route asks for ringback
    /// (anchored call, the caller offered SDP), answer the caller with a 183
    /// carrying our answer in its first codec and start the tone. Returns
    /// the 183's SDP, or `None` to relay the provisional as it is.
    pub(crate) fn start_ringback(&mut self, call: &mut Call) -> Option<crate::sdp::Sdp> {
        if call.media.ringback_playing {
            return call.media.a_committed.clone();
        }
        let plan = plan_of(call.ringback)?;
        let (MediaMode::Anchor, Some([pa, _]), Some(offer), Some(session)) = (
            call.media.mode,
            call.media.ports,
            call.media.a_offer.as_ref(),
            call.media.session,
        ) else {
            return None;
        };
        if call.media.b_answer.is_some() {
            return None; // real early media already flows
        }
        let addr = self.cfg.media.address;
        let ans = match &call.media.a_committed {
            Some(c) => c.clone(),
            None => {
                let a = sdp_plan::transcoding_answer(offer, offer, addr, pa.rtp)?;
                let a = super::srtp::secure(&a, call.media.srtp[0].as_ref());
                call.media.origin[0].stamp(&a, addr)
            }
        };
        call.media.a_committed = Some(ans.clone());
        call.media.codecs[0] = sdp_plan::codec_names(&ans);
        self.media_out.push_back(MediaCommand::UpdateLeg {
            session,
            leg: Leg::A,
            remote_rtp: sdp_plan::rtp_addr(offer),
            remote_rtcp: sdp_plan::rtcp_addr(offer),
            codecs: sdp_plan::codecs_for_peer(&ans, offer),
        });
        self.media_out.push_back(MediaCommand::Ringback {
            session,
            leg: Leg::A,
            plan: Some(plan),
        });
        call.media.ringback_playing = true;
        Some(ans)
    }

    /// Leg B's own media takes over (early media or answer): stop the tone.
    pub(crate) fn stop_ringback(&mut self, call: &mut Call) {
        if !call.media.ringback_playing {
            return;
        }
        call.media.ringback_playing = false;
        if let Some(session) = call.media.session {
            self.media_out.push_back(MediaCommand::Ringback {
                session,
                leg: Leg::A,
                plan: None,
            });
        }
    }

    /// An INFO carrying a digit on `leg`: when the other leg does not take
    /// INFO, answer it here and have the media plane play the digit toward
    /// the other leg. Returns false when the INFO should be relayed as is.
    pub(crate) fn dtmf_info(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        tx: TxId,
        msg: &Message,
    ) -> bool {
        let other = leg.other();
        if call.dtmf[other as usize] == DtmfMode::Info {
            return false;
        }
        let Some(ct) = msg.header(HeaderName::ContentType) else {
            return false;
        };
        let ct = String::from_utf8_lossy(ct.value()).into_owned();
        let lower = ct.to_ascii_lowercase();
        if !lower.starts_with("application/dtmf") {
            return false;
        }
        let (code, reason) = match dtmf::info::parse(&ct, &msg.body) {
            Ok(info) => {
                if let Some(session) = call.media.session {
                    self.media_out.push_back(MediaCommand::SendDtmf {
                        session,
                        leg: other,
                        digit: info.digit.to_char(),
                        duration_ms: info.duration_ms.unwrap_or(160).clamp(40, 5000),
                    });
                }
                (200, "OK")
            }
            Err(e) => (e.status(), "Bad DTMF Body"),
        };
        ep.send_response(
            now,
            tx,
            dialog::response(msg, code, reason, "cg0", Vec::new(), None),
        );
        true
    }

    /// The media plane heard a digit from `from` that the other leg takes by
    /// SIP INFO: send it (`application/dtmf-relay`, duration in ms).
    pub(crate) fn dtmf_to_info(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        call: &mut Call,
        from: Leg,
        digit: char,
        duration_ms: u32,
    ) {
        let to = from.other();
        if call.dtmf[to as usize] != DtmfMode::Info || !call.answered() {
            return;
        }
        let Some(d) = Digit::from_char(digit) else {
            return;
        };
        let body = Bytes::from(dtmf::info::build_relay(d, duration_ms));
        let branch = self.new_branch();
        let req = call.dialog(to).request(
            Method::Info,
            &branch,
            Vec::new(),
            Some((body, "application/dtmf-relay")),
        );
        let flow = call.dialog(to).flow;
        let tx = ep.send_request(now, flow, req);
        call.pending.insert(tx, Pending::Fire);
        self.by_tx.insert(tx, call.id);
    }
}
