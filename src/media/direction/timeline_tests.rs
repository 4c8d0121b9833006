//! The outgoing timeline around the digits a direction converts (PCMU on
//! both legs, or PCMU transcoded to PCMA; simulated time, no jitter): no in-band fragment of a
//! detected digit escapes, telephone-events start at the tone, and the audio
//! around injected packets keeps its place in time (RFC 4733 §2.5: an event
//! occupies the timeline from its timestamp for its duration; RFC 3550 §5.1:
//! the timestamp follows the sampling instant).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dtmf::{Detector, DetectorConfig, Digit, DtmfEvent, EventPayload, ToneGenerator};
use crate::media::codec::{G711, Law};
use crate::media::rewrite::Codec;
use crate::media::{DtmfMode, Leg, LegConfig, PortPair, RelayConfig, RelaySession};

const PORT_A: u16 = 1000;
const PORT_B: u16 = 2000;

fn addr(leg: Leg) -> SocketAddr {
    match leg {
        Leg::A => "192.0.2.1:4000".parse().expect("literal address"),
        Leg::B => "192.0.2.2:4000".parse().expect("literal address"),
    }
}

/// A G.711 leg (`law`: PCMU as PT 0, PCMA as PT 8), with
/// telephone-event/8000 as PT 101 when `events`.
fn g711(leg: Leg, law: Law, events: bool) -> LegConfig {
    let mut codecs = vec![match law {
        Law::Mu => Codec::new(0, "PCMU", 8000),
        Law::A => Codec::new(8, "PCMA", 8000),
    }];
    if events {
        codecs.push(Codec::new(101, "telephone-event", 8000));
    }
    LegConfig {
        ports: PortPair {
            rtp: if leg == Leg::A { PORT_A } else { PORT_B },
            rtcp: None,
        },
        remote_rtp: Some(addr(leg)),
        remote_rtcp: None,
        codecs,
    }
}

/// One packet the relay sent: when (ms since the start) and its header.
#[derive(Debug, Clone)]
struct Sent {
    ms: f64,
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
}

/// A G.711 call driven packet by packet: PCMU from B, PCMU or PCMA on A
/// (passed through or transcoded toward A).
struct Call {
    s: RelaySession,
    t0: Instant,
    to: [Vec<Sent>; 2],
    seq: [u16; 2],
}

impl Call {
    fn new(a: (DtmfMode, bool), b: (DtmfMode, bool)) -> Call {
        Call::with_law(Law::Mu, a, b)
    }

    fn with_law(a_law: Law, a: (DtmfMode, bool), b: (DtmfMode, bool)) -> Call {
        let t0 = crate::media::test_epoch();
        let mut s = RelaySession::new(
            t0,
            RelayConfig::default(),
            g711(Leg::A, a_law, a.1),
            g711(Leg::B, Law::Mu, b.1),
            11,
        );
        s.set_dtmf_mode(Leg::A, a.0);
        s.set_dtmf_mode(Leg::B, b.0);
        Call {
            s,
            t0,
            to: [Vec::new(), Vec::new()],
            seq: [100, 5000],
        }
    }

    fn at(&self, ms: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(ms / 1000.0)
    }

    fn collect(&mut self, at: Instant) {
        let ms = at.duration_since(self.t0).as_secs_f64() * 1000.0;
        while let Some(t) = self.s.poll_transmit() {
            let b = &t.bytes;
            let leg = if t.to == addr(Leg::A) { 0 } else { 1 };
            self.to[leg].push(Sent {
                ms,
                pt: b[1] & 0x7f,
                marker: b[1] & 0x80 != 0,
                seq: u16::from_be_bytes([b[2], b[3]]),
                ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                payload: b[12..].to_vec(),
            });
        }
    }

    /// Runs the timers due up to `ms`.
    fn until(&mut self, ms: f64) {
        let now = self.at(ms);
        for _ in 0..10_000 {
            let Some(t) = self.s.poll_timeout().filter(|&t| t <= now) else {
                break;
            };
            self.s.handle_timeout(t);
            self.collect(t);
        }
    }

