//! Media checks of the real-peer media tests (`tests/peers_media.rs`):
//! transcoding, DTMF interworking and ringback seen on the wire.
//!
//! * [`RtpEndpoint`]: a UDP socket the test owns and puts in a peer's SDP
//!   (SIPp handles the SIP, this socket the media): it records every
//!   datagram with its arrival time and plays a [`Script`] of RTP packets at
//!   their due times (absolute deadlines, so no drift);
//! * [`WireCapture`]: datagrams to or from given ports, payload and arrival
//!   time included, from a raw IPv4/UDP socket (root or CAP_NET_RAW), for a
//!   peer whose socket the test does not own (baresip);
//! * G.711 both ways ([`decode_g711`], [`linear_to_alaw`]), RTP parsing,
//!   RFC 4733 digits grouped from packets ([`telephone_events`]), in-band
//!   digits ([`inband_digits`], callgate's own Q.24 detector), tone levels
//!   and SNR per block ([`tone_blocks`]) and packet spacing ([`Spacing`]);
//! * [`pcap_rtp`]: the RTP payloads of a pcap, for Debian's
//!   `/usr/share/sip-tester/dtmf_2833_*.pcap` (RFC 4733 digits recorded from
//!   a real endpoint).
//!
//! Nothing here uses the gateway's codecs: G.711 and the tone analysis are
//! written from the standards, so a bug in `src/media` cannot hide itself.
#![allow(dead_code)]

use std::f64::consts::PI;
use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::LOOPBACK;

// ---------------------------------------------------------------- G.711 ---

/// Which G.711 law a payload type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// PCMU, payload type 0.
    Ulaw,
    /// PCMA, payload type 8.
    Alaw,
}

impl Law {
    /// The static payload type (RFC 3551).
    pub fn pt(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    pub fn encode(self, s: i16) -> u8 {
        match self {
            Law::Ulaw => super::rtp::linear_to_ulaw(s),
            Law::Alaw => linear_to_alaw(s),
        }
    }

    pub fn decode(self, b: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_to_linear(b),
            Law::Alaw => alaw_to_linear(b),
        }
    }
}

/// ITU-T G.711 µ-law expansion.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// ITU-T G.711 A-law expansion.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let sign = a & 0x80;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

/// ITU-T G.711 A-law compression.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let (mask, mut s) = if sample >= 0 {
        (0xD5u8, i32::from(sample))
    } else {
        (0x55u8, -i32::from(sample) - 1)
    };
    s = s.min(32767);
    let seg = match s {
        0..=0xFF => 0,
        0x100..=0x1FF => 1,
        0x200..=0x3FF => 2,
        0x400..=0x7FF => 3,
        0x800..=0xFFF => 4,
        0x1000..=0x1FFF => 5,
        0x2000..=0x3FFF => 6,
        _ => 7,
    };
    let aval = if seg < 2 {
        (s >> 4) & 0x0F
    } else {
        (s >> (seg + 3)) & 0x0F
    };
    ((seg << 4) as u8 | aval as u8) ^ mask
}

/// Decodes a G.711 payload.
pub fn decode_g711(law: Law, payload: &[u8]) -> Vec<i16> {
    payload.iter().map(|&b| law.decode(b)).collect()
}

// ------------------------------------------------------------------ RTP ---

/// One parsed RTP packet (version 2, no padding handling needed here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtp {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Parses an RTP packet; `None` for RTCP (PT 72–76 with the marker bit) or
/// anything that is not RTP version 2.
pub fn parse_rtp(b: &[u8]) -> Option<Rtp> {
    if b.len() < 12 || b[0] >> 6 != 2 || (72..=76).contains(&(b[1] & 0x7f)) {
        return None;
    }
    let cc = usize::from(b[0] & 0x0f);
    let mut off = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let ext = b.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some(Rtp {
        pt: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(off..end)?.to_vec(),
    })
}

/// Builds an RTP packet.
pub fn build_rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.push(0x80);
    v.push(if marker { 0x80 | pt } else { pt });
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// One datagram received (by an [`RtpEndpoint`] or a [`WireCapture`]).
#[derive(Debug, Clone)]
pub struct Datagram {
    pub at: Instant,
    pub src_port: u16,
    pub dst_port: u16,
    pub bytes: Vec<u8>,
}

