//! SRTP under hostile input: the fuzz target's check
//! (`fuzz/checks.rs::srtp_unprotect`) over deterministic mutations of RTP
//! and RTCP packets as a plain `cargo test`: unprotect never panics, our own
//! packets round-trip, tampered, truncated and replayed ones are refused.
#![allow(clippy::disallowed_methods, dead_code)]

#[path = "../fuzz/checks.rs"]
mod checks;

#[test]
fn srtp_unprotect_survives_mutations() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let mut rtp = vec![0x80, 0x00, 0x12, 0x34, 0, 0, 1, 0, 0xca, 0xfe, 0xba, 0xbe];
    rtp.extend_from_slice(&[0xab; 40]);
    seeds.push(rtp.clone());
    let mut ext = vec![0x91, 0x00, 0xff, 0xff, 0, 0, 1, 0, 1, 2, 3, 4, 9, 9, 9, 9];
    ext.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4, 5, 6]);
    seeds.push(ext);
    seeds.push(vec![
        0x81, 0xc8, 0, 6, 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
    ]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut runs = 0;
    for seed in &seeds {
        for _ in 0..2000 {
            let mut d = seed.clone();
            for _ in 0..(next() % 4) {
                let i = (next() as usize) % d.len();
                d[i] = next() as u8;
            }
            let cut = (next() as usize) % (d.len() + 1);
            if next() % 4 == 0 {
                d.truncate(cut);
            }
            let mut input = vec![next() as u8];
            input.extend_from_slice(&d);
            checks::srtp_unprotect(&input);
            runs += 1;
        }
    }
    assert_eq!(runs, 6000);
}