    fn packet(&mut self, from: Leg, ms: f64, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        self.until(ms);
        let i = if from == Leg::A { 0 } else { 1 };
        let mut p = vec![0x80, pt | (u8::from(marker) << 7)];
        p.extend_from_slice(&self.seq[i].to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&(0x1234_0000 + i as u32).to_be_bytes());
        p.extend_from_slice(payload);
        self.seq[i] = self.seq[i].wrapping_add(1);
        let port = if from == Leg::A { PORT_A } else { PORT_B };
        let now = self.at(ms);
        self.s
            .handle_packet(now, port, addr(from), &p)
            .expect("a valid packet");
        self.collect(now);
    }

    /// 20 ms of PCMU from `from` with timestamp `ts`.
    fn audio(&mut self, from: Leg, ms: f64, ts: u32, pcm: &[i16]) {
        let mut payload = Vec::new();
        G711::new(Law::Mu).encode_into(pcm, &mut payload);
        self.packet(from, ms, 0, false, ts, &payload);
    }

    fn event(&mut self, from: Leg, ms: f64, ts: u32, marker: bool, p: EventPayload) {
        self.packet(from, ms, 101, marker, ts, &p.to_bytes());
    }

    fn toward(&self, leg: Leg) -> &[Sent] {
        &self.to[if leg == Leg::A { 0 } else { 1 }]
    }
}

/// 8 kHz PCM: silence with `digits` (digit, start sample, length) in it.
fn signal(len: usize, digits: &[(char, usize, usize)]) -> Vec<i16> {
    let mut pcm = vec![0i16; len];
    for &(c, start, n) in digits {
        let d = Digit::from_char(c).expect("a digit");
        let mut tone = Vec::new();
        ToneGenerator::digit(8000, d, Some(n as u64)).generate(n, &mut tone);
        pcm[start..start + n].copy_from_slice(&tone);
    }
    pcm
}

/// The telephone-events among `sent` (PT 101): digit, timestamp, largest
/// duration, in order of their first packet.
fn events(sent: &[Sent]) -> Vec<(char, u32, u32)> {
    let mut out: Vec<(char, u32, u32)> = Vec::new();
    for p in sent.iter().filter(|p| p.pt == 101) {
        let e = EventPayload::parse(&p.payload).expect("an event payload");
        let d = Digit::from_event(e.event).expect("a DTMF event").to_char();
        match out.iter_mut().find(|x| x.0 == d && x.1 == p.ts) {
            Some(x) => x.2 = x.2.max(u32::from(e.duration)),
            None => out.push((d, p.ts, u32::from(e.duration))),
        }
    }
    out
}

/// Packets whose sequence number does not follow the one sent before it,
/// and telephone-events whose first packet lacks the marker (RFC 4733
/// §2.5.1.1).
fn numbering_faults(sent: &[Sent]) -> usize {
    let gaps = sent
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .count();
    let unmarked = events(sent)
        .iter()
        .filter(|e| {
            sent.iter()
                .find(|p| p.pt == 101 && p.ts == e.1)
                .is_some_and(|p| !p.marker)
        })
        .count();
    gaps + unmarked
}

/// PCMU or PCMA.
fn is_audio(p: &Sent) -> bool {
    p.pt == 0 || p.pt == 8
}

/// How far the audio packets' (PT 0) timestamps ran behind the time between
/// them, in 8 kHz ticks, over the whole stream (negative: ahead).
fn drift(sent: &[Sent]) -> i64 {
    let audio: Vec<&Sent> = sent.iter().filter(|p| is_audio(p)).collect();
    let (Some(first), Some(last)) = (audio.first(), audio.last()) else {
        return 0;
    };
    let wall = ((last.ms - first.ms) * 8.0).round() as i64;
    wall - i64::from(last.ts.wrapping_sub(first.ts))
}

/// Audio packets (160 ticks each) that overlap a telephone-event's span.
fn audio_inside_events(sent: &[Sent]) -> Vec<(u32, char, u32, u32)> {
    let evs = events(sent);
    sent.iter()
        .filter(|p| is_audio(p))
        .flat_map(|p| {
            evs.iter()
                .filter(move |e| {
                    // Wrapping-safe overlap of [ts, ts+160) and [E, E+D).
                    let from_e = p.ts.wrapping_sub(e.1);
                    let to_p = e.1.wrapping_sub(p.ts);
                    from_e < e.2 || (to_p < 160 && to_p > 0)
                })
                .map(move |e| (p.ts, e.0, e.1, e.2))
        })
        .collect()
}

