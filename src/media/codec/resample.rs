//! A rational-ratio polyphase FIR resampler (8 ↔ 16 ↔ 48 kHz), for the few
//! paths that cannot avoid one (G.722 ↔ G.711; Opus always runs at the rate of
//! the other leg instead).
//!
//! The prototype low-pass is a Kaiser-windowed sinc (β = 8, about 80 dB of
//! stop-band rejection) at the up-sampled rate `L·fs_in`, cut off at 46 % of
//! the lower of the two Nyquist rates, 16 taps per input or output sample of
//! the slower side. It is split into `L` phases so that each output sample costs
//! one short dot product and the zeros of the up-sampler are never computed.

use super::CodecError;

/// Taps of the prototype per sample of the lower rate (filter length / max(L, M)).
const TAPS_PER_SAMPLE: usize = 16;
/// Kaiser window shape; 8 gives ~80 dB side lobes.
const KAISER_BETA: f64 = 8.0;

/// A streaming resampler from one rate to another (ratio L/M in lowest terms).
#[derive(Debug, Clone)]
pub struct Resampler {
    up: usize,
    down: usize,
    /// `phases[p][i]` = L · h[p + i·L].
    phases: Vec<Vec<f32>>,
    /// Input history; `history[0]` is absolute input sample `base`.
    history: Vec<f32>,
    base: u64,
    /// Next output's position in the up-sampled domain.
    next: u64,
    delay: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Modified Bessel function of the first kind, order 0 (series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (each a multiple of 4000, up to 48 kHz).
    pub fn new(from: u32, to: u32) -> Result<Self, CodecError> {
        for r in [from, to] {
            if r == 0 || r > 48000 || r % 4000 != 0 {
                return Err(CodecError::UnsupportedRate(r));
            }
        }
        let g = gcd(from as usize, to as usize);
        let (up, down) = (to as usize / g, from as usize / g);
        let len = (TAPS_PER_SAMPLE * up.max(down)) | 1; // odd: integer group delay
        let cutoff = 0.46 / up.max(down) as f64; // cycles per up-sampled sample
        let mid = (len - 1) as f64 / 2.0;
        let norm = bessel_i0(KAISER_BETA);
        let h: Vec<f64> = (0..len)
            .map(|n| {
                let t = n as f64 - mid;
                let sinc = if t == 0.0 {
                    2.0 * cutoff
                } else {
                    (2.0 * std::f64::consts::PI * cutoff * t).sin() / (std::f64::consts::PI * t)
                };
                let w = bessel_i0(KAISER_BETA * (1.0 - (t / mid).powi(2)).max(0.0).sqrt()) / norm;
                sinc * w
            })
            .collect();
        // Normalise the DC gain of each phase to 1 (so of the whole to L).
        let sum: f64 = h.iter().sum();
        let phases = (0..up)
            .map(|p| {
                h.iter()
                    .skip(p)
                    .step_by(up)
                    .map(|&c| (c / sum * up as f64) as f32)
                    .collect()
            })
            .collect();
        Ok(Resampler {
            up,
            down,
            phases,
            history: Vec::new(),
            base: 0,
            next: 0,
            delay: (len - 1) / 2 / down,
        })
    }

    /// The group delay in output samples (a pure delay: linear phase).
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Resamples `input`, appending every output sample it completes to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.history.extend(input.iter().map(|&s| s as f32));
        let end = self.base + self.history.len() as u64; // inputs available
        loop {
            let j0 = self.next / self.up as u64; // newest input this output uses
            if j0 >= end {
                break;
            }
            let p = (self.next % self.up as u64) as usize;
            let taps = &self.phases[p];
            let mut acc = 0.0f32;
            for (i, &c) in taps.iter().enumerate() {
                let Some(j) = j0.checked_sub(i as u64) else {
                    break;
                };
                if j < self.base {
                    break; // before the start of the stream: zeros
                }
                acc += c * self.history[(j - self.base) as usize];
            }
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.next += self.down as u64;
        }
        // Keep only the history the next outputs can reach.
        let keep_from = (self.next / self.up as u64).saturating_sub(self.phases[0].len() as u64);
        if keep_from > self.base {
            let drop = ((keep_from - self.base) as usize).min(self.history.len());
            self.history.drain(..drop);
            self.base += drop as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    /// SNR of `y` against a tone of `freq` at rate `rate`, delayed by `delay`.
    fn tone_snr(y: &[i16], rate: u32, freq: f64, amp: f64, delay: usize) -> f64 {
        let (mut s, mut e) = (0.0, 0.0);
        for (i, &v) in y
            .iter()
            .enumerate()
            .skip(delay + 200)
            .take(y.len() - delay - 400)
        {
            let t = (i - delay) as f64 / rate as f64;
            let r = amp * (2.0 * std::f64::consts::PI * freq * t).sin();
            s += r * r;
            e += (v as f64 - r).powi(2);
        }
        10.0 * (s / e).log10()
    }

    #[test]
    fn passes_in_band_tones_at_every_ratio() {
        for (from, to) in [
            (8000, 16000),
            (16000, 8000),
            (8000, 48000),
            (48000, 8000),
            (16000, 48000),
            (48000, 16000),
        ] {
            let mut r = Resampler::new(from, to).unwrap();
            let x = tone(from, 1000.0, from as usize / 5, 10000.0);
            let mut y = Vec::new();
            // Odd chunk sizes: streaming must not depend on how input is cut.
            for c in x.chunks(37) {
                r.process(c, &mut y);
            }
            let expect = x.len() * to as usize / from as usize;
            assert!(
                y.len().abs_diff(expect) <= 1,
                "{from}->{to}: {} vs {expect}",
                y.len()
            );
            let snr = tone_snr(&y, to, 1000.0, 10000.0, r.delay());
            assert!(
                snr > 40.0,
                "{from}->{to}: SNR {snr:.1} dB, delay {}",
                r.delay()
            );
        }
    }

    #[test]
    fn rejects_what_would_alias() {
        // 6 kHz at 16 kHz folds onto 2 kHz at 8 kHz unless filtered.
        let mut r = Resampler::new(16000, 8000).unwrap();
        let x = tone(16000, 6000.0, 16000, 10000.0);
        let mut y = Vec::new();
        r.process(&x, &mut y);
        let level = 20.0 * (rms(&y[200..]) / (10000.0 / 2f64.sqrt())).log10();
        assert!(level < -60.0, "alias at {level:.1} dB");
    }

    #[test]
    fn rejects_unsupported_rates() {
        assert_eq!(
            Resampler::new(44100, 8000).unwrap_err(),
            CodecError::UnsupportedRate(44100)
        );
        assert!(Resampler::new(8000, 96000).is_err());
        // Same rate: a (delayed) identity.
        let mut r = Resampler::new(8000, 8000).unwrap();
        let x = tone(8000, 500.0, 800, 5000.0);
        let mut y = Vec::new();
        r.process(&x, &mut y);
        assert!(tone_snr(&y, 8000, 500.0, 5000.0, r.delay()) > 40.0);
    }
}