impl Datagram {
    pub fn rtp(&self) -> Option<Rtp> {
        parse_rtp(&self.bytes)
    }
}

/// Writes `d` as text (one line per datagram: arrival in ms from the first,
/// ports, RTP header fields, telephone-event fields) to `path`, for
/// reading a failure.
pub fn dump_datagrams(path: &Path, d: &[Datagram]) {
    let Some(t0) = d.first().map(|g| g.at) else {
        let _ = fs::write(path, "no datagram\n");
        return;
    };
    let mut out = String::from("ms\tsrc\tdst\tpt\tm\tseq\tts\tssrc\tlen\tevent\n");
    for g in d {
        let ms = g.at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
        match g.rtp() {
            Some(r) => {
                let ev = if r.payload.len() == 4 {
                    format!(
                        "{} end={} vol={} dur={}",
                        event_digit(r.payload[0]),
                        r.payload[1] >> 7,
                        r.payload[1] & 0x3f,
                        u16::from_be_bytes([r.payload[2], r.payload[3]])
                    )
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "{ms:.2}\t{}\t{}\t{}\t{}\t{}\t{}\t{:08x}\t{}\t{ev}\n",
                    g.src_port,
                    g.dst_port,
                    r.pt,
                    u8::from(r.marker),
                    r.seq,
                    r.ts,
                    r.ssrc,
                    r.payload.len()
                ));
            }
            None => out.push_str(&format!(
                "{ms:.2}\t{}\t{}\t(not RTP, {} bytes)\n",
                g.src_port,
                g.dst_port,
                g.bytes.len()
            )),
        }
    }
    let _ = fs::write(path, out);
}

/// The RTP packets among `d` (with their arrival times) whose payload type
/// is `pt`, in arrival order.
pub fn rtp_with_pt(d: &[Datagram], pt: u8) -> Vec<(Instant, Rtp)> {
    d.iter()
        .filter_map(|g| g.rtp().map(|r| (g.at, r)))
        .filter(|(_, r)| r.pt == pt)
        .collect()
}

/// How far the audio packets' (payload type `pt`, clock `clock` Hz) RTP
/// timestamps fell behind the time between their arrivals, in ms, from the
/// first to the last: about 0 for a stream whose timestamps keep pace with
/// real time; positive when the timestamps lost time (a receiver's jitter
/// buffer then drops or delays audio), negative when they ran ahead.
pub fn audio_drift_ms(d: &[Datagram], pt: u8, clock: u32) -> f64 {
    let pkts = rtp_with_pt(d, pt);
    let (Some((a0, r0)), Some((a1, r1))) = (pkts.first(), pkts.last()) else {
        return 0.0;
    };
    let wall = a1.saturating_duration_since(*a0).as_secs_f64() * 1000.0;
    let ts = f64::from(r1.ts.wrapping_sub(r0.ts)) * 1000.0 / f64::from(clock);
    wall - ts
}

/// Payload types seen among `d`, with their packet counts, for messages.
pub fn pt_counts(d: &[Datagram]) -> Vec<(u8, usize)> {
    let mut v: Vec<(u8, usize)> = Vec::new();
    for r in d.iter().filter_map(Datagram::rtp) {
        match v.iter_mut().find(|(pt, _)| *pt == r.pt) {
            Some(e) => e.1 += 1,
            None => v.push((r.pt, 1)),
        }
    }
    v.sort_unstable();
    v
}

