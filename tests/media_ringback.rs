//! Ringback injection through a whole `RelaySession` in simulated time: the
//! tone on the wire toward the caller is the plan's (frequencies, level and
//! cadence), in the caller's codec at its ptime under our own SSRC, until
//! `Ringback(None)` or until real RTP from the callee (early media wins),
//! after which the callee's audio follows in the same continuous stream.
#![allow(clippy::disallowed_methods)]

mod media_util;

use std::time::Duration;

use callgate::dtmf::{Cadence, RingbackPlan};
use callgate::media::codec::CodecKind;
use callgate::media::rtp::parse_rtp;
use callgate::media::{Codec, Leg};
use media_util::*;

const RATE: u32 = 8000;
/// -19 dBm0 (the plans' level) as a peak amplitude.
const LEVEL: f64 = 22735.0 * 0.112_201_845; // 10^(-19/20)

/// On/off per 50 ms window of `pcm` (8 kHz), by energy.
fn on_off(pcm: &[i16]) -> Vec<bool> {
    pcm.chunks(400)
        .map(|c| {
            let e = c.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / c.len() as f64;
            e.sqrt() > LEVEL / 10.0
        })
        .collect()
}

/// The plan's cadence as on/off per 50 ms window, for `windows` windows.
fn expected(plan: &RingbackPlan, windows: usize) -> Vec<bool> {
    let (_, _, Cadence(steps)) = plan.parts();
    let mut v = Vec::new();
    while v.len() < windows {
        for &(on, off) in &steps {
            v.extend(std::iter::repeat_n(true, (on / 50) as usize));
            v.extend(std::iter::repeat_n(false, (off / 50) as usize));
        }
    }
    v.truncate(windows);
    v
}

/// Matches `got` against the plan's cadence, ignoring the windows next to a
/// transition (the codec's delay smears them). Returns the mismatches.
fn cadence_errors(got: &[bool], want: &[bool]) -> usize {
    (1..got.len().min(want.len()) - 1)
        .filter(|&i| want[i - 1] == want[i] && want[i] == want[i + 1] && got[i] != want[i])
        .count()
}

/// Ringback toward A for `secs`, A's codecs `a`; returns A's decoded audio.
fn ringback(a: Vec<Codec>, pt: u8, clock: u32, plan: &RingbackPlan, secs: u64) -> (Call, Vec<i16>) {
    let mut call = Call::new(a, Vec::new());
    call.s.ringback(call.now, Leg::A, Some(plan));
    assert!(call.s.ringback_playing(Leg::A));
    let end = call.t0 + Duration::from_secs(secs);
    call.advance(end);
    check_stream(&call.to_a, pt, clock, RATE, false);
    assert!(call.to_b.is_empty());
    let pcm = decode_stream(&call.to_a, pt, clock, RATE);
    (call, pcm)
}

#[test]
fn uk_and_us_ringback_on_the_wire_match_the_plan() {
    for (a, pt, clock, name) in [
        (opus_leg(), 111, 48000, "Opus"),
        (pcmu_leg(Some(30)), 0, 8000, "PCMU/30ms"),
    ] {
        for plan in [RingbackPlan::Uk, RingbackPlan::Us] {
            let (call, pcm) = ringback(a.clone(), pt, clock, &plan, 7);
            // 7 s of 20 ms (Opus) or 30 ms (PCMU, its ptime) packets.
            let ptime = if pt == 0 { 30 } else { 20 };
            let n = call.to_a.len();
            assert!(n.abs_diff(7000 / ptime) <= 1, "{name}: {n} packets");
            let step = parse_rtp(&call.to_a[1].bytes).unwrap().timestamp
                - parse_rtp(&call.to_a[0].bytes).unwrap().timestamp;
            assert_eq!(step, clock / 1000 * ptime as u32, "{name}: ptime");
            // Cadence.
            let got = on_off(&pcm);
            let want = expected(&plan, got.len());
            let errors = cadence_errors(&got, &want);
            assert_eq!(
                errors, 0,
                "{name} {plan:?}: cadence\n got {got:?}\nwant {want:?}"
            );
            // The negative check: the other plan's cadence does not fit.
            let other = if plan == RingbackPlan::Uk {
                RingbackPlan::Us
            } else {
                RingbackPlan::Uk
            };
            assert!(cadence_errors(&got, &expected(&other, got.len())) > 5);
            // Frequencies and level over the first burst (skip 50 ms).
            let (freqs, _, _) = plan.parts();
            let burst = &pcm[400..2800];
            let p: Vec<f64> = freqs
                .iter()
                .map(|&f| power_at(burst, RATE, f as f64))
                .collect();
            let off: Vec<f64> = [350.0, 425.0, 620.0, 1000.0]
                .iter()
                .filter(|&&f| freqs.iter().all(|&g| (g as f64 - f).abs() > 10.0))
                .map(|&f| power_at(burst, RATE, f))
                .collect();
            let amp: Vec<f64> = p.iter().map(|p| 2.0 * p.sqrt()).collect();
            eprintln!(
                "{name} {plan:?}: amplitudes {amp:.0?} (plan {LEVEL:.0}), off-tone power {:.1e} vs {:.1e}",
                off.iter().cloned().fold(0.0, f64::max),
                p[0]
            );
            for a in &amp {
                assert!(
                    (LEVEL * 0.7..LEVEL * 1.3).contains(a),
                    "{name}: level {a:.0}"
                );
            }
            for o in &off {
                assert!(
                    *o < p.iter().cloned().fold(f64::MAX, f64::min) / 100.0,
                    "{name}: energy off the plan's tones"
                );
            }
            assert_eq!(call.s.stats(Leg::B).generated_packets as usize, n);
        }
    }
}

