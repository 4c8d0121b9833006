//! SDES-SRTP termination in the B2BUA, in simulated time: the SDP each leg
//! sees (the caller's RTP/SAVP answered with our own a=crypto, the plain
//! trunk offered RTP/AVP without keys), the keys the media commands carry,
//! and packets through a real `MediaHost` driven by those commands: the
//! caller's SRTP reaches the trunk decrypted, the trunk's RTP reaches the
//! caller encrypted under the key of our answer. Also: 488 for SRTP we
//! cannot key (DTLS-SRTP, no usable suite, MKI, no entropy), rekeying by
//! re-INVITE both ways, ringback's 183, and a trunk marked `srtp: true`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use b2bua_sim::*;
use callgate::media::srtp::{Context, KeyParams, MasterKey, SrtpKeys, Suite};
use callgate::media::{Leg, LegConfig, MediaCommand, MediaHost};
use callgate::sdp::Sdp;
use callgate::sip::message::{HeaderName, Message};

/// The caller's key (RFC 4568 §9.1's example).
const CALLER_KEY: &str = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const CALLER_KEY2: &str = "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

fn savp(port: u16, proto: &str, crypto: &str) -> String {
    format!(
        "v=0\no=ua 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio {port} {proto} 0 101\na=rtpmap:101 telephone-event/8000\n{crypto}a=rtcp-mux\na=sendrecv\n"
    )
}

fn crypto(tag: u32, suite: &str, key: &str) -> String {
    format!("a=crypto:{tag} {suite} {key}\n")
}

fn parse_sdp(m: &Message) -> Sdp {
    Sdp::parse(&m.body).expect("SDP body")
}

/// The a=crypto lines of a message body: (tag, suite, key params).
fn cryptos(m: &Message) -> Vec<(u32, String, String)> {
    body(m)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=crypto:"))
        .map(|rest| {
            let mut f = rest.split(' ');
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().to_string(),
                f.next().unwrap().to_string(),
            )
        })
        .collect()
}

fn proto(m: &Message) -> String {
    parse_sdp(m).media()[0].media_line().proto.clone()
}

fn key_of(params: &str) -> MasterKey {
    KeyParams::parse(params).unwrap().key
}

fn srtp_cmds(gw: &Gw) -> Vec<(Leg, Option<SrtpKeys>)> {
    gw.media
        .iter()
        .filter_map(|c| match c {
            MediaCommand::Srtp { leg, keys, .. } => Some((*leg, keys.clone())),
            _ => None,
        })
        .collect()
}

/// The caller's INVITE with `offer`; returns what went to the trunk and to
/// the caller.
fn call(gw: &mut Gw, id: &str, offer: &str) -> (Vec<Message>, Vec<Message>) {
    gw.send(0, UAC, &invite(id, "+15551234", offer));
    let mut to_trunk = Vec::new();
    let mut to_caller = Vec::new();
    for (a, m) in gw.take() {
        if a == addr(CARRIER_A) {
            to_trunk.push(m);
        } else if a == addr(UAC) {
            to_caller.push(m);
        }
    }
    (to_trunk, to_caller)
}

/// An SDES caller through to an answering plain trunk: (trunk's INVITE, 200
/// to the caller).
fn answered(gw: &mut Gw, id: &str, offer: &str) -> (Message, Message) {
    let (to_trunk, _) = call(gw, id, offer);
    let inv_b = to_trunk.into_iter().next().expect("INVITE to the trunk");
    let ok = trunk_answers(gw, &inv_b, &sdp("10.0.0.2", 6000, "0 101", ""));
    (inv_b, ok)
}