/// The decoded G.711 audio of the packets of payload type `law.pt()`, in
/// sequence order (RTP timestamp gaps filled with silence, so a cadence keeps
/// its timing), at 8000 Hz.
pub fn g711_audio(d: &[Datagram], law: Law) -> Vec<i16> {
    let mut pkts: Vec<Rtp> = rtp_with_pt(d, law.pt()).into_iter().map(|p| p.1).collect();
    // sequence order, unwrapped relative to the first packet
    if let Some(first) = pkts.first().map(|p| p.seq) {
        pkts.sort_by_key(|p| p.seq.wrapping_sub(first));
        pkts.dedup_by_key(|p| p.seq);
    }
    let mut out: Vec<i16> = Vec::new();
    let mut next_ts: Option<u32> = None;
    for p in &pkts {
        if let Some(t) = next_ts {
            let gap = p.ts.wrapping_sub(t);
            if gap > 0 && gap < 8000 {
                out.extend(std::iter::repeat_n(0, gap as usize));
            }
        }
        out.extend(decode_g711(law, &p.payload));
        next_ts = Some(p.ts.wrapping_add(p.payload.len() as u32));
    }
    out
}

// -------------------------------------------------------------- scripts ---

/// RTP packets to send, each at its offset from the start of the play.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub packets: Vec<(Duration, Vec<u8>)>,
}

/// Writes one RTP stream: one SSRC, consecutive sequence numbers, 8 kHz
/// timestamps, 20 ms packets of G.711.
#[derive(Debug, Clone)]
pub struct StreamWriter {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    /// Samples (at 8 kHz) written so far: the play time of the next packet.
    pub sample: u64,
    pub script: Script,
    first: bool,
}

/// Samples per 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;

impl StreamWriter {
    pub fn new(ssrc: u32) -> StreamWriter {
        StreamWriter {
            ssrc,
            seq: 1000,
            ts: 80_000,
            sample: 0,
            script: Script::default(),
            first: true,
        }
    }

    fn at(&self) -> Duration {
        Duration::from_micros(self.sample * 125)
    }

    /// One 20 ms G.711 packet of `pcm` (160 samples).
    pub fn audio(&mut self, law: Law, pcm: &[i16]) {
        let payload: Vec<u8> = pcm.iter().map(|&s| law.encode(s)).collect();
        let pkt = build_rtp(law.pt(), self.first, self.seq, self.ts, self.ssrc, &payload);
        self.first = false;
        self.script.packets.push((self.at(), pkt));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(pcm.len() as u32);
        self.sample += pcm.len() as u64;
    }

    /// `secs` of audio from `f(sample index at 8 kHz)`, in 20 ms packets.
    pub fn audio_for(&mut self, law: Law, secs: f64, mut f: impl FnMut(u64) -> f64) {
        let packets = (secs * 50.0).round() as usize;
        for _ in 0..packets {
            let base = self.sample;
            let pcm: Vec<i16> = (0..FRAME as u64)
                .map(|i| f(base + i).round().clamp(-32768.0, 32767.0) as i16)
                .collect();
            self.audio(law, &pcm);
        }
    }

    /// One RFC 4733 digit as telephone-event packets of payload type `pt`,
    /// in place of audio, the way phones send them: a packet every 20 ms
    /// with the duration so far (the first with the marker bit), then the
    /// end packet sent three times back to back, all with the event's start
    /// timestamp. The stream's timestamp then moves on by the digit's length.
    pub fn digit_event(&mut self, pt: u8, digit: char, ms: u32, volume: u8) {
        let code = event_code(digit).unwrap_or_else(|| panic!("not a DTMF digit: {digit:?}"));
        let total = (ms * 8).max(160) as u16;
        let mut payloads = Vec::new();
        let mut dur = 160u16;
        while dur < total {
            payloads.push(vec![code, volume & 0x3f, (dur >> 8) as u8, dur as u8]);
            dur += 160;
        }
        for _ in 0..3 {
            payloads.push(vec![
                code,
                0x80 | (volume & 0x3f),
                (total >> 8) as u8,
                total as u8,
            ]);
        }
        self.event_payloads(pt, &payloads);
    }

