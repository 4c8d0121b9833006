//! The two halves of a transcoding direction: [`Decoder`] (RTP payloads in
//! order → PCM, concealing what was lost) and [`Encoder`] (PCM frames of the
//! sink's packet time → RTP payloads), with the choice of PCM rate that keeps
//! a resampler off the common paths.
//!
//! ```text
//!   payload ─ Decoder (PLC / Opus FEC on loss, gaps by timestamp) ─ PCM @ rate ─┬─ Detector (in-band DTMF)
//!                                                  (Resampler only G.711↔G.722) └─ FIFO ─ Encoder @ sink ptime
//! ```
//!
//! Opus runs at the rate of the other leg: 8 kHz toward G.711, 16 kHz toward
//! G.722 (RFC 7587 lets a receiver decode at any rate), so Opus↔G.711 and
//! Opus↔G.722 never resample; only G.711↔G.722 does.

use super::codec::{AnyCodec, AudioCodec, CodecError, CodecKind};

/// A gap in the source (by timestamp) longer than this is a new talkspurt,
/// not something to conceal.
pub const MAX_CONCEAL_MS: u32 = 120;
/// Opus encoder complexity (0–10) for transcoding. Toward a G.711/G.722
/// leg the encoder runs SILK at 8/16 kHz, where complexity buys search effort,
/// not bandwidth: on synthetic speech the waveform SNR after PCMU→Opus is the
/// same at 0, 1, 2, 5 and 10 (5.4 dB, SILK being perceptual), while a 20 ms
/// frame at 8 kHz costs 27 µs at 1, 63 µs at 5 and 120 µs at 10 (libopus's
/// default). 1 is what lets one core carry 300+ Opus↔PCMU calls.
pub const OPUS_COMPLEXITY: u8 = 1;

/// The PCM rate a codec works at on a transcoding path toward `other`:
/// Opus follows the other leg's codec, the others their native rate.
pub fn pcm_rate(kind: CodecKind, other: Option<CodecKind>) -> u32 {
    match kind {
        CodecKind::Opus => match other {
            Some(CodecKind::G722) => 16000,
            Some(CodecKind::Opus) => 48000,
            _ => 8000,
        },
        k => k.native_rate(),
    }
}

/// What [`Decoder::decode`] did besides decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Lost packets concealed before this one.
    pub concealed: u32,
    /// The source jumped (long silence, timestamp restart): what came before
    /// is not continuous with this packet.
    pub discontinuity: bool,
}

/// Decodes one source stream in order.
#[derive(Debug)]
pub struct Decoder {
    kind: CodecKind,
    codec: AnyCodec,
    rate: u32,
    clock: u32,
    /// RTP timestamp right after the last decoded sample.
    expected_ts: Option<u32>,
    /// PCM samples in the last decoded packet (the unit of concealment).
    last_samples: usize,
    /// Sequence numbers found missing since the last packet decoded.
    lost: u32,
}

impl Decoder {
    /// A decoder for `kind` producing PCM at `rate` (Opus: any of 8/16/48 kHz).
    pub fn new(kind: CodecKind, rate: u32) -> Result<Self, CodecError> {
        let mut codec = AnyCodec::new(kind, rate, "")?;
        let rate = codec.sample_rate();
        if let AnyCodec::Opus(o) = &mut codec {
            // Only its decoder is used: keep the idle encoder cheap.
            o.set_complexity(0);
        }
        Ok(Decoder {
            kind,
            codec,
            rate,
            clock: kind.rtp_clock_rate(),
            expected_ts: None,
            last_samples: (rate / 50) as usize,
            lost: 0,
        })
    }

    /// Which codec it decodes.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// PCM rate of the output.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// `n` sequence numbers went missing before the next packet.
    pub fn lost(&mut self, n: u16) {
        self.lost += u32::from(n);
    }

    /// Forget the stream's timing (new source): no concealment across.
    pub fn reset(&mut self) {
        self.expected_ts = None;
        self.lost = 0;
    }

