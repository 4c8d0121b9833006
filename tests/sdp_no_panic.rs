//! No-panic sweep over the SDP fixtures: every prefix and every single-byte
//! substitution parses to Ok or Err; whatever parses survives the rewrites,
//! offer/answer, and re-parses to the same model.

use callgate::sdp::{
    AnswerParams, Codec, Sdp, anchor, answer_for, filter_codecs, negotiated, order_codecs,
    strip_for_plain_rtp_trunk,
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

const REPLACEMENTS: &[u8] = b"\0 \n=:/9\xff";

fn exercise(input: &[u8]) {
    let Ok(sdp) = Sdp::parse(input) else {
        return;
    };
    let out = sdp.to_bytes();
    assert_eq!(
        Sdp::parse(&out).as_ref(),
        Ok(&sdp),
        "re-parse of {:?}",
        String::from_utf8_lossy(input)
    );
    for pt in sdp.media().iter().flat_map(|m| m.payload_types()) {
        assert!(!pt.encoding.is_empty());
    }
    let ports = [1000, 1002, 1004];
    let relay = "203.0.113.1".parse().unwrap();
    for rewritten in [
        anchor(&sdp, relay, &ports),
        strip_for_plain_rtp_trunk(&sdp),
        filter_codecs(&sdp, |p| p.pt % 2 == 0),
        order_codecs(&sdp, &["PCMA"]),
    ] {
        Sdp::parse(&rewritten.to_bytes()).expect("a rewrite stays parseable");
    }
    let caps = [Codec::pcmu(), Codec::opus(), Codec::telephone_event(8000)];
    let params = AnswerParams {
        srtp_key: Some("a2V5".into()),
        ..AnswerParams::new(relay, vec![2000; sdp.media().len()])
    };
    if let Ok(answer) = answer_for(&sdp, &caps, params) {
        Sdp::parse(&answer.to_bytes()).expect("an answer parses");
        negotiated(&sdp, &answer);
    }
}

fn fixtures() -> impl Iterator<Item = Vec<u8>> {
    FIXTURES.iter().map(|name| {
        let path = format!("{}/sip-fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

#[test]
fn every_truncation_is_ok_or_err() {
    let mut runs = 0;
    for input in fixtures() {
        for end in 0..=input.len() {
            exercise(&input[..end]);
            runs += 1;
        }
    }
    assert!(runs > 4_000, "{runs}");
}

#[test]
fn every_single_byte_substitution_is_ok_or_err() {
    let mut runs = 0;
    for input in fixtures() {
        let mut mutated = input.clone();
        for i in 0..input.len() {
            for &b in REPLACEMENTS {
                mutated[i] = b;
                exercise(&mutated);
                runs += 1;
            }
            mutated[i] = input[i];
        }
    }
    assert!(runs > 30_000, "{runs}");
}
