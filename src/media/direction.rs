//! One direction of a call's media (packets from one leg toward the other):
//! pass-through when both legs share the codec, else transcoding, plus DTMF
//! interworking and the tones the relay plays itself.
//!
//! ```text
//!  RTP from X ─┬─ codec on both legs ─────────── rewrite header ──────────────────────┐
//!              ├─ other audio ─ Reorder ─ Decoder ─┬─ FIFO ─ Encoder (sink ptime) ───┤ StreamRewriter:
//!              │   (and X's in-band DTMF)           └─ Detector ─▶ 4733 / INFO / mute │ our SSRC, one
//!              └─ telephone-event ─ 4733 → 4733 (EventRelay: PT + clock) ───────────────┤ continuous seq
//!                                   4733 → tones (EventsToInband) / → Event::Dtmf       │ and timestamp
//!  SendDtmf, Ringback ─ Injector (timed at the sink's ptime) ────────────────────────────┘ ──▶ Y
//! ```
//!
//! Every outgoing packet goes through the direction's [`StreamRewriter`]:
//! pass-through packets under their real SSRC, packets the relay encodes or
//! makes up under internal source ids ("timelines"), so each switch between
//! them continues the sequence by one and the timestamp by the time elapsed.
//!
//! While the [`Injector`] plays something toward Y (a digit as tone or
//! telephone-events, ringback, silence over a detected in-band digit) it owns
//! the stream: X's own audio is suppressed until it is done.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dtmf::{
    Detector, DetectorConfig, Digit, DtmfEvent, EventPacket, EventPayload, EventReceiver,
    EventRelay, EventSender, EventsToInband, ReceivedEvent, RingbackPlan, ToneGenerator,
};

use super::codec::{CodecKind, Resampler};
use super::error::DropReason;
use super::reorder::{Released, Reorder};
use super::rewrite::{Codec, PtMapping, StreamRewriter, map_codecs};
use super::rtp::RtpHeader;
use super::transcode::{Decoder, Encoder, SinkCodec, pcm_rate};
use super::types::{DirectionStats, DtmfMode, Event, Leg, LegConfig};

/// Packets the reorder window holds at most before declaring a gap lost.
const REORDER_PACKETS: usize = 3;
/// Longest a packet waits in the reorder window for the gap before it.
const REORDER_WAIT: Duration = Duration::from_millis(60);
/// A telephone-event digit with no packet for this long has ended (its end
/// packets were lost).
const EVENT_TIMEOUT: Duration = Duration::from_millis(250);
/// Shortest pause between two digits the relay sends as telephone-events.
const EVENT_GAP: Duration = Duration::from_millis(40);
/// Volume announced in the telephone-events we make (-10 dBm0).
const EVENT_VOLUME: u8 = 10;

/// What a payload type of the source leg carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SrcKind {
    Audio(CodecKind),
    Event(u32),
    Other,
}

/// What the codecs and DTMF modes of both legs make of this direction.
#[derive(Debug, Clone, Default)]
struct Plan {
    src: Vec<(u8, SrcKind)>,
    sink: Option<SinkCodec>,
    /// The sink's telephone-event payload type and clock rate.
    sink_event: Option<(u8, u32)>,
    /// Effective modes (RFC 4733 without telephone-event is in-band).
    src_mode: DtmfMode,
    sink_mode: DtmfMode,
    /// In-band digits from the source must be detected.
    detect: bool,
    /// The source's preferred audio codec needs no transcoding.
    first_passes: bool,
}

impl Plan {
    fn new(
        x: &LegConfig,
        x_mode: DtmfMode,
        y: &LegConfig,
        y_mode: DtmfMode,
    ) -> (Plan, Vec<PtMapping>) {
        let kind_of = |c: &Codec| {
            if c.is_telephone_event() {
                SrcKind::Event(c.clock_rate)
            } else {
                match CodecKind::from_name(&c.name) {
                    Some(k) if k.rtp_clock_rate() == c.clock_rate => SrcKind::Audio(k),
                    _ => SrcKind::Other,
                }
            }
        };
        let src: Vec<(u8, SrcKind)> = x
            .codecs
            .iter()
            .map(|c| (c.payload_type, kind_of(c)))
            .collect();
        let sink = y.codecs.iter().find_map(|c| match kind_of(c) {
            SrcKind::Audio(kind) => Some(SinkCodec {
                kind,
                payload_type: c.payload_type,
                fmtp: c.fmtp.clone(),
                ptime_ms: SinkCodec::ptime_for(kind, c.ptime),
            }),
            _ => None,
        });
        let audio_clock = sink.as_ref().map(|s| s.kind.rtp_clock_rate());
        let events: Vec<&Codec> = y.codecs.iter().filter(|c| c.is_telephone_event()).collect();
        let sink_event = events
            .iter()
            .find(|c| Some(c.clock_rate) == audio_clock)
            .or(events.first())
            .map(|c| (c.payload_type, c.clock_rate));
        let has_src_events = src.iter().any(|s| matches!(s.1, SrcKind::Event(_)));
        let effective = |mode, has_events: bool| match mode {
            DtmfMode::Rfc4733 if !has_events => DtmfMode::Inband,
            m => m,
        };
        let src_mode = effective(x_mode, has_src_events);
        let sink_mode = effective(y_mode, sink_event.is_some());
        let both_events = src_mode == DtmfMode::Rfc4733 && sink_mode == DtmfMode::Rfc4733;
        let maps: Vec<PtMapping> = map_codecs(&x.codecs, &y.codecs)
            .into_iter()
            .filter(|m| {
                both_events
                    || !x
                        .codecs
                        .iter()
                        .any(|c| c.payload_type == m.from && c.is_telephone_event())
            })
            .collect();
        let first_passes = src
            .iter()
            .find(|s| matches!(s.1, SrcKind::Audio(_)))
            .is_none_or(|s| maps.iter().any(|m| m.from == s.0));
        let plan = Plan {
            src,
            sink,
            sink_event,
            src_mode,
            sink_mode,
            detect: src_mode == DtmfMode::Inband && sink_mode != DtmfMode::Inband,
            first_passes,
        };
        (plan, maps)
    }