#[test]
fn sdes_caller_gets_our_key_and_the_plain_trunk_none() {
    let mut gw = Gw::with_srtp(PLAN);
    let offer = savp(
        4000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", &format!("{CALLER_KEY}|2^31")),
    );
    let (inv_b, ok) = answered(&mut gw, "s1", &offer);

    // Leg B: plain RTP, no key of anyone's.
    let b = body(&inv_b);
    assert_eq!(proto(&inv_b), "RTP/AVP", "{b}");
    assert!(!b.contains("crypto") && !b.contains("inline:"), "{b}");

    // Leg A: RTP/SAVP, one a=crypto with the caller's tag and suite, our key.
    assert_eq!(proto(&ok), "RTP/SAVP", "{}", body(&ok));
    let c = cryptos(&ok);
    assert_eq!(c.len(), 1, "{}", body(&ok));
    assert_eq!((c[0].0, c[0].1.as_str()), (1, "AES_CM_128_HMAC_SHA1_80"));
    let ours = key_of(&c[0].2);
    assert_ne!(ours, key_of(CALLER_KEY), "a key of our own");

    // The media plane is told both keys of leg A, nothing for leg B.
    let cmds = srtp_cmds(&gw);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let (leg, keys) = &cmds[0];
    let keys = keys.clone().expect("keys");
    assert_eq!(*leg, Leg::A);
    assert_eq!(keys.suite, Suite::AesCm128HmacSha1_80);
    assert_eq!(keys.remote, key_of(CALLER_KEY));
    assert_eq!(keys.local, ours);
    // The Srtp command comes right after Open (same batch, before any packet).
    let open = gw
        .media
        .iter()
        .position(|c| matches!(c, MediaCommand::Open { .. }))
        .unwrap();
    let srtp = gw
        .media
        .iter()
        .position(|c| matches!(c, MediaCommand::Srtp { .. }))
        .unwrap();
    assert!(srtp > open);

    // A second call draws another key.
    let (_, ok2) = answered(&mut gw, "s2", &offer);
    assert_ne!(key_of(&cryptos(&ok2)[0].2), ours);
}

/// Applies the recorded commands to a real host and sends media both ways.
#[test]
fn media_through_the_host_is_decrypted_for_the_trunk_and_encrypted_for_the_caller() {
    let mut gw = Gw::with_srtp(PLAN);
    let offer = savp(
        4000,
        "RTP/SAVPF",
        &crypto(3, "AES_CM_128_HMAC_SHA1_32", CALLER_KEY),
    );
    let (_, ok) = answered(&mut gw, "m1", &offer);
    assert_eq!(proto(&ok), "RTP/SAVPF");
    let c = cryptos(&ok);
    assert_eq!((c[0].0, c[0].1.as_str()), (3, "AES_CM_128_HMAC_SHA1_32"));
    let ours = key_of(&c[0].2);

    let mut host = MediaHost::new();
    let (mut pa, mut pb) = (0, 0);
    for cmd in gw.media.clone() {
        if let MediaCommand::Open {
            a: LegConfig { ports: a, .. },
            b: LegConfig { ports: b, .. },
            ..
        } = &cmd
        {
            (pa, pb) = (a.rtp, b.rtp);
        }
        host.apply(gw.now, cmd).unwrap();
    }
    let suite = Suite::AesCm128HmacSha1_32;
    let mut caller_tx = Context::new(suite, &key_of(CALLER_KEY));
    let mut caller_rx = Context::new(suite, &ours);
    let caller = addr("10.0.0.1:4000");
    let trunk = addr("10.0.0.2:6000");
    let tone: Vec<u8> = (0..160).map(|i| (i * 7 % 251) as u8).collect();
    for seq in 0..5u16 {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44];
        p[2..4].copy_from_slice(&(100 + seq).to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&tone);
        caller_tx.protect_rtp(&mut p).unwrap();
        host.handle_packet(gw.now, pa, caller, &p).unwrap();
        let out = host.poll_transmit().expect("relayed to the trunk");
        assert_eq!(out.to, trunk);
        assert_eq!(out.bytes.len(), 12 + 160, "plain RTP toward the trunk");
        assert_eq!(&out.bytes[12..], &tone[..], "decrypted payload");

        let mut q = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x55, 0x66, 0x77, 0x88];
        q[2..4].copy_from_slice(&(900 + seq).to_be_bytes());
        q.extend_from_slice(&[0xd5; 160]);
        host.handle_packet(gw.now, pb, trunk, &q).unwrap();
        let out = host.poll_transmit().expect("relayed to the caller");
        assert_eq!(out.to, caller);
        assert_eq!(out.bytes.len(), 12 + 160 + 4, "SRTP with a 32-bit tag");
        assert_ne!(&out.bytes[12..172], &[0xd5; 160][..], "encrypted");
        let mut back = out.bytes.to_vec();
        caller_rx
            .unprotect_rtp(&mut back)
            .expect("the caller decrypts with the key of our answer");
        assert_eq!(&back[12..], &[0xd5; 160][..]);
    }
    // Plain RTP from the caller's address is not relayed.
    let mut forged = vec![0x80, 0, 0, 200, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44];
    forged.extend_from_slice(&tone);
    assert!(host.handle_packet(gw.now, pa, caller, &forged).is_err());
    assert!(host.poll_transmit().is_none());
    assert_eq!(host.totals().dropped_srtp, 1);
}

