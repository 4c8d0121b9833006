//! Transcoding quality: a tone, a multi-tone and synthetic speech through
//! Opus→PCMU→Opus, PCMU→Opus→PCMU and Opus→G.722→Opus, judged by SNR,
//! spectral similarity, level, clipping, pitch and delay (cross-correlation),
//! and negative checks proving the judge fails broken audio.

use std::f64::consts::TAU;

use super::*;
use crate::dtmf::testsig::speech_like;

/// What is wrong with an output.
#[derive(Debug, Clone, PartialEq)]
enum Defect {
    /// Output level under half the input's (-6 dB): silenced or muted.
    Silent(f64),
    /// More than 0.1 % of samples at full scale.
    Clipped(f64),
    /// Best alignment later than allowed (samples).
    Delayed(usize),
    /// Dominant frequency moved by more than 0.5 % (Hz found).
    PitchShifted(f64),
    /// Waveform SNR under the threshold (dB).
    Noisy(f64),
    /// Correlation of log band spectra under the threshold.
    Spectrum(f64),
}

#[derive(Debug)]
struct Quality {
    snr_db: f64,
    spectral: f64,
    delay: usize,
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Power at `f` Hz over `x` (Goertzel).
fn power_at(x: &[i16], rate: f64, f: f64) -> f64 {
    let w = TAU * f / rate;
    let (mut re, mut im) = (0.0, 0.0);
    for (n, &v) in x.iter().enumerate() {
        re += v as f64 * (w * n as f64).cos();
        im += v as f64 * (w * n as f64).sin();
    }
    (re * re + im * im) / (x.len() as f64).powi(2)
}

/// The strongest frequency between 100 Hz and 0.45·rate, to 0.1 Hz.
fn dominant(x: &[i16], rate: f64) -> f64 {
    let mut best = (0.0, 0.0);
    let mut f = 100.0;
    while f < 0.45 * rate {
        let p = power_at(x, rate, f);
        if p > best.1 {
            best = (f, p);
        }
        f += 10.0;
    }
    let mut f = best.0 - 10.0;
    while f < best.0 + 10.0 {
        let p = power_at(x, rate, f);
        if p > best.1 {
            best = (f, p);
        }
        f += 0.1;
    }
    best.0
}

/// Judges `out` against `reference` (same rate). `max_delay` in samples.
fn assess(
    reference: &[i16],
    out: &[i16],
    rate: u32,
    max_delay: usize,
    min_snr: f64,
    tone_hz: Option<f64>,
) -> Result<Quality, Defect> {
    let fs = rate as f64;
    // Skip the codec's start-up; compare a steady stretch.
    let (from, len) = (
        rate as usize / 5,
        reference.len() - rate as usize / 5 - 4 * max_delay,
    );
    let r = &reference[from..from + len];
    let level = rms(out) / rms(reference);
    if level < 0.5 {
        return Err(Defect::Silent(level));
    }
    let clipped =
        out.iter().filter(|&&v| v >= 32000 || v <= -32000).count() as f64 / out.len() as f64;
    if clipped > 0.001 {
        return Err(Defect::Clipped(clipped));
    }
    // Delay: the lag (up to 3x the budget) of best normalised correlation. A
    // pure tone is periodic, so its lag is only known modulo the period:
    // search the budget itself there (the aperiodic signals measure the
    // delay). Not just one period: 1004 Hz at 8 kHz has a period of 7.97
    // samples, so a codec delay of 52 samples matches no lag of the first
    // period to within a sample and the judge called a clean tone noisy.
    let lags = match tone_hz {
        Some(_) => max_delay,
        None => 3 * max_delay,
    };
    let mut best = (f64::MIN, 0);
    for lag in 0..=lags {
        let o = &out[from + lag..from + lag + len];
        let xy: f64 = r.iter().zip(o).map(|(&a, &b)| a as f64 * b as f64).sum();
        let yy: f64 = o.iter().map(|&b| (b as f64).powi(2)).sum();
        let c = xy / yy.sqrt().max(1.0);
        if c > best.0 {
            best = (c, lag);
        }
    }
    let delay = best.1;
    if delay > max_delay {
        return Err(Defect::Delayed(delay));
    }
    let o = &out[from + delay..from + delay + len];
    if let Some(f) = tone_hz {
        let got = dominant(o, fs);
        if (got - f).abs() > f * 0.005 {
            return Err(Defect::PitchShifted(got));
        }
    }
    let (mut sig, mut err) = (0.0, 0.0);
    for (&a, &b) in r.iter().zip(o) {
        sig += (a as f64).powi(2);
        err += (a as f64 - b as f64).powi(2);
    }
    let snr_db = 10.0 * (sig / err.max(1.0)).log10();
    // Log energies of 100 Hz bands from 200 Hz to 3.4 kHz (what every codec
    // here keeps), from five 100 ms windows, floored 50 dB under the peak.
    let spec = |x: &[i16]| -> Vec<f64> {
        let win = rate as usize / 10;
        let bands: Vec<f64> = (2..34)
            .map(|k| {
                let mut e = 0.0;
                for w in 0..5 {
                    let seg = &x[w * win..(w + 1) * win];
                    for j in 0..10 {
                        e += power_at(seg, fs, k as f64 * 100.0 + j as f64 * 10.0);
                    }
                }
                10.0 * (e + 1e-9).log10()
            })
            .collect();
        let top = bands.iter().cloned().fold(f64::MIN, f64::max);
        bands.iter().map(|&b| b.max(top - 50.0)).collect()
    };
    let (a, b) = (spec(r), spec(o));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&a), mean(&b));
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    let spectral = cov / (va * vb).sqrt().max(1e-9);
    if spectral < 0.9 {
        return Err(Defect::Spectrum(spectral));
    }
    if snr_db < min_snr {
        return Err(Defect::Noisy(snr_db));
    }
    Ok(Quality {
        snr_db,
        spectral,
        delay,
    })
}

