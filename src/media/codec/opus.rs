//! Opus (RFC 6716) through `audiopus` and the system libopus, with the SDP
//! format parameters of RFC 7587 §6.1.
//!
//! The encoder and decoder run at the PCM rate the other leg needs — 8 kHz
//! toward G.711, 16 kHz toward G.722, 48 kHz for Opus-to-Opus work — so no
//! resampling is needed: libopus encodes and decodes at any of its rates
//! whatever the bandwidth of the far end. Always mono on our side: a mono
//! decoder down-mixes a stereo stream, and mono is always acceptable to a
//! receiver that prefers stereo (RFC 7587 §6.1, `stereo`). The RTP clock is
//! 48 000 Hz regardless (RFC 7587 §4.1).
//!
//! Loss: [`OpusCodec::decode_lost`] runs libopus concealment; when the next
//! packet is already at hand and the peer sends in-band FEC (`useinbandfec=1`),
//! [`OpusCodec::decode_fec`] rebuilds the lost frame from it (RFC 6716 §2.1.7).
//!
//! Encoder mode: libopus's "audio" application, so the decoded audio stays
//! as close to the input as it can: a gateway's input is speech, but also
//! in-band DTMF, fax and modem tones and music on hold. It picks CELT or
//! SILK itself. In-band FEC exists only in SILK frames, so when the far end
//! accepts FEC (`useinbandfec=1`) the loss it reports (RTCP, fed to
//! [`OpusCodec::set_expected_loss`]) decides: with no loss expected libopus
//! sends CELT (narrowband: 9–15 µs a frame here, against 30–33 µs for
//! SILK), with loss it moves to SILK frames carrying the previous frame
//! again at low rate (LBRR).

use audiopus::coder::{Decoder, Encoder};
use audiopus::packet::Packet;
use audiopus::{Application, Bandwidth, Bitrate, Channels, MutSignals, SampleRate, Signal};

use super::CodecError;

/// RTP clock rate of Opus, whatever the sampling rate (RFC 7587 §4.1).
pub const OPUS_RTP_CLOCK_RATE: u32 = 48000;
/// The largest Opus packet duration, 120 ms (RFC 6716 §3.2.5), at 48 kHz.
const MAX_FRAME_48K: usize = 5760;
/// `OPUS_SET_FORCE_MODE` (libopus `opus_private.h`, stable since 1.0; the
/// control `opus_demo` uses) and its values.
const OPUS_SET_FORCE_MODE_REQUEST: i32 = 11002;
const OPUS_AUTO: i32 = -1000;
const MODE_CELT_ONLY: i32 = 1002;
/// Upper bound of an encoded packet we produce (RFC 6716 §3.4 recommends 1275).
const MAX_PACKET: usize = 1500;

/// Opus `a=fmtp` parameters (RFC 7587 §6.1); unknown ones are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpusFmtp {
    /// `useinbandfec=1`: the receiver can use in-band FEC, so the encoder adds it.
    pub useinbandfec: bool,
    /// `maxplaybackrate`: the highest sampling rate the receiver renders (Hz).
    pub maxplaybackrate: Option<u32>,
    /// `stereo=1`: the receiver prefers stereo (we still send mono).
    pub stereo: bool,
    /// `sprop-stereo=1`: the sender may send stereo.
    pub sprop_stereo: bool,
    /// `ptime` (not in RFC 7587's list but sent by some peers): packet duration, ms.
    pub ptime: Option<u32>,
    /// `maxaveragebitrate`: the receiver's limit on the average bitrate (bit/s).
    pub maxaveragebitrate: Option<u32>,
    /// `usedtx=1`: the receiver prefers discontinuous transmission.
    pub usedtx: bool,
    /// `cbr=1`: the receiver prefers constant bitrate.
    pub cbr: bool,
}