#[test]
fn custom_plan_and_stop_command() {
    let plan = RingbackPlan::Custom {
        freqs: vec![1000.0],
        level_dbm0: -19.0,
        cadence: Cadence(vec![(500, 500)]),
    };
    let mut call = Call::new(pcmu_leg(None), Vec::new());
    call.s.ringback(call.now, Leg::A, Some(&plan));
    call.advance(call.t0 + Duration::from_millis(1990));
    call.s.ringback(call.now, Leg::A, None);
    assert!(!call.s.ringback_playing(Leg::A));
    let sent = call.to_a.len();
    assert_eq!(sent, 100, "2 s of 20 ms packets");
    call.advance(call.t0 + Duration::from_secs(5));
    assert_eq!(call.to_a.len(), sent, "nothing after Ringback(None)");
    let pcm = decode_stream(&call.to_a, 0, 8000, RATE);
    assert_eq!(cadence_errors(&on_off(&pcm), &expected(&plan, 40)), 0);
    let (snr, _) = sine_snr(&pcm[400..3600], RATE, 1000.0);
    assert!(snr > 30.0, "1 kHz ringback SNR {snr:.1}");
}

#[test]
fn early_media_stops_ringback_in_one_continuous_stream() {
    for (a, pt, clock, rate) in [
        (opus_leg(), 111, 48000, 48000),
        (pcmu_leg(None), 0, 8000, 8000),
    ] {
        let mut call = Call::new(a, Vec::new());
        call.s.ringback(call.now, Leg::A, Some(&RingbackPlan::Eu));
        call.advance(call.t0 + Duration::from_millis(2503));
        // The callee answers with early media: its codecs, then its RTP.
        call.s
            .update_leg(Leg::B, Some(b_addr()), None, pcmu_leg(None));
        // A stray packet of a payload type B never negotiated does not count.
        call.send(Leg::B, &rtp(96, false, 1, 1, 0xB0, &[0; 20]));
        assert!(call.s.ringback_playing(Leg::A));
        let mut src = Source::new(CodecKind::Pcmu, 8000, 0, 0xB0, 20);
        let start = call.now;
        let script = src.packets(start, Leg::B, &tone(8000, 1004.0, 8000.0, 8000 * 2));
        call.play(script, start + Duration::from_secs(3));
        assert!(!call.s.ringback_playing(Leg::A), "early media stopped it");
        // One SSRC, sequence +1, timestamps never overlapping across the switch.
        check_stream(&call.to_a, pt, clock, rate, true);
        let rb = call.s.stats(Leg::B).generated_packets as usize;
        assert_eq!(rb, 126, "ringback ticks at 0, 20, ..., 2500 ms only");
        // After the switch A hears the callee's tone, no more ringback.
        let pcm = decode_stream(&call.to_a[rb + 10..], pt, clock, RATE);
        let steady = &pcm[1600..pcm.len() - 1600];
        let (snr, _) = sine_snr(steady, RATE, 1004.0);
        // (Opus at 20 kbit/s narrowband keeps a pure tone at ~19-22 dB.)
        assert!(snr > 15.0, "{pt}: callee's tone SNR {snr:.1} dB");
        assert!(power_at(steady, RATE, 425.0) < power_at(steady, RATE, 1004.0) / 1000.0);
    }
}