    /// Decodes the payload of the next packet in order (RTP timestamp `ts`),
    /// appending to `out` first whatever fills the gap before it: concealment
    /// (Opus: FEC from this packet for the frame just before it) when packets
    /// were lost, silence (or Opus's own comfort noise) for a short gap the
    /// sender left on purpose, nothing for a long one.
    pub fn decode(&mut self, ts: u32, payload: &[u8], out: &mut Vec<i16>) -> Decoded {
        let mut d = Decoded::default();
        let lost = std::mem::take(&mut self.lost);
        if let Some(exp) = self.expected_ts {
            let gap = ts.wrapping_sub(exp) as i32;
            let max = (self.clock / 1000 * MAX_CONCEAL_MS) as i32;
            if gap > max || gap < -max {
                d.discontinuity = true;
            } else if gap > 0 {
                let samples = (gap as u64 * u64::from(self.rate) / u64::from(self.clock)) as usize;
                if lost > 0 {
                    d.concealed = lost;
                    self.conceal(samples, Some(payload), out);
                } else if self.kind == CodecKind::Opus {
                    // DTX: libopus renders its comfort noise for the gap.
                    self.conceal(samples, None, out);
                } else {
                    out.resize(out.len() + samples, 0);
                }
            }
        }
        let start = out.len();
        if self.codec.decode(payload, out).is_err() {
            // Corrupt payload: conceal one frame in its place.
            out.truncate(start);
            let n = self.last_samples;
            self.conceal(n, None, out);
            d.concealed += 1;
        }
        let n = out.len() - start;
        if n > 0 {
            self.last_samples = n;
        }
        self.expected_ts = Some(ts.wrapping_add(self.codec.rtp_timestamp_step(n)));
        d
    }

    /// Appends `samples` of concealment; the last frame from Opus FEC in `next`.
    fn conceal(&mut self, samples: usize, next: Option<&[u8]>, out: &mut Vec<i16>) {
        let start = out.len();
        match (&mut self.codec, next) {
            (AnyCodec::Opus(o), Some(next)) if samples >= self.last_samples => {
                let fec = self.last_samples;
                let _ = o.decode_lost(samples - fec, out);
                if o.decode_fec(next, fec, out).is_err() {
                    let _ = o.decode_lost(fec, out);
                }
            }
            (c, _) => {
                let _ = c.decode_lost(samples, out);
            }
        }
        // Opus conceals in 2.5 ms units: pad so the timeline stays exact.
        out.resize(start + samples, 0);
    }
}

/// The codec a direction encodes toward: the sink leg's first media codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkCodec {
    /// Which codec.
    pub kind: CodecKind,
    /// Its payload type on the sink leg.
    pub payload_type: u8,
    /// The sink's `a=fmtp` for it.
    pub fmtp: String,
    /// Packet time toward the sink, ms (valid for the codec).
    pub ptime_ms: u32,
}

impl SinkCodec {
    /// The packet time to send to a codec: the leg's `a=ptime` when the codec
    /// can carry it, else 20 ms (Opus frames are 10, 20, 40 or 60 ms; the
    /// waveform codecs take any multiple of 10 ms up to 60).
    pub fn ptime_for(kind: CodecKind, ptime: Option<u32>) -> u32 {
        let p = ptime.unwrap_or(20);
        match kind {
            CodecKind::Opus if matches!(p, 10 | 20 | 40 | 60) => p,
            CodecKind::Opus => 20,
            _ if (10..=60).contains(&p) && p.is_multiple_of(10) => p,
            _ => 20,
        }
    }
}

/// Encodes PCM frames of the sink's packet time.
#[derive(Debug)]
pub struct Encoder {
    sink: SinkCodec,
    codec: AnyCodec,
    rate: u32,
    frame: usize,
    step: u32,
}

impl Encoder {
    /// An encoder toward `sink` taking PCM at `rate`.
    pub fn new(sink: &SinkCodec, rate: u32) -> Result<Self, CodecError> {
        let mut codec = AnyCodec::new(sink.kind, rate, &sink.fmtp)?;
        if let AnyCodec::Opus(o) = &mut codec {
            o.set_complexity(OPUS_COMPLEXITY);
        }
        let rate = codec.sample_rate();
        let frame = (rate * sink.ptime_ms / 1000) as usize;
        let step = codec.rtp_timestamp_step(frame);
        Ok(Encoder {
            sink: sink.clone(),
            codec,
            rate,
            frame,
            step,
        })
    }

    /// The codec it encodes toward.
    pub fn sink(&self) -> &SinkCodec {
        &self.sink
    }

    /// PCM rate of the input.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples per packet.
    pub fn frame(&self) -> usize {
        self.frame
    }

    /// RTP timestamp advance per packet (sink clock).
    pub fn step(&self) -> u32 {
        self.step
    }

    /// RTP clock rate of the sink codec.
    pub fn clock(&self) -> u32 {
        self.sink.kind.rtp_clock_rate()
    }