impl OpusFmtp {
    /// Parses the value of an `a=fmtp:<pt> ` line, e.g.
    /// `minptime=10;useinbandfec=1; maxplaybackrate=16000`. Lenient: spaces,
    /// case of names, unknown and malformed parameters are skipped.
    pub fn parse(fmtp: &str) -> Self {
        let mut f = OpusFmtp::default();
        for part in fmtp.split(';') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            let flag = value == "1";
            let num = value.parse::<u32>().ok();
            match name.as_str() {
                "useinbandfec" => f.useinbandfec = flag,
                "maxplaybackrate" => f.maxplaybackrate = num.filter(|&n| n > 0),
                "stereo" => f.stereo = flag,
                "sprop-stereo" => f.sprop_stereo = flag,
                "ptime" => f.ptime = num.filter(|&n| n > 0),
                "maxaveragebitrate" => f.maxaveragebitrate = num.filter(|&n| n > 0),
                "usedtx" => f.usedtx = flag,
                "cbr" => f.cbr = flag,
                _ => {}
            }
        }
        f
    }

    /// The fmtp value to offer for a leg whose PCM runs at `rate` Hz: in-band
    /// FEC on, and `maxplaybackrate` so the far end does not waste bits on
    /// bandwidth we would throw away.
    pub fn offer(rate: u32) -> String {
        format!("maxplaybackrate={rate};sprop-maxcapturerate={rate};useinbandfec=1")
    }
}

fn sample_rate(rate: u32) -> Result<SampleRate, CodecError> {
    match rate {
        8000 => Ok(SampleRate::Hz8000),
        16000 => Ok(SampleRate::Hz16000),
        48000 => Ok(SampleRate::Hz48000),
        other => Err(CodecError::UnsupportedRate(other)),
    }
}

fn opus_err(e: audiopus::Error) -> CodecError {
    CodecError::Opus(e.to_string())
}

/// An Opus encoder and decoder pair at one PCM rate, mono.
pub struct OpusCodec {
    enc: Encoder,
    dec: Decoder,
    rate: u32,
    ptime_ms: u32,
    scratch: Vec<i16>,
    packet: Vec<u8>,
    /// Loss percentage the encoder is told to expect.
    expected_loss: u8,
    /// The far end accepts in-band FEC (`useinbandfec=1`).
    fec: bool,
}

impl std::fmt::Debug for OpusCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusCodec")
            .field("rate", &self.rate)
            .field("ptime_ms", &self.ptime_ms)
            .finish_non_exhaustive()
    }
}

impl OpusCodec {
    /// A codec whose PCM runs at `rate` (8000, 16000 or 48000 Hz), configured
    /// for what the far end asked in its fmtp (`remote`).
    pub fn new(rate: u32, remote: &OpusFmtp) -> Result<Self, CodecError> {
        let sr = sample_rate(rate)?;
        let mut enc = Encoder::new(sr, Channels::Mono, Application::Audio).map_err(opus_err)?;
        let dec = Decoder::new(sr, Channels::Mono).map_err(opus_err)?;
        // Enough bits for transparent speech at each audio bandwidth.
        let default_bitrate = match rate {
            8000 => 24_000,
            16000 => 28_000,
            _ => 32_000,
        };
        let bitrate = remote
            .maxaveragebitrate
            .map_or(default_bitrate, |m| m.clamp(6000, 510_000));
        enc.set_bitrate(Bitrate::BitsPerSecond(bitrate as i32))
            .map_err(opus_err)?;
        if remote.useinbandfec {
            // Used once loss is expected (`set_expected_loss`).
            enc.set_inband_fec(true).map_err(opus_err)?;
        }
        let playback = remote.maxplaybackrate.unwrap_or(48000).min(rate);
        let bw = match playback {
            0..=8000 => Bandwidth::Narrowband,
            8001..=12000 => Bandwidth::Mediumband,
            12001..=16000 => Bandwidth::Wideband,
            16001..=24000 => Bandwidth::Superwideband,
            _ => Bandwidth::Fullband,
        };
        enc.set_max_bandwidth(bw).map_err(opus_err)?;
        if remote.cbr {
            enc.set_vbr(false).map_err(opus_err)?;
        }
        enc.set_dtx(remote.usedtx).map_err(opus_err)?;
        let ptime_ms = remote
            .ptime
            .filter(|p| matches!(p, 10 | 20 | 40 | 60))
            .unwrap_or(20);
        Ok(OpusCodec {
            enc,
            dec,
            rate,
            ptime_ms,
            scratch: vec![0; MAX_FRAME_48K * rate as usize / 48000],
            packet: vec![0; MAX_PACKET],
            expected_loss: 0,
            fec: remote.useinbandfec,
        })
        .map(|mut c| {
            c.choose_mode();
            c
        })
    }