/// The decoded audio (PT 0) in timestamp order, gaps as silence.
fn decoded(sent: &[Sent]) -> Vec<i16> {
    let mut audio: Vec<&Sent> = sent.iter().filter(|p| is_audio(p)).collect();
    let Some(first) = audio.first().map(|p| p.ts) else {
        return Vec::new();
    };
    audio.sort_by_key(|p| p.ts.wrapping_sub(first));
    let mut pcm = Vec::new();
    for p in audio {
        let mut g = G711::new(if p.pt == 8 { Law::A } else { Law::Mu });
        let at = p.ts.wrapping_sub(first) as usize;
        if at > pcm.len() {
            pcm.resize(at, 0);
        }
        pcm.truncate(at);
        g.decode_into(&p.payload, &mut pcm);
    }
    pcm
}

/// Digits a Q.24 detector hears in `pcm` (8 kHz).
fn inband(pcm: &[i16]) -> String {
    let mut det = Detector::new(DetectorConfig::default());
    det.push(pcm);
    det.push(&[0; 1600]);
    let mut out = String::new();
    while let Some(ev) = det.poll_event() {
        if let DtmfEvent::Began { digit, .. } = ev {
            out.push(digit.to_char());
        }
    }
    out
}

/// In-band digits from the trunk (B, PCMU without telephone-event) toward an
/// RFC 4733 caller: none of the tone reaches the caller's audio (the audio
/// waits out the detector's latency), each telephone-event starts where its
/// tone did, and the audio around it keeps real time.
#[test]
fn inband_digits_toward_rfc4733_leave_no_tone_and_keep_the_timeline() {
    // Passed through (PCMU) and transcoded (PCMA).
    for law in [Law::Mu, Law::A] {
        inband_toward_rfc4733(law);
    }
}

fn inband_toward_rfc4733(law: Law) {
    let mut c = Call::with_law(law, (DtmfMode::Rfc4733, true), (DtmfMode::Inband, false));
    // A tone starting on a packet boundary, one starting mid-packet (and
    // mid-block of the detector).
    let tones = [('5', 3200, 960), ('9', 7000 + 80, 800)];
    let pcm = signal(8000 * 2, &tones);
    for (i, f) in pcm.chunks_exact(160).enumerate() {
        c.audio(Leg::B, 20.0 * i as f64, 160 * i as u32, f);
    }
    let to_a = c.toward(Leg::A);
    let evs = events(to_a);
    let digits: String = evs.iter().map(|e| e.0).collect();
    assert_eq!(digits, "59", "{evs:?}");
    // The audio's own offset (pass-through: source timestamp + constant).
    let first = to_a.iter().find(|p| is_audio(p)).expect("audio reached A");
    let offset = first.ts; // the source's first packet has timestamp 0
    let audio = decoded(to_a);
    let loud = audio.iter().filter(|s| s.unsigned_abs() > 100).count();
    eprintln!(
        "in-band toward RFC 4733 ({law:?}): events {evs:?}; {loud} samples of tone ({} ms) in the audio; \
         drift {} ticks",
        loud as f64 / 8.0,
        drift(to_a)
    );
    assert_eq!(inband(&audio), "", "a digit in the caller's audio");
    assert_eq!(loud, 0, "tone samples leaked into the caller's audio");
    for (e, &(d, start, n)) in evs.iter().zip(&tones) {
        let late = e.1.wrapping_sub(offset.wrapping_add(start as u32));
        assert!(
            late <= 102,
            "digit {d}: the event must start at its tone (ts {}), not {late} ticks later",
            offset.wrapping_add(start as u32)
        );
        assert!(
            e.2 + 102 + late >= n as u32 && e.2 <= n as u32 + 204,
            "digit {d}: duration {} for a tone of {n}",
            e.2
        );
    }
    assert_eq!(drift(to_a), 0, "audio timestamps drifted from real time");
    assert_eq!(audio_inside_events(to_a), [], "audio inside an event");
    assert_eq!(numbering_faults(to_a), 0, "sequence numbers or markers");
    // The source stops: the audio still held leaves 40 ms (two packet
    // times) after the last packet came, plus 20 ms for a late successor.
    let held = to_a.len();
    let last_in = 20.0 * (pcm.len() / 160 - 1) as f64;
    c.until(last_in + 200.0);
    let flushed = &c.toward(Leg::A)[held..];
    assert_eq!(flushed.len(), 2, "the last two packets: {flushed:?}");
    assert_eq!(flushed[1].ts, offset + 160 * (pcm.len() / 160 - 1) as u32);
    assert!(
        flushed.iter().all(|p| p.ms <= last_in + 60.0),
        "{flushed:?}"
    );
}

