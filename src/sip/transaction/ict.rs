//! INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) as updated by
//! RFC 6026 §8.4 (the "Accepted" state, Timer M).
//!
//! ```text
//!                      |INVITE from TU
//!    Timer A fires     |INVITE sent            Timer A = T1, doubling, unreliable only
//!    Reset A,          V                       Timer B = 64*T1
//!    INVITE sent +-----------+
//!      +---------|           |---------------+ 2xx
//!      |         |  Calling  |               | 2xx to TU
//!      +-------->|           |-----------+   |
//!  300-699       +-----------+ Timer B   |   |
//!  ACK sent         |  |       fires     |   |
//!  resp. to TU      |  |       Timeout   |   |
//!                   |  |1xx    to TU     |   |
//!   +---------------+  |1xx to TU        |   |
//!   |                  V                 |   |
//!   |            +------------+          |   |
//!   |            |            |---1xx    |   |
//!   |            | Proceeding |   1xx to TU  |
//!   |            |            |<--       |   |
//!   |            +------------+          |   |
//!   |     300-699 |        | 2xx         |   |
//!   |     ACK sent|        | 2xx to TU   |   |
//!   |  resp. to TU|        +-------------|-->+
//!   |             V                      |   V
//!   |      +-----------+                 | +-----------+
//!   +----->|           | 300-699         | |           | 2xx
//!          | Completed | ACK sent        | | Accepted  | 2xx to TU
//!          |           |<--+             | |           |<--+
//!          +-----------+---+             | +-----------+---+
//!   Timer D fires |  (32 s UDP, 0 TCP)   |   | Timer M fires (64*T1)
//!   Transport err.|                      |   |
//!                 V                      V   V
//!          +--------------------------------------+
//!          |              Terminated              |
//!          +--------------------------------------+
//! ```
//!
//! Timer B only matters in Calling: once a provisional arrives the TU's own
//! timer (a proxy's Timer C, §16.6 step 11) takes over. A transport error in
//! any state ends the transaction with `Output::TransportError` (§17.1.4).

use bytes::Bytes;

use super::timers::{TIMER_D_UDP, Timer};
use super::tx::{Ctx, Step, Tx};
use super::{Output, TxState};
use crate::sip::message::scan;
use crate::sip::message::{Header, HeaderName, Message, Method, StartLine};

/// Send the INVITE and arm Timers A (unreliable only) and B (§17.1.1.2).
pub(super) fn start(tx: &mut Tx, ctx: &mut Ctx<'_>) {
    tx.state = TxState::Calling;
    ctx.send(tx.flow, tx.wire.clone(), Some(tx.id));
    if !tx.reliable() {
        tx.interval = ctx.d.t1;
        let t1 = ctx.d.t1;
        ctx.arm(tx, Timer::A, t1);
    }
    let b = ctx.d.t1x64;
    ctx.arm(tx, Timer::B, b);
}

/// A response matched this transaction (§17.1.1.2, RFC 6026 §8.4).
pub(super) fn on_response(tx: &mut Tx, ctx: &mut Ctx<'_>, msg: Message) -> Step {
    let code = msg.code().unwrap_or(0);
    match (tx.state, code) {
        (TxState::Calling | TxState::Proceeding, 100..=199) => {
            tx.state = TxState::Proceeding;
            tx.timers.clear(Timer::A);
            tx.timers.clear(Timer::B);
            ctx.emit(Output::Response { tx: tx.id, msg });
            Step::Stay
        }
        (TxState::Calling | TxState::Proceeding, 200..=299) => {
            // RFC 6026 §8.4: Accepted, Timer M; 2xx retransmissions go to the TU.
            tx.state = TxState::Accepted;
            tx.timers.clear(Timer::A);
            tx.timers.clear(Timer::B);
            let m = ctx.d.t1x64;
            ctx.arm(tx, Timer::M, m);
            ctx.emit(Output::Response { tx: tx.id, msg });
            Step::Stay
        }
        (TxState::Calling | TxState::Proceeding, 300..) => {
            // §17.1.1.2: the client transaction itself ACKs a non-2xx final.
            tx.state = TxState::Completed;
            tx.timers.clear(Timer::A);
            tx.timers.clear(Timer::B);
            if let Some(ack) = tx.request.as_deref().and_then(|req| build_ack(req, &msg)) {
                tx.ack = ack.to_bytes();
                ctx.send(tx.flow, tx.ack.clone(), Some(tx.id));
            }
            ctx.emit(Output::Response { tx: tx.id, msg });
            ctx.linger(tx, Timer::D, TIMER_D_UDP)
        }
        (TxState::Completed, 300..) => {
            // Retransmitted final: resend the ACK, do not bother the TU.
            if !tx.ack.is_empty() {
                ctx.send(tx.flow, tx.ack.clone(), Some(tx.id));
            }
            Step::Stay
        }
        (TxState::Accepted, 200..=299) => {
            ctx.emit(Output::Response { tx: tx.id, msg });
            Step::Stay
        }
        _ => Step::Stay,
    }
}

