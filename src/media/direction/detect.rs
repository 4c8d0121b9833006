//! In-band DTMF from the source: the Goertzel detector (ITU-T Q.24) over
//! its decoded audio, each digit sent on as telephone-events or as an
//! [`Event::Dtmf`] for SIP INFO (silence toward the sink while it lasts).

use std::time::Instant;

use crate::dtmf::{Detector, DetectorConfig, Digit, DtmfEvent, EventSender};

use super::super::types::{DtmfMode, Event};
use super::inject::Sending;
use super::{Direction, EVENT_GAP, EVENT_VOLUME};

/// In-band DTMF detection on the source's decoded audio.
#[derive(Debug)]
pub(super) struct Detect {
    pub(super) det: Detector,
    pub(super) rate: u32,
    pub(super) pos: u64,
}

impl Detect {
    /// Samples the detector must hear after a packet before it can leave
    /// the delay line: a digit starting in it is recognised once two whole
    /// blocks after its start were heard, and the block before that start
    /// may hold some of its tone (three blocks, less one sample).
    pub(super) fn hold(&self) -> u64 {
        3 * self.det.block_len() as u64 - 1
    }
}

impl Direction {
    /// A detector for PCM at `rate` (a new one when the rate changed: what
    /// waited for the old one leaves first).
    pub(super) fn ensure_detector(&mut self, now: Instant, rate: u32) {
        if self.detect.as_ref().is_none_or(|d| d.rate != rate) {
            self.release_delayed(now, true);
            self.detect = Some(Detect {
                det: Detector::new(DetectorConfig {
                    sample_rate: rate,
                    ..DetectorConfig::default()
                }),
                rate,
                pos: 0,
            });
        }
    }

    /// Runs the detector over the decoded packet in `pcm`.
    pub(super) fn run_detector(&mut self, now: Instant) {
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
        let block = self.detect.as_ref().map_or(0, |d| d.det.block_len() as u64);
        for ev in found {
            match ev {
                DtmfEvent::Began { digit, at } => {
                    if self.transcoding {
                        self.cut_fifo(now, at.saturating_sub(block));
                    } else {
                        // The delay line still holds the tone, and the
                        // block before it that the tone may partly fill.
                        self.delayed.mute_from(at.saturating_sub(block));
                        self.release_delayed(now, false);
                    }
                    self.inband_began(now, digit, (at, pos), rate)
                }
                DtmfEvent::Ended {
                    digit,
                    duration,
                    at,
                } => {
                    // A tail under half a block was no hit: drop it too.
                    self.delayed.mute_until(at + block / 2);
                    self.inband_ended(now, digit, duration, rate)
                }
            }
        }
    }

    /// A digit began at detector position `at`; the detector has heard up
    /// to `pos`.
    pub(super) fn inband_began(
        &mut self,
        now: Instant,
        digit: Digit,
        (at, pos): (u64, u64),
        rate: u32,
    ) {
        match self.plan.sink_mode {
            DtmfMode::Rfc4733 => {
                let Some((_, erate)) = self.plan.sink_event else {
                    return;
                };
                self.end_sending(now);
                let on_source = self.start_digit_run(now, at, rate);
                let d0 = ((pos - at.min(pos)) * u64::from(erate) / u64::from(rate)) as u32;
                // RFC 4733 §2.5.1.1: the event starts where the tone did.
                // Transcoded, the run takes the slot of the first frame not
                // sent: the tone is that far into it.
                let ts = on_source.unwrap_or_else(|| {
                    let into = at.saturating_sub(self.fifo_start)
                        * u64::from(self.plan.audio_clock())
                        / u64::from(rate);
                    self.run_ts(now).wrapping_add(into as u32)
                });
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
                self.start_digit_run(now, at, rate);
                self.run_ticks(now);
            }
            DtmfMode::Inband => {}
        }
    }

    /// Starts the run that plays over a digit detected at `at`. Passed
    /// through, it plays in place of the source's held packets, on the
    /// source's own numbering from the slot after the last packet sent, and
    /// the source's timestamp at `at` (where the event starts) is returned.
    /// Transcoding, it continues the transcoded timeline (`None`).
    fn start_digit_run(&mut self, now: Instant, at: u64, rate: u32) -> Option<u32> {
        if !self.transcoding {
            let clock = self.plan.audio_clock();
            if let Some((ssrc, ts)) = self.delayed.source_ts(at, rate, clock) {
                match self.inj.run {
                    Some(run) if run.timeline == Some(ssrc) => return Some(ts),
                    Some(_) => {}
                    None => {
                        let slot = self
                            .out
                            .stream
                            .last_sent()
                            .map_or(now, |t| (t + self.plan.ptime()).max(now));
                        if let Some(base) = self.out.stream.position_at(slot, ssrc, clock) {
                            self.ensure_run_on(slot, base, ssrc);
                            return Some(ts);
                        }
                    }
                }
            }
        }
        self.ensure_run(now);
        None
    }

    pub(super) fn inband_ended(&mut self, now: Instant, digit: Digit, duration: u64, rate: u32) {
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
}
