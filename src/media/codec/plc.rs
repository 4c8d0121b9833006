//! Packet-loss concealment for the waveform codecs (G.711, G.722): pitch-period
//! repetition in the spirit of ITU-T G.711 Appendix I, much simplified.
//!
//! The concealer keeps the last 30 ms of good audio. On the first lost packet of
//! a burst it finds the pitch period by normalised autocorrelation (2.5–15 ms)
//! and then repeats the last period; the first 10 ms of a burst play at full
//! level, after which the level falls linearly to silence at 60 ms (Appendix I
//! attenuates by 20 % per 10 ms; a long burst must not buzz). Opus has its own
//! concealment in libopus and does not use this.

/// Pitch-repetition concealer for one decoder.
#[derive(Debug, Clone)]
pub struct Concealer {
    rate: usize,
    history: Vec<i16>,
    /// Samples concealed in the current burst (0 when the last packet arrived).
    lost: usize,
    period: Vec<i16>,
    pos: usize,
}

impl Concealer {
    /// A concealer for audio at `rate` samples per second.
    pub fn new(rate: u32) -> Self {
        let rate = rate as usize;
        Concealer {
            rate,
            history: Vec::with_capacity(rate * 3 / 100),
            lost: 0,
            period: Vec::new(),
            pos: 0,
        }
    }

    /// Records decoded good audio (and ends a loss burst).
    pub fn good(&mut self, pcm: &mut [i16]) {
        let cap = self.rate * 3 / 100;
        if self.lost > 0 {
            // Fade the first 2.5 ms in from the concealed level to avoid a click.
            let n = (self.rate / 400).min(pcm.len());
            let g0 = self.gain();
            for (i, s) in pcm[..n].iter_mut().enumerate() {
                let g = g0 + (1.0 - g0) * (i as f32 / n as f32);
                *s = (*s as f32 * g) as i16;
            }
        }
        self.lost = 0;
        if pcm.len() >= cap {
            self.history.clear();
            self.history.extend_from_slice(&pcm[pcm.len() - cap..]);
        } else {
            let drop = (self.history.len() + pcm.len()).saturating_sub(cap);
            self.history.drain(..drop);
            self.history.extend_from_slice(pcm);
        }
    }

    /// Level of the concealed signal after `self.lost` samples of loss.
    fn gain(&self) -> f32 {
        let full = self.rate / 100; // 10 ms
        let zero = self.rate * 6 / 100; // 60 ms
        if self.lost <= full {
            1.0
        } else if self.lost >= zero {
            0.0
        } else {
            1.0 - (self.lost - full) as f32 / (zero - full) as f32
        }
    }

    /// Appends `samples` of concealment to `out`.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.lost == 0 {
            let p = self.pitch();
            self.period.clear();
            if let Some(p) = p {
                self.period
                    .extend_from_slice(&self.history[self.history.len() - p..]);
            }
            self.pos = 0;
        }
        for _ in 0..samples {
            let s = if self.period.is_empty() {
                0
            } else {
                let s = self.period[self.pos];
                self.pos = (self.pos + 1) % self.period.len();
                (s as f32 * self.gain()) as i16
            };
            out.push(s);
            self.lost += 1;
        }
    }

    /// The pitch period (samples) of the history, or `None` for too little audio.
    fn pitch(&self) -> Option<usize> {
        let (min, max) = (self.rate / 400, self.rate * 15 / 1000);
        let h = &self.history;
        if h.len() < 2 * max {
            return None;
        }
        // Correlate the last `max` samples with the same span `lag` earlier.
        let win = max;
        let tail = &h[h.len() - win..];
        let mut best = (f64::MIN, min);
        for lag in min..=max {
            let past = &h[h.len() - win - lag..h.len() - lag];
            let (mut xy, mut yy) = (0.0f64, 0.0f64);
            for (a, b) in tail.iter().zip(past) {
                xy += *a as f64 * *b as f64;
                yy += *b as f64 * *b as f64;
            }
            let score = if yy > 0.0 { xy / yy.sqrt() } else { 0.0 };
            if score > best.0 {
                best = (score, lag);
            }
        }
        Some(best.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_the_pitch_period_then_fades_out() {
        let rate = 8000;
        let mut c = Concealer::new(rate);
        // 200 Hz tone: period 40 samples.
        let mut tone: Vec<i16> = (0..480)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 200.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        c.good(&mut tone);
        let mut out = Vec::new();
        c.conceal(160, &mut out);
        // The first 10 ms continue the waveform closely.
        for (i, s) in out[..80].iter().enumerate() {
            let expect =
                8000.0 * (2.0 * std::f64::consts::PI * 200.0 * (480 + i) as f64 / 8000.0).sin();
            assert!(
                (*s as f64 - expect).abs() < 800.0,
                "sample {i}: {s} vs {expect}"
            );
        }
        c.conceal(400, &mut out);
        assert!(
            out[out.len() - 80..].iter().all(|&s| s == 0),
            "silent after 60 ms"
        );
    }

    #[test]
    fn conceals_silence_without_history() {
        let mut c = Concealer::new(8000);
        let mut out = Vec::new();
        c.conceal(160, &mut out);
        assert_eq!(out.len(), 160);
        assert!(out.iter().all(|&s| s == 0));
    }
}
