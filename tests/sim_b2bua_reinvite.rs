//! Mid-call offers through the B2BUA in simulated time: re-INVITE hold and
//! resume from each side, UPDATE, a codec change, 491 on glare, and a
//! re-INVITE without SDP answered with our offer (answer in the ACK).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use b2bua_sim::*;
use callgate::media::{Leg, MediaCommand};
use callgate::sip::message::{HeaderName, Message};

struct Call {
    gw: Gw,
    inv_b: Message,
    ok_a: Message,
    a_cseq: u32,
    b_cseq: u32,
}

impl Call {
    fn new(id: &str) -> Call {
        let mut gw = Gw::new();
        let (inv_b, ok_a) = establish(&mut gw, id);
        gw.take();
        Call {
            gw,
            inv_b,
            ok_a,
            a_cseq: 1,
            b_cseq: 0,
        }
    }

    /// A request from the caller in its dialog.
    fn send_from_a(&mut self, method: &str, body: &str) -> Vec<(std::net::SocketAddr, Message)> {
        self.a_cseq += 1;
        let id = String::from_utf8_lossy(self.ok_a.call_id()).into_owned();
        let from = format!("\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-{id}");
        let to = hv(&self.ok_a, HeaderName::To);
        let r = in_dialog(
            method,
            "sip:127.0.0.1:5060",
            &from,
            &to,
            &id,
            self.a_cseq,
            "127.0.0.1:6000",
            body,
        );
        self.gw.send(0, UAC, &r);
        self.gw.take()
    }

    /// A request from the carrier in its dialog.
    fn send_from_b(&mut self, method: &str, body: &str) -> Vec<(std::net::SocketAddr, Message)> {
        self.b_cseq += 1;
        let id = String::from_utf8_lossy(self.inv_b.call_id()).into_owned();
        let from = format!("{};tag=carrier-tag", hv(&self.inv_b, HeaderName::To));
        let to = hv(&self.inv_b, HeaderName::From);
        let r = in_dialog(
            method,
            "sip:127.0.0.1:5080",
            &from,
            &to,
            &id,
            100 + self.b_cseq,
            "127.0.0.1:5070",
            body,
        );
        self.gw.send(1, CARRIER_A, &r);
        self.gw.take()
    }
}

fn only(out: &[(std::net::SocketAddr, Message)], to: &str) -> Vec<Message> {
    out.iter()
        .filter(|(a, _)| *a == addr(to))
        .map(|(_, m)| m.clone())
        .collect()
}

#[test]
fn caller_hold_and_resume_by_reinvite() {
    let mut c = Call::new("r1");
    let out = c.send_from_a("INVITE", &sdp("10.0.0.1", 4000, "0 101", "a=sendonly\n"));
    let re = only(&out, CARRIER_A)
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("re-INVITE to carrier");
    assert_eq!(re.call_id(), c.inv_b.call_id());
    assert_eq!(re.cseq().unwrap().seq, 2, "leg B's own CSeq space");
    let b = body(&re);
    assert!(
        b.contains("a=sendonly") && b.contains("m=audio 20002 "),
        "{b}"
    );
    assert!(
        b.contains("o=callgate ") && b.contains(" 2 IN IP4"),
        "origin version bumped: {b}"
    );
    assert!(
        c.gw.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Hold { on_hold: true, .. }))
    );
    c.gw.send(
        1,
        CARRIER_A,
        &reply(
            &re,
            200,
            "OK",
            "",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "0 101", "a=recvonly\n"),
        ),
    );
    let out = c.gw.take();
    assert!(
        only(&out, CARRIER_A)
            .iter()
            .any(|m| method(m) == "ACK" && m.cseq().unwrap().seq == 2)
    );
    let ok = only(&out, UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 to caller");
    let ob = body(&ok);
    assert!(
        ob.contains("a=recvonly") && ob.contains("m=audio 20000 "),
        "{ob}"
    );
    // The caller ACKs; then resumes.
    let id = "r1";
    let ack = in_dialog(
        "ACK",
        "sip:127.0.0.1:5060",
        &format!("\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-{id}"),
        &hv(&c.ok_a, HeaderName::To),
        id,
        c.a_cseq,
        "127.0.0.1:6000",
        "",
    );
    c.gw.send(0, UAC, &ack);
    let out = c.send_from_a("INVITE", &sdp("10.0.0.1", 4000, "0 101", ""));
    let re = only(&out, CARRIER_A)
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .unwrap();
    assert!(!body(&re).contains("sendonly"));
    assert!(
        c.gw.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Hold { on_hold: false, .. }))
    );
}

