//! Shared helpers of the media pipeline tests (`tests/media_transcode.rs`,
//! `tests/media_dtmf.rs`): a two-leg call on a `RelaySession` in simulated
//! time, endpoints that packetize real audio, receivers that check the
//! streams they get and decode them back to PCM, and signal measurements.
#![allow(dead_code, clippy::disallowed_methods)] // one real Instant as the origin of virtual time

use std::f64::consts::TAU;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callgate::dtmf::{Digit, EventReceiver, ReceivedEvent, ToneGenerator};
use callgate::media::codec::{AnyCodec, AudioCodec, CodecKind};
use callgate::media::rtp::{parse_rtp, rtp_payload, write_rtp_header};
use callgate::media::{
    Codec, DtmfMode, Event, Leg, LegConfig, PortPair, RelayConfig, RelaySession,
};

pub const A_PORT: u16 = 30000;
pub const B_PORT: u16 = 30002;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn a_addr() -> SocketAddr {
    addr("192.0.2.1:4000")
}

pub fn b_addr() -> SocketAddr {
    addr("198.51.100.2:5004")
}

/// An Opus leg as a WebRTC client offers it (PT 111, telephone-event/48000).
pub fn opus_leg() -> Vec<Codec> {
    vec![
        Codec::new(111, "opus", 48000).with_fmtp("minptime=10;useinbandfec=1"),
        Codec::new(110, "telephone-event", 48000),
    ]
}

/// A PCMU leg as a carrier offers it (telephone-event/8000 on PT 101).
pub fn pcmu_leg(ptime: Option<u32>) -> Vec<Codec> {
    vec![
        Codec::new(0, "PCMU", 8000).with_ptime(ptime),
        Codec::new(101, "telephone-event", 8000).with_ptime(ptime),
    ]
}

/// A received packet: when, and the bytes.
#[derive(Debug, Clone)]
pub struct Got {
    pub at: Instant,
    pub bytes: Vec<u8>,
}

/// A call through one `RelaySession` in virtual time.
pub struct Call {
    pub t0: Instant,
    pub now: Instant,
    pub s: RelaySession,
    /// What each endpoint received, in order.
    pub to_a: Vec<Got>,
    pub to_b: Vec<Got>,
    pub events: Vec<(Instant, Event)>,
}

impl Call {
    pub fn new(a: Vec<Codec>, b: Vec<Codec>) -> Call {
        let t0 = Instant::now();
        let leg = |port, remote: SocketAddr, codecs| LegConfig {
            ports: PortPair {
                rtp: port,
                rtcp: None,
            },
            remote_rtp: Some(remote),
            remote_rtcp: None,
            codecs,
        };
        let s = RelaySession::new(
            t0,
            RelayConfig::default(),
            leg(A_PORT, a_addr(), a),
            leg(B_PORT, b_addr(), b),
            0x5EED,
        );
        Call {
            t0,
            now: t0,
            s,
            to_a: Vec::new(),
            to_b: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn modes(mut self, a: DtmfMode, b: DtmfMode) -> Call {
        self.s.set_dtmf_mode(Leg::A, a);
        self.s.set_dtmf_mode(Leg::B, b);
        self
    }

    fn collect(&mut self) {
        while let Some(t) = self.s.poll_transmit() {
            let got = Got {
                at: self.now,
                bytes: t.bytes.to_vec(),
            };
            if t.to == a_addr() {
                assert_eq!(t.from_port, A_PORT);
                self.to_a.push(got);
            } else {
                assert_eq!(t.to, b_addr());
                assert_eq!(t.from_port, B_PORT);
                self.to_b.push(got);
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push((self.now, e));
        }
    }

    /// Runs the session's timers up to `t` (each at its own instant).
    pub fn advance(&mut self, t: Instant) {
        while let Some(d) = self.s.poll_timeout().filter(|&d| d <= t) {
            self.now = self.now.max(d);
            self.s.handle_timeout(self.now);
            self.collect();
        }
        self.now = self.now.max(t);
    }

    /// `leg` sends `bytes` at the current time.
    pub fn send(&mut self, leg: Leg, bytes: &[u8]) {
        let (port, from) = match leg {
            Leg::A => (A_PORT, a_addr()),
            Leg::B => (B_PORT, b_addr()),
        };
        let _ = self.s.handle_packet(self.now, port, from, bytes);
        self.collect();
    }

    pub fn send_dtmf(&mut self, leg: Leg, digit: char, ms: u32) {
        self.s.send_dtmf(self.now, leg, digit, ms);
        self.collect();
    }

    /// Plays scripted traffic: each `(at, leg, bytes)` at its time, timers
    /// in between, then runs on until `end`.
    pub fn play(&mut self, mut script: Vec<(Instant, Leg, Vec<u8>)>, end: Instant) {
        script.sort_by_key(|s| s.0);
        for (at, leg, bytes) in script {
            self.advance(at);
            self.send(leg, &bytes);
        }
        self.advance(end);
    }

    /// Digits the B2BUA was told to send by INFO, with the leg they came from.
    pub fn info_digits(&self) -> Vec<(Leg, char, u32)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match *e {
                Event::Dtmf {
                    from,
                    digit,
                    duration_ms,
                } => Some((from, digit, duration_ms)),
                _ => None,
            })
            .collect()
    }
}

/// An RTP packet.
pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80; 12];
    v[1] = u8::from(marker) << 7;
    write_rtp_header(&mut v, pt, seq, ts, ssrc);
    v.extend_from_slice(payload);
    v
}