/// A timer of this transaction fired.
pub(super) fn on_timer(tx: &mut Tx, ctx: &mut Ctx<'_>, t: Timer) -> Step {
    match (tx.state, t) {
        (TxState::Calling, Timer::A) => {
            // §17.1.1.2: retransmit, double the interval (no T2 cap for INVITE).
            ctx.send(tx.flow, tx.wire.clone(), Some(tx.id));
            tx.interval *= 2;
            let next = tx.interval;
            ctx.arm(tx, Timer::A, next);
            Step::Stay
        }
        (TxState::Calling, Timer::B) => {
            ctx.emit(Output::Timeout { tx: tx.id });
            Step::Done
        }
        (TxState::Completed, Timer::D) | (TxState::Accepted, Timer::M) => Step::Done,
        _ => Step::Stay,
    }
}

/// The ACK for a 300–699 response (§17.1.1.3): Request-URI, Call-ID, From and
/// CSeq number of the INVITE, To of the response, only the INVITE's top Via,
/// and the INVITE's Route headers.
/// `None` when `invite` is not a request.
pub(super) fn build_ack(invite: &Message, resp: &Message) -> Option<Message> {
    let uri = invite.uri()?.clone();
    let mut headers: Vec<Header> = Vec::with_capacity(8);
    if let Some(via) = invite.header(HeaderName::Via) {
        let owner = via.value_bytes();
        if let Some(first) = scan::split_list(&owner)
            .ok()
            .and_then(|v| v.first().copied())
        {
            headers.push(Header::new(HeaderName::Via, first));
        }
    }
    headers.push(Header::new(HeaderName::MaxForwards, "70"));
    for h in &invite.headers {
        if matches!(h.name, HeaderName::From | HeaderName::CallId) {
            headers.push(h.clone());
        }
    }
    if let Some(to) = resp.header(HeaderName::To) {
        headers.push(to.clone());
    }
    let seq = invite.cseq().map_or(0, |c| c.seq);
    headers.push(Header::new(HeaderName::CSeq, format!("{seq} ACK")));
    headers.extend(invite.headers_of(HeaderName::Route).cloned());
    headers.push(Header::new(HeaderName::ContentLength, "0"));
    Some(Message {
        start: StartLine::Request {
            method: Method::Ack,
            uri,
        },
        headers,
        body: Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, parse_datagram};

    fn parse(s: &str) -> Message {
        parse_datagram(Bytes::copy_from_slice(s.as_bytes()), &Limits::default()).unwrap()
    }

    #[test]
    fn ack_for_non_2xx() {
        let inv = parse(
            "INVITE sip:bob@b.example SIP/2.0\r\n\
             Via: SIP/2.0/UDP gw.example;branch=z9hG4bKgw1, SIP/2.0/UDP ua;branch=z9hG4bKua\r\n\
             Route: <sip:p1.example;lr>\r\nMax-Forwards: 69\r\nFrom: \"A\" <sip:a@a.example>;tag=fa\r\n\
             To: <sip:bob@b.example>\r\nCall-ID: call-1\r\nCSeq: 314 INVITE\r\n\
             Route: <sip:p2.example;lr>\r\nContact: <sip:a@1.2.3.4>\r\nContent-Length: 0\r\n\r\n",
        );
        let resp = parse(
            "SIP/2.0 486 Busy Here\r\n\
             Via: SIP/2.0/UDP gw.example;branch=z9hG4bKgw1, SIP/2.0/UDP ua;branch=z9hG4bKua\r\n\
             From: \"A\" <sip:a@a.example>;tag=fa\r\nTo: <sip:bob@b.example>;tag=tb\r\n\
             Call-ID: call-1\r\nCSeq: 314 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let ack = build_ack(&inv, &resp).unwrap();
        let text = String::from_utf8(ack.to_bytes().to_vec()).unwrap();
        assert_eq!(
            text,
            "ACK sip:bob@b.example SIP/2.0\r\n\
             Via: SIP/2.0/UDP gw.example;branch=z9hG4bKgw1\r\n\
             Max-Forwards: 70\r\nFrom: \"A\" <sip:a@a.example>;tag=fa\r\nCall-ID: call-1\r\n\
             To: <sip:bob@b.example>;tag=tb\r\nCSeq: 314 ACK\r\n\
             Route: <sip:p1.example;lr>\r\nRoute: <sip:p2.example;lr>\r\nContent-Length: 0\r\n\r\n"
        );
        // And it parses back as a valid ACK with the INVITE's branch.
        let back = parse(&text);
        assert_eq!(back.top_via().unwrap().branch(), Some(&b"z9hG4bKgw1"[..]));
        assert_eq!(back.cseq().unwrap().method, Method::Ack);
    }
}
