//! B2BUA interworking in simulated time: ringback injection (a trunk rings
//! with 180 and no SDP → the caller gets 183 + SDP and a tone, stopped when
//! the trunk answers, with the caller's answer unchanged) and DTMF between
//! SIP INFO on one leg and the RTP stream on the other.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use b2bua_sim::*;
use callgate::dtmf::RingbackPlan;
use callgate::media::{Event, Leg, MediaCommand};
use callgate::sip::message::HeaderName;

const OPUS: &str = "v=0
o=webrtc 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 4000 RTP/AVP 111 0 110
a=rtpmap:111 opus/48000/2
a=rtpmap:110 telephone-event/48000
";

fn ringing_plan() -> String {
    PLAN.replace(
        "    match: { source: client }\n    mode: b2bua\n",
        "    match: { source: client }\n    mode: b2bua\n    ringback: us\n",
    )
}

#[test]
fn ringback_injected_on_180_without_sdp_and_stopped_on_answer() {
    let mut gw = Gw::with_plan(&ringing_plan());
    gw.send(0, UAC, &invite("i1", "+15551234", OPUS));
    let inv = gw.take_to(CARRIER_A).remove(0);
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv, 180, "Ringing", "bt", "127.0.0.1:5070", ""),
    );
    let r = gw.take_to(UAC);
    assert_eq!(r.len(), 1);
    assert_eq!(code(&r[0]), 183, "180 without SDP becomes 183 with our SDP");
    let early = body(&r[0]);
    assert!(
        early.contains("m=audio 20000 RTP/AVP 111 110"),
        "caller's first codec: {early}"
    );
    assert!(gw.media.iter().any(|m| matches!(
        m,
        MediaCommand::Ringback {
            leg: Leg::A,
            plan: Some(RingbackPlan::Us),
            ..
        }
    )));
    // A second 180 changes nothing.
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv, 180, "Ringing", "bt", "127.0.0.1:5070", ""),
    );
    assert!(gw.take_to(UAC).is_empty());
    // The trunk answers PCMU (which the caller also offered): the caller
    // keeps the answer it got (opus), so the call is transcoded.
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
    let ok = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .unwrap();
    assert_eq!(body(&ok), early, "same answer, same o= version");
    assert!(
        gw.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Ringback { plan: None, .. }))
    );
    let b_update = gw.media.iter().rev().find_map(|m| match m {
        MediaCommand::UpdateLeg {
            leg: Leg::B,
            codecs,
            ..
        } => Some(codecs.clone()),
        _ => None,
    });
    assert_eq!(b_update.unwrap().len(), 1, "leg B lists exactly PCMU");
}

#[test]
fn no_ringback_when_route_does_not_ask_or_trunk_sends_early_media() {
    let mut gw = Gw::new();
    gw.send(0, UAC, &invite("i2", "+15551234", OPUS));
    let inv = gw.take_to(CARRIER_A).remove(0);
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv, 180, "Ringing", "bt", "127.0.0.1:5070", ""),
    );
    assert_eq!(code(&gw.take_to(UAC)[0]), 180);
    let mut gw = Gw::with_plan(&ringing_plan());
    gw.send(0, UAC, &invite("i3", "+15551234", OPUS));
    let inv = gw.take_to(CARRIER_A).remove(0);
    gw.send(
        1,
        CARRIER_A,
        &reply(
            &inv,
            183,
            "Session Progress",
            "bt",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "0", ""),
        ),
    );
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv, 180, "Ringing", "bt", "127.0.0.1:5070", ""),
    );
    let r = gw.take_to(UAC);
    assert_eq!(code(&r[1]), 180, "real early media: 180 relayed, no tone");
    assert!(
        !gw.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Ringback { .. }))
    );
}

fn info_plan() -> String {
    PLAN.replace(
        "{ name: carrier-a, address: \"127.0.0.1:5070\" }",
        "{ name: carrier-a, address: \"127.0.0.1:5070\", dtmf: info }",
    )
}