#[test]
fn srtp_we_cannot_key_gets_488_and_no_trunk_attempt() {
    let cases = [
        ("no crypto", savp(4000, "RTP/SAVP", "")),
        (
            "256-bit suite",
            savp(
                4000,
                "RTP/SAVP",
                &crypto(1, "AES_256_CM_HMAC_SHA1_80", CALLER_KEY),
            ),
        ),
        (
            "MKI",
            savp(
                4000,
                "RTP/SAVP",
                &crypto(
                    1,
                    "AES_CM_128_HMAC_SHA1_80",
                    &format!("{CALLER_KEY}|2^20|1:4"),
                ),
            ),
        ),
        (
            "DTLS-SRTP",
            savp(
                4000,
                "UDP/TLS/RTP/SAVPF",
                "a=fingerprint:sha-256 AB:CD:EF\na=setup:actpass\n",
            ),
        ),
    ];
    for (i, (what, offer)) in cases.iter().enumerate() {
        let mut gw = Gw::with_srtp(PLAN);
        let (to_trunk, to_caller) = call(&mut gw, &format!("r{i}"), offer);
        assert!(to_trunk.is_empty(), "{what}: nothing toward the trunk");
        let fin = to_caller
            .iter()
            .find(|m| code(m) >= 200)
            .expect("final response");
        assert_eq!(code(fin), 488, "{what}");
        let warning = hv(fin, HeaderName::Warning);
        assert!(warning.starts_with("399 callgate"), "{what}: {warning}");
        if *what == "DTLS-SRTP" {
            assert!(warning.contains("DTLS"), "{warning}");
        }
        assert_eq!(gw.open_sessions(), 0, "{what}: no media session");
        assert_eq!(gw.proxy.active_calls(), 0, "{what}");
        assert_eq!(gw.proxy.media_ports_in_use(), 0, "{what}: ports released");
    }
    // Without entropy from the runtime there is no SRTP termination either.
    let mut gw = Gw::new();
    let offer = savp(
        4000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY),
    );
    let (_, to_caller) = call(&mut gw, "noent", &offer);
    assert_eq!(to_caller.iter().map(code).max(), Some(488));
    // Plain callers are untouched by all this.
    let mut gw = Gw::with_srtp(PLAN);
    let (inv_b, ok) = answered(&mut gw, "plain", &sdp("10.0.0.1", 4000, "0 101", ""));
    assert_eq!(
        (proto(&inv_b), proto(&ok)),
        ("RTP/AVP".into(), "RTP/AVP".into())
    );
    assert!(cryptos(&ok).is_empty() && srtp_cmds(&gw).is_empty());
}

/// Confirms the call (ACK from the caller) and returns the caller's view of
/// the dialog: (From, To).
fn ack(gw: &mut Gw, id: &str, ok: &Message) -> (String, String) {
    let from = format!("\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-{id}");
    let to = hv(ok, HeaderName::To);
    gw.send(
        0,
        UAC,
        &in_dialog(
            "ACK",
            "sip:127.0.0.1:5060",
            &from,
            &to,
            id,
            1,
            "127.0.0.1:6000",
            "",
        ),
    );
    (from, to)
}