    /// Telephone-event packets with the given payloads (4 bytes each: as
    /// a real endpoint sent them, e.g. read from a pcap), one per 20 ms,
    /// except that repeated end packets go out back to back; the marker on
    /// the first, all with the event's start timestamp. The stream's
    /// timestamp then moves on by the event's duration field or the time
    /// its packets took, whichever is longer.
    pub fn event_payloads(&mut self, pt: u8, payloads: &[Vec<u8>]) {
        let start_ts = self.ts;
        let start = self.sample;
        let mut elapsed = 0u64;
        let mut max_dur = 0u64;
        for (i, p) in payloads.iter().enumerate() {
            let end = p[1] & 0x80 != 0;
            let repeat = i > 0 && end && payloads[i - 1][1] & 0x80 != 0;
            if i > 0 && !repeat {
                elapsed += FRAME as u64;
            }
            max_dur = max_dur.max(u64::from(u16::from_be_bytes([p[2], p[3]])));
            let at = Duration::from_micros((start + elapsed) * 125);
            let pkt = build_rtp(pt, i == 0, self.seq, start_ts, self.ssrc, p);
            self.script.packets.push((at, pkt));
            self.seq = self.seq.wrapping_add(1);
        }
        let took = (elapsed + FRAME as u64).max(max_dur);
        self.ts = self.ts.wrapping_add(took as u32);
        self.sample += took;
    }
}

/// A sine sum: `(hz, peak amplitude)` per component, at 8 kHz sample `n`.
pub fn tones_at(components: &[(f64, f64)], n: u64) -> f64 {
    let t = n as f64 / 8000.0;
    components
        .iter()
        .map(|&(hz, amp)| amp * (2.0 * PI * hz * t).sin())
        .sum()
}

/// Peak amplitude (16-bit PCM) of a sine at `dbm0` (G.711: a full-scale
/// sine is +3.14 dBm0; ITU-T G.711 Table 5).
pub fn dbm0_amplitude(dbm0: f64) -> f64 {
    22_735.0 * 10f64.powf(dbm0 / 20.0)
}

/// Level in dBm0 of a component of mean power `p` (a sine of peak A: A²/2).
pub fn power_dbm0(p: f64) -> f64 {
    let ref_p = 22_735.0f64 * 22_735.0 / 2.0;
    10.0 * (p.max(1e-12) / ref_p).log10()
}

/// DTMF frequencies of a digit (ITU-T Q.23), `None` for anything else.
pub fn dtmf_freqs(d: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const PAD: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    for (r, row) in PAD.iter().enumerate() {
        if let Some(c) = row.find(d.to_ascii_uppercase()) {
            return Some((ROWS[r], COLS[c]));
        }
    }
    None
}

/// RFC 4733 event code of a digit.
pub fn event_code(d: char) -> Option<u8> {
    match d.to_ascii_uppercase() {
        c @ '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        c @ 'A'..='D' => Some(c as u8 - b'A' + 12),
        _ => None,
    }
}

/// The digit of an RFC 4733 event code.
pub fn event_digit(code: u8) -> char {
    match code {
        0..=9 => (b'0' + code) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + code - 12) as char,
        _ => '?',
    }
}

// ---------------------------------------------------------- RtpEndpoint ---

/// A UDP socket of the test on 127.0.0.1: records what arrives, plays scripts.
pub struct RtpEndpoint {
    pub port: u16,
    sock: Arc<UdpSocket>,
    received: Arc<Mutex<Vec<Datagram>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    players: Vec<JoinHandle<usize>>,
}

