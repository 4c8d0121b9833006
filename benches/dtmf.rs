//! DTMF detector cost per 20 ms frame (speech, so every check runs; and a
//! digit), and tone generation. `cargo bench --bench dtmf`

use std::hint::black_box;
use std::time::Duration;

use callgate::dtmf::{Detector, DetectorConfig, Digit, ToneGenerator};
use criterion::{Criterion, criterion_group, criterion_main};

/// One second of a vowel-like harmonic signal with a gliding pitch.
fn voice(rate: u32) -> Vec<i16> {
    (0..rate as usize)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let f0 = 140.0 * (1.0 + 0.2 * (std::f64::consts::TAU * 0.7 * t).sin());
            (1..12)
                .map(|h| 2500.0 / h as f64 * (std::f64::consts::TAU * f0 * h as f64 * t).sin())
                .sum::<f64>() as i16
        })
        .collect()
}

fn dtmf(c: &mut Criterion) {
    for rate in [8000u32, 16000] {
        let frame = rate as usize / 50;
        let speech = voice(rate);
        let mut det = Detector::new(DetectorConfig {
            sample_rate: rate,
            ..DetectorConfig::default()
        });
        let mut i = 0;
        c.bench_function(&format!("detector_{}k_speech_20ms", rate / 1000), |b| {
            b.iter(|| {
                det.push(black_box(&speech[i..i + frame]));
                while det.poll_event().is_some() {}
                i = (i + frame) % (speech.len() - frame);
            })
        });
        let mut tone = Vec::new();
        ToneGenerator::digit(rate, Digit::from_char('5').unwrap(), None)
            .generate(rate as usize, &mut tone);
        let mut i = 0;
        c.bench_function(&format!("detector_{}k_digit_20ms", rate / 1000), |b| {
            b.iter(|| {
                det.push(black_box(&tone[i..i + frame]));
                while det.poll_event().is_some() {}
                i = (i + frame) % (tone.len() - frame);
            })
        });
    }
    let mut g = ToneGenerator::digit(8000, Digit::from_char('#').unwrap(), None);
    let mut out = vec![0i16; 160];
    c.bench_function("tone_generator_8k_20ms", |b| {
        b.iter(|| g.fill(black_box(&mut out)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = dtmf
}
criterion_main!(benches);