/// A digit from SIP INFO played toward an RFC 4733 leg in a pass-through
/// direction: the audio after the telephone-event continues on real time
/// (not from inside the event).
#[test]
fn info_digit_toward_rfc4733_keeps_the_timeline() {
    let mut c = Call::new((DtmfMode::Rfc4733, true), (DtmfMode::Info, false));
    let noise: Vec<i16> = (0..160).map(|n| ((n * 37) % 200) as i16 - 100).collect();
    for i in 0..80u32 {
        let ms = 20.0 * f64::from(i);
        if i == 20 {
            // The INFO comes between two packets.
            c.until(ms - 13.0);
            let now = c.at(ms - 13.0);
            c.s.send_dtmf(now, Leg::A, '5', 160);
            c.collect(now);
        }
        c.audio(Leg::B, ms, 160 * i, &noise);
    }
    let to_a = c.toward(Leg::A);
    let evs = events(to_a);
    eprintln!(
        "INFO toward RFC 4733: events {evs:?}; drift {} ticks",
        drift(to_a)
    );
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].2, 1280, "the event lasts the INFO's 160 ms");
    assert_eq!(drift(to_a), 0, "audio timestamps drifted from real time");
    assert_eq!(audio_inside_events(to_a), [], "audio inside the event");
    assert_eq!(numbering_faults(to_a), 0, "sequence numbers or markers");
}

/// RFC 4733 digits from the caller (sent between its audio packets, as
/// baresip does) played as tones toward an in-band trunk: the tone packets
/// take the audio's slots, so the trunk's timeline keeps real time.
#[test]
fn rfc4733_digits_toward_inband_take_the_audio_slots() {
    for trunk_lists_events in [false, true] {
        let mut c = Call::new(
            (DtmfMode::Rfc4733, true),
            (DtmfMode::Inband, trunk_lists_events),
        );
        let noise: Vec<i16> = (0..160).map(|n| ((n * 37) % 200) as i16 - 100).collect();
        let mut event: Option<(u32, u32, u8)> = None; // ts, packets sent, digit
        for i in 0..100u32 {
            let ms = 20.0 * f64::from(i);
            c.audio(Leg::A, ms, 160 * i, &noise);
            if i % 30 == 10 {
                // The next slot's timestamp, right after this packet.
                event = Some((160 * (i + 1), 0, [5, 9, 1][(i / 30) as usize % 3]));
            }
            if let Some((ts, n, digit)) = event {
                let end = n >= 9;
                let p = EventPayload {
                    event: digit,
                    end,
                    volume: 10,
                    duration: (160 * (n + 1).min(9)) as u16,
                };
                c.event(Leg::A, ms + 0.05, ts, n == 0, p);
                event = (n < 11).then_some((ts, n + 1, digit));
            }
        }
        let to_b = c.toward(Leg::B);
        let heard = inband(&decoded(to_b));
        eprintln!(
            "RFC 4733 toward in-band (trunk lists telephone-event: {trunk_lists_events}): \
             heard {heard:?}; drift {} ticks",
            drift(to_b)
        );
        assert_eq!(heard, "591", "the digits as tones");
        let bunched = to_b.windows(2).filter(|w| w[1].ms - w[0].ms < 10.0).count();
        assert_eq!(
            bunched, 0,
            "tone packets must take the audio's slots, 20 ms apart"
        );
        assert!(to_b.iter().all(|p| p.pt == 0), "only audio to the trunk");
        assert_eq!(drift(to_b), 0, "audio timestamps drifted from real time");
        assert_eq!(numbering_faults(to_b), 0, "sequence numbers");
    }
}
