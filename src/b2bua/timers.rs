//! Call timers: no answer from the trunk (CANCEL, next trunk or 480),
//! 2xx retransmission until ACK and BYE when none comes (RFC 3261
//! §13.3.1.4), maximum call duration, and giving up on a leg that never
//! finishes (64·T1).

use std::time::Instant;

use crate::sip::transaction::{Endpoint, TxId, TxState};

use super::B2bua;
use super::call::{Call, CallState, CallTimer};

impl B2bua {
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
                        self.abandon(ep, tx);
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
                    // Through its transaction while that still holds the 2xx
                    // (RFC 6026 §7.1 Accepted), as the transaction would.
                    if r.next <= now {
                        if ep.state_of(r.tx) == Some(TxState::Accepted) {
                            ep.send_stateless_bytes(r.flow, r.wire.clone());
                        }
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
                        self.abandon(ep, tx);
                    }
                    // `finish` answers what was relayed and never answered.
                    call.awaiting = 0;
                }
            }
        }
    }
}
