//! G.711 µ-law (PCMU) and A-law (PCMA), ITU-T G.711 (11/88) §3–§4, table-driven.
//!
//! Both laws compress a 16-bit linear sample into 8 bits with 8 segments of 16
//! steps each. µ-law works on 14 significant bits (the two low bits of an `i16`
//! are dropped) with a bias of 33, A-law on 13 (three low bits dropped). The
//! encoders are one table lookup on the truncated sample; the tables are built
//! at compile time from the segment rules of G.711 Tables 1a/2a, which the tests
//! check against an independent bit-by-bit implementation over all 65 536 inputs.
//! Decoding is a 256-entry table that yields each code's decision-interval
//! midpoint (G.711 "decoder output value"), scaled to 16 bits.
//!
//! RTP: RFC 3551 §4.5.14, payload types 0 (PCMU) and 8 (PCMA), 8000 Hz clock,
//! one byte per sample.

/// µ-law: one code, complemented on the wire (G.711 Table 2a, "character signal");
/// the sign bit is 1 for positive samples once complemented.
const fn ulaw_encode_slow(sample: i16) -> u8 {
    const BIAS: i32 = 0x84; // 33 in 14-bit units, shifted left by 2
    const CLIP: i32 = 32635;
    let s = sample as i32;
    // One's complement for negatives, as the ITU-T G.191 reference does, so that
    // the law is symmetric around -1/2 and the table can index on `sample >> 2`.
    let (sign, mag) = if s < 0 { (0x80, !s) } else { (0x00, s) };
    let mag = if mag > CLIP { CLIP } else { mag } + BIAS;
    // Segment = position of the highest set bit above bit 7.
    let mut seg = 0;
    while seg < 7 && mag >= (0x100 << seg) {
        seg += 1;
    }
    let mantissa = (mag >> (seg + 3)) & 0x0F;
    !((sign | (seg << 4) | mantissa) as u8)
}

/// A-law: one code with even bits inverted (G.711 Table 1a, XOR 0x55).
const fn alaw_encode_slow(sample: i16) -> u8 {
    let s = sample as i32;
    let (sign, mag) = if s < 0 { (0x00, -s - 1) } else { (0x80, s) };
    let mag = mag >> 3; // 13-bit magnitude, 0..=4095
    let code = if mag < 32 {
        mag >> 1
    } else {
        let mut seg = 1;
        while seg < 7 && mag >= (32 << seg) {
            seg += 1;
        }
        (seg << 4) | ((mag >> seg) & 0x0F)
    };
    ((sign | code) as u8) ^ 0x55
}

/// µ-law code to 16-bit linear (interval midpoint).
const fn ulaw_decode_slow(code: u8) -> i16 {
    let c = !code as i32;
    let seg = (c >> 4) & 7;
    let mag = ((((c & 0x0F) << 3) + 0x84) << seg) - 0x84;
    (if c & 0x80 != 0 { -mag } else { mag }) as i16
}

/// A-law code to 16-bit linear (interval midpoint).
const fn alaw_decode_slow(code: u8) -> i16 {
    let c = (code ^ 0x55) as i32;
    let seg = (c >> 4) & 7;
    let mant = c & 0x0F;
    let mag = if seg == 0 {
        (mant << 4) + 8
    } else {
        ((mant << 4) + 0x108) << (seg - 1)
    };
    (if c & 0x80 != 0 { mag } else { -mag }) as i16
}

/// µ-law encoder table, indexed by `(sample >> 2) + 8192` (14-bit input).
static ULAW_ENC: [u8; 16384] = {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Every i16 with the same top 14 bits encodes alike: use the lowest one.
        t[i] = ulaw_encode_slow(((i as i32 - 8192) << 2) as i16);
        i += 1;
    }
    t
};

/// A-law encoder table, indexed by `(sample >> 3) + 4096` (13-bit input).
static ALAW_ENC: [u8; 8192] = {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = alaw_encode_slow(((i as i32 - 4096) << 3) as i16);
        i += 1;
    }
    t
};

/// µ-law decoder table.
static ULAW_DEC: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode_slow(i as u8);
        i += 1;
    }
    t
};

/// A-law decoder table.
static ALAW_DEC: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode_slow(i as u8);
        i += 1;
    }
    t
};

/// Encodes one 16-bit linear sample to µ-law (G.711 §4.2).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENC[((sample >> 2) as i32 + 8192) as usize]
}

/// Encodes one 16-bit linear sample to A-law (G.711 §3.2).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENC[((sample >> 3) as i32 + 4096) as usize]
}

/// Decodes one µ-law code to 16-bit linear (G.711 §4.3).
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DEC[code as usize]
}

/// Decodes one A-law code to 16-bit linear (G.711 §3.3).
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DEC[code as usize]
}

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, PCMU (North America, Japan).
    Mu,
    /// A-law, PCMA (Europe and most of the world).
    A,
}

/// A G.711 codec (stateless but for the packet-loss concealer), 8000 Hz mono.
#[derive(Debug, Clone)]
pub struct G711 {
    law: Law,
    plc: super::plc::Concealer,
}

impl G711 {
    /// A codec of the given law.
    pub fn new(law: Law) -> Self {
        G711 {
            law,
            plc: super::plc::Concealer::new(8000),
        }
    }

    /// The law this codec uses.
    pub fn law(&self) -> Law {
        self.law
    }

