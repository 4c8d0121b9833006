//! B2BUA offers and timers in simulated time: late offer (the gateway
//! offers to the trunk, the caller answers in its ACK), 2xx retransmission
//! until ACK and BYE when none comes (RFC 3261 §13.3.1.4), RTP inactivity
//! and maximum call duration ending a call with Reason, PRACK toward a
//! trunk that sends reliable provisionals, and a three-hour call.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use std::time::Duration;

use b2bua_sim::*;
use callgate::media::{Event, Leg, MediaCommand};
use callgate::sip::message::HeaderName;

type Seen = (
    std::time::Instant,
    std::net::SocketAddr,
    callgate::sip::message::Message,
);

/// BYE requests, one per transaction (retransmissions left out).
fn first_byes(seen: &[Seen]) -> Vec<&Seen> {
    let mut branches = Vec::new();
    seen.iter()
        .filter(|(_, _, m)| method(m) == "BYE")
        .filter(|(_, _, m)| {
            let b = m.top_via().unwrap().branch().map(<[u8]>::to_vec);
            if branches.contains(&b) {
                false
            } else {
                branches.push(b);
                true
            }
        })
        .collect()
}

#[test]
fn late_offer_gateway_offers_and_ack_carries_the_answer() {
    let mut gw = Gw::new();
    gw.send(0, UAC, &invite("t1", "+15551234", ""));
    let inv = gw.take_to(CARRIER_A).remove(0);
    let offer = body(&inv);
    assert!(
        offer.contains("m=audio 20002 RTP/AVP 0 8 101"),
        "carriers never get a delayed offer: {offer}"
    );
    assert!(offer.contains("a=rtpmap:101 telephone-event/8000"));
    gw.send(
        1,
        CARRIER_A,
        &reply(
            &inv,
            200,
            "OK",
            "bt",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "8 101", ""),
        ),
    );
    let out = gw.take();
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && method(m) == "ACK")
    );
    let ok = out
        .iter()
        .find(|(a, m)| *a == addr(UAC) && code(m) == 200)
        .unwrap()
        .1
        .clone();
    let to_a = body(&ok);
    assert!(
        to_a.contains("m=audio 20000 RTP/AVP 8 101"),
        "offer to the caller: {to_a}"
    );
    let ack = in_dialog(
        "ACK",
        "sip:127.0.0.1:5060",
        "\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-t1",
        &hv(&ok, HeaderName::To),
        "t1",
        1,
        "127.0.0.1:6000",
        &sdp("10.0.0.1", 4000, "8 101", ""),
    );
    gw.send(0, UAC, &ack);
    assert!(gw.media.iter().any(|m| matches!(m, MediaCommand::UpdateLeg { leg: Leg::A, remote_rtp: Some(a), .. } if *a == addr("10.0.0.1:4000"))));
    assert_eq!(gw.proxy.calls()[0].state, "confirmed");
    assert_eq!(
        gw.proxy.calls()[0].legs[0].codecs,
        vec!["PCMA/8000", "telephone-event/8000"]
    );
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_call_ended() {
    let mut gw = Gw::new();
    gw.send(
        0,
        UAC,
        &invite("t2", "+15551234", &sdp("10.0.0.1", 4000, "0", "")),
    );
    let inv = gw.take_to(CARRIER_A).remove(0);
    gw.send(
        1,
        CARRIER_A,
        &reply(
            &inv,
            200,
            "OK",
            "bt",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "0", ""),
        ),
    );
    gw.take();
    let seen = gw.advance(Duration::from_secs(40));
    let oks: Vec<Duration> = seen
        .iter()
        .filter(|(_, a, m)| *a == addr(UAC) && code(m) == 200)
        .map(|(t, _, _)| *t - gw.start)
        .collect();
    let ms: Vec<u64> = oks.iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(
        &ms[..5],
        &[500, 1500, 3500, 7500, 11500],
        "T1 doubling, capped at T2"
    );
    let byes = first_byes(&seen);
    assert_eq!(byes.len(), 2, "BYE on both legs at 64·T1");
    assert!(
        byes.iter()
            .all(|(t, _, _)| *t - gw.start == Duration::from_secs(32))
    );
    assert!(hv(&byes[0].2, HeaderName::Reason).contains("ACK timeout"));
}

