//! B2BUA basic call flows in simulated time: two independent legs
//! (topology hiding), SDP anchored on each leg, header policy, 18x relay,
//! 200/ACK on both legs, BYE from either side, media opened and closed.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use b2bua_sim::*;
use callgate::media::MediaCommand;
use callgate::sip::message::HeaderName;

#[test]
fn early_offer_call_is_two_independent_legs() {
    let mut gw = Gw::new();
    let offer = sdp("10.0.0.1", 4000, "0 8 101", "a=x-unknown:kept\n");
    gw.send(0, UAC, &invite("c1", "+15551234", &offer));
    let out = gw.take();
    let to_uac: Vec<_> = out.iter().filter(|(a, _)| *a == addr(UAC)).collect();
    assert_eq!(code(&to_uac[0].1), 100);
    let to_a: Vec<_> = out
        .iter()
        .filter(|(a, _)| *a == addr(CARRIER_A))
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(to_a.len(), 1);
    let inv = &to_a[0];
    assert_eq!(method(inv), "INVITE");
    // Topology hiding: own Call-ID, tags, Via, Contact; nothing of leg A.
    let text = String::from_utf8_lossy(&inv.to_bytes()).into_owned();
    assert_ne!(inv.call_id(), b"c1");
    assert!(!text.contains("alice-c1"), "From tag leaked: {text}");
    assert!(!text.contains("z9hG4bK-c1"), "Via leaked: {text}");
    assert!(
        !text.contains("127.0.0.1:6000"),
        "caller address leaked: {text}"
    );
    assert!(
        !text.contains("Secret-Internal"),
        "unlisted header crossed: {text}"
    );
    assert!(text.contains("P-Asserted-Identity: <sip:+15550001@example.com>"));
    assert!(text.contains("X-Trace: abc"));
    assert_eq!(inv.vias().len(), 1);
    assert_eq!(hv(inv, HeaderName::Contact), "<sip:127.0.0.1:5080>");
    assert_eq!(
        inv.uri().unwrap().as_bytes(),
        b"sip:+15551234@127.0.0.1:5070"
    );
    assert_eq!(inv.max_forwards(), Some(69));
    // SDP anchored on leg B's port, unknown line kept, our origin.
    let b = body(inv);
    assert!(b.contains("c=IN IP4 127.0.0.1"), "{b}");
    assert!(b.contains("m=audio 20002 RTP/AVP 0 8 101"), "{b}");
    assert!(b.contains("a=x-unknown:kept"), "{b}");
    assert!(b.contains("o=callgate "), "{b}");
    assert!(!b.contains("10.0.0.1"), "{b}");
    // Media session opened with leg A's address known.
    match &gw.media[0] {
        MediaCommand::Open { a, b, .. } => {
            assert_eq!(a.ports.rtp, 20000);
            assert_eq!(b.ports.rtp, 20002);
            assert_eq!(a.remote_rtp, Some(addr("10.0.0.1:4000")));
            assert_eq!(b.remote_rtp, None);
        }
        other => panic!("first media command {other:?}"),
    }

    // 180 without SDP, then 183 with SDP: relayed with our tag and contact.
    gw.send(
        1,
        CARRIER_A,
        &reply(inv, 180, "Ringing", "bt", "127.0.0.1:5070", ""),
    );
    let r = gw.take_to(UAC);
    assert_eq!(code(&r[0]), 180);
    let to_a_tag = r[0].to_tag().unwrap();
    assert_ne!(&to_a_tag[..], b"bt");
    assert_eq!(hv(&r[0], HeaderName::Contact), "<sip:127.0.0.1:5060>");
    let answer = sdp("10.0.0.2", 6000, "0 101", "");
    gw.send(
        1,
        CARRIER_A,
        &reply(
            inv,
            183,
            "Session Progress",
            "bt",
            "127.0.0.1:5070",
            &answer,
        ),
    );
    let r = gw.take_to(UAC);
    assert_eq!(code(&r[0]), 183);
    let early = body(&r[0]);
    assert!(early.contains("m=audio 20000 RTP/AVP 0 101"), "{early}");
    assert!(!early.contains("10.0.0.2"), "{early}");
    assert!(gw.media.iter().any(|c| matches!(c, MediaCommand::UpdateLeg { leg: callgate::media::Leg::B, remote_rtp: Some(a), .. } if *a == addr("10.0.0.2:6000"))));

    // 200: ACK on leg B, 200 on leg A with the same answer (same version).
    gw.send(
        1,
        CARRIER_A,
        &reply(inv, 200, "OK", "bt", "127.0.0.1:5070", &answer),
    );
    let out = gw.take();
    let ack = out
        .iter()
        .find(|(a, m)| *a == addr(CARRIER_A) && method(m) == "ACK")
        .expect("ACK to carrier");
    assert_eq!(ack.1.call_id(), inv.call_id());
    assert_eq!(ack.1.cseq().unwrap().seq, 1);
    let ok = out
        .iter()
        .find(|(a, m)| *a == addr(UAC) && code(m) == 200)
        .expect("200 to caller")
        .1
        .clone();
    assert_eq!(ok.to_tag(), Some(to_a_tag.clone()));
    assert_eq!(body(&ok), early, "the final answer repeats the early one");
    assert_eq!(ok.call_id(), b"c1");

    // ACK from the caller, then a BYE from the caller.
    let from = "\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-c1";
    let to = hv(&ok, HeaderName::To);
    gw.send(
        0,
        UAC,
        &in_dialog(
            "ACK",
            "sip:127.0.0.1:5060",
            from,
            &to,
            "c1",
            1,
            "127.0.0.1:6000",
            "",
        ),
    );
    assert!(gw.take().is_empty(), "ACK is absorbed");
    let calls = gw.proxy.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, "confirmed");
    assert_eq!(calls[0].legs[1].via, "carrier-a");
    gw.send(
        0,
        UAC,
        &in_dialog(
            "BYE",
            "sip:127.0.0.1:5060",
            from,
            &to,
            "c1",
            2,
            "127.0.0.1:6000",
            "",
        ),
    );
    let out = gw.take();
    assert!(out.iter().any(|(a, m)| *a == addr(UAC) && code(m) == 200));
    let bye = out
        .iter()
        .find(|(a, m)| *a == addr(CARRIER_A) && method(m) == "BYE")
        .expect("BYE to carrier")
        .1
        .clone();
    assert_eq!(bye.call_id(), inv.call_id());
    assert_eq!(bye.uri().unwrap().as_bytes(), b"sip:127.0.0.1:5070");
    assert_eq!(bye.cseq().unwrap().seq, 2);
    assert_eq!(gw.proxy.active_calls(), 1, "waits for the BYE answer");
    gw.send(1, CARRIER_A, &reply(&bye, 200, "OK", "", "", ""));
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.proxy.media_ports_in_use(), 0);
    assert_eq!(gw.open_sessions(), 0, "media session closed");
    // A retransmitted BYE after the end gets 481, not a proxied request.
    gw.send(
        0,
        UAC,
        &in_dialog(
            "BYE",
            "sip:127.0.0.1:5060",
            from,
            &to,
            "c1",
            3,
            "127.0.0.1:6000",
            "",
        ),
    );
    let out = gw.take();
    assert_eq!(out.len(), 1);
    assert_eq!(code(&out[0].1), 481);
}

