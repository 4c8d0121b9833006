//! Audio held for the in-band DTMF detector. A pass-through direction whose
//! digits are detected keeps the source's packets in a delay line, in
//! order, until the detector has heard enough after them to have
//! recognised a digit starting in them (ITU-T Q.24 detection takes two
//! 12.75 ms blocks, plus the block the tone may only partly fill: 38 ms,
//! two 20 ms packets). When a digit is recognised, the packets holding any
//! of its tone are dropped instead of sent, so none of it reaches the sink
//! beside the digit's telephone-event (or INFO), and the event can start
//! where the tone did.
//!
//! A transcoding direction holds the same amount of decoded audio in its
//! FIFO before encoding it, and drops what a digit's tone is in.
//!
//! Positions are sample counts of the detector's input (the decoded audio,
//! concealment included). A source that pauses does not keep its last
//! packets waiting: each leaves when the packets that would have pushed it
//! out are [`LATE_MARGIN`] late.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::rtp::RtpHeader;
use super::Direction;

/// How late the audio after a packet may be before the packet leaves
/// without it (a source that stopped, or jitter).
pub(super) const LATE_MARGIN: Duration = Duration::from_millis(20);

/// A source packet waiting to be forwarded.
#[derive(Debug)]
struct Delayed {
    header: RtpHeader,
    packet: Vec<u8>,
    /// Its decoded samples, as detector positions [start, end).
    start: u64,
    end: u64,
    /// When it leaves even if no audio after it comes.
    deadline: Instant,
}

/// The packets waiting, and what of them a digit mutes.
#[derive(Debug, Default)]
pub(super) struct DelayLine {
    queue: VecDeque<Delayed>,
    /// Detector positions [from, until) of a digit's tone (`until` unknown
    /// while it lasts): packets overlapping them are dropped.
    mute: Option<(u64, Option<u64>)>,
}

impl DelayLine {
    /// When the oldest packet must leave even if no audio follows it.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.queue.front().map(|d| d.deadline)
    }

    /// Whether no packet waits.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// A digit's tone begins at `from`: packets from there on are dropped
    /// (and from the previous digit's start on, if some of its packets
    /// still wait: digits in quick succession).
    pub(super) fn mute_from(&mut self, from: u64) {
        let from = match self.mute {
            Some((earlier, _)) => earlier.min(from),
            None => from,
        };
        self.mute = Some((from, None));
    }

    /// The digit's tone ended at `until`.
    pub(super) fn mute_until(&mut self, until: u64) {
        if let Some((_, u)) = self.mute.as_mut() {
            *u = Some(until);
        }
    }

    /// The held packets' source and its timestamp at detector position
    /// `at` (`clock` ticks per second, the detector at `rate`).
    pub(super) fn source_ts(&self, at: u64, rate: u32, clock: u32) -> Option<(u32, u32)> {
        let d = self.queue.back()?;
        let ticks = |n: u64| (n * u64::from(clock) / u64::from(rate.max(1))) as u32;
        let ts = if at >= d.start {
            d.header.timestamp.wrapping_add(ticks(at - d.start))
        } else {
            d.header.timestamp.wrapping_sub(ticks(d.start - at))
        };
        Some((d.header.ssrc, ts))
    }

    fn muted(&self, d: &Delayed) -> bool {
        self.mute
            .is_some_and(|(from, until)| d.end > from && until.is_none_or(|u| d.start < u))
    }
}

impl Direction {
    /// Queues a passed-through packet whose `samples` decoded samples the
    /// detector is about to hear.
    pub(super) fn delay(&mut self, now: Instant, header: RtpHeader, packet: Vec<u8>, samples: u64) {
        let (start, hold, rate) = self
            .detect
            .as_ref()
            .map_or((0, 0, 8000), |d| (d.pos, d.hold(), u64::from(d.rate)));
        // The packets of this size that must follow it before it leaves.
        let after = hold.div_ceil(samples.max(1)) * samples;
        let wait = Duration::from_micros(after * 1_000_000 / rate.max(1));
        self.delayed.queue.push_back(Delayed {
            header,
            packet,
            start,
            end: start + samples,
            deadline: now + wait + LATE_MARGIN,
        });
    }

    /// Sends (or drops, when a digit's tone is in them) the packets the
    /// detector is done with, and those past their deadline; all of them
    /// when `all`.
    pub(super) fn release_delayed(&mut self, now: Instant, all: bool) {
        if self.delayed.is_empty() {
            return;
        }
        let (heard, hold) = self.detect.as_ref().map_or((0, 0), |d| (d.pos, d.hold()));
        while let Some(d) = self.delayed.queue.front() {
            let due = all || d.end + hold <= heard || d.deadline <= now;
            if !due {
                break;
            }
            let Some(d) = self.delayed.queue.pop_front() else {
                break;
            };
            if let Some((_, Some(until))) = self.delayed.mute
                && d.start >= until
            {
                self.delayed.mute = None;
            }
            if self.delayed.muted(&d) || self.inj.run.is_some() {
                self.stats.suppressed_packets += 1;
            } else {
                if self.forward(now, &d.header, &d.packet).is_err() {
                    // Its payload type was renegotiated away while it waited.
                    self.stats.suppressed_packets += 1;
                }
            }
        }
    }

    /// How much of the transcoding FIFO may be encoded now, the decoded
    /// packet just added holding `packet` samples: all of it unless digits
    /// are detected, else all but the detector's hold (at the FIFO's rate),
    /// which leaves when no audio followed it in time.
    pub(super) fn fifo_limit(&mut self, now: Instant, packet: u64) -> usize {
        let (Some(d), Some(enc), true) =
            (self.detect.as_ref(), self.enc.as_ref(), self.plan.detect)
        else {
            return self.fifo.len();
        };
        let rate = u64::from(d.rate.max(1));
        let reserve = d.hold() * u64::from(enc.rate()) / rate;
        let after = d.hold().div_ceil(packet.max(1)) * packet;
        let wait = Duration::from_micros(after * 1_000_000 / rate);
        self.fifo_deadline = Some(now + wait + LATE_MARGIN);
        self.fifo.len().saturating_sub(reserve as usize)
    }

    /// Encodes what the FIFO held once no audio came in time after it.
    pub(super) fn flush_fifo(&mut self, now: Instant) {
        if self.fifo_deadline.is_some_and(|t| t <= now) {
            self.fifo_deadline = None;
            self.encode_fifo(now, self.fifo.len());
        }
    }

    /// A digit's tone (or the block before it) begins at detector position
    /// `from`: the FIFO's whole frames before it are sent, the rest dropped.
    pub(super) fn cut_fifo(&mut self, now: Instant, from: u64) {
        let (Some(d), Some(enc)) = (self.detect.as_ref(), self.enc.as_ref()) else {
            return;
        };
        let keep =
            from.saturating_sub(self.fifo_start) * u64::from(enc.rate()) / u64::from(d.rate.max(1));
        self.encode_fifo(now, keep.min(self.fifo.len() as u64) as usize);
        if !self.fifo.is_empty() {
            self.stats.suppressed_packets += 1;
        }
        self.fifo.clear();
        self.fifo_deadline = None;
    }
}