    /// Tell the encoder how much of what it sends is lost on the way
    /// (percent, 0–100, e.g. from the receiver's RTCP reports). Above 0
    /// libopus protects its frames: more robust prediction and, when the
    /// far end accepts it, in-band FEC (SILK frames).
    pub fn set_expected_loss(&mut self, percent: u8) {
        let percent = percent.min(100);
        if percent != self.expected_loss {
            // Only fails for values outside 0–100, which the min rules out.
            let _ = self.enc.set_packet_loss_perc(percent);
            self.expected_loss = percent;
            self.choose_mode();
        }
    }

    /// CELT unless FEC is wanted: the far end takes it and loss is
    /// expected; then libopus chooses (SILK or hybrid, whose SILK layer
    /// carries the FEC). Forced rather than left to libopus throughout: its
    /// SILK/CELT hysteresis keeps SILK once chosen, and narrowband rates
    /// sit near its threshold (20 kbit/s, measured, sat right at it).
    /// The signal is declared voice then: libopus adds FEC for any loss
    /// above its threshold of (128 − voice estimate) / 16 percent, which
    /// is 0 % for voice but 5 % for an unclassified signal at 8 kHz (its
    /// classifier only runs at 16 kHz and up).
    fn choose_mode(&mut self) {
        let protect = self.fec && self.expected_loss > 0;
        let (mode, signal) = if protect {
            (OPUS_AUTO, Signal::Voice)
        } else {
            (MODE_CELT_ONLY, Signal::Auto)
        };
        // Neither fails: the requests and values are libopus's own.
        let _ = self
            .enc
            .set_encoder_ctl_request(OPUS_SET_FORCE_MODE_REQUEST, mode);
        let _ = self.enc.set_signal(signal);
    }

    /// The loss percentage the encoder currently expects.
    pub fn expected_loss(&self) -> u8 {
        self.expected_loss
    }

    /// Encode as a WebRTC client on a lossy path does: libopus's "VoIP"
    /// application (speech first, SILK at low rates) expecting 10 % loss,
    /// so frames carry in-band FEC when the far end accepts it. The
    /// gateway's own encoders keep "audio" (see the module doc); benchmarks
    /// and tests use this to send what a browser sends.
    pub fn encode_like_a_webrtc_client(&mut self) {
        // Only fails on an invalid application, which this is not.
        let _ = self.enc.set_application(Application::Voip);
        let _ = self
            .enc
            .set_encoder_ctl_request(OPUS_SET_FORCE_MODE_REQUEST, OPUS_AUTO);
        self.set_expected_loss(10);
    }

    /// Encoder complexity, 0 (cheapest) to 10 (libopus's default).
    pub fn set_complexity(&mut self, complexity: u8) {
        // Only fails for values outside 0–10, which the clamp rules out.
        let _ = self.enc.set_complexity(complexity.min(10));
    }

    /// PCM sampling rate of this codec instance.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Samples per packet at the negotiated ptime (20 ms unless asked otherwise).
    pub fn frame_samples(&self) -> usize {
        (self.rate * self.ptime_ms / 1000) as usize
    }