#[test]
fn info_from_trunk_is_played_into_the_callers_rtp() {
    let mut gw = Gw::with_plan(&info_plan());
    let (inv_b, _ok) = establish(&mut gw, "i4");
    gw.take();
    let info = in_dialog(
        "INFO",
        "sip:127.0.0.1:5080",
        &format!("{};tag=carrier-tag", hv(&inv_b, HeaderName::To)),
        &hv(&inv_b, HeaderName::From),
        std::str::from_utf8(inv_b.call_id()).unwrap(),
        7,
        "127.0.0.1:5070",
        "",
    )
    .replace(
        "Content-Length: 0\n\n",
        "Content-Type: application/dtmf-relay\nContent-Length: 24\n\nSignal=#\nDuration=250\n",
    );
    gw.send(1, CARRIER_A, &info);
    let out = gw.take();
    assert_eq!(
        out.len(),
        1,
        "answered here, nothing to the caller: {out:?}"
    );
    assert_eq!(code(&out[0].1), 200);
    assert!(gw.media.iter().any(|m| matches!(
        m,
        MediaCommand::SendDtmf {
            leg: Leg::A,
            digit: '#',
            duration_ms: 250,
            ..
        }
    )));
}

#[test]
fn rtp_digit_from_caller_becomes_info_toward_info_trunk() {
    let mut gw = Gw::with_plan(&info_plan());
    let (inv_b, _ok) = establish(&mut gw, "i5");
    gw.take();
    let session = gw.proxy.calls()[0].media_session.unwrap();
    let now = gw.now;
    gw.proxy.handle_media_event(
        now,
        session,
        Event::Dtmf {
            from: Leg::A,
            digit: '7',
            duration_ms: 100,
        },
    );
    let out = gw.take_to(CARRIER_A);
    assert_eq!(out.len(), 1);
    assert_eq!(method(&out[0]), "INFO");
    assert_eq!(out[0].call_id(), inv_b.call_id());
    assert_eq!(
        hv(&out[0], HeaderName::ContentType),
        "application/dtmf-relay"
    );
    assert_eq!(body(&out[0]), "Signal=7\r\nDuration=100\r\n");
    // The same digit toward an RFC 4733 trunk needs no INFO.
    let mut gw = Gw::new();
    establish(&mut gw, "i6");
    gw.take();
    let session = gw.proxy.calls()[0].media_session.unwrap();
    let now = gw.now;
    gw.proxy.handle_media_event(
        now,
        session,
        Event::Dtmf {
            from: Leg::A,
            digit: '7',
            duration_ms: 100,
        },
    );
    assert!(gw.take().is_empty());
}

#[test]
fn info_from_caller_toward_rfc4733_trunk_goes_into_rtp() {
    let mut gw = Gw::new();
    let (_inv_b, ok) = establish(&mut gw, "i7");
    gw.take();
    let info = in_dialog(
        "INFO",
        "sip:127.0.0.1:5060",
        "\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-i7",
        &hv(&ok, HeaderName::To),
        "i7",
        2,
        "127.0.0.1:6000",
        "",
    )
    .replace(
        "Content-Length: 0\n\n",
        "Content-Type: application/dtmf\nContent-Length: 1\n\n9",
    );
    gw.send(0, UAC, &info);
    let out = gw.take();
    assert_eq!(out.len(), 1);
    assert_eq!(code(&out[0].1), 200);
    assert!(gw.media.iter().any(|m| matches!(
        m,
        MediaCommand::SendDtmf {
            leg: Leg::B,
            digit: '9',
            ..
        }
    )));
}

#[test]
fn trunk_dtmf_mode_reaches_the_media_plane() {
    let mut gw = Gw::with_plan(&info_plan());
    establish(&mut gw, "i8");
    let open = gw
        .media
        .iter()
        .position(|m| matches!(m, MediaCommand::Open { .. }));
    let mode = gw.media.iter().position(|m| {
        matches!(
            m,
            MediaCommand::SetDtmfMode {
                leg: Leg::B,
                mode: callgate::media::DtmfMode::Info,
                ..
            }
        )
    });
    assert!(
        open.is_some() && mode.is_some() && open < mode,
        "{:?}",
        gw.media
    );
    // An RFC 4733 trunk needs no command (the default).
    let mut gw = Gw::new();
    establish(&mut gw, "i9");
    assert!(
        !gw.media
            .iter()
            .any(|m| matches!(m, MediaCommand::SetDtmfMode { .. }))
    );
}