#[test]
fn callee_bye_ends_both_legs() {
    let mut gw = Gw::new();
    let (inv_b, _ok) = establish(&mut gw, "c2");
    // The carrier hangs up: its BYE uses its own dialog view.
    let bye = in_dialog(
        "BYE",
        "sip:127.0.0.1:5080",
        &format!("{};tag=carrier-tag", hv(&inv_b, HeaderName::To)),
        &hv(&inv_b, HeaderName::From),
        std::str::from_utf8(inv_b.call_id()).unwrap(),
        1,
        "127.0.0.1:5070",
        "",
    );
    gw.send(1, CARRIER_A, &bye);
    let out = gw.take();
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && code(m) == 200)
    );
    let bye_a = out
        .iter()
        .find(|(a, m)| *a == addr(UAC) && method(m) == "BYE")
        .expect("BYE to caller")
        .1
        .clone();
    assert_eq!(bye_a.call_id(), b"c2");
    assert_eq!(bye_a.uri().unwrap().as_bytes(), b"sip:alice@127.0.0.1:6000");
    assert_eq!(bye_a.to_tag().as_deref(), Some(&b"alice-c2"[..]));
    gw.send(0, UAC, &reply(&bye_a, 200, "OK", "", "", ""));
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.open_sessions(), 0);
}

#[test]
fn bypass_leaves_sdp_untouched() {
    let mut gw = Gw::new();
    let offer = sdp("10.0.0.1", 4000, "0 8 101", "");
    gw.send(0, UAC, &invite("c3", "+19995551234", &offer));
    let inv = gw.take_to(CARRIER_A).remove(0);
    assert_eq!(body(&inv), offer.replace('\n', "\r\n"));
    assert!(gw.media.is_empty(), "no media session in bypass");
    let answer = sdp("10.0.0.2", 6000, "0 101", "");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv, 200, "OK", "t", "127.0.0.1:5070", &answer),
    );
    let ok = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .unwrap();
    assert_eq!(body(&ok), answer.replace('\n', "\r\n"));
    assert_eq!(gw.proxy.calls()[0].media_mode, "bypass");
}