    /// The share of what it sends that the sink reports lost (percent):
    /// Opus protects its frames accordingly (see
    /// [`super::codec::OpusCodec::set_expected_loss`]); the waveform codecs
    /// have nothing to adjust.
    pub fn set_expected_loss(&mut self, percent: u8) {
        if let AnyCodec::Opus(o) = &mut self.codec {
            o.set_expected_loss(percent);
        }
    }

    /// Encodes one frame (exactly [`Self::frame`] samples) appending to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.codec.encode(pcm, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, n: usize, from: usize) -> Vec<i16> {
        (from..from + n)
            .map(|i| {
                (6000.0 * (std::f64::consts::TAU * 400.0 * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn rates_avoid_resampling_and_ptimes_fit_the_codec() {
        use CodecKind::*;
        assert_eq!(pcm_rate(Opus, Some(Pcmu)), 8000);
        assert_eq!(pcm_rate(Opus, Some(G722)), 16000);
        assert_eq!(pcm_rate(G722, Some(Opus)), 16000);
        assert_eq!(pcm_rate(Pcma, Some(Opus)), 8000);
        assert_eq!(SinkCodec::ptime_for(Opus, Some(30)), 20);
        assert_eq!(SinkCodec::ptime_for(Opus, Some(40)), 40);
        assert_eq!(SinkCodec::ptime_for(Pcmu, Some(30)), 30);
        assert_eq!(SinkCodec::ptime_for(Pcmu, Some(25)), 20);
        assert_eq!(SinkCodec::ptime_for(G722, None), 20);
    }

    #[test]
    fn gaps_are_concealed_filled_or_cut_by_timestamp() {
        let mut enc = G711Pair::new();
        let mut dec = Decoder::new(CodecKind::Pcmu, 8000).unwrap();
        let mut out = Vec::new();
        // 40 ms of history (the PLC needs two pitch periods of 15 ms).
        dec.decode(680, &enc.frame(0), &mut out);
        dec.decode(840, &enc.frame(160), &mut out);
        out.clear();
        dec.decode(1000, &enc.frame(320), &mut out);
        assert_eq!(out.len(), 160);
        // One packet lost: 160 samples concealed before the next.
        dec.lost(1);
        let d = dec.decode(1320, &enc.frame(640), &mut out);
        assert_eq!((d.concealed, d.discontinuity, out.len()), (1, false, 480));
        assert!(out[160..320].iter().any(|&s| s != 0), "PLC, not silence");
        // A 40 ms gap with nothing lost (silence suppression): zeros.
        dec.decode(1800, &enc.frame(1120), &mut out);
        assert_eq!(out.len(), 480 + 320 + 160);
        assert!(out[480..800].iter().all(|&s| s == 0));
        // Two seconds later: a new talkspurt, nothing inserted.
        let d = dec.decode(1960 + 16000, &enc.frame(0), &mut out);
        assert!(d.discontinuity);
        assert_eq!(out.len(), 1120);
    }

    #[test]
    fn opus_loss_uses_fec_and_keeps_the_timeline() {
        let sink = SinkCodec {
            kind: CodecKind::Opus,
            payload_type: 111,
            fmtp: "useinbandfec=1".into(),
            ptime_ms: 20,
        };
        let mut enc = Encoder::new(&sink, 8000).unwrap();
        assert_eq!((enc.frame(), enc.step(), enc.clock()), (160, 960, 48000));
        let mut dec = Decoder::new(CodecKind::Opus, 8000).unwrap();
        let mut out = Vec::new();
        for k in 0..10u32 {
            let mut p = Vec::new();
            enc.encode(&tone(8000, 160, k as usize * 160), &mut p)
                .unwrap();
            if k == 5 || k == 6 {
                dec.lost(1);
                continue;
            }
            dec.decode(k * 960, &p, &mut out);
        }
        assert_eq!(out.len(), 1600, "two lost frames concealed in place");
        let e: f64 = out[800..1120]
            .iter()
            .map(|&s| (s as f64).powi(2))
            .sum::<f64>()
            / 320.0;
        assert!(e > 1e5, "concealment is not silence: {e}");
    }

    struct G711Pair(AnyCodec);

    impl G711Pair {
        fn new() -> Self {
            G711Pair(AnyCodec::new(CodecKind::Pcmu, 8000, "").unwrap())
        }
        fn frame(&mut self, from: usize) -> Vec<u8> {
            let mut v = Vec::new();
            self.0.encode(&tone(8000, 160, from), &mut v).unwrap();
            v
        }
    }
}
