//! Audio codecs for transcoding between the legs of a call: G.711 µ-law/A-law
//! ([`g711`], our own), G.722 ([`g722`], our own), Opus ([`opus`], libopus via
//! `audiopus`), their packet-loss concealment ([`plc`]) and a resampler
//! ([`resample`]) for the rare path that needs one.
//!
//! ```text
//!   RTP payload ─ AudioCodec::decode ─▶ PCM (i16, mono, codec's sample_rate) ─ AudioCodec::encode ─▶ RTP payload
//!   lost packet ─ AudioCodec::decode_lost ─▶ concealment of the same length
//! ```
//!
//! [`AudioCodec`] is the common interface; [`AnyCodec`] is the closed set the
//! media session holds (one enum, no boxing), built from the SDP encoding name
//! with [`AnyCodec::new`]. A codec's PCM rate may differ from its RTP clock rate
//! (G.722: 16 kHz PCM on an 8 kHz clock, RFC 3551 §4.5.2; Opus: any rate on a
//! 48 kHz clock, RFC 7587 §4.1): [`AudioCodec::rtp_timestamp_step`] converts.
//! Everything is sans-IO and allocation-free per call but for the caller's
//! output vectors, which are appended to.

pub mod g711;
pub mod g722;
pub mod opus;
pub mod plc;
#[cfg(test)]
mod quality_tests;
pub mod resample;

pub use g711::{G711, Law};
pub use g722::{G722Decoder, G722Encoder};
pub use opus::{OpusCodec, OpusFmtp};
pub use resample::Resampler;

use std::fmt;

/// Why a codec could not be set up or could not process one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// A sampling rate the codec (or resampler) cannot run at.
    UnsupportedRate(u32),
    /// An encoding name this module has no codec for.
    UnknownCodec(String),
    /// A frame length the encoder cannot take (Opus: 2.5–60 ms).
    BadFrameSize(usize),
    /// A payload the decoder rejected (empty or corrupt Opus packet).
    Malformed,
    /// libopus refused to be set up.
    Opus(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::UnsupportedRate(r) => write!(f, "unsupported sampling rate {r} Hz"),
            CodecError::UnknownCodec(n) => write!(f, "no codec for encoding {n:?}"),
            CodecError::BadFrameSize(n) => write!(f, "cannot encode a frame of {n} samples"),
            CodecError::Malformed => f.write_str("malformed payload"),
            CodecError::Opus(e) => write!(f, "libopus: {e}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Which codec, as named in SDP `a=rtpmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law, `PCMU/8000`, static PT 0.
    Pcmu,
    /// G.711 A-law, `PCMA/8000`, static PT 8.
    Pcma,
    /// G.722, `G722/8000`, static PT 9.
    G722,
    /// Opus, `opus/48000/2`, dynamic PT.
    Opus,
}

impl CodecKind {
    /// The codec for an rtpmap encoding name (case-insensitive), if we have one.
    pub fn from_name(name: &str) -> Option<CodecKind> {
        [
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::Opus,
        ]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// The RTP clock rate (Hz) of the codec's rtpmap.
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => g722::G722_RTP_CLOCK_RATE,
            CodecKind::Opus => opus::OPUS_RTP_CLOCK_RATE,
        }
    }

    /// The PCM rate the codec natively works at (Opus: its highest).
    pub fn native_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => g722::G722_SAMPLE_RATE,
            CodecKind::Opus => 48000,
        }
    }
}