/// An endpoint sending `pcm` (at the codec's PCM rate) in `ptime_ms`
/// packets from `start`: the scripted packets.
pub struct Source {
    pub codec: AnyCodec,
    pub pt: u8,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub ptime_ms: u32,
}

impl Source {
    /// A sender of `kind`; Opus is encoded as a WebRTC client does on a
    /// lossy path (libopus VoIP application, in-band FEC for 10 % loss).
    pub fn new(kind: CodecKind, rate: u32, pt: u8, ssrc: u32, ptime_ms: u32) -> Source {
        let mut codec = AnyCodec::new(kind, rate, "useinbandfec=1").unwrap();
        if let AnyCodec::Opus(o) = &mut codec {
            o.encode_like_a_webrtc_client();
        }
        Source {
            codec,
            pt,
            ssrc,
            seq: 1000,
            ts: 50_000,
            ptime_ms,
        }
    }

    /// Packets for `pcm`, the first at `start`, one every ptime.
    pub fn packets(
        &mut self,
        start: Instant,
        leg: Leg,
        pcm: &[i16],
    ) -> Vec<(Instant, Leg, Vec<u8>)> {
        let frame = (self.codec.sample_rate() * self.ptime_ms / 1000) as usize;
        let mut out = Vec::new();
        for (i, f) in pcm.chunks_exact(frame).enumerate() {
            let mut payload = Vec::new();
            self.codec.encode(f, &mut payload).unwrap();
            let at = start + Duration::from_millis(u64::from(self.ptime_ms) * i as u64);
            out.push((
                at,
                leg,
                rtp(self.pt, i == 0, self.seq, self.ts, self.ssrc, &payload),
            ));
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(self.codec.rtp_timestamp_step(frame));
        }
        out
    }
}

/// Checks one received stream: a single SSRC, sequence +1 every packet,
/// audio timestamps advancing by exactly the audio carried (no overlap,
/// gaps only where `allow_gaps`). Returns the SSRC.
pub fn check_stream(got: &[Got], audio_pt: u8, clock: u32, pcm_rate: u32, allow_gaps: bool) -> u32 {
    assert!(!got.is_empty(), "no packets");
    let h0 = parse_rtp(&got[0].bytes).unwrap();
    let mut last_seq = h0.sequence.wrapping_sub(1);
    let mut next_ts: Option<u32> = None;
    let mut dec: Option<AnyCodec> = None;
    for (i, g) in got.iter().enumerate() {
        let h = parse_rtp(&g.bytes).unwrap();
        assert_eq!(h.ssrc, h0.ssrc, "packet {i}: SSRC changed");
        assert_eq!(
            h.sequence,
            last_seq.wrapping_add(1),
            "packet {i}: sequence gap"
        );
        last_seq = h.sequence;
        if h.payload_type != audio_pt {
            continue;
        }
        let d = dec.get_or_insert_with(|| decoder_for(audio_pt, clock, pcm_rate));
        let mut pcm = Vec::new();
        d.decode(rtp_payload(&g.bytes), &mut pcm).unwrap();
        let step = d.rtp_timestamp_step(pcm.len());
        if let Some(n) = next_ts {
            let delta = h.timestamp.wrapping_sub(n) as i32;
            if allow_gaps {
                assert!(delta >= 0, "packet {i}: timestamp overlaps by {}", -delta);
            } else {
                assert_eq!(delta, 0, "packet {i}: timestamp jump");
            }
        }
        next_ts = Some(h.timestamp.wrapping_add(step));
    }
    h0.ssrc
}

fn decoder_for(pt: u8, clock: u32, rate: u32) -> AnyCodec {
    let kind = match (pt, clock) {
        (0, _) => CodecKind::Pcmu,
        (8, _) => CodecKind::Pcma,
        (9, _) => CodecKind::G722,
        (_, 48000) => CodecKind::Opus,
        _ => panic!("no decoder for PT {pt}"),
    };
    AnyCodec::new(kind, rate, "").unwrap()
}

