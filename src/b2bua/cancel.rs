//! Ending the set-up from the caller's side and finishing it: CANCEL
//! (RFC 3261 §9: 200 to the CANCEL, 487 to the INVITE, CANCEL on leg B once
//! it sent a provisional) and the ACK of our 2xx (late offer: the answer).

use std::time::Instant;

use crate::media::{Leg, MediaCommand};
use crate::sip::message::Message;
use crate::sip::transaction::{Endpoint, TxId};

use super::B2bua;
use super::call::{Call, CallState, CallTimer, Pending};
use super::dialog;
use super::sdp_plan;
use super::setup::SDP;

impl B2bua {
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

    pub(super) fn on_ack_answer(
        &mut self,
        ep: &mut Endpoint,
        call: &mut Call,
        leg: Leg,
        answer: &std::sync::Arc<crate::sdp::Sdp>,
    ) {
        if leg == Leg::A {
            call.media.a_latest = Some(answer.clone());
        }
        // The answer to our SDES offer carries the leg's (new) key.
        self.take_answer_crypto(call, leg, answer);
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
                call.send_ack(ep, call.b_tx, call.b.flow, &ack);
                call.b_ack = Some(ack);
            }
        }
    }
}