    fn kind(&self, pt: u8) -> Option<SrcKind> {
        self.src.iter().find(|s| s.0 == pt).map(|s| s.1)
    }

    fn audio_clock(&self) -> u32 {
        self.sink.as_ref().map_or(8000, |s| s.kind.rtp_clock_rate())
    }

    fn ptime(&self) -> Duration {
        Duration::from_millis(self.sink.as_ref().map_or(20, |s| s.ptime_ms).into())
    }
}

/// A packet waiting in the reorder window.
#[derive(Debug)]
enum Held {
    /// Audio to decode (`transcode`: and to send on, re-encoded).
    Audio {
        kind: CodecKind,
        ts: u32,
        transcode: bool,
        payload: Vec<u8>,
    },
    /// A packet that only takes up its sequence number here.
    Filler,
}

/// The outgoing stream: header rewriting and the packets ready to send.
#[derive(Debug)]
struct Output {
    stream: StreamRewriter,
    packets: Vec<Vec<u8>>,
}

impl Output {
    /// Queues a packet the relay made (payload type `pt` on the sink leg).
    /// `marker`: an event's own marker bit; `None` for audio, whose marker
    /// flags the start of a talkspurt (a new source in the rewriter).
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        at: Instant,
        pt: u8,
        clock: u32,
        marker: Option<bool>,
        seq: u16,
        ts: u32,
        id: u32,
        payload: &[u8],
    ) {
        let r = self.stream.rewrite_as(at, pt, clock, seq, ts, id);
        let m = marker.unwrap_or(r.source_changed);
        let mut p = Vec::with_capacity(12 + payload.len());
        p.extend_from_slice(&[0x80, (u8::from(m) << 7) | (r.payload_type & 0x7f)]);
        p.extend_from_slice(&r.sequence.to_be_bytes());
        p.extend_from_slice(&r.timestamp.to_be_bytes());
        p.extend_from_slice(&r.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.packets.push(p);
    }
}

/// A run of packets the injector makes: one internal source for the rewriter.
#[derive(Debug, Clone, Copy)]
struct Run {
    id: u32,
    seq: u16,
    start: Instant,
    base_ts: u32,
    next_tick: Instant,
}

/// A telephone-event the injector is sending.
#[derive(Debug, Clone, Copy)]
struct Sending {
    started: Instant,
    /// Duration already elapsed when it started (event clock ticks).
    d0: u32,
    /// Total duration once known (event clock ticks).
    total: Option<u32>,
    last: u32,
}

/// What the relay plays toward the sink leg by itself.
#[derive(Debug, Default)]
struct Injector {
    run: Option<Run>,
    /// Its own encoder toward the sink (PCM at [`Direction::gen_rate`]).
    enc: Option<Encoder>,
    /// The plan, its generator and the generator's PCM rate.
    ringback: Option<(RingbackPlan, ToneGenerator, u32)>,
    /// Digits to play as tones (from `SendDtmf`), fed as synthetic events,
    /// with their PCM rate.
    info_tones: Option<(EventsToInband, u32)>,
    info_ts: u32,
    /// Digits to send as telephone-events (from `SendDtmf`): digit, ms.
    queue: VecDeque<(Digit, u32)>,
    sender: Option<EventSender>,
    sending: Option<Sending>,
    gap_until: Option<Instant>,
    /// Silence over an in-band digit being detected (toward an INFO leg).
    mute: bool,
    /// Continuation of the injected streams across runs.
    seq: u16,
    ts: u32,
}

/// Telephone-event handling of the source's events.
#[derive(Debug, Default)]
struct EventsIn {
    relay: Option<(EventRelay, u32, u32)>,
    tones: Option<(EventsToInband, u32, u32)>,
    info: Option<(EventReceiver, u32)>,
    last: Option<Instant>,
}

/// In-band DTMF detection on the source's decoded audio.
#[derive(Debug)]
struct Detect {
    det: Detector,
    rate: u32,
    pos: u64,
}

