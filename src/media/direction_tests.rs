//! Unit tests of [`super::Direction`]'s plan: what is passed through, what
//! is transcoded and which DTMF modes are in effect. The whole-call behaviour
//! is tested in `tests/media_transcode.rs` and `tests/media_dtmf.rs`.

use super::*;
use crate::media::PortPair;

fn leg(codecs: Vec<Codec>) -> LegConfig {
    LegConfig {
        ports: PortPair {
            rtp: 1000,
            rtcp: None,
        },
        remote_rtp: None,
        remote_rtcp: None,
        codecs,
    }
}

fn opus() -> LegConfig {
    leg(vec![
        Codec::new(111, "opus", 48000).with_fmtp("useinbandfec=1"),
        Codec::new(110, "telephone-event", 48000),
    ])
}

fn pcmu(ptime: Option<u32>) -> LegConfig {
    leg(vec![
        Codec::new(0, "PCMU", 8000).with_ptime(ptime),
        Codec::new(101, "telephone-event", 8000),
    ])
}

#[test]
fn transcodes_only_what_the_other_leg_lacks() {
    use DtmfMode::*;
    let (p, maps) = Plan::new(&opus(), Rfc4733, &pcmu(Some(30)), Rfc4733);
    assert!(
        maps.is_empty(),
        "no codec in common, and 48000 ≠ 8000 events"
    );
    assert!(!p.first_passes && !p.detect);
    let sink = p.sink.clone().unwrap();
    assert_eq!(
        (sink.kind, sink.payload_type, sink.ptime_ms),
        (CodecKind::Pcmu, 0, 30)
    );
    assert_eq!(p.sink_event, Some((101, 8000)));
    assert_eq!(p.kind(111), Some(SrcKind::Audio(CodecKind::Opus)));
    assert_eq!(p.kind(110), Some(SrcKind::Event(48000)));
    assert_eq!(p.kind(0), None);
    // Toward the Opus leg: its fmtp goes to the encoder.
    let (p, _) = Plan::new(&pcmu(None), Rfc4733, &opus(), Rfc4733);
    assert_eq!(p.sink.unwrap().fmtp, "useinbandfec=1");
    // A shared codec passes, events of the same rate too.
    let mut both = opus();
    both.codecs.push(Codec::new(0, "PCMU", 8000));
    both.codecs.push(Codec::new(96, "telephone-event", 8000));
    let (p, maps) = Plan::new(&pcmu(None), Rfc4733, &both, Rfc4733);
    assert!(p.first_passes);
    assert_eq!(
        maps.iter().map(|m| (m.from, m.to)).collect::<Vec<_>>(),
        [(0, 0), (101, 96)]
    );
    // ... but not when one side's digits are in-band: they are converted.
    let (_, maps) = Plan::new(&pcmu(None), Inband, &both, Rfc4733);
    assert_eq!(maps.iter().map(|m| m.from).collect::<Vec<_>>(), [0]);
}

#[test]
fn effective_dtmf_modes() {
    use DtmfMode::*;
    let bare = leg(vec![Codec::new(8, "PCMA", 8000)]);
    // RFC 4733 toward a leg without telephone-event: tones instead.
    let (p, _) = Plan::new(&opus(), Rfc4733, &bare, Rfc4733);
    assert_eq!(
        (p.src_mode, p.sink_mode, p.detect),
        (Rfc4733, Inband, false)
    );
    // From such a leg: its digits are in its audio, so they are detected.
    let (p, _) = Plan::new(&bare, Rfc4733, &opus(), Rfc4733);
    assert_eq!((p.src_mode, p.sink_mode, p.detect), (Inband, Rfc4733, true));
    let (p, _) = Plan::new(&bare, Inband, &opus(), Info);
    assert!(p.detect);
    let (p, _) = Plan::new(&bare, Inband, &bare, Inband);
    assert!(!p.detect, "tones pass as audio");
    let (p, _) = Plan::new(&opus(), Info, &pcmu(None), Info);
    assert_eq!((p.src_mode, p.sink_mode, p.detect), (Info, Info, false));
}