#[test]
fn caller_reinvite_with_a_new_key_rekeys_and_dtls_reoffer_gets_488() {
    let mut gw = Gw::with_srtp(PLAN);
    let offer = savp(
        4000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY),
    );
    let (inv_b, ok) = answered(&mut gw, "k1", &offer);
    let ours = key_of(&cryptos(&ok)[0].2);
    let (from, to) = ack(&mut gw, "k1", &ok);

    // re-INVITE with a new key (and tag 2).
    let reoffer = savp(
        4000,
        "RTP/SAVP",
        &crypto(2, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY2),
    );
    gw.send(
        0,
        UAC,
        &in_dialog(
            "INVITE",
            "sip:127.0.0.1:5060",
            &from,
            &to,
            "k1",
            2,
            "127.0.0.1:6000",
            &reoffer,
        ),
    );
    let re_b = gw
        .take_to(CARRIER_A)
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("re-INVITE to the trunk");
    assert_eq!(proto(&re_b), "RTP/AVP");
    assert!(!body(&re_b).contains("crypto"), "{}", body(&re_b));
    let before = srtp_cmds(&gw).len();
    gw.send(
        1,
        CARRIER_A,
        &reply(
            &re_b,
            200,
            "OK",
            "",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "0 101", ""),
        ),
    );
    let ok2 = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 to the re-INVITE");
    assert_eq!(proto(&ok2), "RTP/SAVP");
    let c = cryptos(&ok2);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, 2, "the tag of the accepted offer line");
    assert_eq!(key_of(&c[0].2), ours, "our key kept (same suite)");
    let cmds = srtp_cmds(&gw);
    assert_eq!(cmds.len(), before + 1, "{cmds:?}");
    let keys = cmds.last().unwrap().1.clone().unwrap();
    assert_eq!(cmds.last().unwrap().0, Leg::A);
    assert_eq!(
        (keys.remote, keys.local),
        (key_of(CALLER_KEY2), ours.clone())
    );

    // A re-offer we cannot key is refused here; the trunk never sees it.
    let dtls = savp(4000, "UDP/TLS/RTP/SAVPF", "a=fingerprint:sha-256 AB:CD\n");
    gw.send(
        0,
        UAC,
        &in_dialog(
            "INVITE",
            "sip:127.0.0.1:5060",
            &from,
            &to,
            "k1",
            3,
            "127.0.0.1:6000",
            &dtls,
        ),
    );
    let out = gw.take();
    assert!(
        out.iter().all(|(a, _)| *a != addr(CARRIER_A)),
        "nothing to the trunk"
    );
    assert!(out.iter().any(|(a, m)| *a == addr(UAC) && code(m) == 488));
    assert_eq!(srtp_cmds(&gw).len(), before + 1, "keys unchanged");
    let _ = inv_b;
}