#[test]
fn rtp_inactivity_ends_the_call_with_reason() {
    let mut gw = Gw::new();
    let (inv_b, _ok) = establish(&mut gw, "t3");
    gw.take();
    let session = gw.proxy.calls()[0].media_session.unwrap();
    let now = gw.now;
    gw.proxy
        .handle_media_event(now, session, Event::Inactive { since: gw.start });
    let out = gw.take();
    let byes: Vec<_> = out.iter().filter(|(_, m)| method(m) == "BYE").collect();
    assert_eq!(byes.len(), 2);
    for (_, b) in &byes {
        assert_eq!(
            hv(b, HeaderName::Reason),
            "SIP;cause=408;text=\"RTP timeout\""
        );
    }
    for (to, b) in &byes {
        let from = if *to == addr(UAC) { 0 } else { 1 };
        gw.send(
            from,
            if from == 0 { UAC } else { CARRIER_A },
            &reply(b, 200, "OK", "", "", ""),
        );
    }
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.open_sessions(), 0);
    let _ = inv_b;
}

#[test]
fn three_hour_call_then_maximum_duration() {
    let plan = PLAN.replace(
        "version: 1\n",
        "version: 1\ntimers: { max_call_duration_s: 14400 }\n",
    );
    let mut gw = Gw::with_plan(&plan);
    let _ = establish(&mut gw, "t4");
    gw.take();
    let seen = gw.advance(Duration::from_secs(3 * 3600));
    assert!(
        !seen.iter().any(|(_, _, m)| method(m) == "BYE"),
        "a 3-hour call stays up"
    );
    assert_eq!(gw.proxy.active_calls(), 1);
    let seen = gw.advance(Duration::from_secs(3600 + 1));
    let byes = first_byes(&seen);
    assert_eq!(byes.len(), 2);
    assert!(hv(&byes[0].2, HeaderName::Reason).contains("Maximum call duration"));
    assert_eq!(byes[0].0 - gw.start, Duration::from_secs(4 * 3600));
    // Nobody answers the BYEs: the call is released after 64·T1 anyway.
    gw.advance(Duration::from_secs(40));
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.proxy.media_ports_in_use(), 0);
}

#[test]
fn reliable_provisional_from_trunk_is_pracked() {
    let mut gw = Gw::new();
    gw.send(
        0,
        UAC,
        &invite("t5", "+15551234", &sdp("10.0.0.1", 4000, "0", "")),
    );
    let inv = gw.take_to(CARRIER_A).remove(0);
    let r = reply(
        &inv,
        183,
        "Session Progress",
        "bt",
        "127.0.0.1:5070",
        &sdp("10.0.0.2", 6000, "0", ""),
    )
    .replace("Content-Type:", "Require: 100rel\nRSeq: 7\nContent-Type:");
    gw.send(1, CARRIER_A, &r);
    let out = gw.take();
    let prack = out
        .iter()
        .find(|(a, m)| *a == addr(CARRIER_A) && method(m) == "PRACK")
        .expect("PRACK")
        .1
        .clone();
    assert_eq!(hv(&prack, HeaderName::RAck), "7 1 INVITE");
    assert_eq!(prack.to_tag().as_deref(), Some(&b"bt"[..]));
    let to_uac = out.iter().find(|(a, _)| *a == addr(UAC)).unwrap().1.clone();
    assert_eq!(code(&to_uac), 183);
    assert!(
        to_uac.header(HeaderName::Require).is_none(),
        "100rel terminated per leg"
    );
    assert!(to_uac.header(HeaderName::RSeq).is_none());
}

/// Thousands of short calls: the timers finished calls leave behind (no
/// answer at 60 s, maximum duration at 4 h) do not pile up — memory stays
/// bounded by the calls in progress, not by every call of the last 4 hours.
#[test]
fn timers_of_finished_calls_do_not_accumulate() {
    let mut gw = Gw::new();
    const CALLS: usize = 3000;
    let mut most = 0;
    for i in 0..CALLS {
        let call = format!("short-{i}");
        let (_, ok) = establish(&mut gw, &call);
        let from = format!("\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-{call}");
        let to = hv(&ok, HeaderName::To);
        gw.send(
            0,
            UAC,
            &in_dialog(
                "BYE",
                "sip:127.0.0.1:5060",
                &from,
                &to,
                &call,
                2,
                "127.0.0.1:6000",
                "",
            ),
        );
        let bye = gw
            .take_to(CARRIER_A)
            .into_iter()
            .find(|m| method(m) == "BYE")
            .expect("BYE to carrier");
        gw.send(1, CARRIER_A, &reply(&bye, 200, "OK", "", "", ""));
        gw.advance(Duration::from_millis(5));
        most = most.max(gw.proxy.b2bua_pending_timers());
    }
    assert_eq!(gw.proxy.active_calls(), 0);
    // Two dead entries per call (no-answer, maximum duration) would be
    // 6,000 here without compaction; with it, the 1,024 floor plus a few.
    assert!(
        most <= 1100,
        "{most} call timers pending after {CALLS} finished calls"
    );
}
