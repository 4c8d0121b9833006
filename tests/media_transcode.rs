//! Transcoding through a whole `RelaySession` in simulated time: a WebRTC-like
//! Opus leg (PT 111, 48 kHz, 20 ms) against a carrier PCMU leg, real packets
//! both ways. Each received stream must be one continuous RTP stream (one
//! SSRC, sequence +1, timestamps advancing by exactly the audio carried) and
//! decode to the tone that was sent; ptime 20 ↔ 30 is converted; loss and
//! reordering are concealed without breaking the outgoing stream.
#![allow(clippy::disallowed_methods)]

mod media_util;

use std::time::Duration;

use callgate::media::codec::CodecKind;
use callgate::media::rtp::{parse_rtp, rtp_payload};
use callgate::media::{Codec, Leg};
use media_util::*;

const SECS: f64 = 2.0;

/// A tone each way through an Opus ↔ PCMU call; returns what each side got.
fn opus_pcmu_call(b_ptime: u32) -> (Call, Vec<i16>, Vec<i16>) {
    let mut call = Call::new(opus_leg(), pcmu_leg(Some(b_ptime)));
    let t0 = call.t0;
    let mut opus = Source::new(CodecKind::Opus, 48000, 111, 0xA1, 20);
    let mut pcmu = Source::new(CodecKind::Pcmu, 8000, 0, 0xB1, b_ptime);
    let a_pcm = tone(48000, 1004.0, 8000.0, (48000.0 * SECS) as usize);
    let b_pcm = tone(8000, 697.0, 8000.0, (8000.0 * SECS) as usize);
    let mut script = opus.packets(t0, Leg::A, &a_pcm);
    script.extend(pcmu.packets(t0 + Duration::from_millis(7), Leg::B, &b_pcm));
    call.play(script, t0 + Duration::from_secs(3));
    let at_b = decode_stream(&call.to_b, 0, 8000, 8000);
    let at_a = decode_stream(&call.to_a, 111, 48000, 48000);
    (call, at_a, at_b)
}

#[test]
fn opus_to_pcmu_and_back_is_the_same_tone_in_one_continuous_stream() {
    let (call, at_a, at_b) = opus_pcmu_call(20);
    // Continuity: one SSRC per direction, sequence +1, timestamps exact.
    let ssrc_b = check_stream(&call.to_b, 0, 8000, 8000, false);
    let ssrc_a = check_stream(&call.to_a, 111, 48000, 48000, false);
    assert_ne!(ssrc_a, ssrc_b);
    assert_ne!(ssrc_b, 0xA1, "our own SSRC toward B");
    // Every 20 ms in produced 20 ms out (nothing lost, nothing added).
    let n_in = (SECS * 50.0) as usize;
    assert!(
        call.to_b.len().abs_diff(n_in) <= 1,
        "{} to B",
        call.to_b.len()
    );
    assert!(
        call.to_a.len().abs_diff(n_in) <= 1,
        "{} to A",
        call.to_a.len()
    );
    for g in &call.to_b {
        assert_eq!(rtp_payload(&g.bytes).len(), 160, "20 ms of PCMU");
        assert_eq!(parse_rtp(&g.bytes).unwrap().payload_type, 0);
    }
    // The tones, measured over a steady stretch (codec start-up skipped).
    let (snr_b, amp_b) = sine_snr(&at_b[4000..12000], 8000, 1004.0);
    let (snr_a, amp_a) = sine_snr(&at_a[24000..72000], 48000, 697.0);
    eprintln!("Opus->PCMU 1004 Hz: SNR {snr_b:.1} dB, level {amp_b:.0}/8000");
    eprintln!("PCMU->Opus 697 Hz: SNR {snr_a:.1} dB, level {amp_a:.0}/8000");
    assert!(snr_b > 25.0, "Opus->PCMU SNR {snr_b:.1} dB");
    assert!(snr_a > 20.0, "PCMU->Opus SNR {snr_a:.1} dB");
    for amp in [amp_a, amp_b] {
        assert!((5600.0..11000.0).contains(&amp), "level {amp}");
    }
    // Negative checks: the judge fails the wrong tone and the wrong law.
    assert!(sine_snr(&at_b[4000..12000], 8000, 1040.0).0 < 3.0);
    let garbled: Vec<i16> = at_b
        .iter()
        .map(|&s| {
            callgate::media::codec::g711::alaw_decode(callgate::media::codec::g711::ulaw_encode(s))
        })
        .collect();
    assert!(sine_snr(&garbled[4000..12000], 8000, 1004.0).0 < 10.0);
    let st = call.s.stats(Leg::A);
    assert_eq!((st.dropped_late, st.concealed_packets), (0, 0));
    assert!(st.transcoded_packets >= n_in as u64 - 1);
}