fn tone(rate: u32, f: f64, secs: f64) -> Vec<i16> {
    (0..(rate as f64 * secs) as usize)
        .map(|i| (7000.0 * (TAU * f * i as f64 / rate as f64).sin()) as i16)
        .collect()
}

/// Five tones spread over the band like the formants of a vowel, each
/// amplitude-modulated at its own rate so that the sum never repeats.
fn multitone(rate: u32, secs: f64) -> Vec<i16> {
    let parts = [
        (313.0, 4000.0, 2.3),
        (727.0, 3000.0, 3.1),
        (1093.0, 2000.0, 4.7),
        (2441.0, 1000.0, 5.3),
        (3137.0, 500.0, 6.1),
    ];
    (0..(rate as f64 * secs) as usize)
        .map(|i| {
            let t = i as f64 / rate as f64;
            parts
                .iter()
                .map(|&(f, a, m)| a * (0.6 + 0.4 * (TAU * m * t).sin()) * (TAU * f * t).sin())
                .sum::<f64>() as i16
        })
        .collect()
}

/// Runs `pcm` through codecs in turn (each encodes then decodes 20 ms
/// frames); returns the output and the sum of the Opus look-aheads.
fn chain(pcm: &[i16], rate: u32, stages: &[CodecKind]) -> (Vec<i16>, usize) {
    let frame = rate as usize / 50;
    let mut x = pcm.to_vec();
    let mut lookahead = 0;
    for &kind in stages {
        let mut c = AnyCodec::new(kind, rate, "useinbandfec=1").unwrap();
        if let AnyCodec::Opus(o) = &c {
            lookahead += o.lookahead();
        }
        assert_eq!(c.sample_rate(), rate, "{kind:?} runs at the leg's rate");
        let mut y = Vec::with_capacity(x.len());
        let mut bytes = Vec::new();
        for f in x.chunks_exact(frame) {
            bytes.clear();
            c.encode(f, &mut bytes).unwrap();
            c.decode(&bytes, &mut y).unwrap();
        }
        x = y;
    }
    (x, lookahead)
}

use CodecKind::{G722 as G722K, Opus, Pcmu};

