//! Encode/decode cost of one 20 ms frame for each codec, and the resampler.
//! `cargo bench --bench codecs`

use std::hint::black_box;
use std::time::Duration;

use callgate::media::codec::{AnyCodec, AudioCodec, CodecKind, Resampler};
use criterion::{Criterion, criterion_group, criterion_main};

/// 20 ms of a two-tone signal at `rate`.
fn frame(rate: u32) -> Vec<i16> {
    (0..rate as usize / 50)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (6000.0 * (std::f64::consts::TAU * 440.0 * t).sin()
                + 3000.0 * (std::f64::consts::TAU * 1700.0 * t).sin()) as i16
        })
        .collect()
}

fn codecs(c: &mut Criterion) {
    let cases = [
        ("pcmu", CodecKind::Pcmu, 8000),
        ("pcma", CodecKind::Pcma, 8000),
        ("g722", CodecKind::G722, 16000),
        ("opus_8k", CodecKind::Opus, 8000),
        ("opus_16k", CodecKind::Opus, 16000),
        ("opus_48k", CodecKind::Opus, 48000),
    ];
    for (name, kind, rate) in cases {
        let pcm = frame(rate);
        let mut codec = AnyCodec::new(kind, rate, "useinbandfec=1").unwrap();
        let mut bytes = Vec::with_capacity(1500);
        c.bench_function(&format!("{name}_encode_20ms"), |b| {
            b.iter(|| {
                bytes.clear();
                codec.encode(black_box(&pcm), &mut bytes).unwrap();
            })
        });
        bytes.clear();
        codec.encode(&pcm, &mut bytes).unwrap();
        let mut out = Vec::with_capacity(pcm.len());
        c.bench_function(&format!("{name}_decode_20ms"), |b| {
            b.iter(|| {
                out.clear();
                codec.decode(black_box(&bytes), &mut out).unwrap();
            })
        });
    }
    for (from, to) in [(8000, 16000), (16000, 8000), (8000, 48000)] {
        let pcm = frame(from);
        let mut r = Resampler::new(from, to).unwrap();
        let mut out = Vec::with_capacity(pcm.len() * 6);
        c.bench_function(&format!("resample_{from}_{to}_20ms"), |b| {
            b.iter(|| {
                out.clear();
                r.process(black_box(&pcm), &mut out);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codecs
}
criterion_main!(benches);
