//! INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) as updated by
//! RFC 6026 §7.1 (the "Accepted" state, Timer L).
//!
//! ```text
//!                                |INVITE
//!                                |pass INV to TU
//!             INVITE             V
//!             send last 1xx +-----------+
//!                   +-------|           |-------------------+
//!                   |       | Proceeding|  2xx from TU      |
//!                   +------>|           |  send response    |
//!                           +-----------+                   |
//!                 1xx from TU |   | 300-699 from TU         |
//!                 send resp.  |   | send response           |
//!                   +---------+   | (G = T1, H = 64*T1)     |
//!                   |             V                         V
//!   INVITE          |     +-----------+              +-----------+
//!   send response   +---->|           |              |           |--+ INVITE: absorbed
//!           +-------------| Completed |              | Accepted  |  | ACK: to TU
//!           |  Timer G    |           |              |           |<-+ 2xx from TU:
//!           +------------>+-----------+              +-----------+    send response
//!           send response   ^  |   |  Timer H fires      |
//!           G = min(2G,T2)  |  |   |  ServerTimeout       | Timer L fires (64*T1)
//!                           |  |   +-------------------+  |
//!                 ACK       |  |                       |  |
//!                 -         |  | ACK                   |  |
//!                           |  V                       |  |
//!                     +-----------+                    |  |
//!                     | Confirmed | (absorbs ACKs)     |  |
//!                     +-----------+                    |  |
//!                           | Timer I (T4 UDP, 0 TCP)  |  |
//!                           V                          V  V
//!                     +-----------------------------------+
//!                     |            Terminated             |
//!                     +-----------------------------------+
//! ```
//!
//! The TU sends the 100 (Trying) itself (§17.2.1 allows that when it answers
//! within 200 ms; a proxy does so per §16.2). Timer G runs on unreliable
//! transports only; H and L on every transport.

use super::TxState;
use super::timers::Timer;
use super::tx::{Ctx, Key, Step, Tx};
use crate::sip::message::{Message, Method};

/// What the endpoint does with a request that matched an IST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Matched {
    /// Handled inside the transaction (retransmission absorbed or answered).
    Absorbed,
    /// An ACK for a 2xx: passed to the TU without a transaction (RFC 6026 §7.1).
    AckToTu,
}

/// A retransmitted INVITE or an ACK matched this transaction (§17.2.1).
pub(super) fn on_request(tx: &mut Tx, ctx: &mut Ctx<'_>, msg: &Message) -> (Step, Matched) {
    let is_ack = msg.method() == Some(&Method::Ack);
    match (tx.state, is_ack) {
        // Proceeding: resend the most recent provisional, if any.
        // Completed: resend the final.
        (TxState::Proceeding | TxState::Completed, false) => {
            if !tx.wire.is_empty() {
                ctx.send(tx.flow, tx.wire.clone(), None);
            }
            (Step::Stay, Matched::Absorbed)
        }
        (TxState::Completed, true) => {
            tx.state = TxState::Confirmed;
            tx.timers.clear(Timer::G);
            tx.timers.clear(Timer::H);
            let t4 = ctx.d.t4;
            (ctx.linger(tx, Timer::I, t4), Matched::Absorbed)
        }
        (TxState::Accepted, true) => (Step::Stay, Matched::AckToTu),
        // Accepted: INVITE retransmissions are absorbed (RFC 6026 §7.1; the
        // TU retransmits its 2xx). Confirmed: everything is absorbed.
        _ => (Step::Stay, Matched::Absorbed),
    }
}

/// The TU sends a response; `None` when the state does not allow it.
pub(super) fn send_response(tx: &mut Tx, ctx: &mut Ctx<'_>, resp: Message) -> Option<Step> {
    let code = resp.code()?;
    match (tx.state, code) {
        (TxState::Proceeding, 100..=199) => {
            tx.wire = resp.to_bytes();
            ctx.send(tx.flow, tx.wire.clone(), None);
            Some(Step::Stay)
        }
        (TxState::Proceeding, 200..=299) => {
            tx.state = TxState::Accepted;
            tx.resp_to_tag = legacy_to_tag(tx, &resp);
            tx.wire = resp.to_bytes();
            ctx.send(tx.flow, tx.wire.clone(), None);
            let l = ctx.d.t1x64;
            ctx.arm(tx, Timer::L, l);
            Some(Step::Stay)
        }
        (TxState::Accepted, 200..=299) => {
            // RFC 6026 §7.1: 2xx retransmissions from the TU pass through
            // (recorded as the last sent, dropped again by the shedding).
            tx.wire = resp.to_bytes();
            ctx.send(tx.flow, tx.wire.clone(), None);
            Some(Step::Stay)
        }
        (TxState::Proceeding, 300..) => {
            tx.state = TxState::Completed;
            tx.resp_to_tag = legacy_to_tag(tx, &resp);
            tx.wire = resp.to_bytes();
            ctx.send(tx.flow, tx.wire.clone(), None);
            if !tx.reliable() {
                tx.interval = ctx.d.t1;
                let t1 = ctx.d.t1;
                ctx.arm(tx, Timer::G, t1);
            }
            let h = ctx.d.t1x64;
            ctx.arm(tx, Timer::H, h);
            Some(Step::Stay)
        }
        _ => None,
    }
}

/// A timer of this transaction fired.
pub(super) fn on_timer(tx: &mut Tx, ctx: &mut Ctx<'_>, t: Timer) -> Step {
    match (tx.state, t) {
        (TxState::Completed, Timer::G) => {
            ctx.send(tx.flow, tx.wire.clone(), None);
            tx.interval = (tx.interval * 2).min(ctx.d.t2);
            let next = tx.interval;
            ctx.arm(tx, Timer::G, next);
            Step::Stay
        }
        (TxState::Completed, Timer::H) => {
            ctx.emit(super::Output::ServerTimeout { tx: tx.id });
            Step::Done
        }
        (TxState::Confirmed, Timer::I) | (TxState::Accepted, Timer::L) => Step::Done,
        _ => Step::Stay,
    }
}

/// The To tag of a final response, kept only when the transaction matches
/// by RFC 2543 rules (its ACK is matched on it, §17.2.3); an RFC 3261
/// transaction matches its ACK by branch and needs no copy.
fn legacy_to_tag(tx: &Tx, resp: &Message) -> Option<bytes::Bytes> {
    match &tx.key {
        Key::Server(k) if k.is_legacy() => resp.to_tag(),
        _ => None,
    }
}