/// One codec instance: an encoder and a decoder for one direction each.
///
/// PCM is mono `i16` at [`AudioCodec::sample_rate`]; outputs are appended to
/// the caller's vector so a media loop can reuse its buffers.
pub trait AudioCodec {
    /// Which codec this is.
    fn kind(&self) -> CodecKind;
    /// The PCM sampling rate of `encode` input and `decode` output.
    fn sample_rate(&self) -> u32;
    /// Encodes one frame of PCM into one RTP payload appended to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes one RTP payload, appending its PCM to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// Appends `samples` of concealment for a lost payload (PLC).
    fn decode_lost(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError>;

    /// The RTP timestamp advance for `samples` of PCM (RFC 3551 §4.5.2 for
    /// G.722's half-rate clock, RFC 7587 §4.1 for Opus's 48 kHz clock).
    fn rtp_timestamp_step(&self, samples: usize) -> u32 {
        (samples as u64 * self.kind().rtp_clock_rate() as u64 / self.sample_rate() as u64) as u32
    }
}

/// G.722 encoder and decoder with the shared PLC.
#[derive(Debug, Clone)]
pub struct G722 {
    enc: G722Encoder,
    dec: G722Decoder,
    plc: plc::Concealer,
}

impl Default for G722 {
    fn default() -> Self {
        G722 {
            enc: G722Encoder::new(),
            dec: G722Decoder::new(),
            plc: plc::Concealer::new(g722::G722_SAMPLE_RATE),
        }
    }
}

/// Every codec this module implements, as one value.
#[derive(Debug)]
pub enum AnyCodec {
    /// PCMU or PCMA.
    G711(G711),
    /// G.722 64 kbit/s.
    G722(Box<G722>),
    /// Opus at the rate chosen when it was made.
    Opus(Box<OpusCodec>),
}

impl AnyCodec {
    /// A codec for `kind`. `opus_rate` is the PCM rate Opus should run at (the
    /// rate of the other leg's codec: 8000 toward G.711, 16000 toward G.722)
    /// and `fmtp` the far end's `a=fmtp` value; both are ignored by the others.
    pub fn new(kind: CodecKind, opus_rate: u32, fmtp: &str) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Pcmu => AnyCodec::G711(G711::new(Law::Mu)),
            CodecKind::Pcma => AnyCodec::G711(G711::new(Law::A)),
            CodecKind::G722 => AnyCodec::G722(Box::default()),
            CodecKind::Opus => {
                AnyCodec::Opus(Box::new(OpusCodec::new(opus_rate, &OpusFmtp::parse(fmtp))?))
            }
        })
    }

    /// A codec from an rtpmap encoding name.
    pub fn from_name(name: &str, opus_rate: u32, fmtp: &str) -> Result<Self, CodecError> {
        let kind =
            CodecKind::from_name(name).ok_or_else(|| CodecError::UnknownCodec(name.into()))?;
        Self::new(kind, opus_rate, fmtp)
    }
}

impl AudioCodec for AnyCodec {
    fn kind(&self) -> CodecKind {
        match self {
            AnyCodec::G711(c) if c.law() == Law::Mu => CodecKind::Pcmu,
            AnyCodec::G711(_) => CodecKind::Pcma,
            AnyCodec::G722(_) => CodecKind::G722,
            AnyCodec::Opus(_) => CodecKind::Opus,
        }
    }

    fn sample_rate(&self) -> u32 {
        match self {
            AnyCodec::G711(_) => 8000,
            AnyCodec::G722(_) => g722::G722_SAMPLE_RATE,
            AnyCodec::Opus(c) => c.sample_rate(),
        }
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            AnyCodec::G711(c) => c.encode_into(pcm, out),
            AnyCodec::G722(c) => c.enc.encode_into(pcm, out),
            AnyCodec::Opus(c) => return c.encode_into(pcm, out),
        }
        Ok(())
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        match self {
            AnyCodec::G711(c) => c.decode_into(payload, out),
            AnyCodec::G722(c) => {
                let start = out.len();
                c.dec.decode_into(payload, out);
                c.plc.good(&mut out[start..]);
            }
            AnyCodec::Opus(c) => return c.decode_into(payload, out),
        }
        Ok(())
    }

    fn decode_lost(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        match self {
            AnyCodec::G711(c) => c.conceal_into(samples, out),
            AnyCodec::G722(c) => c.plc.conceal(samples, out),
            AnyCodec::Opus(c) => return c.decode_lost(samples, out),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_rates_and_timestamp_steps() {
        assert_eq!(CodecKind::from_name("pcmu"), Some(CodecKind::Pcmu));
        assert_eq!(CodecKind::from_name("OPUS"), Some(CodecKind::Opus));
        assert_eq!(CodecKind::from_name("G729"), None);
        assert!(matches!(
            AnyCodec::from_name("G729", 8000, ""),
            Err(CodecError::UnknownCodec(_))
        ));
        // 20 ms of PCM: 160 ticks for G.711 and G.722 (8 kHz clock), 960 for Opus.
        let cases = [
            ("PCMU", 160, 160),
            ("PCMA", 160, 160),
            ("G722", 320, 160),
            ("opus", 160, 960),
        ];
        for (name, samples, ticks) in cases {
            let mut c = AnyCodec::from_name(name, 8000, "").unwrap();
            assert_eq!(c.rtp_timestamp_step(samples), ticks, "{name}");
            let pcm = vec![1000i16; samples];
            let (mut bytes, mut back) = (Vec::new(), Vec::new());
            c.encode(&pcm, &mut bytes).unwrap();
            c.decode(&bytes, &mut back).unwrap();
            assert_eq!(back.len(), samples, "{name}");
            c.decode_lost(samples, &mut back).unwrap();
            assert_eq!(back.len(), 2 * samples, "{name}");
        }
    }
}
