//! Non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).
//!
//! ```text
//!                                    |Request from TU
//!                                    |send request
//!                Timer E             V             Timer E = T1, doubling,
//!                send request  +-----------+       capped at T2 (unreliable only)
//!                    +---------|           |-------------------+
//!                    |         |  Trying   |  Timer F          |  Timer F = 64*T1
//!                    +-------->|           |  or Transport Err.|
//!                              +-----------+  inform TU        |
//!                 200-699         |  |                         |
//!                 resp. to TU     |  |1xx                      |
//!                 +---------------+  |resp. to TU              |
//!                 |                  |                         |
//!                 |   Timer E        V       Timer F           |
//!                 |   send req +-----------+ or Transport Err. |
//!                 |  +---------|           | inform TU         |
//!                 |  |         |Proceeding |------------------>|
//!                 |  +-------->|           |-----+             |
//!                 |  (E = T2)  +-----------+     |1xx          |
//!                 |              |      ^        |resp to TU   |
//!                 | 200-699      |      +--------+             |
//!                 | resp. to TU  |                             |
//!                 |              V                             |
//!                 |            +-----------+                   |
//!                 |            |           |                   |
//!                 +----------->| Completed |                   |
//!                              |           |  (absorbs         |
//!                              +-----------+   retransmitted   |
//!                                ^   |         responses)      |
//!                                |   | Timer K (T4 UDP, 0 TCP) |
//!                                +---+ -                       |
//!                                    V                         |
//!                              +-----------+                   |
//!                              | Terminated|<------------------+
//!                              +-----------+
//! ```

use super::timers::Timer;
use super::tx::{Ctx, Step, Tx};
use super::{Output, TxState};
use crate::sip::message::Message;

/// Send the request and arm Timers E (unreliable only) and F (§17.1.2.2).
pub(super) fn start(tx: &mut Tx, ctx: &mut Ctx<'_>) {
    tx.state = TxState::Trying;
    ctx.send(tx.flow, tx.wire.clone(), Some(tx.id));
    if !tx.reliable() {
        tx.interval = ctx.d.t1;
        let t1 = ctx.d.t1;
        ctx.arm(tx, Timer::E, t1);
    }
    let f = ctx.d.t1x64;
    ctx.arm(tx, Timer::F, f);
}

/// A response matched this transaction (§17.1.2.2).
pub(super) fn on_response(tx: &mut Tx, ctx: &mut Ctx<'_>, msg: Message) -> Step {
    let code = msg.code().unwrap_or(0);
    match (tx.state, code) {
        (TxState::Trying | TxState::Proceeding, 100..=199) => {
            tx.state = TxState::Proceeding;
            ctx.emit(Output::Response { tx: tx.id, msg });
            Step::Stay
        }
        (TxState::Trying | TxState::Proceeding, 200..) => {
            tx.state = TxState::Completed;
            tx.timers.clear(Timer::E);
            tx.timers.clear(Timer::F);
            ctx.emit(Output::Response { tx: tx.id, msg });
            let t4 = ctx.d.t4;
            ctx.linger(tx, Timer::K, t4)
        }
        // Completed: retransmitted finals are absorbed.
        _ => Step::Stay,
    }
}

/// A timer of this transaction fired.
pub(super) fn on_timer(tx: &mut Tx, ctx: &mut Ctx<'_>, t: Timer) -> Step {
    match (tx.state, t) {
        (TxState::Trying | TxState::Proceeding, Timer::E) => {
            ctx.send(tx.flow, tx.wire.clone(), Some(tx.id));
            // Trying: MIN(2*interval, T2). Proceeding: always T2.
            tx.interval = if tx.state == TxState::Trying {
                (tx.interval * 2).min(ctx.d.t2)
            } else {
                ctx.d.t2
            };
            let next = tx.interval;
            ctx.arm(tx, Timer::E, next);
            Step::Stay
        }
        (TxState::Trying | TxState::Proceeding, Timer::F) => {
            ctx.emit(Output::Timeout { tx: tx.id });
            Step::Done
        }
        (TxState::Completed, Timer::K) => Step::Done,
        _ => Step::Stay,
    }
}