/// One direction of a session: packets from `from` toward the other leg.
#[derive(Debug)]
pub struct Direction {
    from: Leg,
    plan: Plan,
    out: Output,
    /// SSRC of the source currently sending.
    source: Option<u32>,
    /// The source's audio is being transcoded (not passed through).
    transcoding: bool,
    reorder: Reorder<Held>,
    dec: Option<Decoder>,
    enc: Option<Encoder>,
    resampler: Option<(Resampler, u32, u32)>,
    fifo: Vec<i16>,
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    payload: Vec<u8>,
    /// The transcoded stream's internal source: id, seq, ts.
    tl: (u32, u16, u32),
    next_id: u32,
    detect: Option<Detect>,
    events_in: EventsIn,
    inj: Injector,
    events: Vec<Event>,
    /// Counters of this direction.
    pub stats: DirectionStats,
}

impl Direction {
    /// The direction from `from` (config `x`) toward the other leg (`y`),
    /// sending under `ssrc`; `seed` spreads the internal ids and numbering.
    pub fn new(from: Leg, ssrc: u32, seed: u64, x: &LegConfig, y: &LegConfig) -> Self {
        let (plan, maps) = Plan::new(x, DtmfMode::default(), y, DtmfMode::default());
        let first_passes = plan.first_passes;
        Direction {
            from,
            plan,
            out: Output {
                stream: StreamRewriter::new(ssrc, &maps),
                packets: Vec::new(),
            },
            source: None,
            transcoding: !first_passes,
            reorder: Reorder::new(REORDER_PACKETS, REORDER_WAIT),
            dec: None,
            enc: None,
            resampler: None,
            fifo: Vec::new(),
            pcm: Vec::new(),
            resampled: Vec::new(),
            payload: Vec::new(),
            tl: (
                (seed >> 32) as u32 | 0x8000_0000,
                seed as u16,
                (seed >> 16) as u32,
            ),
            next_id: (seed >> 40) as u32 | 0x8000_0000,
            detect: None,
            events_in: EventsIn::default(),
            inj: Injector {
                seq: (seed >> 8) as u16,
                ts: (seed >> 24) as u32,
                ..Injector::default()
            },
            events: Vec::new(),
            stats: DirectionStats::default(),
        }
    }

    /// New codecs or DTMF modes on either leg: rebuild the plan. Running
    /// tones, ringback and queued digits carry on.
    pub fn configure(&mut self, x: &LegConfig, x_mode: DtmfMode, y: &LegConfig, y_mode: DtmfMode) {
        let (plan, maps) = Plan::new(x, x_mode, y, y_mode);
        self.out.stream.set_mappings(&maps);
        if plan.sink != self.plan.sink {
            self.enc = None;
            self.inj.enc = None;
            self.fifo.clear();
            self.tl.0 = self.fresh_id();
        }
        if plan.sink_event != self.plan.sink_event || plan.src_mode != self.plan.src_mode {
            self.events_in.relay = None;
        }
        if !plan.detect {
            self.detect = None;
        }
        self.transcoding = !plan.first_passes;
        self.plan = plan;
    }

    /// The outgoing stream's rewriter (RTCP rewriting reads its offsets).
    pub fn stream(&self) -> &StreamRewriter {
        &self.out.stream
    }

    /// Packets ready to send toward the other leg.
    pub fn take_packets(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.out.packets.drain(..)
    }