/// Decodes the audio packets of a stream onto a timeline by RTP timestamp
/// (gaps stay silent), PCM at `rate`.
pub fn decode_stream(got: &[Got], audio_pt: u8, clock: u32, rate: u32) -> Vec<i16> {
    let mut dec = decoder_for(audio_pt, clock, rate);
    let mut out: Vec<i16> = Vec::new();
    let mut ts0 = None;
    for g in got {
        let h = parse_rtp(&g.bytes).unwrap();
        if h.payload_type != audio_pt {
            continue;
        }
        let t0 = *ts0.get_or_insert(h.timestamp);
        let pos =
            (u64::from(h.timestamp.wrapping_sub(t0)) * u64::from(rate) / u64::from(clock)) as usize;
        let mut pcm = Vec::new();
        dec.decode(rtp_payload(&g.bytes), &mut pcm).unwrap();
        if out.len() < pos {
            out.resize(pos, 0);
        }
        out.truncate(pos);
        out.extend_from_slice(&pcm);
    }
    out
}

/// A sine of `freq` at `rate`, `amp` peak.
pub fn tone(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (amp * (TAU * freq * i as f64 / rate as f64).sin()) as i16)
        .collect()
}

/// SNR (dB) of `x` as a sine of `freq`: the least-squares sine (any phase
/// and level) against what is left. Also returns the fitted amplitude.
pub fn sine_snr(x: &[i16], rate: u32, freq: f64) -> (f64, f64) {
    let w = TAU * freq / rate as f64;
    let (mut cc, mut ss, mut cs, mut xc, mut xs) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, &v) in x.iter().enumerate() {
        let (c, s) = ((w * n as f64).cos(), (w * n as f64).sin());
        cc += c * c;
        ss += s * s;
        cs += c * s;
        xc += v as f64 * c;
        xs += v as f64 * s;
    }
    let det = cc * ss - cs * cs;
    let a = (xc * ss - xs * cs) / det;
    let b = (xs * cc - xc * cs) / det;
    let (mut sig, mut err) = (0.0, 0.0);
    for (n, &v) in x.iter().enumerate() {
        let m = a * (w * n as f64).cos() + b * (w * n as f64).sin();
        sig += m * m;
        err += (v as f64 - m).powi(2);
    }
    (10.0 * (sig / err.max(1e-9)).log10(), (a * a + b * b).sqrt())
}

/// Power of `x` at `freq` (Goertzel), normalised by length.
pub fn power_at(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = TAU * freq / rate as f64;
    let (mut re, mut im) = (0.0, 0.0);
    for (n, &v) in x.iter().enumerate() {
        re += v as f64 * (w * n as f64).cos();
        im += v as f64 * (w * n as f64).sin();
    }
    (re * re + im * im) / (x.len() as f64).powi(2)
}

/// The digits a telephone-event stream carries (each begins once, ends
/// once), with each digit's duration in ms.
pub fn event_digits(got: &[Got], pt: u8, rate: u32) -> Vec<(char, u32)> {
    let mut rx = EventReceiver::new(rate, 1000);
    let mut digits: Vec<(char, u32)> = Vec::new();
    let mut ended = 0;
    for g in got {
        let h = parse_rtp(&g.bytes).unwrap();
        if h.payload_type != pt {
            continue;
        }
        for ev in rx.handle(h.timestamp, rtp_payload(&g.bytes)) {
            match ev {
                ReceivedEvent::Began { digit, .. } => digits.push((digit.to_char(), 0)),
                ReceivedEvent::Ended { duration, .. } => {
                    ended += 1;
                    if let Some(d) = digits.last_mut() {
                        d.1 = duration;
                    }
                }
                ReceivedEvent::Continued { .. } => {}
            }
        }
    }
    assert_eq!(ended, digits.len(), "every digit ends exactly once");
    digits
}

/// PCM of `digits` at `rate`: each `on_ms` of tone then `off_ms` of silence,
/// after `lead_ms` of silence.
pub fn digit_pcm(rate: u32, digits: &str, on_ms: u32, off_ms: u32, lead_ms: u32) -> Vec<i16> {
    let ms = |m: u32| (rate * m / 1000) as usize;
    let mut pcm = vec![0i16; ms(lead_ms)];
    for c in digits.chars() {
        let d = Digit::from_char(c).unwrap();
        ToneGenerator::digit(rate, d, Some(ms(on_ms) as u64)).generate(ms(on_ms), &mut pcm);
        pcm.resize(pcm.len() + ms(off_ms), 0);
    }
    pcm
}
