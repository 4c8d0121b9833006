//! Offer/answer when the caller and the trunk share no codec: the gateway
//! offers the trunk codecs it can transcode to instead of letting the call
//! fail with 488, answers the caller in the caller's own codec, and tells
//! the media plane each leg's exact codec list (which makes it transcode).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod b2bua_sim;

use b2bua_sim::*;
use callgate::media::{Leg, MediaCommand};

const OPUS_ONLY: &str = "v=0
o=webrtc 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 4000 RTP/AVP 111 110
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:110 telephone-event/48000
a=sendrecv
";

fn leg_codecs(gw: &Gw, leg: Leg) -> Vec<String> {
    gw.media
        .iter()
        .rev()
        .find_map(|m| match m {
            MediaCommand::UpdateLeg { leg: l, codecs, .. } if *l == leg => Some(
                codecs
                    .iter()
                    .map(|c| format!("{}/{}/{}", c.payload_type, c.name, c.clock_rate))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn opus_caller_and_g711_trunk_get_a_transcoded_call() {
    let mut gw = Gw::new();
    gw.send(0, UAC, &invite("x1", "+15551234", OPUS_ONLY));
    let inv = gw.take_to(CARRIER_A).remove(0);
    let offer = body(&inv);
    assert!(
        offer.contains("m=audio 20002 RTP/AVP 111 110 0 8 96"),
        "G.711 and telephone-event/8000 added for transcoding: {offer}"
    );
    assert!(
        offer.contains("a=rtpmap:96 telephone-event/8000"),
        "{offer}"
    );
    // A G.711-only carrier answers PCMA.
    let answer = sdp("10.0.0.2", 6000, "8 101", "");
    gw.send(
        1,
        CARRIER_A,
        &reply(&inv, 200, "OK", "bt", "127.0.0.1:5070", &answer),
    );
    let ok = gw
        .take_to(UAC)
        .into_iter()
        .find(|m| code(m) == 200)
        .expect("200, not 488");
    let to_caller = body(&ok);
    assert!(
        to_caller.contains("m=audio 20000 RTP/AVP 111 110"),
        "answered in opus: {to_caller}"
    );
    assert!(
        to_caller.contains("a=rtpmap:111 opus/48000/2"),
        "{to_caller}"
    );
    assert!(!to_caller.contains("PCMA"), "{to_caller}");
    // Each leg lists exactly its own codecs: the media plane transcodes.
    assert_eq!(
        leg_codecs(&gw, Leg::A),
        vec!["111/opus/48000", "110/telephone-event/48000"]
    );
    assert_eq!(
        leg_codecs(&gw, Leg::B),
        vec!["8/PCMA/8000", "101/telephone-event/8000"]
    );
    assert_eq!(
        gw.proxy.calls()[0].legs[0].codecs,
        vec!["opus/48000", "telephone-event/48000"]
    );
    assert_eq!(
        gw.proxy.calls()[0].legs[1].codecs,
        vec!["PCMA/8000", "telephone-event/8000"]
    );
}

#[test]
fn shared_codec_is_relayed_not_transcoded() {
    let mut gw = Gw::new();
    let both = OPUS_ONLY.replace("RTP/AVP 111 110", "RTP/AVP 111 0 110");
    gw.send(0, UAC, &invite("x2", "+15551234", &both));
    let inv = gw.take_to(CARRIER_A).remove(0);
    let offer = body(&inv);
    assert!(
        offer.contains("RTP/AVP 111 0 110 96"),
        "no G.711 added, caller has PCMU: {offer}"
    );
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
    assert!(
        body(&ok).contains("m=audio 20000 RTP/AVP 0"),
        "{}",
        body(&ok)
    );
    assert!(leg_codecs(&gw, Leg::A).contains(&"0/PCMU/8000".to_string()));
    assert!(leg_codecs(&gw, Leg::B).contains(&"0/PCMU/8000".to_string()));
}

#[test]
fn trunk_codec_list_is_offered_in_its_order() {
    let plan = PLAN.replace(
        "{ name: carrier-a, address: \"127.0.0.1:5070\" }",
        "{ name: carrier-a, address: \"127.0.0.1:5070\", codecs: [PCMA, PCMU] }",
    );
    let mut gw = Gw::with_plan(&plan);
    gw.send(0, UAC, &invite("x3", "+15551234", OPUS_ONLY));
    let inv = gw.take_to(CARRIER_A).remove(0);
    let offer = body(&inv);
    assert!(
        offer.contains("m=audio 20002 RTP/AVP 8 0 "),
        "trunk order, opus dropped: {offer}"
    );
    assert!(!offer.contains("opus"), "{offer}");
}
