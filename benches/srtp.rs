//! SRTP cost per 20 ms PCMU packet (172 bytes of RTP): protect (what the
//! relay does toward an SRTP leg), and protect + unprotect (unprotect is
//! what it does to what the leg sends), both SDES suites.
//! `cargo bench --bench srtp`

use std::hint::black_box;

use callgate::media::srtp::{Context, MasterKey, Suite};
use criterion::{Criterion, criterion_group, criterion_main};

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn srtp(c: &mut Criterion) {
    let key = MasterKey::from_bytes(&[9; 30]);
    for suite in Suite::ALL {
        let mut tx = Context::new(suite, &key);
        let mut seq = 0u16;
        c.bench_function(&format!("protect_{suite}_172B"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut p = packet(seq);
                tx.protect_rtp(black_box(&mut p)).unwrap();
                p
            })
        });
        // Protect then unprotect each packet (a fresh sequence number, so
        // every unprotect runs the whole check): unprotect ≈ this − protect.
        let mut tx = Context::new(suite, &key);
        let mut rx = Context::new(suite, &key);
        let mut seq = 0u16;
        c.bench_function(&format!("protect_unprotect_{suite}_172B"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let mut p = packet(seq);
                tx.protect_rtp(&mut p).unwrap();
                rx.unprotect_rtp(black_box(&mut p)).unwrap();
                p
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = srtp
}
criterion_main!(benches);
