//! In-band DTMF detection with the Goertzel algorithm, to ITU-T Q.24 timing.
//!
//! The input is cut into blocks of 12.75 ms (102 samples at 8 kHz, 204 at
//! 16 kHz). For each block and each of the eight DTMF frequencies it computes:
//!
//! * the DFT term over the whole block (Goertzel, rectangular window) for the
//!   tone's level, and
//! * the terms over two Hann-windowed sub-windows five sixths of the block
//!   long, one sixth apart (their main lobes, ±190 Hz, stay clear of the
//!   other group's tone): the phase advance between them measures the tone's
//!   actual frequency to a few Hz, far finer than the block's 78 Hz bins. This
//!   is what tells a tone 1.5 % off (accepted, Q.24) from one 3.5 % off
//!   (rejected) even at 697 Hz, where the two differ by 14 Hz.
//!
//! A block is a *hit* for a digit when the strongest row and column tones are
//! within the frequency tolerance, at least `min_level_dbm0` each, within the
//! twist limits (Q.24: the high group at most `reverse_twist_db` above or
//! `normal_twist_db` below the low group), and carry most of the block's
//! energy ("purity": the energy of a least-squares fit of two sines at the
//! measured frequencies over the block's energy).
//! Speech and music spread their energy over many harmonics and fail purity;
//! tones with extra components fail it too.
//!
//! Timing: a digit begins after two consecutive *strong* hits (purity ≥
//! `onset_purity`, 0.92). In a block a tone only partly fills, purity is the
//! filled fraction; a tone of 23 ms (184 samples at 8 kHz) spread over two
//! 102-sample blocks fills each to at most 90 %, so it never starts a digit,
//! while a 40 ms tone always contains two whole blocks. While a digit lasts,
//! weaker hits (≥ `hold_purity`, frequencies no longer re-measured) keep it
//! alive, so a 10 ms drop-out or noise does not split
//! it; it ends after two blocks without one, which a 40 ms gap always has.

use std::collections::VecDeque;
use std::f32::consts::PI;

use super::{COL_FREQS, Digit, ROW_FREQS, dbm0_to_amplitude};

/// Tunables of the [`Detector`]; the defaults meet ITU-T Q.24.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Input sampling rate: 8000 or 16000 Hz (any multiple of 8000 works).
    pub sample_rate: u32,
    /// Weakest tone accepted, per frequency, dBm0.
    pub min_level_dbm0: f32,
    /// How far the high group may be below the low group, dB.
    pub normal_twist_db: f32,
    /// How far the high group may be above the low group, dB.
    pub reverse_twist_db: f32,
    /// Largest relative frequency offset accepted (Q.24: accept ±1.5 %,
    /// reject ±3.5 %; the default sits between).
    pub freq_tolerance: f32,
    /// Share of the block energy the two tones must carry to start a digit.
    pub onset_purity: f32,
    /// Share needed to keep a started digit going.
    pub hold_purity: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            sample_rate: 8000,
            min_level_dbm0: -30.0,
            normal_twist_db: 8.0,
            reverse_twist_db: 4.0,
            freq_tolerance: 0.025,
            onset_purity: 0.92,
            hold_purity: 0.5,
        }
    }
}

/// A detected digit's start or end, positioned in samples since the detector
/// was made (the caller maps them to RTP timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A digit was recognised; it started at sample `at`.
    Began {
        /// The digit.
        digit: Digit,
        /// Start of the first block in which it was heard.
        at: u64,
    },
    /// The digit ended at sample `at` after `duration` samples.
    Ended {
        /// The digit.
        digit: Digit,
        /// End of the last block in which it was heard.
        at: u64,
        /// `at` minus the start.
        duration: u64,
    },
}

/// Per-frequency analysis tables: cos/sin of the full block and Hann-weighted
/// cos/sin of the sub-window.
#[derive(Debug, Clone)]
struct Bin {
    freq: f32,
    cos: Vec<f32>,
    sin: Vec<f32>,
    hcos: Vec<f32>,
    hsin: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    Pending {
        digit: Digit,
        at: u64,
    },
    Active {
        digit: Digit,
        at: u64,
        last: u64,
        misses: u8,
    },
}

/// A streaming DTMF detector for one audio direction.
#[derive(Debug, Clone)]
pub struct Detector {
    cfg: DetectorConfig,
    block: usize,
    /// Sub-window length and the offset between the two sub-windows.
    win: usize,
    lag: usize,
    bins: Vec<Bin>,
    buf: Vec<f32>,
    /// Sample position of `buf[0]`.
    pos: u64,
    /// Squared amplitude of a sine at the minimum level.
    min_amp2: f32,
    state: State,
    events: VecDeque<DtmfEvent>,
}

/// A block's verdict: the digit heard and its purity.
type Hit = Option<(Digit, f32)>;

/// A block's verdicts: `strict` with every check, `loose` with the frequency
/// check skipped (a block the tone only partly fills, at a digit's edge or
/// around a short break, has too blurred a spectrum to measure the offset;
/// the digit's frequencies were checked when it began).
#[derive(Debug, Clone, Copy)]
struct Verdict {
    strict: Hit,
    loose: Hit,
}