    /// Appends the G.711 codes of `pcm` to `out` (one byte per sample).
    pub fn encode_into(&self, pcm: &[i16], out: &mut Vec<u8>) {
        match self.law {
            Law::Mu => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
            Law::A => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Appends the linear samples of `payload` to `out` and feeds the concealer.
    pub fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let start = out.len();
        match self.law {
            Law::Mu => out.extend(payload.iter().map(|&c| ulaw_decode(c))),
            Law::A => out.extend(payload.iter().map(|&c| alaw_decode(c))),
        }
        self.plc.good(&mut out[start..]);
    }

    /// Appends `samples` of concealment for a lost packet (see [`super::plc`]).
    pub fn conceal_into(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference µ-law encoder written from G.711 Table 2a decision levels
    /// (in 14-bit units: segment ends at 31, 95, 223, 479, 991, 2015, 4063, 8159).
    fn ulaw_reference(sample: i16) -> u8 {
        let x = (sample as i32) >> 2; // 14-bit
        let neg = x < 0;
        let m = if neg { -x - 1 } else { x }.min(8158);
        // Segment s covers [e_{s-1}, e_s) with step 2^(s+1); segment 0 starts
        // with a half-width step around zero.
        let ends = [31, 95, 223, 479, 991, 2015, 4063, 8159];
        let starts = [-1, 31, 95, 223, 479, 991, 2015, 4063];
        let seg = ends.iter().position(|&e| m < e).unwrap();
        let step = 2 << seg;
        let q = if seg == 0 {
            ((m + 1) / 2).min(15) // 0 is one unit wide, then steps of 2
        } else {
            (m - starts[seg]) / step
        };
        let q = q.min(15);
        let code = ((seg as i32) << 4) | q;
        let code = if neg { code | 0x80 } else { code };
        !(code as u8)
    }

    #[test]
    fn ulaw_matches_reference_over_full_range() {
        let mut diffs = 0;
        for s in i16::MIN..=i16::MAX {
            if ulaw_encode(s) != ulaw_reference(s) {
                diffs += 1;
            }
        }
        assert_eq!(diffs, 0, "µ-law disagrees with the segment rules");
    }

    #[test]
    fn tables_equal_slow_encoders_for_every_input() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(s), ulaw_encode_slow(s), "µ {s}");
            assert_eq!(alaw_encode(s), alaw_encode_slow(s), "A {s}");
        }
    }

    /// Reference A-law encoder from G.711 Table 1a: 13-bit magnitude, segment
    /// ends 32, 64, ..., 4096; segments 0 and 1 share the step 2 (in 13 bits: 1).
    fn alaw_reference(sample: i16) -> u8 {
        let x = (sample as i32) >> 3;
        let neg = x < 0;
        let m = if neg { -x - 1 } else { x };
        let (seg, q) = if m < 32 {
            (0, m / 2)
        } else {
            let seg = (1..8).find(|s| m < 32 << s).unwrap();
            (seg, (m - (16 << seg)) >> seg)
        };
        let code = (seg << 4) | q;
        ((if neg { code } else { code | 0x80 }) as u8) ^ 0x55
    }

    #[test]
    fn alaw_matches_reference_over_full_range() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(s), alaw_reference(s), "A-law at {s}");
        }
    }

    #[test]
    fn all_256_codes_round_trip() {
        for c in 0..=255u8 {
            let u = ulaw_encode(ulaw_decode(c));
            // 0x7F is µ-law "negative zero": it decodes to 0, which encodes as +0.
            if c == 0x7F {
                assert_eq!(u, 0xFF);
            } else {
                assert_eq!(u, c, "µ-law code {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law code {c:#04x}");
        }
    }

    #[test]
    fn known_values() {
        // G.711: µ-law 0xFF and A-law 0xD5 are the codes for zero.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn quantization_is_monotonic_and_bounded() {
        let (mut pu, mut pa) = (i16::MIN, i16::MIN);
        for s in i16::MIN..=i16::MAX {
            let (u, a) = (ulaw_decode(ulaw_encode(s)), alaw_decode(alaw_encode(s)));
            assert!(u >= pu && a >= pa, "not monotonic at {s}");
            (pu, pa) = (u, a);
            // Error bounded by half a step of the top segment (plus clipping).
            let (s32, u32_, a32) = (s as i32, u as i32, a as i32);
            if s32.abs() < 32000 {
                assert!((s32 - u32_).abs() <= 512, "µ error at {s}: {u}");
                assert!((s32 - a32).abs() <= 512, "A error at {s}: {a}");
            }
            // Relative error in the upper log segments: half a step of 1/16 of
            // the segment, under 1/28 of the value once the µ-law bias fades.
            if s32.abs() > 4096 && s32.abs() < 32000 {
                assert!((s32 - u32_).abs() * 28 <= s32.abs(), "µ rel at {s}");
                assert!((s32 - a32).abs() * 28 <= s32.abs(), "A rel at {s}");
            }
        }
    }

    #[test]
    fn codec_round_trips_a_frame() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20000 - 10000) as i16)
            .collect();
        for law in [Law::Mu, Law::A] {
            let mut c = G711::new(law);
            let mut bytes = Vec::new();
            c.encode_into(&pcm, &mut bytes);
            assert_eq!(bytes.len(), 160);
            let mut back = Vec::new();
            c.decode_into(&bytes, &mut back);
            for (a, b) in pcm.iter().zip(&back) {
                assert!((*a as i32 - *b as i32).abs() <= 512);
            }
        }
    }
}
