//! Endpoint unit tests: the timer heap seen through `poll_timeout`, transmit
//! tagging, response routing, and API edge cases. The full state-machine
//! coverage lives in `tests/sim_transactions.rs` on the simulated network.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::message::{Limits, Message, parse_datagram, response_to};
use crate::sip::transport::{Flow, Transport};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn peer() -> SocketAddr {
    "198.51.100.9:5070".parse().unwrap()
}

fn flow(t: Transport) -> Flow {
    Flow {
        listener: 0,
        transport: t,
        remote: peer(),
        conn: None,
    }
}

fn req(method: &str, branch: &str, sent_by: &str) -> Message {
    let s = format!(
        "{method} sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {sent_by};branch={branch}\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: u1\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    parse_datagram(Bytes::from(s), &Limits::default()).unwrap()
}

fn drain(ep: &mut Endpoint) -> Vec<Output> {
    std::iter::from_fn(|| ep.poll_output()).collect()
}

fn transmits(out: &[Output]) -> Vec<(SocketAddr, Option<TxId>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some((t.flow.remote, t.tx)),
            _ => None,
        })
        .collect()
}

#[test]
fn poll_timeout_is_exact_after_cancellation() {
    let t0 = test_epoch();
    let mut ep = Endpoint::new(TimerConfig::default());
    let inv = req("INVITE", "z9hG4bKu1", "192.0.2.1");
    let tx = ep.send_request(t0, flow(Transport::Udp), inv.clone());
    assert_eq!(transmits(&drain(&mut ep)), vec![(peer(), Some(tx))]);
    assert_eq!(ep.poll_timeout(), Some(t0 + ms(500)));
    assert_eq!(ep.request_of(tx).map(|m| m.call_id()), Some(&b"u1"[..]));
    // A 180 cancels A and B: nothing left to wake up for.
    ep.handle_message(
        t0 + ms(100),
        flow(Transport::Udp),
        response_to(&inv, 180, "Ringing", vec![]),
    );
    assert!(matches!(drain(&mut ep)[..], [Output::Response { .. }]));
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(ep.state_of(tx), Some(TxState::Proceeding));
}

#[test]
fn late_handle_timeout_keeps_the_schedule() {
    let t0 = test_epoch();
    let mut ep = Endpoint::new(TimerConfig::default());
    ep.send_request(
        t0,
        flow(Transport::Udp),
        req("OPTIONS", "z9hG4bKu2", "192.0.2.1"),
    );
    drain(&mut ep);
    // Called 200 ms late: retransmits once, next E stays at 0.5 + 1 s.
    ep.handle_timeout(t0 + ms(700));
    assert_eq!(transmits(&drain(&mut ep)).len(), 1);
    assert_eq!(ep.poll_timeout(), Some(t0 + ms(1500)));
    // Called very late: every due retransmission fires, in order.
    ep.handle_timeout(t0 + ms(7600));
    assert_eq!(transmits(&drain(&mut ep)).len(), 3);
    assert_eq!(ep.poll_timeout(), Some(t0 + ms(11_500)));
}

