//! Recorded-audio checks for the real-peer tests: a WAV reader (16-bit PCM,
//! as baresip's `sndfile` module writes it) and a tone detector (Goertzel
//! filter over 100 ms blocks).
//!
//! A tone counts as present in a block when the block is not silent and the
//! power at the tone's frequency is at least [`MIN_SNR_DB`] above all the
//! rest of the block's power (noise, other tones, codec distortion). A
//! silent or missing recording, a wrong tone, or noise never passes.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

/// Block length: 100 ms, so the Goertzel bins are 10 Hz apart and a tone on
/// a multiple of 10 Hz falls exactly on a bin (no leakage).
pub const BLOCK_MS: u32 = 100;
/// A block quieter than this RMS (16-bit scale, about -50 dBFS) is silence.
pub const SILENCE_RMS: f64 = 100.0;
/// Tone power over the rest of the block's power, in dB, for a tone block.
/// G.711 of a clean sine gives about 35-40 dB; silence or noise gives < 0.
pub const MIN_SNR_DB: f64 = 20.0;

/// Mono 16-bit PCM read from a WAV file (the first channel).
#[derive(Debug, Clone)]
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }
}

/// Reads a RIFF/WAVE file with 16-bit PCM samples. A data chunk whose size
/// field was never finalised (0 or past the end: the writer was killed) is
/// read up to the end of the file.
pub fn read_wav(path: &Path) -> Result<Wav, String> {
    let b = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(format!(
            "{}: not a RIFF/WAVE file ({} bytes)",
            path.display(),
            b.len()
        ));
    }
    let u16le = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32le = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut off = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while off + 8 <= b.len() {
        let id = &b[off..off + 4];
        let size = u32le(off + 4) as usize;
        let body = off + 8;
        if id == b"fmt " {
            if body + 16 > b.len() {
                return Err(format!("{}: truncated fmt chunk", path.display()));
            }
            fmt = Some((
                u16le(body),
                u16le(body + 2),
                u32le(body + 4),
                u16le(body + 14),
            ));
        } else if id == b"data" {
            let (format, channels, rate, bits) =
                fmt.ok_or_else(|| format!("{}: data chunk before fmt chunk", path.display()))?;
            // 1 = PCM, 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM sub-format assumed)
            if !(format == 1 || format == 0xFFFE) || bits != 16 || channels == 0 {
                return Err(format!(
                    "{}: unsupported WAV format {format:#x}, {bits} bits, {channels} channels \
                     (need 16-bit PCM)",
                    path.display()
                ));
            }
            let end = if size == 0 || body + size > b.len() {
                b.len()
            } else {
                body + size
            };
            let frame = 2 * usize::from(channels);
            let samples = b[body..end]
                .chunks_exact(frame)
                .map(|f| i16::from_le_bytes([f[0], f[1]]))
                .collect();
            return Ok(Wav {
                rate,
                channels,
                samples,
            });
        }
        off = body + size + (size & 1);
    }
    Err(format!("{}: no data chunk", path.display()))
}

/// Mean power of the component at `hz` in `x` (a sine of amplitude A gives
/// A²/2), by the Goertzel recurrence.
pub fn goertzel_power(x: &[f64], hz: f64, rate: f64) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / rate;
    let k = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = v + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let mag2 = s1 * s1 + s2 * s2 - k * s1 * s2;
    let n = x.len() as f64;
    2.0 * mag2 / (n * n)
}

/// What [`analyse_tone`] found in a recording.
#[derive(Debug, Clone)]
pub struct ToneReport {
    pub hz: f64,
    pub seconds: f64,
    pub rate: u32,
    pub blocks: usize,
    /// Blocks above [`SILENCE_RMS`].
    pub loud_blocks: usize,
    /// Loud blocks whose tone SNR is at least `min_snr_db`.
    pub tone_blocks: usize,
    /// The SNR a block needs to count ([`MIN_SNR_DB`] unless asked).
    pub min_snr_db: f64,
    /// Median tone SNR over the loud blocks (dB; -inf if none).
    pub median_snr_db: f64,
    /// Highest block RMS (16-bit scale).
    pub max_rms: f64,
}

impl ToneReport {
    /// Seconds of audio in which the tone was found.
    pub fn tone_seconds(&self) -> f64 {
        self.tone_blocks as f64 * f64::from(BLOCK_MS) / 1000.0
    }

    pub fn summary(&self) -> String {
        format!(
            "{:.0} Hz tone: {:.1} s of audio at {} Hz, {} blocks of {BLOCK_MS} ms, {} loud \
             (rms >= {SILENCE_RMS}), {} with the tone >= {} dB over the rest \
             ({:.1} s); median SNR {:.1} dB; max block rms {:.0}",
            self.hz,
            self.seconds,
            self.rate,
            self.blocks,
            self.loud_blocks,
            self.tone_blocks,
            self.min_snr_db,
            self.tone_seconds(),
            self.median_snr_db,
            self.max_rms
        )
    }