#[test]
fn ptime_20_to_30_and_back() {
    let (call, at_a, at_b) = opus_pcmu_call(30);
    check_stream(&call.to_b, 0, 8000, 8000, false);
    check_stream(&call.to_a, 111, 48000, 48000, false);
    // Toward B: 30 ms packets (its a=ptime); toward A: Opus at 20 ms.
    for g in &call.to_b {
        assert_eq!(rtp_payload(&g.bytes).len(), 240, "30 ms of PCMU");
    }
    let steps: Vec<u32> = call
        .to_a
        .windows(2)
        .map(|w| {
            parse_rtp(&w[1].bytes).unwrap().timestamp - parse_rtp(&w[0].bytes).unwrap().timestamp
        })
        .collect();
    assert!(
        steps.iter().all(|&s| s == 960),
        "20 ms Opus steps: {steps:?}"
    );
    // 2 s in: 100 Opus packets make 66 PCMU packets; 66 PCMU make 99 Opus.
    assert!((65..=67).contains(&call.to_b.len()), "{}", call.to_b.len());
    assert!((98..=100).contains(&call.to_a.len()), "{}", call.to_a.len());
    let (snr_b, _) = sine_snr(&at_b[4000..12000], 8000, 1004.0);
    let (snr_a, _) = sine_snr(&at_a[24000..72000], 48000, 697.0);
    eprintln!("ptime 20->30: SNR {snr_b:.1} dB; 30->20: {snr_a:.1} dB");
    assert!(snr_b > 25.0 && snr_a > 20.0);
    // A 30 ms packet never leaves before its audio has arrived: each goes out
    // with the 20 ms Opus packet that completes it.
    let t0 = call.t0;
    for (i, g) in call.to_b.iter().enumerate() {
        // The Opus packet (every 20 ms) that brings its last sample.
        let k = (30 * (i as u64 + 1) - 20).div_ceil(20);
        let due = t0 + Duration::from_millis(20 * k);
        assert!(g.at >= due, "packet {i} sent early");
        assert!(
            g.at <= due + Duration::from_millis(20),
            "packet {i} held too long"
        );
    }
}

#[test]
fn loss_and_reordering_are_concealed_in_a_continuous_stream() {
    let mut call = Call::new(opus_leg(), pcmu_leg(None));
    let t0 = call.t0;
    let mut opus = Source::new(CodecKind::Opus, 48000, 111, 0xA1, 20);
    let a_pcm = tone(48000, 1004.0, 8000.0, 48000 * 2);
    let mut script = opus.packets(t0, Leg::A, &a_pcm);
    // Lose packets 30 and 60-61; swap 40 and 41 (41 arrives 5 ms early,
    // 40 right after); packet 80 comes 100 ms late (after its window).
    script.remove(61);
    script.remove(60);
    script.remove(30);
    let i40 = script
        .iter()
        .position(|s| parse_rtp(&s.2).unwrap().sequence == 1040)
        .unwrap();
    script[i40].0 += Duration::from_millis(25);
    let i80 = script
        .iter()
        .position(|s| parse_rtp(&s.2).unwrap().sequence == 1080)
        .unwrap();
    script[i80].0 += Duration::from_millis(100);
    call.play(script, t0 + Duration::from_secs(3));
    check_stream(&call.to_b, 0, 8000, 8000, false);
    let st = *call.s.stats(Leg::A);
    eprintln!(
        "loss: {} concealed, {} late, {} sent",
        st.concealed_packets, st.dropped_late, st.transcoded_packets
    );
    assert_eq!(st.concealed_packets, 4, "30, 60, 61 lost, 80 given up");
    assert_eq!(
        st.dropped_late, 1,
        "80 arrived after its place was concealed"
    );
    assert_eq!(
        call.to_b.len(),
        100,
        "every 20 ms of the source is sent once"
    );
    let at_b = decode_stream(&call.to_b, 0, 8000, 8000);
    let (snr, amp) = sine_snr(&at_b[4000..14000], 8000, 1004.0);
    let frame = |k: usize| sine_snr(&at_b[160 * k..160 * (k + 1)], 8000, 1004.0);
    let per: Vec<(usize, f64, f64)> = [30, 40, 41, 60, 61, 80]
        .into_iter()
        .map(|k| (k, frame(k).0, frame(k).1))
        .collect();
    eprintln!("with loss: SNR {snr:.1} dB; frames (index, SNR, level): {per:.1?}");
    assert!(snr > 10.0, "concealed tone SNR {snr:.1} dB");
    for (k, snr, level) in per {
        // Single losses (30, 80) and the reordered pair are seamless; the
        // two-packet burst (60, 61) is concealed, not silent (the Opus PLC
        // fades a long loss).
        let min_snr = if k == 60 || k == 61 { 0.0 } else { 20.0 };
        assert!(snr > min_snr, "frame {k}: SNR {snr:.1} dB");
        assert!(level > amp / 5.0, "frame {k}: level {level:.0}: silence");
    }
    // The judge fails silence where a frame was lost.
    let mut muted = at_b.clone();
    muted[160 * 30..160 * 31].fill(0);
    assert!(sine_snr(&muted[160 * 30..160 * 31], 8000, 1004.0).1 < amp / 5.0);
}

