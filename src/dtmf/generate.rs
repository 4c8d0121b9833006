//! Tone generation: DTMF digits (ITU-T Q.23) and call-progress tones with a
//! cadence, e.g. ringback (ITU-T E.180 and its national supplements).
//!
//! A [`ToneGenerator`] sums up to four sines, each from a phase accumulator
//! kept across calls, and switches them on and off by a repeating
//! [`Cadence`]. It writes PCM at any rate; nothing reads a clock: the caller
//! asks for as many samples as the outgoing frame needs.

use std::f64::consts::TAU;

use super::{Digit, dbm0_to_amplitude};

/// A repeating on/off pattern, in milliseconds: `(on, off)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cadence(pub Vec<(u32, u32)>);

impl Cadence {
    /// A steady tone (no off time).
    pub fn continuous() -> Self {
        Cadence(Vec::new())
    }
}

/// Ringback tone plans (ITU-T E.180 Supplement 2 figures).
#[derive(Debug, Clone, PartialEq)]
pub enum RingbackPlan {
    /// North America: 440 + 480 Hz at -19 dBm0 each, 2 s on, 4 s off.
    Us,
    /// United Kingdom: 400 + 450 Hz at -19 dBm0, 0.4 on 0.2 off 0.4 on 2.0 off.
    Uk,
    /// Continental Europe (CEPT): 425 Hz at -19 dBm0, 1 s on, 4 s off.
    Eu,
    /// Anything else.
    Custom {
        /// Frequencies, Hz (up to four).
        freqs: Vec<f32>,
        /// Level of each frequency, dBm0.
        level_dbm0: f32,
        /// On/off pattern.
        cadence: Cadence,
    },
}

impl RingbackPlan {
    /// Frequencies, level and cadence of the plan.
    pub fn parts(&self) -> (Vec<f32>, f32, Cadence) {
        match self {
            RingbackPlan::Us => (vec![440.0, 480.0], -19.0, Cadence(vec![(2000, 4000)])),
            RingbackPlan::Uk => (
                vec![400.0, 450.0],
                -19.0,
                Cadence(vec![(400, 200), (400, 2000)]),
            ),
            RingbackPlan::Eu => (vec![425.0], -19.0, Cadence(vec![(1000, 4000)])),
            RingbackPlan::Custom {
                freqs,
                level_dbm0,
                cadence,
            } => (freqs.clone(), *level_dbm0, cadence.clone()),
        }
    }
}

/// A multi-frequency tone source with a cadence.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// (phase increment, phase, amplitude) per sine.
    sines: Vec<(f64, f64, f64)>,
    /// The cadence in samples: (on, off) pairs, and where we are in it.
    steps: Vec<(u64, u64)>,
    step: usize,
    pos: u64,
    /// Samples left before the tone stops for good, if bounded.
    remaining: Option<u64>,
}

impl ToneGenerator {
    /// A tone of `freqs` (each at its own level in dBm0) with `cadence`, at
    /// `rate` samples per second.
    pub fn new(rate: u32, freqs: &[(f32, f32)], cadence: &Cadence) -> Self {
        let ms = |m: u32| m as u64 * rate as u64 / 1000;
        ToneGenerator {
            sines: freqs
                .iter()
                .take(4)
                .map(|&(f, dbm0)| {
                    (
                        TAU * f as f64 / rate as f64,
                        0.0,
                        dbm0_to_amplitude(dbm0) as f64,
                    )
                })
                .collect(),
            steps: cadence
                .0
                .iter()
                .map(|&(on, off)| (ms(on), ms(off)))
                .collect(),
            step: 0,
            pos: 0,
            remaining: None,
        }
    }

    /// A DTMF digit at the usual send levels (low group -7 dBm0, high group
    /// -5 dBm0: Q.23's 2 dB pre-emphasis of the high group), lasting
    /// `duration` samples (or until dropped, if `None`).
    pub fn digit(rate: u32, digit: Digit, duration: Option<u64>) -> Self {
        Self::digit_with_levels(rate, digit, -7.0, -5.0, duration)
    }

