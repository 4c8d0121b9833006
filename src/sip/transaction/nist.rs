//! Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).
//!
//! ```text
//!                           |Request received
//!                           |pass to TU
//!                           V
//!                     +-----------+
//!                     |           |
//!                     | Trying    |-------------+
//!                     |           |             |
//!                     +-----------+             |200-699 from TU
//!                           |  (request         |send response
//!                           |   retransmissions |
//!                           |   absorbed)       |
//!                           |1xx from TU        |
//!                           |send response      |
//!                           V                   |
//!      Request        +-----------+             |
//!      send last 1xx  |           |             |
//!          +----------| Proceeding|------------>|
//!          |          |           |200-699 from TU
//!          +--------->|           |send response|
//!                     +-----------+             |
//!      1xx from TU       |   ^                  |
//!      send response     +---+                  |
//!                                               V
//!      Request                            +-----------+
//!      send final                         |           |
//!          +------------------------------| Completed |
//!          |                              |           |
//!          +----------------------------->+-----------+
//!                                               |
//!                                               | Timer J fires
//!                                               | (64*T1 UDP, 0 TCP)
//!                                               V
//!                                         +-----------+
//!                                         | Terminated|
//!                                         +-----------+
//! ```
//!
//! A CANCEL is a non-INVITE request and gets its own NIST (§9.2); the TU
//! answers it and looks up the INVITE with `Endpoint::find_invite_server_tx`.

use super::TxState;
use super::timers::Timer;
use super::tx::{Ctx, Step, Tx};
use crate::sip::message::Message;

/// A retransmission of the request matched this transaction (§17.2.2).
pub(super) fn on_request(tx: &mut Tx, ctx: &mut Ctx<'_>) -> Step {
    match tx.state {
        TxState::Proceeding | TxState::Completed if !tx.wire.is_empty() => {
            ctx.send(tx.flow, tx.wire.clone(), None);
        }
        // Trying: absorbed (there is nothing to resend yet).
        _ => {}
    }
    Step::Stay
}

/// The TU sends a response; `None` when the state does not allow it.
pub(super) fn send_response(tx: &mut Tx, ctx: &mut Ctx<'_>, resp: Message) -> Option<Step> {
    let code = resp.code()?;
    match (tx.state, code) {
        (TxState::Trying | TxState::Proceeding, 100..=199) => {
            tx.state = TxState::Proceeding;
            tx.wire = resp.to_bytes();
            ctx.send(tx.flow, tx.wire.clone(), None);
            Some(Step::Stay)
        }
        (TxState::Trying | TxState::Proceeding, 200..) => {
            tx.state = TxState::Completed;
            tx.wire = resp.to_bytes();
            ctx.send(tx.flow, tx.wire.clone(), None);
            let j = ctx.d.t1x64;
            Some(ctx.linger(tx, Timer::J, j))
        }
        _ => None,
    }
}

/// A timer of this transaction fired.
pub(super) fn on_timer(tx: &mut Tx, t: Timer) -> Step {
    match (tx.state, t) {
        (TxState::Completed, Timer::J) => Step::Done,
        _ => Step::Stay,
    }
}
