//! Tests of the G.722 codec: bit-exactness against a reference implementation
//! (by FNV-1a hashes of its output on a deterministic signal), quality, tables.

use super::*;

/// The deterministic input the reference run used: two tones plus LCG noise,
/// louder (and clipping) in the second half.
fn reference_input() -> Vec<i16> {
    let mut st: u32 = 12345;
    (0..32000)
        .map(|i| {
            st = st.wrapping_mul(1103515245).wrapping_add(12345);
            let noise = ((st >> 16) & 0x7fff) as i32 - 16384;
            let t = i as f64 / 16000.0;
            let pi = std::f64::consts::PI;
            let mut v = 9000.0 * (2.0 * pi * 440.0 * t).sin()
                + 6000.0 * (2.0 * pi * 3100.0 * t).sin()
                + noise as f64 / 4.0;
            if i > 16000 {
                v *= 2.5;
            }
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

fn fnv_bytes(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn fnv_samples(s: &[i16]) -> u64 {
    fnv_bytes(s.iter().flat_map(|x| x.to_le_bytes()))
}

/// Hashes produced by spandsp 0.0.6 (`g722_encode_init(NULL, 64000, 0)`, the
/// codec of Asterisk and FreeSWITCH; computed once with a small C harness, not
/// a dependency) on [`reference_input`]: our encoder is bit-exact with it, and
/// so is our decoder wherever its output does not overflow 16 bits.
#[test]
fn bit_exact_with_reference_implementation() {
    let input = reference_input();
    assert_eq!(
        fnv_samples(&input),
        0x12fea42903118cbd,
        "input generator drifted"
    );
    let mut enc = G722Encoder::new();
    let mut bytes = Vec::new();
    enc.encode_into(&input, &mut bytes);
    assert_eq!(bytes.len(), 16000);
    assert_eq!(&bytes[1000..1008], &[206, 209, 124, 246, 25, 182, 87, 102]);
    assert_eq!(fnv_bytes(bytes.iter().copied()), 0x64ad3464d9299414);
    let mut dec = G722Decoder::new();
    let mut out = Vec::new();
    dec.decode_into(&bytes, &mut out);
    assert_eq!(out.len(), 32000);
    assert_eq!(
        &out[2000..2008],
        &[8626, 5569, -2186, -4105, -525, 4694, -2240, -6100]
    );
    // The reference wraps the 16-bit output on overflow (a full-scale click);
    // we saturate. Compare the half that does not overflow bit for bit, and
    // the loud half only where the reference did not wrap.
    assert_eq!(fnv_samples(&out[..16000]), 0x0da2324cb7073125);
    let clipped = out[16000..]
        .iter()
        .filter(|&&s| s == i16::MAX || s == i16::MIN)
        .count();
    assert!(clipped > 0 && clipped < 1000, "{clipped} saturated samples");
}

#[test]
fn antilog_table_is_2_to_the_i_over_32() {
    for (i, &v) in ILB.iter().enumerate() {
        let exact = 2048.0 * 2f64.powf(i as f64 / 32.0);
        assert!(
            (v as f64 - exact).abs() <= 1.0,
            "ILB[{i}] = {v}, 2^(i/32) gives {exact}"
        );
    }
}

/// SNR (dB) of `out` against `x` after the best integer delay in `0..max_delay`.
fn snr_with_delay(x: &[i16], out: &[i16], max_delay: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for d in 0..max_delay {
        let (mut sig, mut err) = (0.0, 0.0);
        for i in 2000..x.len() - max_delay {
            let e = x[i] as f64 - out[i + d] as f64;
            sig += (x[i] as f64).powi(2);
            err += e * e;
        }
        let snr = 10.0 * (sig / err.max(1.0)).log10();
        if snr > best.0 {
            best = (snr, d);
        }
    }
    best
}

#[test]
fn tones_in_both_bands_survive_with_high_snr() {
    for freq in [300.0, 1000.0, 3000.0, 5000.0, 6500.0] {
        let x: Vec<i16> = (0..16000)
            .map(|i| {
                (10000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16
            })
            .collect();
        let mut bytes = Vec::new();
        G722Encoder::new().encode_into(&x, &mut bytes);
        let mut out = Vec::new();
        G722Decoder::new().decode_into(&bytes, &mut out);
        let (snr, _) = snr_with_delay(&x, &out, 40);
        let min = if freq < 4000.0 { 25.0 } else { 15.0 };
        assert!(snr > min, "{freq} Hz: SNR {snr:.1} dB");
    }
}

#[test]
fn delay_is_that_of_the_qmf_pair() {
    let x = reference_input();
    let mut bytes = Vec::new();
    G722Encoder::new().encode_into(&x[..16000], &mut bytes);
    let mut out = Vec::new();
    G722Decoder::new().decode_into(&bytes, &mut out);
    let (snr, delay) = snr_with_delay(&x[..16000], &out, 40);
    // Two 24-tap QMFs: 23 samples of group delay, less the one the pairing saves.
    assert_eq!(delay, 22);
    assert!(snr > 20.0, "noise + tones: {snr:.1} dB");
}

#[test]
fn odd_sample_is_dropped_and_frames_are_160_bytes() {
    let mut bytes = Vec::new();
    G722Encoder::new().encode_into(&[0i16; 320], &mut bytes);
    assert_eq!(bytes.len(), 160);
    G722Encoder::new().encode_into(&[0i16; 3], &mut bytes);
    assert_eq!(bytes.len(), 161);
}
