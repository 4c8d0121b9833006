//! Unit tests of [`super::Direction`]'s plan: what is passed through, what
//! is transcoded and which DTMF modes are in effect. The whole-call behaviour
//! is tested in `tests/media_transcode.rs` and `tests/media_dtmf.rs`.

use std::time::Duration;

use super::*;
use crate::media::PortPair;
use crate::media::codec::CodecKind;
use crate::media::rewrite::Codec;

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

/// Runs `pcm` (8 kHz) from B (PCMU, digits in-band) toward A (Opus, `a_mode`)
/// through a whole session; returns the telephone-event digits that reached
/// A, the INFO digits, and how many audio packets A got.
fn talk(pcm: &[i16], a_mode: DtmfMode) -> (usize, usize, usize) {
    use crate::media::codec::{AnyCodec, AudioCodec};
    use crate::media::{RelayConfig, RelaySession};
    let t0 = crate::media::test_epoch();
    let addr_a: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let addr_b: std::net::SocketAddr = "192.0.2.2:4000".parse().unwrap();
    let mut a = opus();
    a.remote_rtp = Some(addr_a);
    let mut b = leg(vec![Codec::new(0, "PCMU", 8000)]);
    b.ports.rtp = 2000;
    b.remote_rtp = Some(addr_b);
    let mut s = RelaySession::new(t0, RelayConfig::default(), a, b, 7);
    s.set_dtmf_mode(Leg::A, a_mode);
    s.set_dtmf_mode(Leg::B, DtmfMode::Inband);
    let mut enc = AnyCodec::new(CodecKind::Pcmu, 8000, "").unwrap();
    let (mut events, mut audio, mut info) = (0, 0, 0);
    let frames: Vec<&[i16]> = pcm.chunks_exact(160).collect();
    // 200 ms more after the last frame: audio still held for the detector
    // leaves.
    for i in 0..frames.len() + 10 {
        let now = t0 + Duration::from_millis(20 * i as u64);
        while let Some(t) = s.poll_timeout().filter(|&t| t <= now) {
            s.handle_timeout(t);
        }
        if let Some(f) = frames.get(i) {
            let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
            p[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            p[4..8].copy_from_slice(&(160 * i as u32).to_be_bytes());
            enc.encode(f, &mut p).unwrap();
            s.handle_packet(now, 2000, addr_b, &p).unwrap();
        }
        while let Some(t) = s.poll_transmit() {
            match t.bytes[1] & 0x7f {
                111 => audio += 1,
                // The start of an event (marker) is one digit.
                110 if t.bytes[1] & 0x80 != 0 => events += 1,
                _ => {}
            }
        }
        while let Some(e) = s.poll_event() {
            info += matches!(e, Event::Dtmf { .. }) as usize;
        }
    }
    (events, info, audio)
}

#[test]
fn no_false_digit_on_speech_or_music() {
    use crate::dtmf::testsig::{add_noise, digit_sequence, music_chords, speech_like};
    let speech = speech_like(8000, 20.0, 3);
    let music = music_chords(8000, 10.0);
    for (what, pcm) in [("speech", &speech), ("music", &music)] {
        for mode in [DtmfMode::Rfc4733, DtmfMode::Info] {
            let (events, info, audio) = talk(pcm, mode);
            eprintln!(
                "{what} toward {mode:?}: {events} event digits, {info} INFO digits, {audio} audio packets"
            );
            assert_eq!(
                (events, info),
                (0, 0),
                "{what}: false digits toward {mode:?}"
            );
            assert!(audio >= pcm.len() / 160 - 1, "{what}: audio not muted");
        }
    }
    // The same check hears real digits over speech (the detector runs).
    let mut mixed = speech[..8000 * 4].to_vec();
    let digits = digit_sequence(8000, "159#", 60, 200, 4000);
    for (m, d) in mixed.iter_mut().zip(&digits) {
        *m = (*m / 4).saturating_add(*d);
    }
    add_noise(&mut mixed, 50.0, 1);
    let (events, _, _) = talk(&mixed, DtmfMode::Rfc4733);
    let (_, info, _) = talk(&mixed, DtmfMode::Info);
    assert_eq!((events, info), (4, 4), "digits over speech");
}

#[test]
fn hostile_input_never_panics() {
    use crate::dtmf::RingbackPlan;
    use crate::media::{RelayConfig, RelaySession};
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let t0 = crate::media::test_epoch();
    let a_addr: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let b_addr: std::net::SocketAddr = "192.0.2.2:4000".parse().unwrap();
    let modes = [DtmfMode::Rfc4733, DtmfMode::Inband, DtmfMode::Info];
    for round in 0..9 {
        let mut a = opus();
        a.codecs.push(Codec::new(9, "G722", 8000));
        a.remote_rtp = Some(a_addr);
        let mut b = pcmu(Some(30));
        b.codecs.push(Codec::new(13, "CN", 8000));
        b.ports.rtp = 2000;
        b.remote_rtp = Some(b_addr);
        let mut s = RelaySession::new(t0, RelayConfig::default(), a, b, round);
        s.set_dtmf_mode(Leg::A, modes[round as usize % 3]);
        s.set_dtmf_mode(Leg::B, modes[round as usize / 3]);
        let mut now = t0;
        for i in 0..3000u32 {
            now += Duration::from_micros(rnd() % 30_000);
            let from_a = rnd() % 2 == 0;
            let pts: &[u8] = if from_a {
                &[111, 110, 9, 0, 77]
            } else {
                &[0, 101, 13, 111]
            };
            let pt = pts[(rnd() % pts.len() as u64) as usize];
            let mut p = vec![0x80, pt | ((rnd() % 2) as u8) << 7];
            // Mostly in order, sometimes jumping or repeating.
            let seq = match rnd() % 10 {
                0 => rnd() as u16,
                1 => i.wrapping_sub(3) as u16,
                _ => i as u16,
            };
            let ts = match rnd() % 10 {
                0 => rnd() as u32,
                _ => i.wrapping_mul(160),
            };
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&((rnd() % 3) as u32).to_be_bytes());
            let len = (rnd() % 300) as usize;
            p.extend((0..len).map(|_| rnd() as u8));
            if pt == 110 || pt == 101 {
                // Plausible events now and then: digit, end bit, duration.
                if p.len() >= 16 && rnd() % 2 == 0 {
                    p[12] = (rnd() % 20) as u8;
                    p.truncate(16);
                }
            }
            let (port, addr) = if from_a {
                (1000, a_addr)
            } else {
                (2000, b_addr)
            };
            let _ = s.handle_packet(now, port, addr, &p);
            match rnd() % 200 {
                0 => s.send_dtmf(
                    now,
                    Leg::A,
                    ['1', '#', 'D', 'x'][(rnd() % 4) as usize],
                    (rnd() % 9000) as u32,
                ),
                1 => s.send_dtmf(now, Leg::B, '5', (rnd() % 100) as u32),
                2 => s.ringback(now, Leg::A, Some(&RingbackPlan::Uk)),
                3 => s.ringback(now, Leg::B, None),
                4 => s.set_dtmf_mode(Leg::B, modes[(rnd() % 3) as usize]),
                _ => {}
            }
            while let Some(t) = s.poll_timeout().filter(|&t| t <= now) {
                s.handle_timeout(t);
            }
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        }
    }
}
