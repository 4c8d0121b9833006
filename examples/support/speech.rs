//! The synthetic speech the media benchmarks send (examples/media_bench.rs
//! in process, examples/media_bench_wire/ over sockets): the same audio, so
//! their figures compare.

use callgate::media::codec::{AnyCodec, AudioCodec, CodecKind};

/// Frames in the loop of payloads each stream replays.
pub const LOOP_FRAMES: usize = 50;

/// One second of speech-band audio: five formant-like tones, each
/// amplitude-modulated at its own rate (never silent, never periodic).
pub fn signal(rate: u32) -> Vec<i16> {
    let parts = [
        (313.0, 4000.0, 2.3),
        (727.0, 3000.0, 3.1),
        (1093.0, 2000.0, 4.7),
        (2441.0, 1000.0, 5.3),
        (3137.0, 500.0, 6.1),
    ];
    (0..rate as usize)
        .map(|i| {
            let t = i as f64 / rate as f64;
            parts
                .iter()
                .map(|&(f, a, m): &(f64, f64, f64)| {
                    a * (0.6 + 0.4 * (std::f64::consts::TAU * m * t).sin())
                        * (std::f64::consts::TAU * f * t).sin()
                })
                .sum::<f64>() as i16
        })
        .collect()
}

/// [`LOOP_FRAMES`] RTP payloads of 20 ms of [`signal`] in `kind` at `rate`
/// (Opus as WebRTC clients send it: libopus's VoIP application, in-band FEC).
pub fn payloads(kind: CodecKind, rate: u32) -> Vec<Vec<u8>> {
    // Both codecs exist in this build (callgate links libopus).
    let mut c = AnyCodec::new(kind, rate, "useinbandfec=1").expect("codec");
    if let AnyCodec::Opus(o) = &mut c {
        o.encode_like_a_webrtc_client();
    }
    signal(rate)
        .chunks_exact(rate as usize / 50)
        .take(LOOP_FRAMES)
        .map(|f| {
            let mut p = Vec::new();
            // A whole 20 ms frame always encodes.
            c.encode(f, &mut p).expect("encode");
            p
        })
        .collect()
}