#[test]
fn trunk_reinvite_reaches_the_caller_keyed_and_its_answer_rekeys() {
    let mut gw = Gw::with_srtp(PLAN);
    let offer = savp(
        4000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY),
    );
    let (inv_b, ok) = answered(&mut gw, "t1", &offer);
    let ours = key_of(&cryptos(&ok)[0].2);
    ack(&mut gw, "t1", &ok);
    // The trunk puts the call on hold (its own dialog view).
    let from_b = format!("{};tag=carrier-tag", hv(&inv_b, HeaderName::To));
    let to_b = hv(&inv_b, HeaderName::From);
    let cid_b = hv(&inv_b, HeaderName::CallId);
    let hold = sdp("10.0.0.2", 6000, "0 101", "a=sendonly\n");
    gw.send(
        1,
        CARRIER_A,
        &in_dialog(
            "INVITE",
            "sip:127.0.0.1:5080",
            &from_b,
            &to_b,
            &cid_b,
            10,
            "127.0.0.1:5070",
            &hold,
        ),
    );
    let re_a = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("re-INVITE to the caller");
    assert_eq!(proto(&re_a), "RTP/SAVP", "{}", body(&re_a));
    let c = cryptos(&re_a);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].0, key_of(&c[0].2)), (1, ours.clone()));
    // The caller answers with a fresh key of its own.
    let answer = savp(
        4000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY2),
    )
    .replace("a=sendrecv", "a=recvonly");
    gw.send(
        0,
        UAC,
        &reply(&re_a, 200, "OK", "", "127.0.0.1:6000", &answer),
    );
    let ok_b = gw
        .take_to(CARRIER_A)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 to the trunk");
    assert_eq!(proto(&ok_b), "RTP/AVP");
    assert!(!body(&ok_b).contains("crypto"));
    let (leg, keys) = srtp_cmds(&gw).last().cloned().unwrap();
    assert_eq!(leg, Leg::A);
    let keys = keys.unwrap();
    assert_eq!((keys.remote, keys.local), (key_of(CALLER_KEY2), ours));
}

#[test]
fn ringback_183_to_an_sdes_caller_is_keyed() {
    let plan = PLAN.replace(
        "  - name: from-client\n    match: { source: client }\n    mode: b2bua\n",
        "  - name: from-client\n    match: { source: client }\n    mode: b2bua\n    ringback: us\n",
    );
    let mut gw = Gw::with_srtp(&plan);
    let offer = savp(
        4000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY),
    );
    let (to_trunk, _) = call(&mut gw, "rb", &offer);
    let inv_b = to_trunk.into_iter().next().unwrap();
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_b, 180, "Ringing", "carrier-tag", "127.0.0.1:5070", ""),
    );
    let p183 = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| code(m) == 183)
        .expect("183 with our ringback");
    assert_eq!(proto(&p183), "RTP/SAVP", "{}", body(&p183));
    let ours = key_of(&cryptos(&p183)[0].2);
    assert!(
        srtp_cmds(&gw)
            .iter()
            .any(|(l, k)| *l == Leg::A && k.as_ref().is_some_and(|k| k.local == ours))
    );
    let ok = trunk_answers(&mut gw, &inv_b, &sdp("10.0.0.2", 6000, "0 101", ""));
    assert_eq!(
        key_of(&cryptos(&ok)[0].2),
        ours,
        "the 200 repeats the 183's answer"
    );
}

/// A carrier's plain call toward a platform trunk marked `srtp: true`.
#[test]
fn trunk_marked_srtp_gets_our_offer_and_its_answer_keys_leg_b() {
    let plan = PLAN.replace(
        "  - { name: platform, address: \"127.0.0.1:5066\" }",
        "  - { name: platform, address: \"127.0.0.1:5066\", srtp: true }",
    );
    let mut gw = Gw::with_srtp(&plan);
    let inv = invite("c1", "+15550001", &sdp("10.0.0.9", 7000, "0 8 101", "")).replace(
        "Via: SIP/2.0/UDP 127.0.0.1:6000",
        "Via: SIP/2.0/UDP 127.0.0.1:5070",
    );
    gw.send(1, CARRIER_A, &inv);
    let inv_b = gw
        .take_to("127.0.0.1:5066")
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("INVITE to the platform");
    assert_eq!(proto(&inv_b), "RTP/SAVP", "{}", body(&inv_b));
    let c = cryptos(&inv_b);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].0, c[0].1.as_str()), (1, "AES_CM_128_HMAC_SHA1_80"));
    let ours = key_of(&c[0].2);
    assert!(
        srtp_cmds(&gw).is_empty(),
        "no relay keys before the platform's"
    );
    let answer = savp(
        5000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY),
    );
    gw.send(
        1,
        "127.0.0.1:5066",
        &reply(&inv_b, 200, "OK", "plat", "127.0.0.1:5066", &answer),
    );
    let ok = gw
        .take_to(CARRIER_A)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 to the carrier");
    assert_eq!(proto(&ok), "RTP/AVP");
    assert!(!body(&ok).contains("crypto"), "{}", body(&ok));
    let cmds = srtp_cmds(&gw);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let keys = cmds[0].1.clone().unwrap();
    assert_eq!(cmds[0].0, Leg::B);
    assert_eq!((keys.remote, keys.local), (key_of(CALLER_KEY), ours));
}

