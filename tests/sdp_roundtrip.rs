//! SDP fixtures (sip-fixtures/sdp/): lossless round trip, rewrites and
//! RFC 3264 offer/answer against the peers described in interop.md.

use std::collections::HashMap;
use std::net::IpAddr;

use callgate::sdp::{
    AnswerParams, Codec, Direction, NegotiationError, Sdp, anchor, answer_for, filter_codecs,
    negotiated, order_codecs, renumber_payload_types, set_origin, strip_for_plain_rtp_trunk,
    version_after,
};

const FIXTURES: &[&str] = &[
    "webrtc_offer.sdp",
    "carrier_g711_offer.sdp",
    "ipv6_offer.sdp",
    "hold_sendonly_reoffer.sdp",
    "hold_c0_reoffer.sdp",
    "delayed_offer_200.sdp",
    "large_webrtc_offer.sdp",
];

fn bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/sip-fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> Sdp {
    Sdp::parse(&bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn relay() -> IpAddr {
    "203.0.113.1".parse().unwrap()
}

fn params() -> AnswerParams {
    AnswerParams::new(relay(), vec![40000, 40002])
}

/// Answers to the SDES-SRTP platform offer need our key (base64 of 30 bytes).
fn srtp_params() -> AnswerParams {
    AnswerParams {
        srtp_key: Some("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz".into()),
        ..params()
    }
}

#[test]
fn every_fixture_roundtrips_byte_identically() {
    for name in FIXTURES {
        let input = bytes(name);
        assert_eq!(fixture(name).to_bytes(), input, "{name}");
    }
}

#[test]
fn large_fixture_exceeds_a_datagram_budget() {
    assert!(bytes("large_webrtc_offer.sdp").len() > 1500);
    let sdp = fixture("large_webrtc_offer.sdp");
    assert_eq!(sdp.media().len(), 2);
    // Stripped of ICE/DTLS and unused codecs it fits a UDP trunk again.
    let slim = filter_codecs(&strip_for_plain_rtp_trunk(&sdp), |p| {
        ["PCMU", "PCMA", "telephone-event"].contains(&p.encoding.as_str()) && p.clock_rate == 8000
    });
    let out = slim.to_bytes();
    assert!(out.len() < 1500, "{} bytes", out.len());
    assert_eq!(slim.media()[0].media_line().fmts, ["0", "8", "126"]);
    assert_eq!(slim.media()[1].media_line().port, 0);
    Sdp::parse(&out).unwrap();
}

#[test]
fn opus_rtpmap_survives() {
    let sdp = fixture("webrtc_offer.sdp");
    let opus = &sdp.media()[0].payload_types()[0];
    assert_eq!(
        (opus.pt, opus.encoding.as_str(), opus.clock_rate),
        (111, "opus", 48000)
    );
    assert_eq!(opus.channels, Some(2));
    assert_eq!(opus.fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
    let text = strip_for_plain_rtp_trunk(&sdp).to_string();
    assert!(
        text.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n")
    );
}

#[test]
fn unknown_lines_survive_in_place() {
    let sdp = fixture("webrtc_offer.sdp");
    let session: Vec<&[u8]> = sdp.session_lines().iter().map(|l| l.raw()).collect();
    assert_eq!(session[5], b"t=0 0");
    assert_eq!(session[6], b"z=2882844526 -1h 2898848070 0");
    assert_eq!(session[7], b"a=x-custom:teams-routing=A1;mode=bypass");
    for out in [
        strip_for_plain_rtp_trunk(&sdp),
        anchor(&sdp, relay(), &[40000]),
        order_codecs(&sdp, &["PCMA"]),
    ] {
        let text = out.to_string();
        assert!(text.contains("t=0 0\r\nz=2882844526 -1h 2898848070 0\r\na=x-custom:teams-routing=A1;mode=bypass\r\nm=audio"));
        assert!(text.contains("a=fmtp:126 0-16\r\na=x-custom:label=main-audio\r\na=ptime:20\r\n"));
    }
}

#[test]
fn strip_for_trunk_removes_ice_and_crypto() {
    let out = strip_for_plain_rtp_trunk(&fixture("webrtc_offer.sdp"));
    let text = out.to_string();
    for gone in [
        "a=ice-",
        "a=candidate",
        "a=end-of-candidates",
        "a=crypto",
        "a=rtcp-mux",
        "SAVP",
    ] {
        assert!(!text.contains(gone), "{gone} in\n{text}");
    }
    assert!(text.contains(
        "m=audio 52372 RTP/AVP 111 9 0 8 101 13 126\r\nc=IN IP4 52.114.148.20\r\na=rtcp:52373\r\n"
    ));
    assert_eq!(Sdp::parse(text.as_bytes()).unwrap(), out);
    let large = strip_for_plain_rtp_trunk(&fixture("large_webrtc_offer.sdp")).to_string();
    assert!(
        !large.contains("fingerprint") && !large.contains("setup:") && !large.contains("candidate")
    );
}

#[test]
fn opus_only_caps_reject_carrier_offer_with_488() {
    let err = answer_for(
        &fixture("carrier_g711_offer.sdp"),
        &[Codec::opus()],
        params(),
    )
    .unwrap_err();
    assert_eq!(err, NegotiationError::NoCommonCodec);
    assert_eq!(err.status(), (488, "Not Acceptable Here"));
}

#[test]
fn pcmu_only_caps_pick_pcmu_with_offerer_pt() {
    let offer = fixture("webrtc_offer.sdp");
    let answer = answer_for(&offer, &[Codec::pcmu()], srtp_params()).unwrap();
    assert_eq!(answer.media()[0].media_line().fmts, ["0"]);
    assert!(answer.to_string().contains(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    ));
    // Without a key the SRTP-only offer cannot be accepted: 488, never a downgrade.
    let err = answer_for(&offer, &[Codec::pcmu()], params()).unwrap_err();
    assert_eq!(err.status().0, 488);
    assert_eq!(answer.media()[0].media_line().proto, "RTP/SAVP");
    let s = &negotiated(&offer, &answer)[0];
    assert_eq!(s.codec.as_ref().unwrap().encoding, "PCMU");
    assert_eq!((s.offer_pt, s.answer_pt), (Some(0), Some(0)));
    assert_eq!(s.answer_dtmf_pt, None);
    assert_eq!(s.offerer_addr, Some("52.114.148.20:52372".parse().unwrap()));
    assert_eq!(s.answerer_addr, Some("203.0.113.1:40000".parse().unwrap()));
}

#[test]
fn telephone_event_matched_by_clock_rate() {
    let offer = fixture("webrtc_offer.sdp");
    let both = [Codec::telephone_event(8000), Codec::telephone_event(48000)];
    let dtmf = |primary: Codec, events: &[Codec]| {
        let caps: Vec<Codec> = std::iter::once(primary)
            .chain(events.iter().cloned())
            .collect();
        let answer = answer_for(&offer, &caps, srtp_params()).unwrap();
        let s = negotiated(&offer, &answer).remove(0);
        (
            s.answer_pt.unwrap(),
            s.answer_dtmf_pt,
            s.dtmf_clock_rate,
            s.offer_dtmf_pt,
        )
    };
    assert_eq!(
        dtmf(Codec::opus(), &both),
        (111, Some(101), Some(48000), Some(101))
    );
    assert_eq!(
        dtmf(Codec::pcmu(), &both),
        (0, Some(126), Some(8000), Some(126))
    );
    assert_eq!(
        dtmf(Codec::g722(), &both),
        (9, Some(126), Some(8000), Some(126))
    );
    // Only a mismatched rate in common: still offered back, at the offer's rate.
    assert_eq!(
        dtmf(Codec::pcmu(), &both[1..]),
        (0, Some(101), Some(48000), Some(101))
    );
    // The carrier offers 8000 only; a 48000-only side gets no DTMF PT.
    let carrier = fixture("carrier_g711_offer.sdp");
    let caps = [Codec::pcma(), Codec::telephone_event(48000)];
    let answer = answer_for(&carrier, &caps, params()).unwrap();
    assert_eq!(answer.media()[0].media_line().fmts, ["8"]);
    let caps = [Codec::pcma(), Codec::telephone_event(8000)];
    let answer = answer_for(&carrier, &caps, params()).unwrap();
    assert_eq!(answer.media()[0].media_line().fmts, ["8", "101"]);
    assert!(
        answer
            .to_string()
            .contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n")
    );
}

#[test]
fn hold_offers_get_recvonly_answers() {
    for name in ["hold_sendonly_reoffer.sdp", "hold_c0_reoffer.sdp"] {
        let offer = fixture(name);
        let answer = answer_for(&offer, &[Codec::pcmu(), Codec::pcma()], params()).unwrap();
        assert_eq!(answer.media_direction(0), Direction::RecvOnly, "{name}");
        assert!(answer.to_string().contains("a=recvonly\r\n"));
        let s = &negotiated(&offer, &answer)[0];
        assert_eq!(
            (s.offer_direction, s.answer_direction),
            (Direction::SendOnly, Direction::RecvOnly)
        );
        // Anchoring a hold keeps it a hold.
        let anchored = anchor(&offer, relay(), &[40000]);
        assert_eq!(anchored.media_direction(0), offer.media_direction(0));
    }
    let c0 = anchor(&fixture("hold_c0_reoffer.sdp"), relay(), &[40000]).to_string();
    assert!(
        c0.contains("c=IN IP4 0.0.0.0\r\n") && c0.contains("m=audio 40000 RTP/AVP 8 0 101\r\n")
    );
}

#[test]
fn ipv6_offer_and_anchor() {
    let offer = fixture("ipv6_offer.sdp");
    assert!(offer.connection().unwrap().ip().unwrap().is_ipv6());
    let text = anchor(&offer, relay(), &[40000]).to_string();
    assert!(text.contains("c=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtcp:40001 IN IP4 203.0.113.1\r\n"));
    let v6: IpAddr = "2001:db8::99".parse().unwrap();
    let answer = answer_for(&offer, &[Codec::pcmu()], AnswerParams::new(v6, vec![6000])).unwrap();
    assert!(
        answer
            .to_string()
            .contains("o=- 0 0 IN IP6 2001:db8::99\r\ns=-\r\nc=IN IP6 2001:db8::99\r\n")
    );
    let s = &negotiated(&offer, &answer)[0];
    assert_eq!(
        s.offerer_addr,
        Some("[2001:db8::10]:49170".parse().unwrap())
    );
}

#[test]
fn delayed_offer_200_is_answered_from_the_ack() {
    let offer = fixture("delayed_offer_200.sdp");
    let caps = [
        Codec::pcma(),
        Codec::new("G729", 8000),
        Codec::telephone_event(8000),
    ];
    let local = AnswerParams {
        ptime: Some(30),
        ..params()
    };
    let answer = answer_for(&offer, &caps, local).unwrap();
    let text = answer.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 8 18 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:30\r\na=sendrecv\r\n"), "{text}");
    let s = &negotiated(&offer, &answer)[0];
    assert_eq!((s.answer_pt, s.answer_dtmf_pt), (Some(8), Some(96)));
}

#[test]
fn origin_version_bumps_only_on_change() {
    let ours = set_origin(
        &fixture("carrier_g711_offer.sdp"),
        "callgate",
        77,
        1,
        relay(),
    );
    assert!(
        ours.to_string()
            .contains("o=callgate 77 1 IN IP4 203.0.113.1\r\n")
    );
    assert_eq!(
        version_after(&ours, &ours).origin().unwrap().sess_version,
        1
    );
    let renumbered = renumber_payload_types(&ours, &HashMap::from([(101, 96)]));
    assert!(renumbered.to_string().contains("m=audio 20006 RTP/AVP 0 8 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"));
    assert_eq!(
        version_after(&ours, &renumbered)
            .origin()
            .unwrap()
            .sess_version,
        2
    );
}
