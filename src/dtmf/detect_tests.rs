//! The Q.24 test matrix of the detector: timing, frequency tolerance, twist,
//! level, noise, talk-off on speech and music, and through G.711.

use super::*;
use crate::dtmf::generate::ToneGenerator;
use crate::dtmf::testsig::{add_noise, digit_sequence, music_chords, speech_like};

const ALL: &str = "0123456789*#ABCD";

fn detector(rate: u32) -> Detector {
    Detector::new(DetectorConfig {
        sample_rate: rate,
        ..DetectorConfig::default()
    })
}

/// Runs the detector over `pcm` in 20 ms frames (plus trailing silence) and
/// returns the digits begun, checking each is ended once, in order.
fn detect(rate: u32, pcm: &[i16]) -> (String, Vec<u64>) {
    let mut det = detector(rate);
    let mut pcm = pcm.to_vec();
    pcm.extend(std::iter::repeat_n(0, rate as usize / 10));
    let (mut digits, mut durations, mut open) = (String::new(), Vec::new(), None);
    for frame in pcm.chunks(rate as usize / 50) {
        det.push(frame);
        while let Some(ev) = det.poll_event() {
            match ev {
                DtmfEvent::Began { digit, .. } => {
                    assert_eq!(open, None, "began {digit} inside another digit");
                    open = Some(digit);
                    digits.push(digit.to_char());
                }
                DtmfEvent::Ended {
                    digit, duration, ..
                } => {
                    assert_eq!(open.take(), Some(digit), "end without start");
                    durations.push(duration * 1000 / rate as u64);
                }
            }
        }
    }
    assert_eq!(open, None, "digit never ended");
    (digits, durations)
}

fn tone(rate: u32, f: (f32, f32), levels: (f32, f32), ms: u32, lead: usize) -> Vec<i16> {
    let n = (rate * ms / 1000) as usize;
    let mut g = ToneGenerator::new(
        rate,
        &[(f.0, levels.0), (f.1, levels.1)],
        &crate::dtmf::generate::Cadence::continuous(),
    );
    let mut pcm = vec![0; lead];
    g.generate(n, &mut pcm);
    pcm.resize(pcm.len() + rate as usize / 10, 0);
    pcm
}

#[test]
fn all_digits_at_40_on_40_off_at_any_alignment() {
    for rate in [8000, 16000] {
        for lead in (0..102 * rate as usize / 8000).step_by(17) {
            let pcm = digit_sequence(rate, ALL, 40, 40, lead);
            assert_eq!(detect(rate, &pcm).0, ALL, "{rate} Hz, lead {lead}");
        }
    }
}

#[test]
fn all_digits_at_100_ms_once_each_with_their_duration() {
    for rate in [8000, 16000] {
        for (on, off) in [(100, 100), (100, 40), (2000, 60)] {
            let pcm = digit_sequence(rate, ALL, on, off, 55);
            let (digits, durations) = detect(rate, &pcm);
            assert_eq!(digits, ALL, "{rate} Hz {on}/{off}");
            for d in durations {
                // Within two 12.75 ms blocks of the real length.
                assert!(d.abs_diff(on as u64) <= 26, "{rate} Hz: {d} ms for {on} ms");
            }
        }
    }
}

#[test]
fn rejects_tones_shorter_than_23_ms_at_any_alignment() {
    for rate in [8000, 16000] {
        for ms in [10, 15, 20, 22] {
            for lead in 0..102 * rate as usize / 8000 {
                let pcm = digit_sequence(rate, "5", ms, 100, lead);
                assert_eq!(
                    detect(rate, &pcm).0,
                    "",
                    "{ms} ms at lead {lead}, {rate} Hz"
                );
            }
        }
    }
}

#[test]
fn a_10_ms_break_does_not_split_a_digit() {
    let rate = 8000;
    for lead in (0..102).step_by(7) {
        let mut pcm = digit_sequence(rate, "8", 60, 0, lead);
        pcm.resize(lead + 560, 0); // 10 ms gap
        let next = digit_sequence(rate, "8", 60, 60, 0);
        pcm.extend(next);
        assert_eq!(detect(rate, &pcm).0, "8", "lead {lead}");
    }
}