    /// Events raised for the B2BUA.
    pub fn take_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    fn fresh_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1) | 0x8000_0000;
        if Some(self.next_id) == self.source {
            self.next_id = self.next_id.wrapping_add(1) | 0x8000_0000;
        }
        self.next_id
    }

    /// One valid RTP packet `packet` (header `h`) from the source at `now`.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        h: &RtpHeader,
        packet: &[u8],
        payload: &[u8],
    ) -> Result<(), DropReason> {
        // Real media from this leg (a payload type it negotiated) ends
        // ringback toward the other: early media wins.
        if self.plan.kind(h.payload_type).is_some() && self.inj.ringback.take().is_some() {
            self.end_run_if_idle(now);
        }
        if self.source != Some(h.ssrc) {
            self.source = Some(h.ssrc);
            self.reorder.reset();
            if let Some(d) = self.dec.as_mut() {
                d.reset();
            }
            self.fifo.clear();
            self.tl.0 = self.fresh_id();
        }
        let result = match self.plan.kind(h.payload_type) {
            Some(SrcKind::Event(rate)) => self.handle_event(now, h, packet, payload, rate),
            Some(SrcKind::Audio(kind)) => self.handle_audio(now, h, packet, payload, kind),
            Some(SrcKind::Other) if !self.transcoding && self.inj.run.is_none() => {
                self.forward(now, h, packet)
            }
            Some(SrcKind::Other) if self.out.stream.mapping(h.payload_type).is_some() => {
                // Comfort noise and the like inside a transcoded stream: the
                // decoder's gap handling stands in for it.
                self.stats.suppressed_packets += 1;
                Ok(())
            }
            _ => Err(DropReason::UnknownPayloadType(h.payload_type)),
        };
        // Everything else keeps its place in the decoder's sequence space.
        if !matches!(self.plan.kind(h.payload_type), Some(SrcKind::Audio(_))) {
            self.push_held(now, h.sequence, Held::Filler);
        }
        result
    }

    fn forward(&mut self, now: Instant, h: &RtpHeader, packet: &[u8]) -> Result<(), DropReason> {
        let r = self
            .out
            .stream
            .rewrite(now, h.payload_type, h.sequence, h.timestamp, h.ssrc)
            .ok_or(DropReason::UnknownPayloadType(h.payload_type))?;
        let mut out = packet.to_vec();
        super::rtp::write_rtp_header(&mut out, r.payload_type, r.sequence, r.timestamp, r.ssrc);
        self.out.packets.push(out);
        Ok(())
    }

    fn handle_audio(
        &mut self,
        now: Instant,
        h: &RtpHeader,
        packet: &[u8],
        payload: &[u8],
        kind: CodecKind,
    ) -> Result<(), DropReason> {
        let passes = self.out.stream.mapping(h.payload_type).is_some();
        let result = if passes {
            self.transcoding = false;
            if self.inj.run.is_some() {
                self.stats.suppressed_packets += 1;
                Ok(())
            } else {
                self.forward(now, h, packet)
            }
        } else if self.plan.sink.is_some() {
            self.transcoding = true;
            Ok(())
        } else {
            Err(DropReason::UnknownPayloadType(h.payload_type))
        };
        let decode = result.is_ok() && (!passes || self.plan.detect);
        let held = if decode {
            Held::Audio {
                kind,
                ts: h.timestamp,
                transcode: !passes,
                payload: payload.to_vec(),
            }
        } else {
            Held::Filler
        };
        self.push_held(now, h.sequence, held);
        result
    }

    fn push_held(&mut self, now: Instant, seq: u16, held: Held) {
        let decodes = matches!(held, Held::Audio { .. });
        if !decodes && !self.transcoding && !self.plan.detect {
            // Nothing is decoded: no order to restore, no timer to run.
            self.reorder.reset();
            return;
        }
        if self.reorder.push(now, seq, held).is_err() && decodes {
            self.stats.dropped_late += 1;
        }
        self.process_released(now);
    }

    fn process_released(&mut self, now: Instant) {
        let released: Vec<Released<Held>> = self.reorder.drain().collect();
        for r in released {
            match r {
                Released::Packet(Held::Audio {
                    kind,
                    ts,
                    transcode,
                    payload,
                }) => self.decode(now, kind, ts, transcode, &payload),
                Released::Packet(Held::Filler) => {}
                Released::Lost(n) => {
                    if let Some(d) = self.dec.as_mut() {
                        d.lost(n);
                    }
                }
                Released::Restart => {
                    if let Some(d) = self.dec.as_mut() {
                        d.reset();
                    }
                    self.fifo.clear();
                    self.tl.0 = self.fresh_id();
                }
            }
        }
    }

    /// Decodes one audio packet in order; re-encodes it toward the sink when
    /// `transcode`, and looks for in-band digits when the plan says so.
    fn decode(&mut self, now: Instant, kind: CodecKind, ts: u32, transcode: bool, payload: &[u8]) {
        let sink_kind = self.plan.sink.as_ref().map(|s| s.kind);
        let rate = if transcode {
            pcm_rate(kind, sink_kind)
        } else {
            pcm_rate(kind, None)
        };
        if self
            .dec
            .as_ref()
            .is_none_or(|d| d.kind() != kind || d.rate() != rate)
        {
            match Decoder::new(kind, rate) {
                Ok(d) => self.dec = Some(d),
                Err(_) => return,
            }
        }
        let Some(dec) = self.dec.as_mut() else { return };
        self.pcm.clear();
        let d = dec.decode(ts, payload, &mut self.pcm);
        let rate = dec.rate();
        self.stats.concealed_packets += u64::from(d.concealed);
        if self.plan.detect {
            self.run_detector(now, rate);
        }
        if !transcode {
            return;
        }
        if d.discontinuity {
            self.fifo.clear();
            self.tl.0 = self.fresh_id();
        }
        if self.inj.run.is_some() {
            // The injector owns the stream: this audio is suppressed.
            self.fifo.clear();
            self.stats.suppressed_packets += 1;
            return;
        }
        let Some(sink) = self.plan.sink.clone() else {
            return;
        };
        let want = if sink.kind == CodecKind::Opus {
            rate
        } else {
            sink.kind.native_rate()
        };
        if self
            .enc
            .as_ref()
            .is_none_or(|e| e.rate() != want || *e.sink() != sink)
        {
            match Encoder::new(&sink, want) {
                Ok(e) => self.enc = Some(e),
                Err(_) => return,
            }
            self.fifo.clear();
        }
        if rate != want {
            if self
                .resampler
                .as_ref()
                .is_none_or(|r| (r.1, r.2) != (rate, want))
            {
                match Resampler::new(rate, want) {
                    Ok(r) => self.resampler = Some((r, rate, want)),
                    Err(_) => return,
                }
            }
            if let Some((r, _, _)) = self.resampler.as_mut() {
                self.resampled.clear();
                r.process(&self.pcm, &mut self.resampled);
                self.fifo.extend_from_slice(&self.resampled);
            }
        } else {
            self.fifo.extend_from_slice(&self.pcm);
        }
        self.encode_fifo(now);
    }

    /// Sends every whole frame in the FIFO on the transcoded timeline.
    fn encode_fifo(&mut self, now: Instant) {
        let Some(enc) = self.enc.as_mut() else { return };
        let frame = enc.frame();
        let mut at = 0;
        while self.fifo.len() - at >= frame {
            self.payload.clear();
            if enc
                .encode(&self.fifo[at..at + frame], &mut self.payload)
                .is_ok()
            {
                let (id, seq, ts) = self.tl;
                let (pt, clock) = (enc.sink().payload_type, enc.clock());
                self.out
                    .send(now, pt, clock, None, seq, ts, id, &self.payload);
                self.stats.transcoded_packets += 1;
                self.tl.1 = seq.wrapping_add(1);
            }
            self.tl.2 = self.tl.2.wrapping_add(enc.step());
            at += frame;
        }
        self.fifo.drain(..at);
    }

    fn run_detector(&mut self, now: Instant, rate: u32) {
        if self.detect.as_ref().is_none_or(|d| d.rate != rate) {
            self.detect = Some(Detect {
                det: Detector::new(DetectorConfig {
                    sample_rate: rate,
                    ..DetectorConfig::default()
                }),
                rate,
                pos: 0,
            });
        }
        let Some(det) = self.detect.as_mut() else {
            return;
        };
        det.det.push(&self.pcm);
        det.pos += self.pcm.len() as u64;
        let (pos, rate) = (det.pos, det.rate);
        let mut found = Vec::new();
        while let Some(ev) = det.det.poll_event() {
            found.push(ev);
        }
        for ev in found {
            match ev {
                DtmfEvent::Began { digit, at } => {
                    self.inband_began(now, digit, pos.saturating_sub(at), rate)
                }
                DtmfEvent::Ended {
                    digit, duration, ..
                } => self.inband_ended(now, digit, duration, rate),
            }
        }
    }

    fn inband_began(&mut self, now: Instant, digit: Digit, elapsed: u64, rate: u32) {
        match self.plan.sink_mode {
            DtmfMode::Rfc4733 => {
                let Some((_, erate)) = self.plan.sink_event else {
                    return;
                };
                self.end_sending(now);
                self.ensure_run(now);
                let d0 = (elapsed * u64::from(erate) / u64::from(rate)) as u32;
                let ts = self.run_ts(now);
                let pkts = self
                    .inj
                    .sender
                    .get_or_insert_with(|| EventSender::new(EVENT_VOLUME))
                    .start(digit, ts, d0);
                self.inj.sending = Some(Sending {
                    started: now,
                    d0,
                    total: None,
                    last: d0,
                });
                self.send_events(now, &pkts);
            }
            DtmfMode::Info => {
                self.inj.mute = true;
                self.ensure_run(now);
                self.run_ticks(now);
            }
            DtmfMode::Inband => {}
        }
    }

    fn inband_ended(&mut self, now: Instant, digit: Digit, duration: u64, rate: u32) {
        self.stats.dtmf_digits += 1;
        match self.plan.sink_mode {
            DtmfMode::Rfc4733 => {
                let Some((_, erate)) = self.plan.sink_event else {
                    return;
                };
                if let Some(s) = self.inj.sending.filter(|s| s.total.is_none()) {
                    let total =
                        ((duration * u64::from(erate) / u64::from(rate)) as u32).max(s.last);
                    self.inj.sending = None;
                    let pkts = self
                        .inj
                        .sender
                        .as_mut()
                        .map(|tx| tx.end(total))
                        .unwrap_or_default();
                    self.send_events(now, &pkts);
                    self.inj.gap_until = Some(now + EVENT_GAP);
                }
                self.end_run_if_idle(now);
            }
            DtmfMode::Info => {
                self.inj.mute = false;
                self.events.push(Event::Dtmf {
                    from: self.from,
                    digit: digit.to_char(),
                    duration_ms: (duration * 1000 / u64::from(rate)) as u32,
                });
                self.end_run_if_idle(now);
            }
            DtmfMode::Inband => {}
        }
    }

    /// A telephone-event packet from the source.
    fn handle_event(
        &mut self,
        now: Instant,
        h: &RtpHeader,
        packet: &[u8],
        payload: &[u8],
        rate: u32,
    ) -> Result<(), DropReason> {
        if self.plan.src_mode != DtmfMode::Rfc4733 {
            // The leg's digits come another way (INFO, or in its audio).
            self.stats.suppressed_packets += 1;
            return Ok(());
        }
        let mapped = self.out.stream.mapping(h.payload_type).is_some();
        if mapped && !self.transcoding && self.inj.run.is_none() {
            return self.forward(now, h, packet);
        }
        self.events_in.last = Some(now);
        match self.plan.sink_mode {
            DtmfMode::Rfc4733 => {
                let Some((_, erate)) = self.plan.sink_event else {
                    return Err(DropReason::UnknownPayloadType(h.payload_type));
                };
                if self
                    .events_in
                    .relay
                    .as_ref()
                    .is_none_or(|r| (r.1, r.2) != (rate, erate))
                {
                    self.events_in.relay =
                        Some((EventRelay::new(rate, erate, EVENT_VOLUME), rate, erate));
                }
                self.ensure_run(now);
                let out_ts = self.run_ts(now);
                let pkts = match self.events_in.relay.as_mut() {
                    Some((relay, _, _)) => relay.handle(h.timestamp, payload, out_ts),
                    None => Vec::new(),
                };
                self.stats.dtmf_digits += pkts.iter().filter(|p| p.marker).count() as u64;
                self.send_events(now, &pkts);
                self.end_run_if_idle(now);
            }
            DtmfMode::Inband => {
                let Some(rate_out) = self.gen_rate() else {
                    return Err(DropReason::UnknownPayloadType(h.payload_type));
                };
                if self
                    .events_in
                    .tones
                    .as_ref()
                    .is_none_or(|t| (t.1, t.2) != (rate, rate_out))
                {
                    self.events_in.tones =
                        Some((EventsToInband::new(rate, rate_out), rate, rate_out));
                }
                let Some((tones, _, _)) = self.events_in.tones.as_mut() else {
                    return Ok(());
                };
                self.stats.dtmf_digits += tones.handle_packet(h.timestamp, payload) as u64;
                let busy = tones.busy();
                if busy && self.inj.run.is_none() {
                    self.ensure_run(now);
                    self.run_ticks(now);
                }
            }
            DtmfMode::Info => {
                if self.events_in.info.as_ref().is_none_or(|r| r.1 != rate) {
                    self.events_in.info = Some((EventReceiver::new(rate, 1000), rate));
                }
                let evs = match self.events_in.info.as_mut() {
                    Some((rx, _)) => rx.handle(h.timestamp, payload),
                    None => Vec::new(),
                };
                for ev in evs {
                    self.info_event(ev);
                }
            }
        }
        Ok(())
    }

    fn info_event(&mut self, ev: ReceivedEvent) {
        if let ReceivedEvent::Ended { digit, duration } = ev {
            self.stats.dtmf_digits += 1;
            self.events.push(Event::Dtmf {
                from: self.from,
                digit: digit.to_char(),
                duration_ms: duration,
            });
        }
    }

    /// `SendDtmf`: play `digit` toward the sink leg in its mode.
    pub fn send_dtmf(&mut self, now: Instant, digit: Digit, duration_ms: u32) {
        match self.plan.sink_mode {
            DtmfMode::Rfc4733 => {
                self.inj.queue.push_back((digit, duration_ms.max(40)));
                if self.inj.run.is_none() {
                    self.ensure_run(now);
                    self.run_ticks(now);
                }
            }
            DtmfMode::Inband => {
                let Some(rate) = self.gen_rate() else { return };
                if self.inj.info_tones.as_ref().is_none_or(|t| t.1 != rate) {
                    self.inj.info_tones = Some((EventsToInband::new(8000, rate), rate));
                }
                let Some((tones, _)) = self.inj.info_tones.as_mut() else {
                    return;
                };
                // Each digit as one synthetic event, begun and ended at once.
                self.inj.info_ts = self.inj.info_ts.wrapping_add(0x1_0000);
                let p = EventPayload {
                    event: digit.event(),
                    end: true,
                    volume: EVENT_VOLUME,
                    duration: (duration_ms.clamp(40, 8000) * 8) as u16,
                };
                tones.handle_packet(self.inj.info_ts, &p.to_bytes());
                if self.inj.run.is_none() {
                    self.ensure_run(now);
                    self.run_ticks(now);
                }
            }
            // The B2BUA relays INFO between INFO legs itself.
            DtmfMode::Info => {}
        }
    }

    /// `Ringback`: start (`Some`) or stop the tone toward the sink leg.
    pub fn ringback(&mut self, now: Instant, plan: Option<&RingbackPlan>) {
        match plan {
            Some(plan) => {
                let Some(rate) = self.gen_rate() else { return };
                self.inj.ringback = Some((plan.clone(), ToneGenerator::ringback(rate, plan), rate));
                if self.inj.run.is_none() {
                    self.ensure_run(now);
                    self.run_ticks(now);
                }
            }
            None => {
                self.inj.ringback = None;
                self.end_run_if_idle(now);
            }
        }
    }

    /// Whether ringback is playing.
    pub fn ringback_playing(&self) -> bool {
        self.inj.ringback.is_some()
    }

    /// Whether the injector encodes with the transcoder's encoder: in a
    /// transcoding direction the stream has one encoder, whose state the
    /// far end's decoder follows (two encoders taking turns in one Opus
    /// stream make the decoder glitch at each switch).
    fn shares_encoder(&self) -> bool {
        self.transcoding
            && self
                .enc
                .as_ref()
                .is_some_and(|e| Some(e.sink()) == self.plan.sink.as_ref())
    }

    /// The PCM rate the injector plays at toward the sink: the transcoder's
    /// when it shares its encoder, else G.722's 16 kHz or 8 kHz (G.711's, and
    /// all a tone needs from Opus). `None` while the sink leg has no audio
    /// codec we can encode.
    fn gen_rate(&self) -> Option<u32> {
        if self.shares_encoder() {
            return self.enc.as_ref().map(|e| e.rate());
        }
        Some(pcm_rate(self.plan.sink.as_ref()?.kind, Some(CodecKind::Pcmu)).min(16000))
    }

    /// Starts a run of injected packets at `now` if none is going. In a
    /// transcoding direction it continues the transcoded timeline (the same
    /// internal source: no break in the stream); in a pass-through one it is
    /// a source of its own.
    fn ensure_run(&mut self, now: Instant) {
        if self.inj.run.is_none() {
            let (id, seq, base_ts) = if self.transcoding {
                self.fifo.clear();
                self.tl
            } else {
                (self.fresh_id(), self.inj.seq, self.inj.ts)
            };
            self.inj.run = Some(Run {
                id,
                seq,
                start: now,
                base_ts,
                next_tick: now,
            });
        }
    }

    /// The injected stream's timestamp at `t` (sink audio clock).
    fn run_ts(&self, t: Instant) -> u32 {
        let Some(run) = self.inj.run else {
            return self.inj.ts;
        };
        let ns = t.saturating_duration_since(run.start).as_nanos();
        let ticks = ns * u128::from(self.plan.audio_clock()) / 1_000_000_000;
        run.base_ts.wrapping_add(ticks as u32)
    }

    fn has_content(&self) -> bool {
        let i = &self.inj;
        i.sending.is_some()
            || !i.queue.is_empty()
            || i.mute
            || i.ringback.is_some()
            || i.info_tones.as_ref().is_some_and(|t| t.0.busy())
            || self.events_in.tones.as_ref().is_some_and(|t| t.0.busy())
            || self
                .events_in
                .relay
                .as_ref()
                .is_some_and(|r| r.0.active().is_some())
    }

    fn end_run_if_idle(&mut self, now: Instant) {
        if self.inj.run.is_some() && !self.has_content() {
            self.end_run(now);
        }
    }

    /// Ends the run at `now`; the transcoded timeline carries on after it.
    fn end_run(&mut self, now: Instant) {
        let ts = self.run_ts(now);
        if let Some(run) = self.inj.run.take() {
            if run.id == self.tl.0 {
                self.tl.1 = run.seq;
                self.tl.2 = ts;
            } else {
                self.inj.seq = run.seq;
                self.inj.ts = ts;
            }
        }
        self.inj.gap_until = None;
    }

    fn send_events(&mut self, at: Instant, pkts: &[EventPacket]) {
        let (Some((pt, _)), Some(mut run)) = (self.plan.sink_event, self.inj.run) else {
            return;
        };
        let clock = self.plan.audio_clock();
        for p in pkts {
            let payload = p.payload.to_bytes();
            self.out.send(
                at,
                pt,
                clock,
                Some(p.marker),
                run.seq,
                p.timestamp,
                run.id,
                &payload,
            );
            run.seq = run.seq.wrapping_add(1);
            self.stats.generated_packets += 1;
        }
        self.inj.run = Some(run);
    }

    /// Ends an event being sent now (a new one starts).
    fn end_sending(&mut self, now: Instant) {
        if let Some(s) = self.inj.sending.take() {
            let pkts = self
                .inj
                .sender
                .as_mut()
                .map(|tx| tx.end(s.last))
                .unwrap_or_default();
            self.send_events(now, &pkts);
        }
    }

    /// Runs the injector's ticks due at `now`.
    fn run_ticks(&mut self, now: Instant) {
        while let Some(run) = self.inj.run {
            if run.next_tick > now {
                break;
            }
            let t = run.next_tick;
            if let Some(r) = self.inj.run.as_mut() {
                r.next_tick = t + self.plan.ptime();
            }
            if !self.tick(t) {
                self.end_run(t);
                break;
            }
        }
    }

    /// One packet time of the injector at `t`; `false` when it has nothing
    /// left to play.
    fn tick(&mut self, t: Instant) -> bool {
        // Telephone-events we send (SendDtmf, detected in-band digits).
        if self.inj.sending.is_some() || !self.inj.queue.is_empty() {
            self.tick_events(t);
            return true;
        }
        let relaying = self
            .events_in
            .relay
            .as_ref()
            .is_some_and(|r| r.0.active().is_some());
        // Digits as tones, then silence over a detected digit, then ringback.
        let (Some(sink), Some(rate)) = (self.plan.sink.clone(), self.gen_rate()) else {
            return relaying;
        };
        let shared = self.shares_encoder();
        if !shared
            && self
                .inj
                .enc
                .as_ref()
                .is_none_or(|e| *e.sink() != sink || e.rate() != rate)
        {
            match Encoder::new(&sink, rate) {
                Ok(e) => self.inj.enc = Some(e),
                Err(_) => return relaying,
            }
        }
        let frame = if shared { &self.enc } else { &self.inj.enc }
            .as_ref()
            .map_or(0, |e| e.frame());
        self.pcm.clear();
        self.pcm.resize(frame, 0);
        let i = &mut self.inj;
        let wrote = if let Some((tones, _, _)) = self
            .events_in
            .tones
            .as_mut()
            .filter(|t| t.0.busy() && t.2 == rate)
        {
            tones.fill(&mut self.pcm)
        } else if let Some((tones, _)) = i.info_tones.as_mut().filter(|t| t.0.busy() && t.1 == rate)
        {
            tones.fill(&mut self.pcm)
        } else if i.mute {
            true
        } else if let Some((plan, rb, r)) = i.ringback.as_mut() {
            if *r != rate {
                *rb = ToneGenerator::ringback(rate, plan);
                *r = rate;
            }
            rb.fill(&mut self.pcm);
            true
        } else {
            false
        };
        if !wrote {
            // A relayed telephone-event still in progress keeps the run.
            return relaying;
        }
        let ts = self.run_ts(t);
        let enc = if shared {
            self.enc.as_mut()
        } else {
            self.inj.enc.as_mut()
        };
        let (Some(enc), Some(run)) = (enc, self.inj.run.as_mut()) else {
            return false;
        };
        self.payload.clear();
        if enc.encode(&self.pcm, &mut self.payload).is_ok() {
            let (pt, clock) = (enc.sink().payload_type, enc.clock());
            self.out
                .send(t, pt, clock, None, run.seq, ts, run.id, &self.payload);
            run.seq = run.seq.wrapping_add(1);
            self.stats.generated_packets += 1;
        }
        true
    }

    fn tick_events(&mut self, t: Instant) {
        let Some((_, erate)) = self.plan.sink_event else {
            self.inj.sending = None;
            self.inj.queue.clear();
            return;
        };
        let step = (u64::from(erate) * self.plan.ptime().as_millis() as u64 / 1000) as u32;
        if let Some(mut s) = self.inj.sending {
            let dur = match s.total {
                // A digit being detected: as long as it has been heard.
                None => self
                    .detect
                    .as_ref()
                    .and_then(|d| {
                        let (_, at, last) = d.det.heard()?;
                        Some(((last - at) * u64::from(erate) / u64::from(d.rate)) as u32)
                    })
                    .unwrap_or(s.last)
                    .max(s.last),
                Some(_) => {
                    let elapsed = t.saturating_duration_since(s.started).as_nanos()
                        * u128::from(erate)
                        / 1_000_000_000;
                    s.d0.saturating_add(elapsed as u32)
                }
            };
            let tx = self
                .inj
                .sender
                .get_or_insert_with(|| EventSender::new(EVENT_VOLUME));
            let pkts = match s.total {
                Some(total) if dur >= total => {
                    self.inj.sending = None;
                    self.inj.gap_until = Some(t + EVENT_GAP);
                    tx.end(total)
                }
                _ => {
                    s.last = dur;
                    self.inj.sending = Some(s);
                    tx.update(dur)
                }
            };
            self.send_events(t, &pkts);
            return;
        }
        if self.inj.gap_until.is_some_and(|g| t < g) {
            return;
        }
        if let Some((digit, ms)) = self.inj.queue.pop_front() {
            let ts = self.run_ts(t);
            let total = (u64::from(ms) * u64::from(erate) / 1000) as u32;
            let first = step.min(total);
            let pkts = self
                .inj
                .sender
                .get_or_insert_with(|| EventSender::new(EVENT_VOLUME))
                .start(digit, ts, first);
            self.inj.sending = Some(Sending {
                started: t,
                d0: first,
                total: Some(total),
                last: first,
            });
            self.send_events(t, &pkts);
        }
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let run = self.inj.run.map(|r| r.next_tick);
        let reorder = self.reorder.poll_timeout();
        let ei = &self.events_in;
        let receiving = ei.relay.as_ref().is_some_and(|r| r.0.active().is_some())
            || ei.tones.as_ref().is_some_and(|t| t.0.receiving())
            || ei.info.as_ref().is_some_and(|r| r.0.active().is_some());
        let events = ei.last.filter(|_| receiving).map(|t| t + EVENT_TIMEOUT);
        [run, reorder, events].into_iter().flatten().min()
    }

    /// Runs what is due at `now`: the reorder window's give-ups, digits whose
    /// end never came, and the injector's packets.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.reorder.handle_timeout(now);
        self.process_released(now);
        if self
            .events_in
            .last
            .is_some_and(|t| t + EVENT_TIMEOUT <= now)
        {
            self.events_in.last = None;
            let pkts = match self.events_in.relay.as_mut() {
                Some((relay, _, _)) => relay.timeout(),
                None => Vec::new(),
            };
            if !pkts.is_empty() {
                self.send_events(now, &pkts);
            }
            if let Some((tones, _, _)) = self.events_in.tones.as_mut() {
                tones.timeout();
            }
            let ev = self.events_in.info.as_mut().and_then(|r| r.0.timeout());
            if let Some(ev) = ev {
                self.info_event(ev);
            }
            self.end_run_if_idle(now);
        }
        self.run_ticks(now);
    }
}

#[cfg(test)]
#[path = "direction_tests.rs"]
mod tests;