impl Detector {
    /// A detector with `cfg`.
    pub fn new(cfg: DetectorConfig) -> Self {
        let block = (102 * cfg.sample_rate / 8000) as usize;
        let lag = block / 6;
        let win = block - lag;
        let fs = cfg.sample_rate as f32;
        let bins = ROW_FREQS
            .iter()
            .chain(&COL_FREQS)
            .map(|&freq| {
                let w = 2.0 * PI * freq / fs;
                let hann = |n: usize| 0.5 - 0.5 * (2.0 * PI * (n as f32 + 0.5) / win as f32).cos();
                Bin {
                    freq,
                    cos: (0..block).map(|n| (w * n as f32).cos()).collect(),
                    sin: (0..block).map(|n| (w * n as f32).sin()).collect(),
                    hcos: (0..win).map(|n| hann(n) * (w * n as f32).cos()).collect(),
                    hsin: (0..win).map(|n| hann(n) * (w * n as f32).sin()).collect(),
                }
            })
            .collect();
        let a = dbm0_to_amplitude(cfg.min_level_dbm0);
        Detector {
            block,
            win,
            lag,
            bins,
            buf: Vec::with_capacity(block),
            pos: 0,
            min_amp2: a * a,
            state: State::Idle,
            events: VecDeque::new(),
            cfg,
        }
    }

    /// Feeds PCM at the configured rate; events become available from
    /// [`Detector::poll_event`].
    pub fn push(&mut self, pcm: &[i16]) {
        for &s in pcm {
            self.buf.push(s as f32);
            if self.buf.len() == self.block {
                let v = Verdict {
                    strict: self.analyze(true),
                    loose: self.analyze(false),
                };
                self.step(v);
                self.buf.clear();
                self.pos += self.block as u64;
            }
        }
    }

    /// Samples per analysis block (12.75 ms). A digit is recognised once
    /// two whole blocks after its start have been pushed; a tone may fill
    /// the block before that start partly.
    pub fn block_len(&self) -> usize {
        self.block
    }

    /// The next detected event, in order.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    /// The digit currently heard, if one has begun and not ended.
    pub fn active(&self) -> Option<Digit> {
        match self.state {
            State::Active { digit, .. } => Some(digit),
            _ => None,
        }
    }

    /// The digit being heard: where it began and the end of the last block
    /// it was heard in (samples), while it lasts. `last - at` is its duration
    /// so far, before the two silent blocks that end it.
    pub fn heard(&self) -> Option<(Digit, u64, u64)> {
        match self.state {
            State::Active {
                digit, at, last, ..
            } => Some((digit, at, last)),
            _ => None,
        }
    }

    /// Timing state machine, one block at a time.
    fn step(&mut self, v: Verdict) {
        let (start, end) = (self.pos, self.pos + self.block as u64);
        let strong = v
            .strict
            .filter(|h| h.1 >= self.cfg.onset_purity)
            .map(|h| h.0);
        let weak = v.loose.filter(|h| h.1 >= self.cfg.hold_purity).map(|h| h.0);
        self.state = match self.state {
            State::Idle => match strong {
                Some(digit) => State::Pending { digit, at: start },
                None => State::Idle,
            },
            State::Pending { digit, at } => match strong {
                Some(d) if d == digit => {
                    self.events.push_back(DtmfEvent::Began { digit, at });
                    State::Active {
                        digit,
                        at,
                        last: end,
                        misses: 0,
                    }
                }
                Some(d) => State::Pending {
                    digit: d,
                    at: start,
                },
                None => State::Idle,
            },
            State::Active {
                digit,
                at,
                last,
                misses,
            } => {
                if weak == Some(digit) {
                    State::Active {
                        digit,
                        at,
                        last: end,
                        misses: 0,
                    }
                } else if misses + 1 < 2 {
                    State::Active {
                        digit,
                        at,
                        last,
                        misses: misses + 1,
                    }
                } else {
                    self.events.push_back(DtmfEvent::Ended {
                        digit,
                        at: last,
                        duration: last - at,
                    });
                    match strong {
                        Some(d) => State::Pending {
                            digit: d,
                            at: start,
                        },
                        None => State::Idle,
                    }
                }
            }
        };
    }

