//! RFC 4733 telephone-events: the payload (§2.3), a sender (§2.5.1) and a
//! receiver (§2.5.2), and [`EventRelay`] converting a stream between payload
//! types and clock rates (e.g. `telephone-event/48000` ↔ `/8000`).
//!
//! An event keeps one RTP timestamp, its start, for all its packets; the
//! duration grows in the clock of the stream that carries it, and the end is
//! sent three times (§2.5.1.4). An event longer than 0xFFFF ticks is cut into
//! segments, each starting where the last ended (§2.5.1.3). The receiver tells
//! events apart by timestamp, so a retransmitted end or a late packet never
//! yields a second digit, and a digit whose start or end packets were all lost
//! is still reported exactly once.

use super::Digit;

/// The 4-byte telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code (§3.2: 0–15 for DTMF).
    pub event: u8,
    /// E bit: the last packets of the event.
    pub end: bool,
    /// Power level, 0 to -63 dBm0 as 0–63 (§2.3.4).
    pub volume: u8,
    /// Duration so far, in RTP clock ticks, from the event's timestamp.
    pub duration: u16,
}

impl EventPayload {
    /// Parses a payload; `None` if shorter than 4 bytes. Extra bytes (several
    /// events in one packet, §2.5.1.5) are ignored.
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        let b = payload.get(..4)?;
        Some(EventPayload {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Serialises the payload (the R bit is sent as 0).
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (self.end as u8) << 7 | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// One telephone-event RTP packet to send: payload, timestamp and marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The payload.
    pub payload: EventPayload,
    /// RTP timestamp: the start of the event (segment).
    pub timestamp: u32,
    /// RTP marker bit: set on the first packet of an event (§2.5.1.2).
    pub marker: bool,
}

/// Sans-IO sender of telephone-events for one stream.
///
/// The caller decides when packets go out (every packet interval while a
/// digit lasts) and passes total durations in this stream's clock.
#[derive(Debug, Clone)]
pub struct EventSender {
    volume: u8,
    active: Option<Sending>,
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    digit: Digit,
    /// Timestamp of the current segment and ticks covered by earlier segments.
    timestamp: u32,
    offset: u32,
}

impl EventSender {
    /// A sender announcing events at `volume` (0–63, i.e. 0 to -63 dBm0).
    pub fn new(volume: u8) -> Self {
        EventSender {
            volume: volume.min(63),
            active: None,
        }
    }

    /// The digit being sent, if any.
    pub fn active(&self) -> Option<Digit> {
        self.active.map(|s| s.digit)
    }

    fn packet(&self, s: &Sending, duration: u32, end: bool, marker: bool) -> EventPacket {
        EventPacket {
            payload: EventPayload {
                event: s.digit.event(),
                end,
                volume: self.volume,
                duration: (duration - s.offset).min(0xFFFF) as u16,
            },
            timestamp: s.timestamp,
            marker,
        }
    }

    /// Starts `digit` at RTP `timestamp`, `duration` ticks already elapsed
    /// (0 when known at once). A digit still active is ended first (its
    /// three end packets come first in the result).
    pub fn start(&mut self, digit: Digit, timestamp: u32, duration: u32) -> Vec<EventPacket> {
        let mut out = Vec::with_capacity(4);
        if self.active.is_some() {
            out.extend(self.end(duration_of(&self.active, timestamp)));
        }
        let s = Sending {
            digit,
            timestamp,
            offset: 0,
        };
        self.active = Some(s);
        // A start that is already long is segmented like any update.
        out.extend(self.update(duration));
        if let Some(first) = out
            .iter_mut()
            .find(|p| p.timestamp == timestamp && !p.payload.end)
        {
            first.marker = true;
        }
        out
    }

    /// The packet(s) for the active digit now that it has lasted `duration`
    /// ticks in total: one, or two when it crosses a 0xFFFF segment boundary.
    pub fn update(&mut self, duration: u32) -> Vec<EventPacket> {
        let Some(mut s) = self.active else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while duration - s.offset > 0xFFFF {
            // §2.5.1.3: close this segment at its maximum, start the next.
            out.push(self.packet(&s, s.offset + 0xFFFF, false, false));
            s.offset += 0xFFFF;
            s.timestamp = s.timestamp.wrapping_add(0xFFFF);
        }
        out.push(self.packet(&s, duration.max(s.offset), false, false));
        self.active = Some(s);
        out
    }

    /// Ends the active digit after `duration` ticks: the final packet, three
    /// times (§2.5.1.4). Empty when nothing is active.
    pub fn end(&mut self, duration: u32) -> Vec<EventPacket> {
        let mut out = self.update(duration);
        let Some(s) = self.active.take() else {
            return out;
        };
        out.pop();
        let last = self.packet(&s, duration.max(s.offset), true, false);
        out.extend([last; 3]);
        out
    }
}

/// Ticks from the active segment's start to `now` (for implied ends).
fn duration_of(active: &Option<Sending>, now: u32) -> u32 {
    active.map_or(0, |s| s.offset + now.wrapping_sub(s.timestamp))
}

/// What the receiver learnt from one packet (durations in the output clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedEvent {
    /// A new digit began (reported once per digit).
    Began {
        /// The digit.
        digit: Digit,
        /// Duration so far.
        duration: u32,
    },
    /// The digit goes on; its duration so far.
    Continued {
        /// The digit.
        digit: Digit,
        /// Duration so far.
        duration: u32,
    },
    /// The digit ended (an end packet, a later event, or [`EventReceiver::timeout`]).
    Ended {
        /// The digit.
        digit: Digit,
        /// Total duration.
        duration: u32,
    },
}

/// Sans-IO receiver of one telephone-event stream, converting durations from
/// the stream's clock (`in_rate`) to `out_rate`.
#[derive(Debug, Clone)]
pub struct EventReceiver {
    in_rate: u32,
    out_rate: u32,
    current: Option<Receiving>,
}

#[derive(Debug, Clone, Copy)]
struct Receiving {
    digit: Digit,
    /// Timestamp of the event's first segment, of its current segment, and
    /// ticks before the current segment.
    first: u32,
    segment: u32,
    offset: u32,
    duration: u32,
    ended: bool,
}

/// `a` is later than `b` in RTP timestamp (serial number) arithmetic.
fn later(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl EventReceiver {
    /// A receiver for a stream clocked at `in_rate` Hz reporting durations
    /// at `out_rate` Hz (the same rate for no conversion).
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        EventReceiver {
            in_rate,
            out_rate,
            current: None,
        }
    }

    fn scale(&self, ticks: u32) -> u32 {
        (ticks as u64 * self.out_rate as u64 / self.in_rate as u64) as u32
    }

    /// Handles one packet's RTP timestamp and payload; returns zero, one or two
    /// events (an implied end of the previous digit, then the new one's start).
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Vec<ReceivedEvent> {
        let mut out = Vec::new();
        let Some(p) = EventPayload::parse(payload) else {
            return out;
        };
        let Some(digit) = Digit::from_event(p.event) else {
            return out; // not DTMF (e.g. fax tones): ignored here
        };
        if let Some(cur) = self.current.as_mut() {
            let same_event = timestamp == cur.segment && digit == cur.digit;
            // §2.5.1.3: the next segment starts where the previous one ended.
            let next_segment =
                digit == cur.digit && !cur.ended && timestamp == cur.segment.wrapping_add(0xFFFF);
            if next_segment {
                cur.offset += 0xFFFF;
                cur.segment = timestamp;
            }
            if same_event || next_segment {
                if cur.ended {
                    return out; // retransmitted end
                }
                cur.duration = cur.duration.max(cur.offset + p.duration as u32);
                let (digit, d) = (cur.digit, cur.duration);
                cur.ended = p.end;
                let duration = self.scale(d);
                out.push(if p.end {
                    ReceivedEvent::Ended { digit, duration }
                } else {
                    ReceivedEvent::Continued { digit, duration }
                });
                return out;
            }
            if !later(timestamp, cur.first) {
                return out; // a late packet of an earlier event
            }
            if !cur.ended {
                // Its end packets were lost: the new event implies the end.
                let (digit, d) = (cur.digit, cur.duration);
                out.push(ReceivedEvent::Ended {
                    digit,
                    duration: self.scale(d),
                });
            }
        }
        let duration = self.scale(p.duration as u32);
        self.current = Some(Receiving {
            digit,
            first: timestamp,
            segment: timestamp,
            offset: 0,
            duration: p.duration as u32,
            ended: p.end,
        });
        // Start (and maybe continuation) lost: the digit still begins once.
        out.push(ReceivedEvent::Began { digit, duration });
        if p.end {
            out.push(ReceivedEvent::Ended { digit, duration });
        }
        out
    }

    /// The caller saw no packet of the active event for long enough (say
    /// three packet intervals past its last duration): ends it.
    pub fn timeout(&mut self) -> Option<ReceivedEvent> {
        let cur = self.current.as_mut().filter(|c| !c.ended)?;
        cur.ended = true;
        let (digit, d) = (cur.digit, cur.duration);
        Some(ReceivedEvent::Ended {
            digit,
            duration: self.scale(d),
        })
    }

    /// The digit in progress, if any.
    pub fn active(&self) -> Option<Digit> {
        self.current.filter(|c| !c.ended).map(|c| c.digit)
    }
}

/// Converts one telephone-event stream into another: new payload type and
/// clock rate (durations scaled), timestamps taken from the outgoing stream,
/// each digit sent exactly once with its end three times, whatever was lost,
/// duplicated or reordered on the way in.
#[derive(Debug, Clone)]
pub struct EventRelay {
    rx: EventReceiver,
    tx: EventSender,
}

impl EventRelay {
    /// A relay from a stream clocked at `in_rate` to one at `out_rate`.
    pub fn new(in_rate: u32, out_rate: u32, volume: u8) -> Self {
        EventRelay {
            rx: EventReceiver::new(in_rate, out_rate),
            tx: EventSender::new(volume),
        }
    }

