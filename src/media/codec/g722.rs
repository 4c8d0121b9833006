//! G.722 wideband codec, 64 kbit/s mode (ITU-T G.722 (09/2012) §3–§4, mode 1).
//!
//! 16 kHz, 16-bit PCM in and out; each pair of samples becomes one byte. The
//! transmit QMF (§3.2) splits the signal into a lower and a higher sub-band at
//! 8 kHz each; the lower band is coded with 6-bit ADPCM (§3.3–§3.6, blocks 1L–4L),
//! the higher with 2-bit ADPCM (§3.7, blocks 1H–4H). Both share the adaptive
//! predictor of block 4 (§3.6: RECONS, PARREC, UPPOL1/2, UPZERO, FILTEP/FILTEZ).
//! The encoder's predictor is fed the 4-bit truncated lower-band code (the
//! embedded property of §1.3), so a decoder at any mode tracks it. Arithmetic
//! follows the fixed-point description of the Recommendation; the 16-bit
//! scaling at the edges is the one common VoIP implementations use, and the
//! output was checked bit-exact against one of them (see the commit message).
//!
//! RTP (RFC 3551 §4.5.2): payload type 9, and the RTP clock rate is 8000 Hz
//! although the sampling rate is 16 000 Hz (an error kept for compatibility):
//! a 20 ms packet is 320 samples, 160 bytes, and advances the timestamp by 160.

/// RTP clock rate of G.722 (RFC 3551 §4.5.2), half the sampling rate.
pub const G722_RTP_CLOCK_RATE: u32 = 8000;
/// Sampling rate of G.722 PCM.
pub const G722_SAMPLE_RATE: u32 = 16000;

/// Transmit/receive QMF coefficients h0, h2, …, h22 (§3.2, Table 1); the odd
/// ones are these in reverse, the filter being symmetric.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
/// Lower-band quantiser decision levels, Q12 of the scale factor (Table 6).
const Q6: [i32; 31] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0,
];
/// Lower-band 6-bit codes for negative / positive differences, by interval.
const ILN: [i32; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4,
];
const ILP: [i32; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32,
];
/// Inverse quantiser outputs, 4-bit (Table 7) and 6-bit (Table 6) lower band.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Lower-band log scale-factor multipliers (Table 8) and code-to-index map.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Antilog table of SCALEL/SCALEH: round(2048 · 2^(i/32)) (Table 9).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Higher band: codes by interval, inverse quantiser, log multipliers (Tables 10–11).
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

#[inline]
fn sat(x: i32) -> i32 {
    x.clamp(-32768, 32767)
}

/// The state of one sub-band's ADPCM (§3.6 block 4 and the scale factor).
#[derive(Debug, Clone, Default)]
struct Band {
    /// Predicted signal (PREDIC).
    s: i32,
    /// Pole and zero section outputs.
    sp: i32,
    sz: i32,
    /// Reconstructed signal r(n), r(n-1), r(n-2).
    r: [i32; 3],
    /// Pole predictor coefficients a1, a2 (index 0 unused) and their updates.
    a: [i32; 3],
    ap: [i32; 3],
    /// Partially reconstructed signal p(n), p(n-1), p(n-2).
    p: [i32; 3],
    /// Quantised differences d(n)…d(n-6) and zero coefficients b1…b6.
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    /// Log scale factor (nabla) and scale factor (delta).
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Band {
            det,
            ..Band::default()
        }
    }

    /// LOGSCL/LOGSCH then SCALEL/SCALEH (§3.5, §3.7): new scale factor.
    fn adapt_scale(&mut self, w: i32, nb_max: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + w).clamp(0, nb_max);
        let wd1 = (self.nb >> 6) & 31;
        let wd2 = shift - (self.nb >> 11);
        let wd3 = if wd2 < 0 {
            ILB[wd1 as usize] << -wd2
        } else {
            ILB[wd1 as usize] >> wd2
        };
        self.det = wd3 << 2;
    }

    /// Block 4 (§3.6): reconstruct, adapt the predictor, predict the next sample.
    fn block4(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = sat(self.s + d);
        self.p[0] = sat(self.sz + d);
        // UPPOL2
        let sg0 = self.p[0] >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let wd1 = sat(self.a[1] << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = if sg0 == sg2 { 128 } else { -128 };
        wd3 += wd2 >> 7;
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);
        // UPPOL1
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let lim = sat(15360 - self.ap[2]);
        self.ap[1] = sat(wd1 + wd2).clamp(-lim, lim);
        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in 1..7 {
            let w = if (self.d[i] >> 15) == sgd {
                step
            } else {
                -step
            };
            self.bp[i] = sat(w + ((self.b[i] * 32640) >> 15));
        }
        // DELAYA / DELAYL
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }
        // FILTEP
        let wd1 = (self.a[1] * sat(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * sat(self.r[2] + self.r[2])) >> 15;
        self.sp = sat(wd1 + wd2);
        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat(sz);
        // PREDIC
        self.s = sat(self.sp + self.sz);
    }
}