#[test]
fn in_dialog_options_answered_and_info_relayed() {
    let mut gw = Gw::new();
    let (inv_b, ok) = establish(&mut gw, "c4");
    let from = "\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-c4";
    let to = hv(&ok, HeaderName::To);
    gw.send(
        0,
        UAC,
        &in_dialog(
            "OPTIONS",
            "sip:127.0.0.1:5060",
            from,
            &to,
            "c4",
            2,
            "127.0.0.1:6000",
            "",
        ),
    );
    let out = gw.take();
    assert_eq!(out.len(), 1);
    assert_eq!(code(&out[0].1), 200);
    let info = in_dialog(
        "INFO",
        "sip:127.0.0.1:5060",
        from,
        &to,
        "c4",
        3,
        "127.0.0.1:6000",
        "",
    )
    .replace(
        "Content-Length: 0\n\n",
        "Content-Type: application/x-trace\nContent-Length: 24\n\nSignal=5\nDuration=160\n",
    );
    gw.send(0, UAC, &info);
    let relayed = gw.take_to(CARRIER_A);
    assert_eq!(method(&relayed[0]), "INFO");
    assert_eq!(relayed[0].call_id(), inv_b.call_id());
    assert_eq!(
        hv(&relayed[0], HeaderName::ContentType),
        "application/x-trace"
    );
    assert!(body(&relayed[0]).contains("Signal=5"));
    gw.send(1, CARRIER_A, &reply(&relayed[0], 200, "OK", "", "", ""));
    let back = gw.take_to(UAC);
    assert_eq!(code(&back[0]), 200);
    assert_eq!(back[0].call_id(), b"c4");
}

#[test]
fn retransmitted_2xx_from_trunk_gets_the_ack_again() {
    let mut gw = Gw::new();
    let (inv_b, _ok) = establish(&mut gw, "c5");
    gw.take();
    let answer = sdp("10.0.0.2", 6000, "0 101", "");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_b, 200, "OK", "carrier-tag", "127.0.0.1:5070", &answer),
    );
    let out = gw.take();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(method(&out[0].1), "ACK");
    assert_eq!(out[0].0, addr(CARRIER_A));
    assert_eq!(out[0].1.call_id(), inv_b.call_id());
}

/// §12.1.2 / §12.2.1.1: leg B's remote target is the Contact of the
/// response that established the dialog: when the trunk's 180 and 200
/// carry different Contacts, the ACK and later BYE go to the 200's; a
/// 200 repeating the 180's Contact keeps it.
#[test]
fn remote_target_follows_the_latest_contact_of_the_trunk() {
    for (ringing, answered) in [
        ("gw1@127.0.0.1:5070", "gw2@127.0.0.1:5070"),
        ("gw1@127.0.0.1:5070", "gw1@127.0.0.1:5070"),
    ] {
        let mut gw = Gw::new();
        gw.send(
            0,
            UAC,
            &invite("c9", "+15551234", &sdp("10.0.0.1", 4000, "0 8 101", "")),
        );
        let inv_b = gw.take_to(CARRIER_A).remove(0);
        gw.send(
            1,
            CARRIER_A,
            &reply(&inv_b, 180, "Ringing", "carrier-tag", ringing, ""),
        );
        let answer = sdp("10.0.0.2", 6000, "0 101", "");
        gw.send(
            1,
            CARRIER_A,
            &reply(&inv_b, 200, "OK", "carrier-tag", answered, &answer),
        );
        let out = gw.take();
        let ack = &out
            .iter()
            .find(|(a, m)| *a == addr(CARRIER_A) && method(m) == "ACK")
            .expect("ACK to the trunk")
            .1;
        let want = format!("sip:{answered}");
        assert_eq!(ack.uri().unwrap().as_bytes(), want.as_bytes());
        let ok = &out
            .iter()
            .find(|(a, m)| *a == addr(UAC) && code(m) == 200)
            .expect("200 to the caller")
            .1;
        let bye = in_dialog(
            "BYE",
            "sip:127.0.0.1:5060",
            "\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-c9",
            &hv(ok, HeaderName::To),
            "c9",
            2,
            "127.0.0.1:6000",
            "",
        );
        gw.send(0, UAC, &bye);
        let bye_b = gw
            .take_to(CARRIER_A)
            .into_iter()
            .find(|m| method(m) == "BYE")
            .expect("BYE to the trunk");
        assert_eq!(bye_b.uri().unwrap().as_bytes(), want.as_bytes());
    }
}
