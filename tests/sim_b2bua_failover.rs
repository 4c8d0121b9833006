//! B2BUA failover and call-failure flows in simulated time: 503 and Timer B
//! move the call to carrier-b on a fresh leg B dialog; 486 goes back to the
//! caller with a Reason; the no-answer timer cancels a ringing trunk;
//! CANCEL before and after the trunk's first provisional.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use std::time::Duration;

use b2bua_sim::*;
use callgate::media::MediaCommand;
use callgate::sip::message::HeaderName;

fn start(gw: &mut Gw, call: &str) -> callgate::sip::message::Message {
    gw.send(
        0,
        UAC,
        &invite(call, "+15551234", &sdp("10.0.0.1", 4000, "0 8 101", "")),
    );
    gw.take_to(CARRIER_A).remove(0)
}

#[test]
fn carrier_a_503_fails_over_to_carrier_b() {
    let mut gw = Gw::new();
    let inv_a = start(&mut gw, "f1");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_a, 503, "Service Unavailable", "x", "", ""),
    );
    let out = gw.take();
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && method(m) == "ACK"),
        "non-2xx ACKed by the transaction"
    );
    assert!(
        !out.iter().any(|(a, m)| *a == addr(UAC) && code(m) >= 200),
        "caller not answered yet"
    );
    let inv_b = out
        .iter()
        .find(|(a, m)| *a == addr(CARRIER_B) && method(m) == "INVITE")
        .expect("INVITE to carrier-b")
        .1
        .clone();
    assert_ne!(
        inv_b.call_id(),
        inv_a.call_id(),
        "each attempt is its own dialog"
    );
    assert_ne!(inv_b.from_tag(), inv_a.from_tag());
    assert!(
        body(&inv_b).contains("m=audio 20002 "),
        "same relay port for leg B"
    );
    assert!(gw.media.iter().any(|c| matches!(
        c,
        MediaCommand::Relatch {
            leg: callgate::media::Leg::B,
            ..
        }
    )));
    gw.send(
        1,
        CARRIER_B,
        &reply(
            &inv_b,
            200,
            "OK",
            "b",
            "127.0.0.1:5072",
            &sdp("10.0.0.3", 7000, "0", ""),
        ),
    );
    let ok = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("answered via carrier-b");
    assert!(body(&ok).contains("m=audio 20000 RTP/AVP 0"));
    let counters = gw.proxy.trunk_counters();
    let a = &counters.iter().find(|(n, _)| n == "carrier-a").unwrap().1;
    let b = &counters.iter().find(|(n, _)| n == "carrier-b").unwrap().1;
    assert_eq!((a.attempts, a.answers, a.failures), (1, 0, 1));
    assert_eq!((b.attempts, b.answers, b.failures), (1, 1, 0));
    assert_eq!(gw.proxy.calls()[0].legs[1].via, "carrier-b");
}

#[test]
fn busy_486_is_passed_back_without_failover() {
    let mut gw = Gw::new();
    let inv_a = start(&mut gw, "f2");
    gw.send(1, CARRIER_A, &reply(&inv_a, 486, "Busy Here", "x", "", ""));
    let out = gw.take();
    assert!(
        !out.iter().any(|(a, _)| *a == addr(CARRIER_B)),
        "no failover on 486"
    );
    let busy = out
        .iter()
        .find(|(a, m)| *a == addr(UAC) && code(m) == 486)
        .expect("486 to caller")
        .1
        .clone();
    let reasons: Vec<String> = busy
        .headers_of(HeaderName::Reason)
        .map(|h| String::from_utf8_lossy(h.value()).into_owned())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "SIP;cause=486;text=\"Busy Here\"".to_string(),
            "Q.850;cause=17;text=\"User busy\"".to_string()
        ],
        "RFC 3326 Reason with the SIP and the Q.850 cause"
    );
    assert_eq!(busy.call_id(), b"f2");
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.proxy.media_ports_in_use(), 0);
    assert_eq!(gw.open_sessions(), 0);
}

#[test]
fn silent_carrier_a_times_out_to_carrier_b_at_timer_b() {
    let mut gw = Gw::new();
    let _inv_a = start(&mut gw, "f3");
    let seen = gw.advance(Duration::from_secs(40));
    let to_b: Vec<_> = seen
        .iter()
        .filter(|(_, a, m)| *a == addr(CARRIER_B) && method(m) == "INVITE")
        .collect();
    let first_b = to_b[0].2.top_via().unwrap().branch().map(<[u8]>::to_vec);
    assert!(
        to_b.iter()
            .all(|(_, _, m)| m.top_via().unwrap().branch().map(<[u8]>::to_vec) == first_b),
        "one INVITE transaction to carrier-b (and its Timer A retransmissions)"
    );
    let after = to_b[0].0 - gw.start;
    assert_eq!(after, Duration::from_secs(32), "Timer B = 64·T1");
}