/// (name, rate, chain, min SNR for tone, multitone, speech).
const CHAINS: [(&str, u32, &[CodecKind], [f64; 3]); 3] = [
    (
        "Opus->PCMU->Opus",
        8000,
        &[Opus, Pcmu, Opus],
        [20.0, 12.0, 5.0],
    ),
    (
        "PCMU->Opus->PCMU",
        8000,
        &[Pcmu, Opus, Pcmu],
        [20.0, 12.0, 5.0],
    ),
    (
        "Opus->G722->Opus",
        16000,
        &[Opus, G722K, Opus],
        [20.0, 12.0, 5.0],
    ),
];

#[test]
fn transcoding_chains_keep_tone_multitone_and_speech() {
    for (name, rate, stages, min) in CHAINS {
        let inputs = [
            ("tone", tone(rate, 1004.0, 2.0), Some(1004.0)),
            ("multitone", multitone(rate, 2.0), None),
            ("speech", speech_like(rate, 3.0, 9), None),
        ];
        for (i, (what, pcm, hz)) in inputs.into_iter().enumerate() {
            let (out, lookahead) = chain(&pcm, rate, stages);
            let budget = rate as usize / 50 + lookahead;
            let q = assess(&pcm, &out, rate, budget, min[i], hz)
                .unwrap_or_else(|d| panic!("{name} {what}: {d:?}"));
            assert!(q.spectral > 0.95 && q.snr_db >= min[i] && q.delay <= budget);
            eprintln!("{name} {what}: {q:?} (delay budget {budget})");
        }
    }
}

#[test]
fn the_judge_fails_broken_audio() {
    let rate = 8000;
    let pcm = tone(rate, 1004.0, 2.0);
    let (good, lookahead) = chain(&pcm, rate, &[Opus, Pcmu, Opus]);
    let budget = 160 + lookahead;
    assert!(assess(&pcm, &good, rate, budget, 15.0, Some(1004.0)).is_ok());
    // Silenced (muted leg).
    let silent = vec![0i16; good.len()];
    assert!(matches!(
        assess(&pcm, &silent, rate, budget, 15.0, Some(1004.0)),
        Err(Defect::Silent(_))
    ));
    // Clipped (a gain stage of +16 dB).
    let hot: Vec<i16> = good
        .iter()
        .map(|&s| (s as i32 * 6).clamp(-32768, 32767) as i16)
        .collect();
    assert!(matches!(
        assess(&pcm, &hot, rate, budget, 15.0, Some(1004.0)),
        Err(Defect::Clipped(_))
    ));
    // Delayed by two more frames (a stuck jitter buffer), on speech: the
    // same chain passes, the late copy fails.
    let speech = speech_like(rate, 3.0, 9);
    let (ok, _) = chain(&speech, rate, &[Opus, Pcmu, Opus]);
    assert!(assess(&speech, &ok, rate, budget, 2.0, None).is_ok());
    let mut late = vec![0i16; 320];
    late.extend_from_slice(&ok[..ok.len() - 320]);
    assert!(matches!(
        assess(&speech, &late, rate, budget, 2.0, None),
        Err(Defect::Delayed(_))
    ));
    // Pitch-shifted by 3 % (a wrong sampling rate somewhere).
    let shifted: Vec<i16> = (0..good.len())
        .map(|i| {
            let t = i as f64 * 1.03;
            let (k, f) = (t as usize, t.fract());
            let a = *good.get(k).unwrap_or(&0) as f64;
            let b = *good.get(k + 1).unwrap_or(&0) as f64;
            (a + (b - a) * f) as i16
        })
        .collect();
    assert!(matches!(
        assess(&pcm, &shifted, rate, budget, 15.0, Some(1004.0)),
        Err(Defect::PitchShifted(_))
    ));
    // Garbled (PCMU bytes decoded as PCMA: the wrong payload type mapping).
    let garbled: Vec<i16> = speech
        .iter()
        .map(|&s| g711::alaw_decode(g711::ulaw_encode(s)))
        .collect();
    let err = assess(&speech, &garbled, rate, budget, 2.0, None).unwrap_err();
    assert!(
        matches!(
            err,
            Defect::Noisy(_) | Defect::Spectrum(_) | Defect::Clipped(_)
        ),
        "{err:?}"
    );
}