    /// The encoder's algorithmic delay plus the decoder's, in samples at the
    /// PCM rate (libopus `OPUS_GET_LOOKAHEAD`).
    pub fn lookahead(&self) -> usize {
        self.enc.lookahead().map_or(0, |n| n as usize)
    }

    /// Encodes one frame (2.5, 5, 10, 20, 40 or 60 ms of PCM) into one packet
    /// appended to `out`.
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let n = self
            .enc
            .encode(pcm, &mut self.packet)
            .map_err(|_| CodecError::BadFrameSize(pcm.len()))?;
        out.extend_from_slice(&self.packet[..n]);
        Ok(())
    }

    /// Decodes one packet, appending its samples to `out`.
    pub fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let packet = Packet::try_from(payload).map_err(|_| CodecError::Malformed)?;
        let signals = MutSignals::try_from(&mut self.scratch[..]).map_err(opus_err)?;
        let n = self
            .dec
            .decode(Some(packet), signals, false)
            .map_err(|_| CodecError::Malformed)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(())
    }

    /// Conceals `samples` of lost audio (rounded down to 2.5 ms) with libopus PLC.
    pub fn decode_lost(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        self.decode_missing(None, samples, out)
    }

    /// Rebuilds a lost frame of `samples` from the FEC data carried in `next`,
    /// the packet after the loss; falls back to PLC if `next` has none.
    pub fn decode_fec(
        &mut self,
        next: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let packet = Packet::try_from(next).map_err(|_| CodecError::Malformed)?;
        self.decode_missing(Some(packet), samples, out)
    }

    fn decode_missing(
        &mut self,
        packet: Option<Packet<'_>>,
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let unit = self.rate as usize / 400; // 2.5 ms
        let len = (samples / unit * unit).min(self.scratch.len());
        if len == 0 {
            return Ok(());
        }
        let fec = packet.is_some();
        let signals = MutSignals::try_from(&mut self.scratch[..len]).map_err(opus_err)?;
        let n = self
            .dec
            .decode(packet, signals, fec)
            .map_err(|_| CodecError::Malformed)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmtp_parsing_is_lenient() {
        let f = OpusFmtp::parse(
            "minptime=10; useinbandfec=1;MaxPlaybackRate=16000 ;stereo=0;sprop-stereo=1;ptime=40;bogus;maxaveragebitrate=x",
        );
        assert!(f.useinbandfec && f.sprop_stereo && !f.stereo);
        assert_eq!(f.maxplaybackrate, Some(16000));
        assert_eq!(f.ptime, Some(40));
        assert_eq!(f.maxaveragebitrate, None);
        assert_eq!(OpusFmtp::parse(""), OpusFmtp::default());
        let o = OpusFmtp::parse(&OpusFmtp::offer(8000));
        assert!(o.useinbandfec);
        assert_eq!(o.maxplaybackrate, Some(8000));
    }

    fn tone(rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn runs_at_each_rate_with_ptime() {
        for rate in [8000, 16000, 48000] {
            let mut c = OpusCodec::new(rate, &OpusFmtp::parse("ptime=40")).unwrap();
            assert_eq!(c.frame_samples(), rate as usize / 25);
            let pcm = tone(rate, c.frame_samples());
            let mut pkt = Vec::new();
            c.encode_into(&pcm, &mut pkt).unwrap();
            let mut out = Vec::new();
            c.decode_into(&pkt, &mut out).unwrap();
            assert_eq!(out.len(), pcm.len());
        }
        assert_eq!(
            OpusCodec::new(44100, &OpusFmtp::default()).unwrap_err(),
            CodecError::UnsupportedRate(44100)
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut c = OpusCodec::new(8000, &OpusFmtp::default()).unwrap();
        let mut out = Vec::new();
        assert!(c.encode_into(&[0; 77], &mut out).is_err());
        let mut pcm = Vec::new();
        assert!(c.decode_into(&[], &mut pcm).is_err());
        // A TOC byte announcing a code-3 packet with no frame count byte.
        assert!(c.decode_into(&[0xFF], &mut pcm).is_err());
    }

    /// RFC 6716 §3.1: TOC configurations 0–11 are SILK-only, 12–15 hybrid,
    /// 16–31 CELT-only.
    fn is_celt(packet: &[u8]) -> bool {
        packet[0] >> 3 >= 16
    }

    #[test]
    fn expected_loss_moves_a_fec_encoder_from_celt_to_silk() {
        for rate in [8000, 16000, 48000] {
            fec_follows_expected_loss(rate);
        }
    }

    fn fec_follows_expected_loss(rate: u32) {
        let frame = rate as usize / 50;
        let pcm = tone(rate, frame * 30);
        let mut tx = OpusCodec::new(rate, &OpusFmtp::parse("useinbandfec=1")).unwrap();
        tx.set_complexity(1);
        let mut modes = Vec::new();
        for (i, f) in pcm.chunks(frame).enumerate() {
            if i == 10 {
                tx.set_expected_loss(2);
            }
            if i == 20 {
                tx.set_expected_loss(0);
            }
            let mut p = Vec::new();
            tx.encode_into(f, &mut p).unwrap();
            modes.push(is_celt(&p));
        }
        assert_eq!(tx.expected_loss(), 0);
        // No loss expected: CELT (no FEC to carry); with 2 %: SILK or
        // hybrid frames, the only ones that carry FEC; back to CELT when the
        // loss is gone. A switch may take a transition frame, so the first
        // two frames after each change are not checked.
        assert!(modes[..10].iter().all(|&c| c), "{modes:?}");
        assert!(modes[12..20].iter().all(|&c| !c), "{modes:?}");
        assert!(modes[22..].iter().all(|&c| c), "{modes:?}");
        // Without useinbandfec the far end cannot use FEC: loss alone keeps
        // CELT (libopus only leaves it for the FEC).
        let mut plain = OpusCodec::new(rate, &OpusFmtp::default()).unwrap();
        plain.set_complexity(1);
        plain.set_expected_loss(10);
        let mut p = Vec::new();
        for f in pcm.chunks(frame).take(5) {
            p.clear();
            plain.encode_into(f, &mut p).unwrap();
        }
        assert!(is_celt(&p));
    }

    #[test]
    fn plc_and_fec_fill_a_lost_frame() {
        let rate = 8000;
        let mut tx = OpusCodec::new(rate, &OpusFmtp::parse("useinbandfec=1")).unwrap();
        tx.set_expected_loss(10);
        let mut rx = OpusCodec::new(rate, &OpusFmtp::default()).unwrap();
        let pcm = tone(rate, 160 * 20);
        let packets: Vec<Vec<u8>> = pcm
            .chunks(160)
            .map(|f| {
                let mut p = Vec::new();
                tx.encode_into(f, &mut p).unwrap();
                p
            })
            .collect();
        let (mut plc, mut fec) = (Vec::new(), Vec::new());
        let mut rx2 = OpusCodec::new(rate, &OpusFmtp::default()).unwrap();
        for (i, p) in packets.iter().enumerate() {
            if i == 10 {
                rx.decode_lost(160, &mut plc).unwrap();
                rx2.decode_fec(&packets[11], 160, &mut fec).unwrap();
            } else {
                rx.decode_into(p, &mut plc).unwrap();
                rx2.decode_into(p, &mut fec).unwrap();
            }
        }
        assert_eq!(plc.len(), pcm.len());
        assert_eq!(fec.len(), pcm.len());
        let energy =
            |s: &[i16]| s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64;
        // The concealed frame is neither silent nor louder than the tone.
        for out in [&plc, &fec] {
            let e = energy(&out[1600..1760]);
            let r = energy(&pcm[1600..1760]);
            assert!(e > r * 0.1 && e < r * 4.0, "lost frame energy {e} vs {r}");
        }
    }
}