/// G.722 encoder, 64 kbit/s (mode 1).
#[derive(Debug, Clone)]
pub struct G722Encoder {
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// An encoder in the reset state of §5 (scale factors at their minimum).
    pub fn new() -> Self {
        G722Encoder {
            x: [0; 24],
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Encodes 16 kHz PCM, appending one byte per two samples to `out`. An odd
    /// trailing sample is dropped (RTP frames always hold an even count).
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        for pair in pcm.chunks_exact(2) {
            // Transmit QMF (§3.2): shift in two samples, split into xL and xH.
            self.x.copy_within(2.., 0);
            self.x[22] = pair[0] as i32;
            self.x[23] = pair[1] as i32;
            let (mut sum_odd, mut sum_even) = (0, 0);
            for i in 0..12 {
                sum_odd += self.x[2 * i] * QMF[i];
                sum_even += self.x[2 * i + 1] * QMF[11 - i];
            }
            let xlow = (sum_even + sum_odd) >> 14;
            let xhigh = (sum_even - sum_odd) >> 14;
            out.push(self.encode_pair(xlow, xhigh));
        }
    }

    fn encode_pair(&mut self, xlow: i32, xhigh: i32) -> u8 {
        // Lower band. Block 1L: SUBTRA, QUANTL.
        let el = sat(xlow - self.low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && wd >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // Block 2L: INVQAL on the 4-bit truncated code.
        let ril = (ilow >> 2) as usize;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        // Block 3L: LOGSCL, SCALEL.
        self.low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.block4(dlow);

        // Higher band. Block 1H: SUBTRA, QUANTH.
        let eh = sat(xhigh - self.high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * self.high.det) >> 12 {
            2
        } else {
            1
        };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        // Block 2H: INVQAH. Block 3H: LOGSCH, SCALEH.
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        self.high
            .adapt_scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        self.high.block4(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

/// G.722 decoder, 64 kbit/s (mode 1).
#[derive(Debug, Clone)]
pub struct G722Decoder {
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A decoder in the reset state of §5.
    pub fn new() -> Self {
        G722Decoder {
            x: [0; 24],
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Decodes G.722 bytes, appending two 16 kHz samples per byte to `out`.
    pub fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.reserve(payload.len() * 2);
        for &code in payload {
            let ilow = (code & 0x3F) as usize;
            let ihigh = (code >> 6) as usize;
            // Lower band. Block 5L: INVQBL (6-bit), RECONS, LIMIT.
            let wd2 = (self.low.det * QM6[ilow]) >> 15;
            let rlow = (self.low.s + wd2).clamp(-16384, 16383);
            // Blocks 2L–4L on the 4-bit truncated code, as in the encoder.
            let ril = ilow >> 2;
            let dlow = (self.low.det * QM4[ril]) >> 15;
            self.low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
            self.low.block4(dlow);
            // Higher band. Block 2H: INVQAH, Block 5H: RECONS, LIMIT.
            let dhigh = (self.high.det * QM2[ihigh]) >> 15;
            let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
            self.high.adapt_scale(WH[RH2[ihigh] as usize], 22528, 10);
            self.high.block4(dhigh);
            // Receive QMF (§4.4).
            self.x.copy_within(2.., 0);
            self.x[22] = rlow + rhigh;
            self.x[23] = rlow - rhigh;
            let (mut xout1, mut xout2) = (0, 0);
            for i in 0..12 {
                xout2 += self.x[2 * i] * QMF[i];
                xout1 += self.x[2 * i + 1] * QMF[11 - i];
            }
            out.push(sat(xout1 >> 11) as i16);
            out.push(sat(xout2 >> 11) as i16);
        }
    }
}

#[cfg(test)]
#[path = "g722_tests.rs"]
mod tests;