    /// Analyses the block in `buf`, measuring frequency offsets if `strict`.
    fn analyze(&self, strict: bool) -> Hit {
        let x = &self.buf;
        let energy: f32 = x.iter().map(|v| v * v).sum();
        if energy <= 0.0 {
            return None;
        }
        // |X(ω)|² = |Σ x[n]·e^{-jωn}|² for the eight frequencies.
        let mut power = [0f32; 8];
        for (p, bin) in power.iter_mut().zip(&self.bins) {
            let re: f32 = x.iter().zip(&bin.cos).map(|(a, b)| a * b).sum();
            let im: f32 = x.iter().zip(&bin.sin).map(|(a, b)| a * b).sum();
            *p = re * re + im * im;
        }
        let argmax = |s: &[f32]| {
            (0..s.len())
                .max_by(|&a, &b| s[a].total_cmp(&s[b]))
                .unwrap_or(0)
        };
        let (r, c) = (argmax(&power[..4]), 4 + argmax(&power[4..]));
        // Each tone stands out in its group by 8 dB (a partly filled block at
        // a digit's edge smears into the neighbours: not checked when loose).
        for (group, best) in [(0..4, r), (4..8, c)] {
            if strict
                && group
                    .clone()
                    .any(|i| i != best && power[i] * 6.3 > power[best])
            {
                return None;
            }
        }
        let (fr, fc) = if strict {
            (self.offset(r)?, self.offset(c)?)
        } else {
            (self.bins[r].freq, self.bins[c].freq)
        };
        let (amp_r, amp_c, model) = self.fit(fr, fc);
        if amp_r < self.min_amp2 || amp_c < self.min_amp2 {
            return None;
        }
        let twist = 10.0 * (amp_c / amp_r).log10();
        if twist > self.cfg.reverse_twist_db || twist < -self.cfg.normal_twist_db {
            return None;
        }
        // The share of the block's energy the two tones explain.
        let purity = (model / energy as f64) as f32;
        Some((Digit::at(r, c - 4), purity))
    }

    /// The measured frequency of the tone near bin `i`, or `None` if it is
    /// off by more than the tolerance.
    fn offset(&self, i: usize) -> Option<f32> {
        let bin = &self.bins[i];
        let x = &self.buf;
        let sub = |from: usize| {
            let w = &x[from..from + self.win];
            let re: f32 = w.iter().zip(&bin.hcos).map(|(a, b)| a * b).sum();
            let im: f32 = w.iter().zip(&bin.hsin).map(|(a, b)| a * b).sum();
            (re, -im)
        };
        let (ar, ai) = sub(0);
        let (br, bi) = sub(self.lag);
        // Both terms use their window's own time origin, so B leads A by the
        // offset's phase plus ω·lag: remove the latter.
        let fs = self.cfg.sample_rate as f32;
        let w = 2.0 * PI * bin.freq / fs;
        let (cr, ci) = (br * ar + bi * ai, bi * ar - br * ai); // B · conj(A)
        let mut dphi = ci.atan2(cr) - w * self.lag as f32;
        dphi = (dphi + PI).rem_euclid(2.0 * PI) - PI;
        let offset = dphi * fs / (2.0 * PI * self.lag as f32);
        (offset.abs() <= self.cfg.freq_tolerance * bin.freq).then_some(bin.freq + offset)
    }

    /// Least-squares fit of two sines at `f1` and `f2` Hz to the block:
    /// returns their squared amplitudes and the energy of the fitted signal.
    ///
    /// With u, v the tones' complex amplitudes (tone = 2·Re(u·e^{jωn})),
    /// X(ω1) = N·u + K·v and X(ω2) = K*·u + N·v where K = Σ e^{j(ω2-ω1)n}: the
    /// 2×2 solve removes each tone's leakage into the other's bin (941 and
    /// 1209 Hz are only 3.4 bins apart), and the model's energy includes their
    /// beat, which the block's energy has too.
    fn fit(&self, f1: f32, f2: f32) -> (f32, f32, f64) {
        let fs = self.cfg.sample_rate as f64;
        let (w1, w2) = (
            2.0 * std::f64::consts::PI * f1 as f64 / fs,
            2.0 * std::f64::consts::PI * f2 as f64 / fs,
        );
        let n = self.block as f64;
        let (mut x1, mut x2, mut k) = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0));
        for (i, &v) in self.buf.iter().enumerate() {
            let (t1, t2) = (w1 * i as f64, w2 * i as f64);
            let v = v as f64;
            x1 = (x1.0 + v * t1.cos(), x1.1 - v * t1.sin());
            x2 = (x2.0 + v * t2.cos(), x2.1 - v * t2.sin());
            k = (k.0 + (t2 - t1).cos(), k.1 + (t2 - t1).sin());
        }
        let det = n * n - (k.0 * k.0 + k.1 * k.1);
        if det.abs() < 1e-9 {
            return (0.0, 0.0, 0.0);
        }
        // u = (N·X1 - K·X2)/det, v = (N·X2 - K*·X1)/det.
        let u = (
            (n * x1.0 - (k.0 * x2.0 - k.1 * x2.1)) / det,
            (n * x1.1 - (k.0 * x2.1 + k.1 * x2.0)) / det,
        );
        let v = (
            (n * x2.0 - (k.0 * x1.0 + k.1 * x1.1)) / det,
            (n * x2.1 - (k.0 * x1.1 - k.1 * x1.0)) / det,
        );
        let model: f64 = (0..self.block)
            .map(|i| {
                let (t1, t2) = (w1 * i as f64, w2 * i as f64);
                let m = 2.0 * (u.0 * t1.cos() - u.1 * t1.sin() + v.0 * t2.cos() - v.1 * t2.sin());
                m * m
            })
            .sum();
        let amp2 = |z: (f64, f64)| (4.0 * (z.0 * z.0 + z.1 * z.1)) as f32;
        (amp2(u), amp2(v), model)
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
