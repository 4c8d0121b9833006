//! The media plane under hostile RTP: the fuzz targets' checks
//! (`fuzz/checks.rs`: `media_session`, `dtmf_payloads`) run over thousands
//! of deterministic mutations of real packets (Opus, PCMU, telephone-event,
//! RTCP) as a plain `cargo test`, so a malformed packet that panics a
//! transcoding session fails CI even without cargo-fuzz.
#![allow(clippy::disallowed_methods, dead_code)]

#[path = "../fuzz/checks.rs"]
mod checks;

/// xorshift64*: deterministic mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..8u16 {
        // A real Opus TOC byte (SILK 20 ms mono) + bytes; PCMU silence; events.
        v.push(rtp(
            111,
            i,
            u32::from(i) * 960,
            0xA1,
            &[0x08, 0x0b, 0xe4, 0xc1, 0x36],
        ));
        v.push(rtp(0, i, u32::from(i) * 160, 0xB1, &[0xFF; 160]));
        v.push(rtp(
            101,
            i,
            1600,
            0xB1,
            &[5, if i > 5 { 0x8a } else { 0x0a }, 0, (i * 160) as u8],
        ));
        v.push(rtp(110, i, 9600, 0xA1, &[11, 0x0a, 3, 0xC0]));
    }
    v.push(vec![
        0x81, 200, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    v
}

#[test]
fn transcoding_session_survives_mutated_packets() {
    let mut rng = Rng(0xDEAD_BEEF_1234_5678);
    let seeds = seeds();
    let mut sent = 0;
    for round in 0..1500 {
        let mut input = vec![rng.next() as u8];
        for _ in 0..1 + rng.below(6) {
            let mut p = seeds[rng.below(seeds.len())].clone();
            for _ in 0..rng.below(4) {
                if p.is_empty() {
                    break;
                }
                let i = rng.below(p.len());
                match rng.below(4) {
                    0 => p[i] = rng.next() as u8,
                    1 => p.truncate(i),
                    2 => p.insert(i, rng.next() as u8),
                    _ => p.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
                }
            }
            p.retain(|&b| b != 0xFF || round % 3 == 0);
            input.extend(p);
            input.push(0xFF);
        }
        sent += checks::media_session(&input);
        checks::dtmf_payloads(&input[1..]);
    }
    eprintln!("media storm: {sent} datagrams out");
    assert!(
        sent > 500,
        "the storm reached the transcoder: {sent} datagrams out"
    );
}
