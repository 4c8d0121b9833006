//! The injector's packet times: each tick plays the next packet of
//! telephone-events, tones, silence or ringback toward the sink.

use std::time::Instant;

use crate::dtmf::{EventSender, ToneGenerator};

use super::super::rewrite::OwnPacket;
use super::super::transcode::Encoder;
use super::inject::Sending;
use super::{Direction, EVENT_GAP, EVENT_VOLUME};

impl Direction {
    /// Runs the injector's ticks due at `now`.
    pub(super) fn run_ticks(&mut self, now: Instant) {
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
    pub(super) fn tick(&mut self, t: Instant) -> bool {
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
                Ok(mut e) => {
                    e.set_expected_loss(self.far_loss);
                    self.inj.enc = Some(e);
                }
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
            self.out.send(
                t,
                &OwnPacket {
                    timeline: run.timeline,
                    ..OwnPacket::audio(pt, clock, run.id, run.seq, ts)
                },
                None,
                &self.payload,
            );
            run.occupy(ts.wrapping_add(self.plan.step()));
            run.seq = run.seq.wrapping_add(1);
            self.stats.generated_packets += 1;
        }
        true
    }

    pub(super) fn tick_events(&mut self, t: Instant) {
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
}