#[test]
fn frequency_tolerance_accepts_1_5_and_rejects_3_5_percent() {
    for rate in [8000, 16000] {
        for d in Digit::ALL {
            let (r, c) = d.frequencies();
            for (dr, dc, expect) in [
                (1.015, 1.015, true),
                (0.985, 0.985, true),
                (1.015, 0.985, true),
                (1.035, 1.0, false),
                (0.965, 1.0, false),
                (1.0, 1.035, false),
                (1.0, 0.965, false),
            ] {
                let pcm = tone(rate, (r * dr, c * dc), (-7.0, -5.0), 60, 31);
                let got = detect(rate, &pcm).0;
                let want = if expect { d.to_string() } else { String::new() };
                assert_eq!(got, want, "{d} x({dr}, {dc}) at {rate} Hz");
            }
        }
    }
}

#[test]
fn twist_limits() {
    let d = Digit::from_char('1').unwrap();
    let f = d.frequencies();
    // (low-group level, high-group level, accepted?)
    for (lo, hi, ok) in [
        (-4.0, -11.0, true),  // normal twist 7 dB
        (-4.0, -14.0, false), // normal twist 10 dB
        (-10.0, -7.0, true),  // reverse twist 3 dB
        (-10.0, -4.0, false), // reverse twist 6 dB
    ] {
        let got = detect(8000, &tone(8000, f, (lo, hi), 60, 0)).0;
        assert_eq!(got == "1", ok, "low {lo} high {hi}");
    }
}

#[test]
fn level_range() {
    let f = Digit::from_char('9').unwrap().frequencies();
    for (level, ok) in [
        (0.0, true),
        (-25.0, true),
        (-28.0, true),
        (-36.0, false),
        (-45.0, false),
    ] {
        let got = detect(8000, &tone(8000, f, (level, level), 60, 0)).0;
        assert_eq!(got == "9", ok, "{level} dBm0");
    }
}

#[test]
fn digits_in_noise_and_through_g711() {
    use crate::media::codec::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
    for rate in [8000, 16000] {
        let mut pcm = digit_sequence(rate, ALL, 40, 40, 9);
        // Each tone is about -3.9 dBm0 overall; noise 20 dB below.
        add_noise(&mut pcm, 15000.0 / 2f64.sqrt() / 10.0, 7);
        assert_eq!(detect(rate, &pcm).0, ALL, "noise at {rate} Hz");
    }
    let pcm = digit_sequence(8000, ALL, 40, 40, 3);
    let mu: Vec<i16> = pcm.iter().map(|&s| ulaw_decode(ulaw_encode(s))).collect();
    let a: Vec<i16> = pcm.iter().map(|&s| alaw_decode(alaw_encode(s))).collect();
    assert_eq!(detect(8000, &mu).0, ALL);
    assert_eq!(detect(8000, &a).0, ALL);
}

#[test]
fn no_talk_off_on_speech() {
    for rate in [8000, 16000] {
        for seed in [1, 2] {
            let pcm = speech_like(rate, 30.0, seed);
            assert_eq!(detect(rate, &pcm).0, "", "speech at {rate} Hz, seed {seed}");
        }
    }
}

#[test]
fn no_talk_off_on_music() {
    for rate in [8000, 16000] {
        let pcm = music_chords(rate, 20.0);
        assert_eq!(detect(rate, &pcm).0, "", "music at {rate} Hz");
    }
}

#[test]
fn digits_over_speech_are_still_heard() {
    // Talk-down: tones 10 dB above speech in the background.
    let mut speech = speech_like(8000, 3.3, 5);
    let tones = digit_sequence(8000, ALL, 100, 100, 0);
    for (s, t) in speech.iter_mut().zip(&tones) {
        *s = (*s as i32 / 4 + *t as i32).clamp(-32768, 32767) as i16;
    }
    assert_eq!(detect(8000, &speech).0, ALL);
}
