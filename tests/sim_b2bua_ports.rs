//! A relay port the runtime could not bind (another process holds it): the
//! media plane reports `Event::PortUnavailable` and the B2BUA ends the call
//! with a Reason instead of leaving a leg silent, before or after the
//! answer, and keeps that port pair out of the allocator.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use b2bua_sim::*;
use callgate::media::{Event, MediaCommand};
use callgate::sip::message::HeaderName;

/// The session and leg B's RTP port of the call's `Open` command.
fn opened(gw: &Gw) -> (callgate::media::SessionId, u16) {
    gw.media
        .iter()
        .find_map(|c| match c {
            MediaCommand::Open { session, b, .. } => Some((*session, b.ports.rtp)),
            _ => None,
        })
        .expect("an anchored call opens a media session")
}

#[test]
fn unbindable_port_after_answer_ends_the_call_on_both_legs() {
    let mut gw = Gw::new();
    let (inv_b, ok) = establish(&mut gw, "pu1");
    let (session, port) = opened(&gw);
    assert_eq!(gw.proxy.media_ports_in_use(), 2);
    let now = gw.now;
    gw.proxy
        .handle_media_event(now, session, Event::PortUnavailable { port });
    let out = gw.take();
    let byes: Vec<_> = out.iter().filter(|(_, m)| method(m) == "BYE").collect();
    assert_eq!(byes.len(), 2, "BYE on both legs: {out:?}");
    for (_, bye) in &byes {
        let reason = hv(bye, HeaderName::Reason);
        assert!(reason.contains("cause=503"), "{reason}");
    }
    let to_uac = byes
        .iter()
        .find(|(a, _)| *a == addr(UAC))
        .expect("BYE to caller");
    let to_trunk = byes
        .iter()
        .find(|(a, _)| *a == addr(CARRIER_A))
        .expect("BYE to trunk");
    assert_eq!(to_trunk.1.call_id(), inv_b.call_id());
    assert_eq!(to_uac.1.call_id(), ok.call_id());
    for (from, listener, bye) in [(UAC, 0, &to_uac.1), (CARRIER_A, 1, &to_trunk.1)] {
        gw.send(listener, from, &reply(bye, 200, "OK", "", "", ""));
    }
    assert_eq!(gw.proxy.active_calls(), 0);
    assert_eq!(gw.open_sessions(), 0, "media session closed");
    assert_eq!(
        gw.proxy.media_ports_in_use(),
        1,
        "the pair holding the unbindable port stays out of use, the other is free"
    );
}

#[test]
fn unbindable_port_before_answer_fails_the_call_and_cancels_the_trunk() {
    let mut gw = Gw::new();
    gw.send(
        0,
        UAC,
        &invite("pu2", "+15551234", &sdp("10.0.0.1", 4000, "0 8 101", "")),
    );
    let inv_b = gw.take_to(CARRIER_A).pop().expect("INVITE to carrier-a");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv_b, 180, "Ringing", "ct", "127.0.0.1:5070", ""),
    );
    gw.take();
    let (session, port) = opened(&gw);
    let now = gw.now;
    gw.proxy
        .handle_media_event(now, session, Event::PortUnavailable { port });
    let out = gw.take();
    let fail = out
        .iter()
        .find(|(a, m)| *a == addr(UAC) && code(m) >= 500)
        .expect("a final failure to the caller");
    assert!(hv(&fail.1, HeaderName::Reason).contains("cause=503"));
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(CARRIER_A) && method(m) == "CANCEL"),
        "CANCEL to the trunk: {out:?}"
    );
}