    /// Handles one incoming packet. `out_timestamp` is the outgoing stream's
    /// current RTP timestamp, used as the timestamp of a digit that begins now.
    pub fn handle(
        &mut self,
        timestamp: u32,
        payload: &[u8],
        out_timestamp: u32,
    ) -> Vec<EventPacket> {
        let mut out = Vec::new();
        for ev in self.rx.handle(timestamp, payload) {
            out.extend(self.apply(ev, out_timestamp));
        }
        out
    }

    /// The digit being relayed, if one began and has not ended.
    pub fn active(&self) -> Option<Digit> {
        self.rx.active()
    }

    /// See [`EventReceiver::timeout`]: ends the digit in progress, if any.
    pub fn timeout(&mut self) -> Vec<EventPacket> {
        match self.rx.timeout() {
            Some(ev) => self.apply(ev, 0),
            None => Vec::new(),
        }
    }

    fn apply(&mut self, ev: ReceivedEvent, out_timestamp: u32) -> Vec<EventPacket> {
        match ev {
            ReceivedEvent::Began { digit, duration } => {
                self.tx.start(digit, out_timestamp, duration)
            }
            ReceivedEvent::Continued { duration, .. } => self.tx.update(duration),
            ReceivedEvent::Ended { duration, .. } => self.tx.end(duration),
        }
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