impl RtpEndpoint {
    /// Binds 127.0.0.1:`port` (failing the test if taken) and starts recording.
    pub fn bind(port: u16) -> RtpEndpoint {
        let sock = UdpSocket::bind((LOOPBACK, port)).unwrap_or_else(|e| {
            panic!("cannot bind the test's RTP socket 127.0.0.1:{port}: {e} (a stale peer?)")
        });
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
        let sock = Arc::new(sock);
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, r, f) = (sock.clone(), received.clone(), stop.clone());
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !f.load(Ordering::SeqCst) {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let d = Datagram {
                            at: Instant::now(),
                            src_port: from.port(),
                            dst_port: port,
                            bytes: buf[..n].to_vec(),
                        };
                        r.lock().unwrap().push(d);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    // ICMP port unreachable from an earlier send: keep going
                    Err(_) => {}
                }
            }
        });
        RtpEndpoint {
            port,
            sock,
            received,
            stop,
            reader: Some(reader),
            players: Vec::new(),
        }
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<Datagram> {
        self.received.lock().unwrap().clone()
    }

    /// Where the first datagram came from (the relay's port for this leg).
    pub fn first_source(&self) -> Option<u16> {
        self.received.lock().unwrap().first().map(|d| d.src_port)
    }

    /// Sends `script` to 127.0.0.1:`to` from this socket, each packet at its
    /// offset from now (absolute deadlines: a late wake-up does not shift
    /// the packets after it).
    pub fn play(&mut self, to: u16, script: Script) {
        let sock = self.sock.clone();
        let stop = self.stop.clone();
        let dest: SocketAddr = format!("{LOOPBACK}:{to}").parse().unwrap();
        let h = thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0;
            for (at, bytes) in script.packets {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let due = start + at;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if sock.send_to(&bytes, dest).is_ok() {
                    sent += 1;
                }
            }
            sent
        });
        self.players.push(h);
    }

    /// Waits (at most `bound`) for the scripts to finish; returns packets sent.
    pub fn wait_played(&mut self, bound: Duration) -> usize {
        let deadline = Instant::now() + bound;
        while self.players.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if self.players.iter().any(|h| !h.is_finished()) {
            self.stop.store(true, Ordering::SeqCst);
        }
        self.players.drain(..).map(|h| h.join().unwrap_or(0)).sum()
    }

    /// Stops recording and playing; returns everything received.
    pub fn stop(mut self) -> Vec<Datagram> {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.players.drain(..) {
            let _ = h.join();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.received()
    }
}

impl Drop for RtpEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

// ---------------------------------------------------------- WireCapture ---

/// Datagrams (payload and arrival time) to or from some ports, from a raw
/// IPv4/UDP socket: the kernel hands it a copy of every UDP datagram
/// delivered locally. Needs root or CAP_NET_RAW, like SIPp's pcap play.
pub struct WireCapture {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Datagram>>>,
}