    /// The tone is there for at least `min_secs`, and in at least 70 % of the
    /// loud blocks (start-up and the end of the call may cut a few).
    pub fn passes(&self, min_secs: f64) -> bool {
        self.tone_seconds() >= min_secs && self.tone_blocks * 10 >= self.loud_blocks * 7
    }
}

/// Looks for a tone of `hz` in 100 ms blocks of `wav`.
pub fn analyse_tone(wav: &Wav, hz: f64) -> ToneReport {
    analyse_tone_with(wav, hz, MIN_SNR_DB)
}

/// [`analyse_tone`] with another SNR a block needs, for a codec known to
/// be noisier than G.711 on a pure tone (callgate's own Opus encoder runs at
/// complexity 1: about 21 dB).
pub fn analyse_tone_with(wav: &Wav, hz: f64, min_snr_db: f64) -> ToneReport {
    let rate = f64::from(wav.rate.max(1));
    let n = (wav.rate * BLOCK_MS / 1000).max(1) as usize;
    let mut snrs = Vec::new();
    let (mut blocks, mut loud, mut tone) = (0, 0, 0);
    let mut max_rms = 0.0f64;
    for chunk in wav.samples.chunks_exact(n) {
        blocks += 1;
        let x: Vec<f64> = chunk.iter().map(|&s| f64::from(s)).collect();
        let total = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let rms = total.sqrt();
        max_rms = max_rms.max(rms);
        if rms < SILENCE_RMS {
            continue;
        }
        loud += 1;
        let p = goertzel_power(&x, hz, rate);
        let rest = (total - p).max(total * 1e-9);
        let snr_db = 10.0 * (p / rest).log10();
        snrs.push(snr_db);
        if snr_db >= min_snr_db {
            tone += 1;
        }
    }
    snrs.sort_by(f64::total_cmp);
    let median_snr_db = if snrs.is_empty() {
        f64::NEG_INFINITY
    } else {
        snrs[snrs.len() / 2]
    };
    ToneReport {
        hz,
        seconds: wav.seconds(),
        rate: wav.rate,
        blocks,
        loud_blocks: loud,
        tone_blocks: tone,
        min_snr_db,
        median_snr_db,
        max_rms,
    }
}

/// Fails the test unless the WAV at `path` holds at least `min_secs` of a
/// `hz` tone (see [`ToneReport::passes`]); returns the report.
pub fn assert_tone(path: &Path, hz: f64, min_secs: f64, ctx: &str) -> ToneReport {
    let wav = read_wav(path).unwrap_or_else(|e| panic!("{ctx}: cannot read the recording: {e}"));
    let r = analyse_tone(&wav, hz);
    assert!(
        r.passes(min_secs),
        "{ctx}: the recording {} must contain the {hz} Hz tone for at least {min_secs} s: {}",
        path.display(),
        r.summary()
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: u32, secs: f64, amp: f64) -> Vec<i16> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amp * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    fn wav(samples: Vec<i16>) -> Wav {
        Wav {
            rate: 8000,
            channels: 1,
            samples,
        }
    }

    #[test]
    fn tone_found_in_a_clean_sine() {
        let r = analyse_tone(&wav(sine(1000.0, 8000, 3.0, 10000.0)), 1000.0);
        assert!(r.passes(2.5), "{}", r.summary());
        assert!(r.median_snr_db > 40.0, "{}", r.summary());
    }

    #[test]
    fn silence_noise_and_wrong_tone_fail() {
        let silent = analyse_tone(&wav(vec![0; 24000]), 1000.0);
        assert!(!silent.passes(0.1), "{}", silent.summary());
        let other = analyse_tone(&wav(sine(440.0, 8000, 3.0, 10000.0)), 1000.0);
        assert!(!other.passes(0.1), "{}", other.summary());
        // deterministic pseudo-random noise
        let mut x = 12345u32;
        let noise: Vec<i16> = (0..24000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((x >> 16) as i16) / 4
            })
            .collect();
        let n = analyse_tone(&wav(noise), 1000.0);
        assert!(!n.passes(0.1), "{}", n.summary());
    }

    #[test]
    fn wav_round_trip_with_unfinalised_size() {
        let s = sine(440.0, 8000, 0.5, 5000.0);
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data\0\0\0\0");
        for v in &s {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let p = std::env::temp_dir().join(format!("callgate-wav-test-{}.wav", std::process::id()));
        fs::write(&p, &b).unwrap();
        let w = read_wav(&p).unwrap();
        let _ = fs::remove_file(&p);
        assert_eq!(w.samples, s);
        assert_eq!(w.rate, 8000);
    }
}