#[test]
fn carrier_hold_with_zero_address_reaches_caller() {
    let mut c = Call::new("r2");
    let out = c.send_from_b("INVITE", &sdp("0.0.0.0", 6000, "0", ""));
    let re = only(&out, UAC)
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("re-INVITE to caller");
    assert_eq!(re.call_id(), b"r2");
    assert_eq!(re.uri().unwrap().as_bytes(), b"sip:alice@127.0.0.1:6000");
    assert!(
        body(&re).contains("c=IN IP4 0.0.0.0"),
        "old-style hold kept: {}",
        body(&re)
    );
    c.gw.send(
        0,
        UAC,
        &reply(
            &re,
            200,
            "OK",
            "",
            "127.0.0.1:6000",
            &sdp("10.0.0.1", 4000, "0", ""),
        ),
    );
    let out = c.gw.take();
    assert!(only(&out, UAC).iter().any(|m| method(m) == "ACK"));
    let ok = only(&out, CARRIER_A)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 to carrier");
    assert!(body(&ok).contains("m=audio 20002 "));
}

#[test]
fn update_with_codec_change_renumbers_per_leg() {
    let mut c = Call::new("r3");
    let out = c.send_from_a("UPDATE", &sdp("10.0.0.9", 4100, "8 101", ""));
    let up = only(&out, CARRIER_A)
        .into_iter()
        .find(|m| method(m) == "UPDATE")
        .expect("UPDATE to carrier");
    assert!(body(&up).contains("m=audio 20002 RTP/AVP 8 101"));
    c.gw.send(
        1,
        CARRIER_A,
        &reply(
            &up,
            200,
            "OK",
            "",
            "127.0.0.1:5070",
            &sdp("10.0.0.2", 6000, "8 101", ""),
        ),
    );
    let out = c.gw.take();
    assert!(
        !only(&out, CARRIER_A).iter().any(|m| method(m) == "ACK"),
        "no ACK for UPDATE"
    );
    let ok = only(&out, UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .unwrap();
    assert!(body(&ok).contains("m=audio 20000 RTP/AVP 8 101"));
    // The relay learns the caller's new address and codecs.
    let upd_a = c.gw.media.iter().rev().find_map(|m| match m {
        MediaCommand::UpdateLeg {
            leg: Leg::A,
            remote_rtp,
            codecs,
            ..
        } => Some((*remote_rtp, codecs.clone())),
        _ => None,
    });
    let (remote, codecs) = upd_a.unwrap();
    assert_eq!(remote, Some(addr("10.0.0.9:4100")));
    assert_eq!(codecs[0].name.to_ascii_uppercase(), "PCMA");
}

#[test]
fn glare_gets_491() {
    let mut c = Call::new("r4");
    let out = c.send_from_a("INVITE", &sdp("10.0.0.1", 4000, "0", "a=sendonly\n"));
    let ours = only(&out, CARRIER_A)
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .unwrap();
    // The carrier re-INVITEs at the same time: our offer to it is pending.
    let out = c.send_from_b("INVITE", &sdp("10.0.0.2", 6000, "0", "a=sendonly\n"));
    let r = only(&out, CARRIER_A);
    assert_eq!(code(&r[0]), 491, "glare: 491 Request Pending");
    // And the carrier answers ours with 491 too: relayed to the caller.
    c.gw.send(
        1,
        CARRIER_A,
        &reply(&ours, 491, "Request Pending", "", "", ""),
    );
    let to_uac = only(&c.gw.take(), UAC);
    assert_eq!(code(&to_uac[0]), 491);
    // Both sides may try again afterwards.
    let out = c.send_from_b("INVITE", &sdp("10.0.0.2", 6000, "0", "a=sendonly\n"));
    assert!(only(&out, UAC).iter().any(|m| method(m) == "INVITE"));
}

#[test]
fn reinvite_without_sdp_gets_our_offer_and_ack_answer() {
    let mut c = Call::new("r5");
    let out = c.send_from_a("INVITE", "");
    assert!(only(&out, CARRIER_A).is_empty(), "answered locally");
    let ok = only(&out, UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200 with an offer");
    let offer = body(&ok);
    assert!(offer.contains("m=audio 20000 "), "{offer}");
    let ack = in_dialog(
        "ACK",
        "sip:127.0.0.1:5060",
        "\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-r5",
        &hv(&c.ok_a, HeaderName::To),
        "r5",
        c.a_cseq,
        "127.0.0.1:6000",
        &sdp("10.0.0.77", 4500, "0", ""),
    );
    c.gw.send(0, UAC, &ack);
    assert!(c.gw.media.iter().any(|m| matches!(m, MediaCommand::UpdateLeg { leg: Leg::A, remote_rtp: Some(a), .. } if *a == addr("10.0.0.77:4500"))));
}