#[test]
fn no_answer_timer_cancels_ringing_trunk_and_fails_over() {
    let plan = PLAN.replace("version: 1\n", "version: 1\ntimers: { no_answer_s: 20 }\n");
    let mut gw = Gw::with_plan(&plan);
    let inv_a = start(&mut gw, "f4");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_a, 180, "Ringing", "ra", "127.0.0.1:5070", ""),
    );
    assert_eq!(code(&gw.take_to(UAC)[0]), 180);
    let seen = gw.advance(Duration::from_secs(21));
    let cancel = seen
        .iter()
        .find(|(_, a, m)| *a == addr(CARRIER_A) && method(m) == "CANCEL")
        .expect("CANCEL to ringing carrier-a");
    assert_eq!(cancel.0 - gw.start, Duration::from_secs(20));
    assert_eq!(cancel.2.call_id(), inv_a.call_id());
    assert_eq!(
        cancel.2.top_via().unwrap().branch(),
        inv_a.top_via().unwrap().branch()
    );
    assert!(
        seen.iter()
            .any(|(_, a, m)| *a == addr(CARRIER_B) && method(m) == "INVITE"),
        "next trunk tried"
    );
    // carrier-a's late 487 is ACKed by its transaction and changes nothing.
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_a, 487, "Request Terminated", "ra", "", ""),
    );
    assert!(!gw.take().iter().any(|(a, _)| *a == addr(UAC)));
}

#[test]
fn no_answer_on_last_trunk_answers_480() {
    let plan = PLAN.replace("version: 1\n", "version: 1\ntimers: { no_answer_s: 10 }\n");
    let mut gw = Gw::with_plan(&plan);
    let _ = start(&mut gw, "f5");
    let seen = gw.advance(Duration::from_secs(25));
    let fin: Vec<_> = seen
        .iter()
        .filter(|(_, a, m)| *a == addr(UAC) && code(m) >= 200)
        .collect();
    assert!(
        fin.iter().all(|f| code(&f.2) == 480),
        "480 (retransmitted until ACKed)"
    );
    assert_eq!(
        fin[0].0 - gw.start,
        Duration::from_secs(20),
        "10 s per trunk"
    );
}

#[test]
fn cancel_after_ringing_cancels_leg_b() {
    let mut gw = Gw::new();
    let inv_a = start(&mut gw, "f6");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_a, 180, "Ringing", "ra", "127.0.0.1:5070", ""),
    );
    gw.take();
    let cancel = "CANCEL sip:+15551234@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-f6-1
From: \"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-f6
To: <sip:+15551234@127.0.0.1:5060>
Call-ID: f6
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

";
    gw.send(0, UAC, cancel);
    let out = gw.take();
    let to_uac: Vec<u16> = out
        .iter()
        .filter(|(a, _)| *a == addr(UAC))
        .map(|(_, m)| code(m))
        .collect();
    assert!(to_uac.contains(&200) && to_uac.contains(&487), "{to_uac:?}");
    let c = out
        .iter()
        .find(|(a, m)| *a == addr(CARRIER_A) && method(m) == "CANCEL")
        .expect("CANCEL to carrier")
        .1
        .clone();
    assert_eq!(c.call_id(), inv_a.call_id());
    assert_eq!(
        gw.proxy.active_calls(),
        1,
        "waits for leg B's INVITE to end"
    );
    gw.send(1, CARRIER_A, &reply(&c, 200, "OK", "ra", "", ""));
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_a, 487, "Request Terminated", "ra", "", ""),
    );
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.open_sessions(), 0);
    assert_eq!(gw.proxy.media_ports_in_use(), 0);
}

#[test]
fn cancel_before_any_provisional_waits_then_cancels() {
    let mut gw = Gw::new();
    let inv_a = start(&mut gw, "f7");
    let cancel = "CANCEL sip:+15551234@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-f7-1
From: \"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-f7
To: <sip:+15551234@127.0.0.1:5060>
Call-ID: f7
CSeq: 1 CANCEL
Content-Length: 0

";
    gw.send(0, UAC, cancel);
    let out = gw.take();
    assert!(
        !out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && method(m) == "CANCEL"),
        "§9.1: no CANCEL before a provisional"
    );
    gw.send(1, CARRIER_A, &reply(&inv_a, 100, "Trying", "", "", ""));
    let out = gw.take();
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && method(m) == "CANCEL")
    );
    // The trunk answers anyway (race): ACK and BYE it.
    gw.send(
        1,
        CARRIER_A,
        &reply(
            &inv_a,
            200,
            "OK",
            "late",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "0", ""),
        ),
    );
    let out = gw.take();
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && method(m) == "ACK")
    );
    let bye = out
        .iter()
        .find(|(a, m)| *a == addr(CARRIER_A) && method(m) == "BYE")
        .expect("BYE for the unwanted answer")
        .1
        .clone();
    assert_eq!(bye.to_tag().as_deref(), Some(&b"late"[..]));
    gw.send(1, CARRIER_A, &reply(&bye, 200, "OK", "", "", ""));
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.open_sessions(), 0);
}
