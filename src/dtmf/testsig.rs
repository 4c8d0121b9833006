//! Synthetic test signals (tests only): speech-like and music-like audio for
//! DTMF talk-off tests and codec quality tests, and DTMF digit sequences.
//!
//! Speech: a glottal pulse train whose pitch glides (male and female ranges),
//! shaped by three formant resonators moving between vowel targets, in
//! syllables with onsets of fricative noise and pauses between words. Music:
//! chords of harmonic-rich notes, including notes within 2 % of DTMF
//! frequencies (F5 ≈ 697, A♯5 ≈ 941, E6 ≈ 1336, F♯6 ≈ 1477 Hz).

use std::f64::consts::{PI, TAU};

use super::Digit;
use super::generate::ToneGenerator;

/// xorshift64*: deterministic noise without a dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Uniform in [-1, 1).
    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11;
        v as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Formant frequencies (F1, F2, F3) of a few vowels, Hz.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0], // a
    [270.0, 2290.0, 3010.0], // i
    [300.0, 870.0, 2240.0],  // u
    [530.0, 1840.0, 2480.0], // e
    [570.0, 840.0, 2410.0],  // o
];

/// Two-pole resonator.
struct Resonator {
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn run(&mut self, x: f64, freq: f64, bw: f64, rate: f64) -> f64 {
        let r = (-PI * bw / rate).exp();
        let a1 = 2.0 * r * (TAU * freq / rate).cos();
        let y = (1.0 - r) * x + a1 * self.y1 - r * r * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// `seconds` of speech-like audio at `rate`, peak about -8 dBFS.
pub(crate) fn speech_like(rate: u32, seconds: f64, seed: u64) -> Vec<i16> {
    let fs = rate as f64;
    let n = (seconds * fs) as usize;
    let mut rng = Rng::new(seed);
    let mut res = [
        Resonator { y1: 0.0, y2: 0.0 },
        Resonator { y1: 0.0, y2: 0.0 },
        Resonator { y1: 0.0, y2: 0.0 },
    ];
    let mut out = vec![0.0f64; n];
    let (mut phase, mut glottal) = (0.0, 0.0);
    let syllable = (0.18 * fs) as usize;
    for (i, o) in out.iter_mut().enumerate() {
        let t = i as f64 / fs;
        let syl = i / syllable;
        let within = (i % syllable) as f64 / syllable as f64;
        // Speakers alternate every 4 s; pitch glides within each phrase.
        let base = if ((t / 4.0) as u64).is_multiple_of(2) {
            115.0
        } else {
            210.0
        };
        let f0 = base * (1.0 + 0.25 * (TAU * t / 1.7).sin() + 0.08 * (TAU * t * 3.1).sin());
        phase += f0 / fs;
        let pulse = if phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            0.0
        };
        glottal = 0.92 * glottal + pulse; // -6 dB/octave source tilt
        // Every fourth syllable is a pause; others open with 40 ms of frication.
        let env = if syl % 4 == 3 {
            0.0
        } else {
            (PI * within).sin().powf(0.7)
        };
        let noise = if within < 0.2 && syl.is_multiple_of(3) {
            0.6 * rng.next()
        } else {
            0.0
        };
        let (v0, v1) = (VOWELS[syl % 5], VOWELS[(syl * 3 + 1) % 5]);
        let mut x = glottal * env + noise * env;
        let mut y = 0.0;
        for (k, r) in res.iter_mut().enumerate() {
            let f = v0[k] + (v1[k] - v0[k]) * within;
            let fk = f.min(0.45 * fs);
            let v = r.run(x, fk, 60.0 + 40.0 * k as f64, fs);
            y += v * [1.0, 0.6, 0.3][k];
            x = glottal * env + noise * env;
        }
        *o = y;
    }
    normalize(&out, 13000.0)
}

fn normalize(x: &[f64], peak: f64) -> Vec<i16> {
    let m = x.iter().fold(0.0f64, |a, &v| a.max(v.abs())).max(1e-9);
    x.iter().map(|&v| (v / m * peak) as i16).collect()
}

fn midi_hz(note: i32) -> f64 {
    440.0 * 2f64.powf((note - 69) as f64 / 12.0)
}

/// `seconds` of chords, 400 ms each, notes with six harmonics and a decay.
pub(crate) fn music_chords(rate: u32, seconds: f64) -> Vec<i16> {
    // MIDI notes: C, Am, F, G7, D with F#6, and chords holding near-DTMF notes.
    let chords: [&[i32]; 8] = [
        &[72, 76, 79],     // C major
        &[69, 72, 76],     // A minor
        &[77, 81, 84],     // F major (F5 = 698 Hz)
        &[67, 71, 74, 77], // G7
        &[74, 78, 81, 90], // D major with F#6 (1480 Hz)
        &[77, 82, 90],     // F5 + A#5 + F#6: near 697 / 941 / 1477
        &[82, 88, 79],     // A#5 + E6 + G5: near 941 / 1336
        &[65, 77, 89, 84], // F in octaves + C6
    ];
    let fs = rate as f64;
    let n = (seconds * fs) as usize;
    let len = (0.4 * fs) as usize;
    let out: Vec<f64> = (0..n)
        .map(|i| {
            let chord = chords[(i / len) % chords.len()];
            let t = (i % len) as f64 / fs;
            let env = (-t * 3.0).exp() * (1.0 - (-t * 200.0).exp());
            chord
                .iter()
                .map(|&note| {
                    let f = midi_hz(note);
                    (1..=6)
                        .filter(|&h| f * h as f64 <= 0.45 * fs)
                        .map(|h| (TAU * f * h as f64 * i as f64 / fs).sin() / h as f64)
                        .sum::<f64>()
                })
                .sum::<f64>()
                * env
        })
        .collect();
    normalize(&out, 16000.0)
}

/// PCM of `digits`, each `on_ms` of tone then `off_ms` of silence, after
/// `lead` samples of silence; also returns where each tone starts.
pub(crate) fn digit_sequence(
    rate: u32,
    digits: &str,
    on_ms: u32,
    off_ms: u32,
    lead: usize,
) -> Vec<i16> {
    let (on, off) = (
        (rate * on_ms / 1000) as usize,
        (rate * off_ms / 1000) as usize,
    );
    let mut pcm = vec![0i16; lead];
    for c in digits.chars() {
        let d = Digit::from_char(c).expect("digit");
        ToneGenerator::digit(rate, d, Some(on as u64)).generate(on, &mut pcm);
        pcm.resize(pcm.len() + off, 0);
    }
    pcm
}

/// Adds white noise of RMS `rms` (deterministic).
pub(crate) fn add_noise(pcm: &mut [i16], rms: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    // Uniform on [-1, 1) has RMS 1/sqrt(3).
    let a = rms * 3f64.sqrt();
    for s in pcm {
        *s = (*s as f64 + a * rng.next()).clamp(-32768.0, 32767.0) as i16;
    }
}
