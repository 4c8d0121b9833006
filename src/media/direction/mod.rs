//! One direction of a call's media (packets from one leg toward the other):
//! pass-through when both legs share the codec, else transcoding, plus DTMF
//! interworking and the tones the relay plays itself.
//!
//! ```text
//!  RTP from X ─┬─ codec on both legs ─────────── rewrite header ──────────────────────┐
//!              │   └ X's in-band DTMF detected: Decoder ─ Detector, packet in DelayLine┤
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
//! them continues the sequence by one and the timestamp by the time elapsed
//! (whole packets), and a source that comes back after injected packets
//! keeps its own timeline.
//!
//! While the [`Injector`] plays something toward Y (a digit as tone or
//! telephone-events, ringback, silence over a detected in-band digit) it owns
//! the stream: X's own audio is suppressed until it is done. Its runs start
//! in the stream's next packet slot, so its packets replace X's one for one.
//!
//! Files: `plan` (what the legs make of the direction), `output` (the
//! outgoing stream), `audio` (decode, transcode), `delay` (passed-through
//! audio held for the detector), `detect` (in-band digits), `events`
//! (telephone-events from X), `inject` and `play` (what the relay plays).

mod audio;
mod delay;
mod detect;
mod events;
mod inject;
mod output;
mod plan;
mod play;

use std::time::{Duration, Instant};

use super::codec::Resampler;
use super::error::DropReason;
use super::reorder::Reorder;
use super::rewrite::StreamRewriter;
use super::rtp::RtpHeader;
use super::transcode::{Decoder, Encoder};
use super::types::{DirectionStats, DtmfMode, Event, Leg, LegConfig};

use audio::Held;
use delay::DelayLine;
use detect::Detect;
use events::EventsIn;
use inject::Injector;
use output::Output;
use plan::{Plan, SrcKind};

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
    /// While digits are detected: the detector position of `fifo[0]`, and
    /// when the FIFO's held samples leave if no audio follows.
    fifo_start: u64,
    fifo_deadline: Option<Instant>,
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    payload: Vec<u8>,
    /// The transcoded stream's internal source: id, seq, ts.
    tl: (u32, u16, u32),
    next_id: u32,
    detect: Option<Detect>,
    /// Passed-through audio waiting for the detector (when it runs).
    delayed: DelayLine,
    events_in: EventsIn,
    inj: Injector,
    events: Vec<Event>,
    /// Loss the sink leg reports on what we send it (percent, smoothed).
    far_loss: u8,
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
            fifo_start: 0,
            fifo_deadline: None,
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
            delayed: DelayLine::default(),
            events_in: EventsIn::default(),
            inj: Injector {
                seq: (seed >> 8) as u16,
                ts: (seed >> 24) as u32,
                ..Injector::default()
            },
            events: Vec::new(),
            far_loss: 0,
            stats: DirectionStats::default(),
        }
    }

    /// The sink leg's receiver report on our stream (RFC 3550 §6.4.1:
    /// `fraction_lost`, lost/expected × 256 since its previous report):
    /// the encoders toward it are told what loss to expect. A rise counts
    /// at once, a fall by half the difference per report, so one clean
    /// report interval does not drop the protection of a lossy path.
    pub fn note_receiver_report(&mut self, fraction_lost: u8) {
        let reported = ((u32::from(fraction_lost) * 100).div_ceil(256)) as u8;
        self.far_loss = if reported >= self.far_loss {
            reported
        } else {
            reported + (self.far_loss - reported) / 2
        };
        for enc in [&mut self.enc, &mut self.inj.enc].into_iter().flatten() {
            enc.set_expected_loss(self.far_loss);
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
            // Audio still delayed leaves with the next packet or timer.
            self.detect = None;
        }
        self.transcoding = !plan.first_passes;
        self.plan = plan;
    }

    /// The outgoing stream's rewriter (RTCP rewriting reads its offsets).
    pub fn stream(&self) -> &StreamRewriter {
        &self.out.stream
    }

    /// Packets ready to send toward the other leg (hand the emptied list
    /// back with [`Self::return_packets`]).
    pub fn take_packets(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out.packets)
    }

    /// Hand back the (emptied) list [`Self::take_packets`] returned, so the
    /// next packets reuse its allocation.
    pub fn return_packets(&mut self, emptied: Vec<Vec<u8>>) {
        if self.out.packets.is_empty() {
            self.out.packets = emptied;
        }
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
        if self.source != Some(h.ssrc) || !self.plan.detect {
            // What waited for the detector leaves before anything newer.
            self.release_delayed(now, true);
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

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let run = self.inj.run.map(|r| r.next_tick);
        let reorder = self.reorder.poll_timeout();
        let ei = &self.events_in;
        let receiving = ei.relay.as_ref().is_some_and(|r| r.0.active().is_some())
            || ei.tones.as_ref().is_some_and(|t| t.0.receiving())
            || ei.info.as_ref().is_some_and(|r| r.0.active().is_some());
        let events = ei.last.filter(|_| receiving).map(|t| t + EVENT_TIMEOUT);
        let delayed = self.delayed.poll_timeout();
        [run, reorder, events, delayed, self.fifo_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs what is due at `now`: the reorder window's give-ups, digits whose
    /// end never came, delayed audio no later audio pushed out, and the
    /// injector's packets.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.reorder.handle_timeout(now);
        self.process_released(now);
        self.release_delayed(now, false);
        self.flush_fifo(now);
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
mod tests;
#[cfg(test)]
mod timeline_tests;
