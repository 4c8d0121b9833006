//! What the relay plays toward the sink by itself (the injector): digits
//! from `SendDtmf` as telephone-events or tones, ringback, silence over a
//! detected digit. A run of injected packets is one internal source for the
//! rewriter; while it lasts the source's own audio is suppressed.

use std::collections::VecDeque;
use std::time::Instant;

use crate::dtmf::{
    Digit, EventPacket, EventPayload, EventSender, EventsToInband, RingbackPlan, ToneGenerator,
};

use super::super::codec::CodecKind;
use super::super::rewrite::OwnPacket;
use super::super::transcode::{Encoder, pcm_rate};
use super::super::types::DtmfMode;
use super::{Direction, EVENT_VOLUME};

/// A run of packets the injector makes: one internal source for the rewriter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub(super) id: u32,
    pub(super) seq: u16,
    pub(super) start: Instant,
    pub(super) base_ts: u32,
    pub(super) next_tick: Instant,
    /// The source whose numbering its timestamps are in, if any (see
    /// [`Direction::ensure_run_on`]).
    pub(super) timeline: Option<u32>,
    /// Where what follows its packets may start: one packet after the last
    /// one's position.
    pub(super) free: Option<u32>,
}

impl Run {
    /// Notes a packet sent: what follows starts at `end` or later.
    pub(super) fn occupy(&mut self, end: u32) {
        self.free = Some(match self.free {
            Some(f) if (end.wrapping_sub(f) as i32) < 0 => f,
            _ => end,
        });
    }
}

/// A telephone-event the injector is sending.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sending {
    pub(super) started: Instant,
    /// Duration already elapsed when it started (event clock ticks).
    pub(super) d0: u32,
    /// Total duration once known (event clock ticks).
    pub(super) total: Option<u32>,
    pub(super) last: u32,
}

/// What the relay plays toward the sink leg by itself.
#[derive(Debug, Default)]
pub(super) struct Injector {
    pub(super) run: Option<Run>,
    /// Its own encoder toward the sink (PCM at [`Direction::gen_rate`]).
    pub(super) enc: Option<Encoder>,
    /// The plan, its generator and the generator's PCM rate.
    pub(super) ringback: Option<(RingbackPlan, ToneGenerator, u32)>,
    /// Digits to play as tones (from `SendDtmf`), fed as synthetic events,
    /// with their PCM rate.
    pub(super) info_tones: Option<(EventsToInband, u32)>,
    pub(super) info_ts: u32,
    /// Digits to send as telephone-events (from `SendDtmf`): digit, ms.
    pub(super) queue: VecDeque<(Digit, u32)>,
    pub(super) sender: Option<EventSender>,
    pub(super) sending: Option<Sending>,
    pub(super) gap_until: Option<Instant>,
    /// Silence over an in-band digit being detected (toward an INFO leg).
    pub(super) mute: bool,
    /// Continuation of the injected streams across runs.
    pub(super) seq: u16,
    pub(super) ts: u32,
}