#[test]
fn shared_codec_passes_through_without_decoding() {
    // Both legs offer PCMU: Opus on A is never used, packets pass unchanged.
    let mut a = opus_leg();
    a.push(Codec::new(0, "PCMU", 8000));
    let mut call = Call::new(a, pcmu_leg(None));
    let t0 = call.t0;
    let mut pcmu = Source::new(CodecKind::Pcmu, 8000, 0, 0xA1, 20);
    let script = pcmu.packets(t0, Leg::A, &tone(8000, 440.0, 5000.0, 8000));
    let sent: Vec<Vec<u8>> = script.iter().map(|s| s.2.clone()).collect();
    call.play(script, t0 + Duration::from_secs(2));
    assert_eq!(call.to_b.len(), sent.len());
    for (got, sent) in call.to_b.iter().zip(&sent) {
        assert_eq!(got.bytes[12..], sent[12..], "payload untouched");
        assert_eq!(
            got.bytes[2..8],
            sent[2..8],
            "first source keeps its numbering"
        );
    }
    let st = call.s.stats(Leg::A);
    assert_eq!((st.transcoded_packets, st.generated_packets), (0, 0));
}

/// A tone each way between legs `a` and `b`; the SNRs each side measures.
fn tone_both_ways(
    a: (Vec<Codec>, CodecKind, u32, u8, u32),
    b: (Vec<Codec>, CodecKind, u32, u8, u32),
) -> (f64, f64) {
    let mut call = Call::new(a.0, b.0);
    let t0 = call.t0;
    let mut sa = Source::new(a.1, a.2, a.3, 0xA1, 20);
    let mut sb = Source::new(b.1, b.2, b.3, 0xB1, 20);
    let mut script = sa.packets(t0, Leg::A, &tone(a.2, 1004.0, 8000.0, a.2 as usize * 2));
    script.extend(sb.packets(
        t0 + Duration::from_millis(3),
        Leg::B,
        &tone(b.2, 697.0, 8000.0, b.2 as usize * 2),
    ));
    call.play(script, t0 + Duration::from_secs(3));
    let (rate_a, rate_b) = (a.2.min(16000), b.2.min(16000));
    check_stream(&call.to_b, b.3, b.4, rate_b, false);
    check_stream(&call.to_a, a.3, a.4, rate_a, false);
    let at_b = decode_stream(&call.to_b, b.3, b.4, rate_b);
    let at_a = decode_stream(&call.to_a, a.3, a.4, rate_a);
    let steady = |x: &[i16], r: u32| x[r as usize / 2..r as usize * 3 / 2].to_vec();
    (
        sine_snr(&steady(&at_b, rate_b), rate_b, 1004.0).0,
        sine_snr(&steady(&at_a, rate_a), rate_a, 697.0).0,
    )
}

#[test]
fn g722_toward_opus_at_16k_and_toward_g711_through_the_resampler() {
    let g722 = || {
        vec![
            Codec::new(9, "G722", 8000),
            Codec::new(101, "telephone-event", 8000),
        ]
    };
    let pcma = || vec![Codec::new(8, "PCMA", 8000)];
    // Opus (48 kHz source) <-> G.722: Opus runs at 16 kHz, no resampling.
    let (to_g722, to_opus) = tone_both_ways(
        (opus_leg(), CodecKind::Opus, 48000, 111, 48000),
        (g722(), CodecKind::G722, 16000, 9, 8000),
    );
    eprintln!("Opus->G722 {to_g722:.1} dB, G722->Opus {to_opus:.1} dB");
    // (Opus keeps a pure tone at ~18-22 dB at these bitrates.)
    assert!(to_g722 > 25.0 && to_opus > 15.0);
    // PCMA <-> G.722: 8 <-> 16 kHz through the resampler.
    let (to_g722, to_pcma) = tone_both_ways(
        (pcma(), CodecKind::Pcma, 8000, 8, 8000),
        (g722(), CodecKind::G722, 16000, 9, 8000),
    );
    eprintln!("PCMA->G722 {to_g722:.1} dB, G722->PCMA {to_pcma:.1} dB");
    assert!(to_g722 > 25.0 && to_pcma > 25.0);
}