/// A carrier's late offer (no SDP) toward the `srtp: true` platform: we
/// offer the platform RTP/SAVP with our key, and our offer to the carrier
/// in the 200 carries no key of the platform's.
#[test]
fn late_offer_toward_an_srtp_trunk_keeps_its_key_on_its_leg() {
    let plan = PLAN.replace(
        "  - { name: platform, address: \"127.0.0.1:5066\" }",
        "  - { name: platform, address: \"127.0.0.1:5066\", srtp: true }",
    );
    let mut gw = Gw::with_srtp(&plan);
    let inv = invite("lo", "+15550001", "").replace(
        "Via: SIP/2.0/UDP 127.0.0.1:6000",
        "Via: SIP/2.0/UDP 127.0.0.1:5070",
    );
    gw.send(1, CARRIER_A, &inv);
    let inv_b = gw
        .take_to("127.0.0.1:5066")
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("INVITE to the platform");
    assert_eq!(proto(&inv_b), "RTP/SAVP", "{}", body(&inv_b));
    let answer = savp(
        5000,
        "RTP/SAVP",
        &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY),
    );
    gw.send(
        1,
        "127.0.0.1:5066",
        &reply(&inv_b, 200, "OK", "plat", "127.0.0.1:5066", &answer),
    );
    let ok = gw
        .take_to(CARRIER_A)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 to the carrier");
    assert_eq!(proto(&ok), "RTP/AVP", "{}", body(&ok));
    assert!(!body(&ok).contains("crypto"), "{}", body(&ok));
    let cmds = srtp_cmds(&gw);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(cmds[0].0, Leg::B);
}

/// An Opus-only SDES caller toward a PCMA-only trunk: the trunk is offered
/// PCMA (what the gateway transcodes to) in RTP/AVP, the caller is answered
/// Opus in RTP/SAVP with our key (the transcoding answer), and the relay
/// gets the caller's keys.
#[test]
fn transcoded_sdes_caller_is_answered_opus_with_our_key() {
    let plan = PLAN.replace(
        "  - { name: carrier-a, address: \"127.0.0.1:5070\" }",
        "  - { name: carrier-a, address: \"127.0.0.1:5070\", codecs: [PCMA] }",
    );
    let mut gw = Gw::with_srtp(&plan);
    let offer = "v=0\no=ua 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/SAVPF 111 110\na=rtpmap:111 opus/48000/2\na=rtpmap:110 telephone-event/48000\n"
        .to_string()
        + &crypto(1, "AES_CM_128_HMAC_SHA1_80", CALLER_KEY)
        + "a=rtcp-mux\n";
    let (to_trunk, _) = call(&mut gw, "op", &offer);
    let inv_b = to_trunk.into_iter().next().expect("INVITE to the trunk");
    assert_eq!(proto(&inv_b), "RTP/AVP");
    assert!(body(&inv_b).contains("PCMA/8000") && !body(&inv_b).contains("crypto"));
    let ok = trunk_answers(&mut gw, &inv_b, &sdp("10.0.0.2", 6000, "8 101", ""));
    let b = body(&ok);
    assert_eq!(proto(&ok), "RTP/SAVPF", "{b}");
    assert!(b.contains("opus/48000") && !b.contains("PCMA"), "{b}");
    let c = cryptos(&ok);
    assert_eq!(c.len(), 1, "{b}");
    let ours = key_of(&c[0].2);
    let cmds = srtp_cmds(&gw);
    assert_eq!(cmds.len(), 1);
    let keys = cmds[0].1.clone().unwrap();
    assert_eq!((keys.remote, keys.local), (key_of(CALLER_KEY), ours));
}