impl Direction {
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
    pub(super) fn shares_encoder(&self) -> bool {
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
    pub(super) fn gen_rate(&self) -> Option<u32> {
        if self.shares_encoder() {
            return self.enc.as_ref().map(|e| e.rate());
        }
        Some(pcm_rate(self.plan.sink.as_ref()?.kind, Some(CodecKind::Pcmu)).min(16000))
    }

    /// Starts a run of injected packets if none is going, in the stream's
    /// next packet slot: one packet time after the last packet sent, or
    /// `now` if that has passed (its packets replace the source's slot by
    /// slot instead of squeezing one in between). In a transcoding
    /// direction it continues the transcoded timeline (the same internal
    /// source: no break in the stream); in a pass-through one it is a source
    /// of its own.
    pub(super) fn ensure_run(&mut self, now: Instant) {
        if self.inj.run.is_none() {
            let slot = self
                .out
                .stream
                .last_sent()
                .map_or(now, |t| (t + self.plan.ptime()).max(now));
            let (id, seq, base_ts) = if self.transcoding {
                self.fifo.clear();
                self.tl
            } else {
                (self.fresh_id(), self.inj.seq, self.inj.ts)
            };
            self.inj.run = Some(Run {
                id,
                seq,
                start: slot,
                base_ts,
                next_tick: slot,
                timeline: None,
                free: None,
            });
        }
    }

    /// Starts a run at `slot` on a source's own timeline if none is going:
    /// its timestamps in the numbering of source `ssrc`, `ts` at `slot`
    /// (packets played in place of the source's, which the rewriter keeps
    /// on the source's offset).
    pub(super) fn ensure_run_on(&mut self, slot: Instant, ts: u32, ssrc: u32) {
        if self.inj.run.is_none() {
            let id = self.fresh_id();
            self.inj.run = Some(Run {
                id,
                seq: self.inj.seq,
                start: slot,
                base_ts: ts,
                next_tick: slot,
                timeline: Some(ssrc),
                free: None,
            });
        }
    }

    /// The injected stream's timestamp at `t` (sink audio clock).
    pub(super) fn run_ts(&self, t: Instant) -> u32 {
        let Some(run) = self.inj.run else {
            return self.inj.ts;
        };
        let ns = t.saturating_duration_since(run.start).as_nanos();
        let ticks = ns * u128::from(self.plan.audio_clock()) / 1_000_000_000;
        run.base_ts.wrapping_add(ticks as u32)
    }

    pub(super) fn has_content(&self) -> bool {
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

    pub(super) fn end_run_if_idle(&mut self, now: Instant) {
        if self.inj.run.is_some() && !self.has_content() {
            self.end_run(now);
        }
    }

    /// Ends the run at `now`; the transcoded timeline carries on after it.
    pub(super) fn end_run(&mut self, now: Instant) {
        let mut ts = self.run_ts(now);
        if let Some(run) = self.inj.run.take() {
            // Not inside what the run sent last (an event's end packet sent
            // just now takes the current slot).
            if let Some(free) = run.free.filter(|f| (f.wrapping_sub(ts) as i32) > 0) {
                ts = free;
            }
            if run.id == self.tl.0 {
                self.tl.1 = run.seq;
                self.tl.2 = ts;
                if self.plan.detect {
                    // The FIFO holds the detector's reserve first: the next
                    // frame goes out that much later, where the rewriter
                    // places it in time.
                    self.tl.0 = self.fresh_id();
                }
            } else {
                self.inj.seq = run.seq;
                self.inj.ts = ts;
            }
        }
        self.inj.gap_until = None;
    }

    /// Sends telephone-events of the run at `at`. Their timestamp stays at
    /// the event's start; the rewriter is told where the run stands and
    /// where the event ends (RFC 4733 §2.5), so what follows the event comes
    /// after it.
    pub(super) fn send_events(&mut self, at: Instant, pkts: &[EventPacket]) {
        let (Some((pt, erate)), Some(mut run)) = (self.plan.sink_event, self.inj.run) else {
            return;
        };
        let clock = self.plan.audio_clock();
        let position = self.run_ts(at);
        for p in pkts {
            let payload = p.payload.to_bytes();
            let duration = u64::from(p.payload.duration) * u64::from(clock) / u64::from(erate);
            let own = OwnPacket {
                payload_type: pt,
                clock,
                source: run.id,
                sequence: run.seq,
                timestamp: p.timestamp,
                position,
                end: Some(p.timestamp.wrapping_add(duration as u32)),
                timeline: run.timeline,
            };
            self.out.send(at, &own, Some(p.marker), &payload);
            // The slot it was sent in is taken. (A relayed event may last
            // past it when its sender overlapped its own audio with it: the
            // audio after it keeps to real time, as the sender's did.)
            run.occupy(position.wrapping_add(self.plan.step()));
            run.seq = run.seq.wrapping_add(1);
            self.stats.generated_packets += 1;
        }
        self.inj.run = Some(run);
    }

    /// Ends an event being sent now (a new one starts).
    pub(super) fn end_sending(&mut self, now: Instant) {
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
}
