//! The two in-band interworking directions, as sans-IO pipes a media session
//! can run per frame:
//!
//! * [`InbandToEvents`]: PCM → [`Detector`] → [`EventSender`] → RFC 4733 packets;
//! * [`EventsToInband`]: RFC 4733 packets → [`EventReceiver`] → [`ToneGenerator`] → PCM.
//!
//! Sample positions map to RTP timestamps through the caller's frame
//! timestamps; the tone side keeps every digit at least 40 ms long with at
//! least 40 ms between digits (ITU-T Q.24's shortest valid signal), queueing a
//! digit that arrives while the previous one still plays.

use std::collections::VecDeque;

use super::Digit;
use super::detect::{Detector, DetectorConfig, DtmfEvent};
use super::event::{EventPacket, EventReceiver, EventSender, ReceivedEvent};
use super::generate::ToneGenerator;

/// In-band DTMF in, RFC 4733 out.
#[derive(Debug, Clone)]
pub struct InbandToEvents {
    det: Detector,
    tx: EventSender,
    pcm_rate: u64,
    clock_rate: u64,
    /// Samples fed so far, and the start of the digit being sent.
    pos: u64,
    start: Option<u64>,
}

impl InbandToEvents {
    /// Detects in PCM at `pcm_rate` and sends events on a `clock_rate` stream.
    pub fn new(pcm_rate: u32, clock_rate: u32) -> Self {
        InbandToEvents {
            det: Detector::new(DetectorConfig {
                sample_rate: pcm_rate,
                ..DetectorConfig::default()
            }),
            tx: EventSender::new(10),
            pcm_rate: pcm_rate as u64,
            clock_rate: clock_rate as u64,
            pos: 0,
            start: None,
        }
    }

    fn ticks(&self, samples: u64) -> u32 {
        (samples * self.clock_rate / self.pcm_rate) as u32
    }

    /// Feeds one frame whose first sample has RTP timestamp `frame_ts` in the
    /// event stream's clock; returns the packets to send now.
    pub fn push_frame(&mut self, pcm: &[i16], frame_ts: u32) -> Vec<EventPacket> {
        let base = frame_ts.wrapping_sub(self.ticks(self.pos));
        self.det.push(pcm);
        self.pos += pcm.len() as u64;
        let mut out = Vec::new();
        let mut fresh = false;
        while let Some(ev) = self.det.poll_event() {
            match ev {
                DtmfEvent::Began { digit, at } => {
                    let ts = base.wrapping_add(self.ticks(at));
                    out.extend(self.tx.start(digit, ts, self.ticks(self.pos - at)));
                    self.start = Some(at);
                    fresh = true;
                }
                DtmfEvent::Ended { duration, .. } => {
                    out.extend(self.tx.end(self.ticks(duration)));
                    self.start = None;
                }
            }
        }
        if let (Some(at), false) = (self.start, fresh) {
            out.extend(self.tx.update(self.ticks(self.pos - at)));
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Playing {
    tone: ToneGenerator,
    played: u64,
}

/// RFC 4733 in, in-band DTMF out.
#[derive(Debug, Clone)]
pub struct EventsToInband {
    rx: EventReceiver,
    rate: u32,
    min: u64,
    playing: Option<Playing>,
    /// Digits waiting to play, with their total duration once known.
    queue: VecDeque<(Digit, Option<u64>)>,
    /// The duration of the playing digit, once its end arrived.
    playing_end: Option<u64>,
    /// Whether the latest digit received is the one playing (else the queue's last).
    latest_playing: bool,
    gap: u64,
}

impl EventsToInband {
    /// Receives events on a `clock_rate` stream and plays tones at `pcm_rate`.
    pub fn new(clock_rate: u32, pcm_rate: u32) -> Self {
        EventsToInband {
            rx: EventReceiver::new(clock_rate, pcm_rate),
            rate: pcm_rate,
            min: pcm_rate as u64 / 25, // 40 ms
            playing: None,
            queue: VecDeque::new(),
            playing_end: None,
            latest_playing: false,
            gap: 0,
        }
    }

    /// Handles one telephone-event packet; returns how many digits began.
    pub fn handle_packet(&mut self, timestamp: u32, payload: &[u8]) -> usize {
        let mut began = 0;
        for ev in self.rx.handle(timestamp, payload) {
            began += matches!(ev, ReceivedEvent::Began { .. }) as usize;
            self.apply(ev);
        }
        began
    }

    /// Whether a received digit has begun and not ended yet (its end packets
    /// may still come; else call [`Self::timeout`]).
    pub fn receiving(&self) -> bool {
        self.rx.active().is_some()
    }

    /// Ends a digit whose end packets never came (see [`EventReceiver::timeout`]).
    pub fn timeout(&mut self) {
        if let Some(ev) = self.rx.timeout() {
            self.apply(ev);
        }
    }

    fn apply(&mut self, ev: ReceivedEvent) {
        match ev {
            ReceivedEvent::Began { digit, .. } => {
                self.queue.push_back((digit, None));
                self.latest_playing = false;
                self.start_next();
            }
            ReceivedEvent::Continued { .. } => {}
            ReceivedEvent::Ended { duration, .. } => {
                let d = (duration as u64).max(self.min);
                if self.latest_playing {
                    self.playing_end = Some(d);
                } else if let Some(last) = self.queue.back_mut() {
                    last.1 = Some(d);
                }
            }
        }
    }

    fn start_next(&mut self) {
        if self.playing.is_some() || self.gap > 0 {
            return;
        }
        if let Some((digit, end)) = self.queue.pop_front() {
            self.playing = Some(Playing {
                tone: ToneGenerator::digit(self.rate, digit, None),
                played: 0,
            });
            self.playing_end = end;
            self.latest_playing = self.queue.is_empty();
        }
    }

    /// Whether a tone (or an inter-digit gap) is being played.
    pub fn busy(&self) -> bool {
        self.playing.is_some() || self.gap > 0 || !self.queue.is_empty()
    }

    /// Writes the next samples of tone into `out` when [`Self::busy`]
    /// (silence in the gaps between digits) and leaves `out` alone otherwise,
    /// so the caller's audio passes when no digit plays. Returns whether it wrote.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        if !self.busy() {
            return false;
        }
        for s in out.iter_mut() {
            if let Some(p) = self.playing.as_mut() {
                p.tone.fill(std::slice::from_mut(s));
                p.played += 1;
                if self.playing_end.is_some_and(|e| p.played >= e) {
                    self.playing = None;
                    self.playing_end = None;
                    self.gap = self.min;
                }
            } else if self.gap > 0 {
                *s = 0;
                self.gap -= 1;
                if self.gap == 0 {
                    self.start_next();
                }
            } else {
                self.start_next();
                *s = 0;
            }
        }
        true
    }
}