impl WireCapture {
    /// Captures datagrams whose source or destination port is in `ports`.
    pub fn start(ports: &[u16]) -> WireCapture {
        // SOCK_RAW is 3 on Linux (socket2 names it only with feature "all")
        let sock =
            Socket::new(Domain::IPV4, Type::from(3), Some(Protocol::UDP)).unwrap_or_else(|e| {
                panic!(
                    "cannot open a raw IPv4/UDP socket to capture RTP on the wire ({e}): run the \
                     real-peer tests as root or with CAP_NET_RAW"
                )
            });
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("raw socket read timeout");
        let _ = sock.set_recv_buffer_size(8 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ports = ports.to_vec();
        let handle = thread::spawn(move || {
            let mut sock = sock;
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                match sock.read(&mut buf) {
                    Ok(n) => {
                        let at = Instant::now();
                        if let Some(d) = parse_ipv4_udp(&buf[..n], at)
                            && (ports.contains(&d.src_port) || ports.contains(&d.dst_port))
                        {
                            seen.push(d);
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        if flag.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            seen
        });
        WireCapture {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops (after draining what the kernel queued); returns what was seen.
    pub fn stop(mut self) -> Vec<Datagram> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for WireCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Parses an IPv4 packet carrying UDP, as a raw socket returns it, arrived
/// at `at`.
pub fn parse_ipv4_udp(b: &[u8], at: Instant) -> Option<Datagram> {
    if b.len() < 20 || b[0] >> 4 != 4 || b[9] != 17 {
        return None;
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    let udp = b.get(ihl..)?;
    if udp.len() < 8 {
        return None;
    }
    Some(Datagram {
        at,
        src_port: u16::from_be_bytes([udp[0], udp[1]]),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        bytes: udp[8..].to_vec(),
    })
}

// --------------------------------------------------------------- RFC 4733 ---

/// One digit seen as telephone-events: the packets sharing one RTP timestamp.
#[derive(Debug, Clone)]
pub struct SeenEvent {
    pub digit: char,
    pub ts: u32,
    pub ssrc: u32,
    /// Packets of this event (retransmitted end packets included).
    pub packets: usize,
    /// Packets with the E (end) bit.
    pub end_packets: usize,
    /// The first packet carried the marker bit.
    pub marker: bool,
    /// Largest duration field (timestamp units of the event's clock).
    pub duration: u16,
    /// Volume of the first packet (-dBm0).
    pub volume: u8,
    /// Arrival of the first and last packet.
    pub first_at: Instant,
    pub last_at: Instant,
}

/// Groups the telephone-event packets (payload type `pt`) of `d` into
/// digits, by (SSRC, timestamp), in order of arrival.
pub fn telephone_events(d: &[Datagram], pt: u8) -> Vec<SeenEvent> {
    let mut out: Vec<SeenEvent> = Vec::new();
    for (at, p) in rtp_with_pt(d, pt) {
        if p.payload.len() < 4 {
            continue;
        }
        let (code, flags) = (p.payload[0], p.payload[1]);
        let dur = u16::from_be_bytes([p.payload[2], p.payload[3]]);
        let end = flags & 0x80 != 0;
        match out
            .iter_mut()
            .find(|e| e.ts == p.ts && e.ssrc == p.ssrc && e.digit == event_digit(code))
        {
            Some(e) => {
                e.packets += 1;
                e.end_packets += usize::from(end);
                e.duration = e.duration.max(dur);
                e.last_at = at;
            }
            None => out.push(SeenEvent {
                digit: event_digit(code),
                ts: p.ts,
                ssrc: p.ssrc,
                packets: 1,
                end_packets: usize::from(end),
                marker: p.marker,
                duration: dur,
                volume: flags & 0x3f,
                first_at: at,
                last_at: at,
            }),
        }
    }
    out
}

/// The digits of `events`, in order.
pub fn event_string(events: &[SeenEvent]) -> String {
    events.iter().map(|e| e.digit).collect()
}

// ---------------------------------------------------------- in-band DTMF ---

/// A digit found in-band: when it started and how long it lasted (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InbandDigit {
    pub digit: char,
    pub start_ms: f64,
    pub duration_ms: f64,
}

/// Digits in 8 kHz PCM, by callgate's ITU-T Q.24 detector
/// (`callgate::dtmf::Detector`, default thresholds).
pub fn inband_digits(pcm: &[i16]) -> Vec<InbandDigit> {
    use callgate::dtmf::{Detector, DetectorConfig, DtmfEvent};
    let mut det = Detector::new(DetectorConfig::default());
    det.push(pcm);
    // flush: enough silence to end a digit in progress
    det.push(&[0i16; 1600]);
    let mut out = Vec::new();
    while let Some(ev) = det.poll_event() {
        if let DtmfEvent::Ended {
            digit,
            at,
            duration,
        } = ev
        {
            out.push(InbandDigit {
                digit: digit.to_char(),
                start_ms: (at - duration) as f64 / 8.0,
                duration_ms: duration as f64 / 8.0,
            });
        }
    }
    out
}

/// How much of `pcm` (8 kHz) carries the tone of one of `digits`, ms: the
/// 10 ms blocks where both of a digit's frequencies stand out (each at least
/// a quarter of the pair's power, the pair 6 dB above the rest, RMS 100 or
/// more, about -47 dBm0). Finer than [`inband_digits`], which needs 40 ms of
/// tone: a fragment too short to be a digit still counts here.
pub fn dtmf_tone_ms(pcm: &[i16], digits: &str) -> f64 {
    let mut blocks: Vec<usize> = Vec::new();
    for d in digits.chars() {
        let Some((lo, hi)) = dtmf_freqs(d) else {
            continue;
        };
        for (i, b) in tone_blocks(pcm, 10, &[lo, hi]).iter().enumerate() {
            if b.has_all(100.0, 6.0) && !blocks.contains(&i) {
                blocks.push(i);
            }
        }
    }
    blocks.len() as f64 * 10.0
}

// ------------------------------------------------------- tone analysis ---

/// Mean power of the component at `hz` in `x` (a sine of peak A gives
/// A²/2), by the Goertzel recurrence.
pub fn goertzel(x: &[f64], hz: f64, rate: f64) -> f64 {
    super::audio::goertzel_power(x, hz, rate)
}

/// One block of [`tone_blocks`].
#[derive(Debug, Clone)]
pub struct ToneBlock {
    /// Start of the block, ms from the start of the audio.
    pub start_ms: f64,
    /// Mean power of the whole block.
    pub total: f64,
    /// Mean power at each asked frequency.
    pub powers: Vec<f64>,
}

impl ToneBlock {
    /// RMS of the block (16-bit scale).
    pub fn rms(&self) -> f64 {
        self.total.sqrt()
    }

    /// Power of the asked frequencies over the rest of the block, dB.
    pub fn snr_db(&self) -> f64 {
        let tones: f64 = self.powers.iter().sum();
        let rest = (self.total - tones).max(self.total * 1e-9).max(1e-9);
        10.0 * (tones.max(1e-12) / rest).log10()
    }

    /// Every asked frequency carries at least `min_share` of the tones'
    /// power divided evenly, and the tones together are `min_snr_db` above
    /// the rest, in a block louder than `min_rms`.
    pub fn has_all(&self, min_rms: f64, min_snr_db: f64) -> bool {
        let n = self.powers.len() as f64;
        let tones: f64 = self.powers.iter().sum();
        self.rms() >= min_rms
            && self.snr_db() >= min_snr_db
            && self.powers.iter().all(|&p| p >= 0.25 * tones / n)
    }
}

/// Splits `pcm` (8 kHz) into blocks of `block_ms` (a multiple of 10 ms keeps
/// tones on 10 Hz multiples on a Goertzel bin) and measures `freqs` in each.
pub fn tone_blocks(pcm: &[i16], block_ms: u32, freqs: &[f64]) -> Vec<ToneBlock> {
    let n = (8 * block_ms) as usize;
    pcm.chunks_exact(n)
        .enumerate()
        .map(|(i, c)| {
            let x: Vec<f64> = c.iter().map(|&s| f64::from(s)).collect();
            let total = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
            ToneBlock {
                start_ms: (i as u32 * block_ms) as f64,
                total,
                powers: freqs.iter().map(|&f| goertzel(&x, f, 8000.0)).collect(),
            }
        })
        .collect()
}

/// Runs of consecutive blocks satisfying `pred`: (first block, length).
pub fn runs<T>(items: &[T], pred: impl Fn(&T) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, it) in items.iter().enumerate() {
        match (pred(it), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - s));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, items.len() - s));
    }
    out
}

/// Median of the values (NaN for none).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

// -------------------------------------------------------------- spacing ---

/// Inter-arrival statistics of a packet stream.
#[derive(Debug, Clone)]
pub struct Spacing {
    pub packets: usize,
    pub mean_ms: f64,
    pub stdev_ms: f64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Gaps under 5 ms: packets that came out bunched.
    pub bunched: usize,
    /// Largest distance of an arrival from its ideal slot (first arrival +
    /// k × nominal), ms: drift and lateness.
    pub max_slot_error_ms: f64,
}

impl Spacing {
    /// Of `arrivals` (in order), against a nominal spacing `nominal_ms`.
    pub fn of(arrivals: &[Instant], nominal_ms: f64) -> Spacing {
        let gaps: Vec<f64> = arrivals
            .windows(2)
            .map(|w| w[1].saturating_duration_since(w[0]).as_secs_f64() * 1000.0)
            .collect();
        let n = gaps.len().max(1) as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        let mut sorted = gaps.clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if sorted.is_empty() {
                f64::NAN
            } else {
                sorted[((sorted.len() - 1) as f64 * p).round() as usize]
            }
        };
        let slot_err = arrivals
            .first()
            .map(|&t0| {
                // fit the best start offset: the median of (arrival - k*nominal)
                let offs: Vec<f64> = arrivals
                    .iter()
                    .enumerate()
                    .map(|(k, a)| {
                        a.saturating_duration_since(t0).as_secs_f64() * 1000.0
                            - k as f64 * nominal_ms
                    })
                    .collect();
                let m = median(&offs);
                offs.iter().map(|o| (o - m).abs()).fold(0.0, f64::max)
            })
            .unwrap_or(0.0);
        Spacing {
            packets: arrivals.len(),
            mean_ms: mean,
            stdev_ms: var.sqrt(),
            min_ms: sorted.first().copied().unwrap_or(f64::NAN),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            max_ms: sorted.last().copied().unwrap_or(f64::NAN),
            bunched: gaps.iter().filter(|&&g| g < 5.0).count(),
            max_slot_error_ms: slot_err,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} packets, gaps mean {:.2} ms, stdev {:.2} ms, min {:.2}, p50 {:.2}, p99 {:.2}, \
             max {:.2} ms, {} gaps < 5 ms, max slot error {:.2} ms",
            self.packets,
            self.mean_ms,
            self.stdev_ms,
            self.min_ms,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.bunched,
            self.max_slot_error_ms
        )
    }
}

// ----------------------------------------------------------------- pcap ---

/// The RTP packets (UDP payloads) of a pcap file (Ethernet or Linux cooked
/// link type), in file order.
pub fn pcap_rtp(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let b = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 24 {
        return Err(format!("{}: not a pcap file", path.display()));
    }
    let le = match &b[0..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(format!("{}: not a pcap file", path.display())),
    };
    let u32at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32at(20);
    let l2 = match link {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked
        101 => 0,  // raw IP
        _ => return Err(format!("{}: unsupported link type {link}", path.display())),
    };
    let mut off = 24;
    let mut out = Vec::new();
    while off + 16 <= b.len() {
        let incl = u32at(off + 8) as usize;
        let frame = b
            .get(off + 16..off + 16 + incl)
            .ok_or_else(|| format!("{}: truncated record", path.display()))?;
        off += 16 + incl;
        if let Some(d) = frame
            .get(l2..)
            .and_then(|ip| parse_ipv4_udp(ip, Instant::now()))
        {
            out.push(d.bytes);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_round_trips() {
        for law in [Law::Alaw, Law::Ulaw] {
            for s in [-32000i16, -1000, -5, 0, 7, 1234, 30000] {
                let back = law.decode(law.encode(s));
                let err = (i32::from(back) - i32::from(s)).abs();
                assert!(
                    err <= (i32::from(s).abs() / 16).max(16),
                    "{law:?} {s} -> {back}"
                );
            }
        }
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(ulaw_to_linear(0xFF), 0);
    }

    #[test]
    fn events_grouped_by_timestamp() {
        let mut w = StreamWriter::new(7);
        let payload = |end: bool, dur: u16| {
            let mut p = vec![5, if end { 0x8a } else { 0x0a }];
            p.extend_from_slice(&dur.to_be_bytes());
            p
        };
        w.event_payloads(
            101,
            &[
                payload(false, 160),
                payload(false, 320),
                payload(true, 480),
                payload(true, 480),
            ],
        );
        w.digit_event(101, '5', 100, 10);
        let now = Instant::now();
        let d: Vec<Datagram> = w
            .script
            .packets
            .iter()
            .map(|(_, b)| Datagram {
                at: now,
                src_port: 1,
                dst_port: 2,
                bytes: b.clone(),
            })
            .collect();
        let ev = telephone_events(&d, 101);
        assert_eq!(event_string(&ev), "55");
        assert_eq!((ev[0].packets, ev[0].end_packets), (4, 2));
        assert!(ev[0].marker);
        assert_eq!(ev[0].duration, 480);
        assert_eq!(
            (ev[1].packets, ev[1].end_packets, ev[1].duration),
            (7, 3, 800)
        );
        assert_eq!(ev[1].ts.wrapping_sub(ev[0].ts), 480);
    }

    #[test]
    fn tone_blocks_see_a_dual_tone() {
        let a = dbm0_amplitude(-19.0);
        let pcm: Vec<i16> = (0..8000u64)
            .map(|n| tones_at(&[(440.0, a), (480.0, a)], n) as i16)
            .collect();
        let blocks = tone_blocks(&pcm, 50, &[440.0, 480.0]);
        assert_eq!(blocks.len(), 20);
        assert!(blocks.iter().all(|b| b.has_all(100.0, 20.0)));
        let lvl = power_dbm0(blocks[3].powers[0]);
        assert!((lvl + 19.0).abs() < 0.5, "{lvl}");
    }
}