#[test]
fn cancelled_timers_are_compacted() {
    let t0 = test_epoch();
    let mut ep = Endpoint::new(TimerConfig::default());
    let mut reqs = Vec::new();
    for i in 0..5000 {
        let r = req("INVITE", &format!("z9hG4bKc{i}"), "192.0.2.1");
        ep.send_request(t0, flow(Transport::Udp), r.clone());
        reqs.push(r);
    }
    for r in &reqs {
        ep.handle_message(
            t0 + ms(10),
            flow(Transport::Udp),
            response_to(r, 180, "Ringing", vec![]),
        );
    }
    drain(&mut ep);
    assert_eq!(ep.active_transactions(), 5000);
    // 10 000 timers armed then cancelled; the heap does not keep them all.
    assert!(ep.heap_len() <= 1024 + 4 * 5000, "heap {}", ep.heap_len());
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn server_responses_go_to_the_source_or_the_via() {
    let t0 = test_epoch();
    for (symmetric, target) in [(true, peer()), (false, "192.0.2.7:5080".parse().unwrap())] {
        let mut ep = Endpoint::new(TimerConfig::default());
        ep.set_symmetric_responses(symmetric);
        let r = req("OPTIONS", "z9hG4bKs1", "192.0.2.7:5080");
        ep.handle_message(t0, flow(Transport::Udp), r.clone());
        let out = drain(&mut ep);
        let Some(Output::Request {
            tx: Some(tx),
            flow: f,
            ..
        }) = out.first()
        else {
            panic!("expected a request, got {out:?}");
        };
        assert_eq!(f.remote, peer());
        assert!(ep.send_response(t0, *tx, response_to(&r, 200, "OK", vec![])));
        // Server transmits carry no tx id (only client ones do).
        assert_eq!(transmits(&drain(&mut ep)), vec![(target, None)]);
    }
}

#[test]
fn api_edge_cases() {
    let t0 = test_epoch();
    let mut ep = Endpoint::new(TimerConfig::default());
    // ACK through send_request: sent statelessly, no transaction.
    let ack = req("ACK", "z9hG4bKa1", "192.0.2.1");
    let id = ep.send_request(t0, flow(Transport::Udp), ack);
    assert_eq!(transmits(&drain(&mut ep)), vec![(peer(), None)]);
    assert_eq!(ep.state_of(id), None);
    assert_eq!(ep.active_transactions(), 0);
    assert_eq!(ep.poll_timeout(), None);
    // A client transaction cannot be answered.
    let r = req("OPTIONS", "z9hG4bKa2", "192.0.2.1");
    let c = ep.send_request(t0, flow(Transport::Tcp), r.clone());
    drain(&mut ep);
    assert!(!ep.send_response(t0, c, response_to(&r, 200, "OK", vec![])));
    assert!(!ep.send_response(t0, TxId(12345), response_to(&r, 200, "OK", vec![])));
    // TCP: only Timer F is armed.
    assert_eq!(ep.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    // An ACK matching nothing goes to the TU without a transaction.
    ep.handle_message(
        t0,
        flow(Transport::Udp),
        req("ACK", "z9hG4bKa9", "192.0.2.1"),
    );
    assert!(matches!(
        drain(&mut ep)[..],
        [Output::Request { tx: None, .. }]
    ));
    // Stateless sends are plain transmits.
    ep.send_stateless(flow(Transport::Udp), r);
    assert_eq!(transmits(&drain(&mut ep)), vec![(peer(), None)]);
}

#[test]
fn each_transaction_reports_terminated_once() {
    let t0 = test_epoch();
    let mut ep = Endpoint::new(TimerConfig::default());
    let r = req("BYE", "z9hG4bKt1", "192.0.2.1");
    let tx = ep.send_request(t0, flow(Transport::Udp), r.clone());
    ep.handle_transport_error(t0 + ms(1), tx);
    ep.handle_transport_error(t0 + ms(2), tx);
    ep.handle_message(
        t0 + ms(3),
        flow(Transport::Udp),
        response_to(&r, 200, "OK", vec![]),
    );
    ep.handle_timeout(t0 + Duration::from_secs(100));
    let out = drain(&mut ep);
    let ends = out
        .iter()
        .filter(|o| matches!(o, Output::Terminated { tx: t } if *t == tx))
        .count();
    let errs = out
        .iter()
        .filter(|o| matches!(o, Output::TransportError { .. }))
        .count();
    assert_eq!((ends, errs), (1, 1));
    assert!(matches!(out.last(), Some(Output::StrayResponse { .. })));
    let _: Option<Instant> = ep.poll_timeout();
    assert_eq!(ep.poll_timeout(), None);
}

/// The key indexes (ids only, keys compared in the transactions) match
/// every transaction across table growth, hand a key over to the newest
/// transaction that uses it, and empty when the transactions end.
#[test]
fn key_indexes_match_take_over_and_empty() {
    let t0 = test_epoch();
    let mut ep = Endpoint::new(TimerConfig::default());
    let udp = flow(Transport::Udp);
    let n = 3000;
    let mut clients = Vec::new();
    for i in 0..n {
        let r = req("OPTIONS", &format!("z9hG4bKc{i}"), "192.0.2.1");
        clients.push((ep.send_request(t0, udp, r.clone()), r));
        ep.handle_message(
            t0,
            udp,
            req("OPTIONS", &format!("z9hG4bKs{i}"), "192.0.2.7"),
        );
    }
    let servers: Vec<TxId> = drain(&mut ep)
        .into_iter()
        .filter_map(|o| match o {
            Output::Request { tx: Some(tx), .. } => Some(tx),
            _ => None,
        })
        .collect();
    assert_eq!((servers.len(), ep.index_len()), (n, 2 * n));
    // Every client transaction gets its own response (§17.1.3) ...
    for (tx, r) in &clients {
        ep.handle_message(t0 + ms(1), udp, response_to(r, 200, "OK", vec![]));
        let out = drain(&mut ep);
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Response { tx: t, .. } if t == tx)),
            "{out:?}"
        );
    }
    // ... and a retransmitted request reaches its server transaction, which
    // resends its final response instead of reporting a new request (§17.2.3).
    for (i, tx) in servers.iter().enumerate() {
        let r = req("OPTIONS", &format!("z9hG4bKs{i}"), "192.0.2.7");
        assert!(ep.send_response(t0 + ms(2), *tx, response_to(&r, 200, "OK", vec![])));
        drain(&mut ep);
        ep.handle_message(t0 + ms(3), udp, r);
        let out = drain(&mut ep);
        assert_eq!(transmits(&out).len(), 1, "{out:?}");
        assert!(!out.iter().any(|o| matches!(o, Output::Request { .. })));
    }
    // Two client transactions with one key: the newer one gets the
    // response; ending the older one leaves the newer one's entry.
    let r = req("OPTIONS", "z9hG4bKdup", "192.0.2.1");
    let old = ep.send_request(t0, udp, r.clone());
    let new = ep.send_request(t0, udp, r.clone());
    assert!(ep.abandon_client(old));
    drain(&mut ep);
    ep.handle_message(t0 + ms(4), udp, response_to(&r, 200, "OK", vec![]));
    let out = drain(&mut ep);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Response { tx, .. } if *tx == new)),
        "{out:?}"
    );
    ep.handle_timeout(t0 + Duration::from_secs(100));
    assert_eq!((ep.active_transactions(), ep.index_len()), (0, 0));
}