    /// A DTMF digit with explicit low- and high-group levels (dBm0).
    pub fn digit_with_levels(
        rate: u32,
        digit: Digit,
        low: f32,
        high: f32,
        duration: Option<u64>,
    ) -> Self {
        let (r, c) = digit.frequencies();
        let mut g = Self::new(rate, &[(r, low), (c, high)], &Cadence::continuous());
        g.remaining = duration;
        g
    }

    /// Ringback per `plan`.
    pub fn ringback(rate: u32, plan: &RingbackPlan) -> Self {
        let (freqs, level, cadence) = plan.parts();
        let f: Vec<(f32, f32)> = freqs.iter().map(|&f| (f, level)).collect();
        Self::new(rate, &f, &cadence)
    }

    /// Bounds the tone: it stops after `n` more samples.
    pub fn stop_after(&mut self, n: u64) {
        self.remaining = Some(n);
    }

    /// Whether a bounded tone has finished (it then writes silence).
    pub fn finished(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Whether the cadence is in an "on" part now.
    fn on(&mut self) -> bool {
        if self.steps.is_empty() {
            return true;
        }
        loop {
            let (on, off) = self.steps[self.step];
            if self.pos < on {
                return true;
            }
            if self.pos < on + off {
                return false;
            }
            self.pos -= on + off;
            self.step = (self.step + 1) % self.steps.len();
        }
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            let live = self.remaining != Some(0) && self.on();
            let mut v = 0.0;
            for (inc, phase, amp) in self.sines.iter_mut() {
                if live {
                    v += *amp * phase.sin();
                }
                // Phase runs on through the off parts so each burst is coherent.
                *phase = (*phase + *inc) % TAU;
            }
            *s = v.round().clamp(-32768.0, 32767.0) as i16;
            self.pos += 1;
            if let Some(r) = self.remaining.as_mut() {
                *r = r.saturating_sub(1);
            }
        }
    }

    /// Appends `n` samples to `out`.
    pub fn generate(&mut self, n: usize, out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + n, 0);
        self.fill(&mut out[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_off(samples: &[i16], rate: usize) -> Vec<bool> {
        // One flag per 50 ms: is there signal?
        samples
            .chunks(rate / 20)
            .map(|c| c.iter().any(|&s| s.abs() > 100))
            .collect()
    }

    #[test]
    fn ringback_cadences() {
        let rate = 8000;
        for (plan, pattern) in [
            (
                RingbackPlan::Us,
                [(40, true), (80, false), (40, true)].as_slice(),
            ),
            (
                RingbackPlan::Uk,
                &[(8, true), (4, false), (8, true), (40, false), (8, true)],
            ),
            (RingbackPlan::Eu, &[(20, true), (80, false), (20, true)]),
        ] {
            let mut g = ToneGenerator::ringback(rate, &plan);
            let total: usize = pattern.iter().map(|p| p.0).sum();
            let mut pcm = Vec::new();
            g.generate(total * rate as usize / 20, &mut pcm);
            let expect: Vec<bool> = pattern.iter().flat_map(|&(n, on)| vec![on; n]).collect();
            assert_eq!(on_off(&pcm, rate as usize), expect, "{plan:?}");
        }
    }

    #[test]
    fn digit_levels_and_bounded_duration() {
        let mut g = ToneGenerator::digit(16000, Digit::from_char('1').unwrap(), Some(800));
        let mut pcm = Vec::new();
        g.generate(1600, &mut pcm);
        assert!(g.finished());
        assert!(pcm[800..].iter().all(|&s| s == 0));
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap() as f32;
        let expect = dbm0_to_amplitude(-7.0) + dbm0_to_amplitude(-5.0);
        assert!(
            peak > expect * 0.95 && peak <= expect + 1.0,
            "{peak} vs {expect}"
        );
        // Filling in pieces gives the same samples as in one go.
        let mut a = ToneGenerator::ringback(8000, &RingbackPlan::Uk);
        let mut b = a.clone();
        let (mut one, mut many) = (vec![0; 4000], Vec::new());
        a.fill(&mut one);
        for _ in 0..25 {
            b.generate(160, &mut many);
        }
        assert_eq!(one, many);
    }
}
