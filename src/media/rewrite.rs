//! Per-direction stream rewriting: payload type mapping and SSRC / sequence /
//! timestamp continuity.
//!
//! The far end must see one well-behaved RTP stream per direction (RFC 3550 §5.1,
//! §8) even when the source behind the relay changes: a re-INVITE moving the call
//! to another endpoint, or forked early media switching branches. So every
//! outgoing packet carries the direction's own SSRC, and sequence numbers and
//! timestamps are shifted by offsets (mod 2^16 / 2^32) that are recomputed at each
//! source change so that the sequence continues with +1 and the timestamp advances
//! by the wall-clock time elapsed since the last packet, in the payload's clock rate,
//! rounded to whole packets (the step between the previous two) — and at least to
//! where the last packet's content ends (one packet for audio, the event's
//! duration for a telephone-event, RFC 4733 §2.5), so the new source never
//! overlaps the old one.
//!
//! A source that comes back after packets the relay made itself (a digit or
//! tone played in its place) on its own continuing numbering keeps its old
//! timestamp offset: its timeline is the sampling clock (RFC 3550 §5.1), so the
//! packets around the injected ones stay exactly where they were, as long as
//! that does not overlap them.

use std::time::Instant;

/// RFC 3550 Appendix A.1: a jump larger than this within one SSRC is a restart.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 Appendix A.1: packets this far behind are reordering, not a restart.
const MAX_MISORDER: u16 = 100;

/// One negotiated payload type mapping for a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtMapping {
    /// Payload type the source leg sends.
    pub from: u8,
    /// Payload type the destination leg expects for the same codec.
    pub to: u8,
    /// RTP clock rate of the codec (Hz), e.g. 8000 for PCMU, 48000 for Opus.
    pub clock_rate: u32,
}

/// A codec as negotiated on one leg (from SDP `a=rtpmap`), used to derive mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Payload type number on this leg.
    pub payload_type: u8,
    /// Encoding name, e.g. `PCMU`, `opus`, `telephone-event` (case-insensitive).
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count (1 unless stated in the rtpmap).
    pub channels: u8,
    /// The `a=fmtp` value for this payload type as the leg's SDP wrote it
    /// (e.g. `useinbandfec=1;maxplaybackrate=16000`), empty if none: what the
    /// leg's receiver accepts, so an encoder toward it follows it.
    pub fmtp: String,
    /// `a=ptime` of the leg's media section (ms): the packet duration the leg
    /// wants to receive. `None`: 20 ms.
    pub ptime: Option<u32>,
}

impl Codec {
    /// A codec from its rtpmap fields, mono, no fmtp, default ptime.
    pub fn new(payload_type: u8, name: &str, clock_rate: u32) -> Self {
        Self {
            payload_type,
            name: name.to_owned(),
            clock_rate,
            channels: 1,
            fmtp: String::new(),
            ptime: None,
        }
    }

    /// The same codec with `fmtp` as its format parameters.
    pub fn with_fmtp(mut self, fmtp: &str) -> Self {
        self.fmtp = fmtp.to_owned();
        self
    }

    /// The same codec with the leg's `a=ptime`.
    pub fn with_ptime(mut self, ptime: Option<u32>) -> Self {
        self.ptime = ptime;
        self
    }

    /// Whether this is `telephone-event` (RFC 4733).
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }
}

/// Maps each codec of `from` to the same codec (name, clock rate, channels) on `to`.
/// Codecs without an equivalent (e.g. telephone-event/48000 against /8000) get no
/// mapping: they need transcoding, not header rewriting, and are dropped here.
pub fn map_codecs(from: &[Codec], to: &[Codec]) -> Vec<PtMapping> {
    from.iter()
        .filter_map(|f| {
            let t = to.iter().find(|t| {
                t.name.eq_ignore_ascii_case(&f.name)
                    && t.clock_rate == f.clock_rate
                    && t.channels == f.channels
            })?;
            Some(PtMapping {
                from: f.payload_type,
                to: t.payload_type,
                clock_rate: f.clock_rate,
            })
        })
        .collect()
}

/// The rewritten header fields for one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Outgoing payload type.
    pub payload_type: u8,
    /// Outgoing sequence number.
    pub sequence: u16,
    /// Outgoing timestamp.
    pub timestamp: u32,
    /// Outgoing SSRC (constant for the direction).
    pub ssrc: u32,
    /// Whether this packet starts a new source (the caller may set the marker bit).
    pub source_changed: bool,
}

impl OwnPacket {
    /// An audio packet: its content is one packet from its timestamp on.
    pub fn audio(payload_type: u8, clock: u32, source: u32, sequence: u16, timestamp: u32) -> Self {
        OwnPacket {
            payload_type,
            clock,
            source,
            sequence,
            timestamp,
            position: timestamp,
            end: None,
            timeline: None,
        }
    }
}

/// Rewriting state of one direction (A→B or B→A).
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    ssrc: u32,
    map: Box<[Option<(u8, u32)>; 128]>,
    source: Option<u32>,
    last_in_seq: u16,
    seq_offset: u16,
    ts_offset: u32,
    /// The newest packet sent: sequence, position, time.
    last_out: Option<(u16, u32, Instant)>,
    /// Where the newest packet's content ends when it is not one step after
    /// its position (a telephone-event: its timestamp plus duration).
    last_end: Option<u32>,
    /// Timestamp step between the last two consecutive packets of a source.
    last_step: Option<u32>,
    /// The source before the current one: SSRC, its last sequence number
    /// and its timestamp offset, for when it comes back.
    previous: Option<(u32, u16, u32)>,
    /// The real source whose timeline the current one shares, if any.
    shares: Option<u32>,
}

/// A packet the relay makes itself (transcoded audio, tones,
/// telephone-events), as [`StreamRewriter::rewrite_own`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnPacket {
    /// Outgoing payload type.
    pub payload_type: u8,
    /// Its clock rate.
    pub clock: u32,
    /// The internal source id the packet belongs to.
    pub source: u32,
    /// Sequence number in that source's numbering.
    pub sequence: u16,
    /// Timestamp in that source's numbering.
    pub timestamp: u32,
    /// Where the source's timeline stands as the packet is sent: the
    /// timestamp an audio packet sent now would carry. For audio it is
    /// `timestamp`; a telephone-event keeps its start as timestamp for all
    /// its packets (RFC 4733 §2.5) while its run moves on.
    pub position: u32,
    /// Where its content ends, when not one packet after `position`: a
    /// telephone-event's timestamp plus its duration so far.
    pub end: Option<u32>,
    /// The real source (SSRC) whose numbering this one's timestamps are in
    /// (packets played in that source's place): it takes that source's
    /// timestamp offset, so both stay on one timeline.
    pub timeline: Option<u32>,
}

impl StreamRewriter {
    /// A rewriter that sends under `ssrc` and maps payload types with `mappings`.
    pub fn new(ssrc: u32, mappings: &[PtMapping]) -> Self {
        let mut rw = Self {
            ssrc,
            map: Box::new([None; 128]),
            source: None,
            last_in_seq: 0,
            seq_offset: 0,
            ts_offset: 0,
            last_out: None,
            last_end: None,
            last_step: None,
            previous: None,
            shares: None,
        };
        rw.set_mappings(mappings);
        rw
    }

    /// Replaces the payload type mappings (new offer/answer).
    pub fn set_mappings(&mut self, mappings: &[PtMapping]) {
        *self.map = [None; 128];
        for m in mappings {
            self.map[usize::from(m.from & 0x7f)] = Some((m.to & 0x7f, m.clock_rate));
        }
    }

    /// The SSRC this direction sends under.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The SSRC of the current source, once a packet has been seen.
    pub fn source_ssrc(&self) -> Option<u32> {
        self.source
    }

    /// The current sequence number offset (for rewriting RTCP report blocks).
    pub fn sequence_offset(&self) -> u16 {
        self.seq_offset
    }

    /// The current timestamp offset (for rewriting RTCP SR timestamps).
    pub fn timestamp_offset(&self) -> u32 {
        self.ts_offset
    }

    /// When the newest packet was sent, once one was.
    pub fn last_sent(&self) -> Option<Instant> {
        self.last_out.map(|o| o.2)
    }

    /// Where a packet sent at `t` in place of source `ssrc`'s (on its
    /// numbering) would stand: the next whole packet after the newest one
    /// sent, or later as time passed. `None` unless `ssrc` is the current
    /// or the previous source.
    pub fn position_at(&self, t: Instant, ssrc: u32, clock: u32) -> Option<u32> {
        let offset = match (self.source, self.previous) {
            (Some(s), _) if s == ssrc => self.ts_offset,
            (_, Some((s, _, offset))) if s == ssrc => offset,
            _ => return None,
        };
        let (_, last_pos, last_t) = self.last_out?;
        let step = self.last_step.unwrap_or(1).max(1);
        let elapsed = t.saturating_duration_since(last_t).as_nanos() * u128::from(clock);
        let ticks = elapsed / 1_000_000_000;
        let step128 = u128::from(step);
        let ticks = ((ticks + step128 / 2) / step128 * step128 % (1u128 << 32)) as u32;
        Some(last_pos.wrapping_add(ticks.max(step)).wrapping_sub(offset))
    }

    /// Output payload type and clock rate for `pt`, if negotiated.
    pub fn mapping(&self, pt: u8) -> Option<(u8, u32)> {
        self.map[usize::from(pt & 0x7f)]
    }

    /// Computes the outgoing header for a packet with `pt`, `seq`, `ts` from `ssrc`
    /// received at `now`. `None` when the payload type is not negotiated.
    pub fn rewrite(
        &mut self,
        now: Instant,
        pt: u8,
        seq: u16,
        ts: u32,
        ssrc: u32,
    ) -> Option<Rewritten> {
        let (out_pt, clock) = self.mapping(pt)?;
        Some(self.rewrite_own(
            now,
            &OwnPacket {
                payload_type: out_pt,
                clock,
                source: ssrc,
                sequence: seq,
                timestamp: ts,
                position: ts,
                end: None,
                timeline: None,
            },
        ))
    }

    /// Like [`Self::rewrite`] for a packet whose outgoing payload type is
    /// already known: packets the relay makes itself under an internal
    /// source id. Switching between such sources and real ones keeps the
    /// outgoing stream continuous like any source change.
    pub fn rewrite_own(&mut self, now: Instant, p: &OwnPacket) -> Rewritten {
        let (seq, ssrc, clock) = (p.sequence, p.source, p.clock);
        let restart = match self.source {
            Some(s) if s == ssrc => {
                // RFC 3550 A.1: within [−MAX_MISORDER, +MAX_DROPOUT) is the same run.
                let delta = seq.wrapping_sub(self.last_in_seq);
                (MAX_DROPOUT..=u16::MAX - MAX_MISORDER).contains(&delta)
            }
            _ => true,
        };
        if restart {
            let leaving = self.source.map(|s| (s, self.last_in_seq, self.ts_offset));
            match self.last_out {
                // First packet of the direction: keep the source's numbering.
                None => {
                    self.seq_offset = 0;
                    self.ts_offset = 0;
                }
                Some((last_seq, last_pos, last_t)) => {
                    self.seq_offset = last_seq.wrapping_add(1).wrapping_sub(seq);
                    self.ts_offset = self.continuation(now, p, last_pos, last_t);
                }
            }
            // Packets played on a source's timeline keep that source as the
            // one to come back.
            let sharing = self.shares.is_some() && self.shares == self.previous.map(|p| p.0);
            if self.source != Some(ssrc) && !sharing {
                self.previous = leaving;
            }
            self.shares = p.timeline;
            self.source = Some(ssrc);
            self.last_in_seq = seq;
        } else if seq.wrapping_sub(self.last_in_seq) < MAX_DROPOUT {
            self.last_in_seq = seq;
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = p.timestamp.wrapping_add(self.ts_offset);
        let out_pos = p.position.wrapping_add(self.ts_offset);
        // Track the newest packet sent (not a reordered older one).
        let newest = match self.last_out {
            Some((s, _, _)) if !restart => out_seq.wrapping_sub(s) < MAX_DROPOUT,
            _ => true,
        };
        if newest {
            // A restart keeps the last step known: a source that sends a
            // single packet before the next switch still has a duration.
            if let (false, Some((_, last_pos, _))) = (restart, self.last_out) {
                // A packet's duration: the step to the next one, when it is a
                // plausible packet time (up to 120 ms; event ends repeat theirs).
                let step = out_pos.wrapping_sub(last_pos);
                if step > 0 && u64::from(step) <= u64::from(clock) * 120 / 1000 {
                    self.last_step = Some(step);
                }
            }
            self.last_out = Some((out_seq, out_pos, now));
            self.last_end = p.end.map(|e| e.wrapping_add(self.ts_offset));
        }
        Rewritten {
            payload_type: p.payload_type,
            sequence: out_seq,
            timestamp: out_ts,
            ssrc: self.ssrc,
            source_changed: restart,
        }
    }

    /// The timestamp offset for `p`, the first packet of a new source (or of
    /// a source restarting), sent at `now` after the newest packet at
    /// `last_pos` sent at `last_t`.
    fn continuation(&self, now: Instant, p: &OwnPacket, last_pos: u32, last_t: Instant) -> u32 {
        let step = self.last_step.unwrap_or(1).max(1);
        // Nothing may start before the last packet's content ends: one step
        // after an audio packet, at the end of a telephone-event (which may
        // already lie behind the run's position).
        let min = match self.last_end {
            Some(end) => end.wrapping_sub(last_pos) as i32,
            None => step as i32,
        };
        let min = min.max(0) as u32;
        let elapsed = now.saturating_duration_since(last_t);
        let ticks = elapsed.as_nanos() * u128::from(p.clock) / 1_000_000_000;
        // Whole packets: a source taking over the next packet's slot a little
        // early or late (jitter, timer granularity) lands on that slot.
        let step = u128::from(step);
        let ticks = ((ticks + step / 2) / step * step % (1u128 << 32)) as u32;
        // Packets on the timeline of the source they replace: its offset,
        // unless that overlaps what was sent meanwhile.
        if let Some(t) = p.timeline {
            let shared = match (self.source, self.previous) {
                (Some(s), _) if s == t => Some(self.ts_offset),
                (_, Some((s, _, offset))) if s == t => Some(offset),
                _ => None,
            };
            if let Some(offset) = shared {
                let ahead = p.position.wrapping_add(offset).wrapping_sub(last_pos);
                if ahead >= min && ahead <= ticks.saturating_add(p.clock / 5) {
                    return offset;
                }
            }
        }
        // A source coming back on its own numbering: its old offset, unless
        // that overlaps what was sent meanwhile or runs far ahead of the time
        // elapsed (its numbering jumped).
        if let Some((ssrc, seq, offset)) = self.previous {
            let ahead = p.position.wrapping_add(offset).wrapping_sub(last_pos);
            let slack = p.clock / 5;
            let continues = p.sequence.wrapping_sub(seq).wrapping_sub(1) < MAX_DROPOUT;
            if ssrc == p.source && continues && ahead >= min && ahead <= ticks.saturating_add(slack)
            {
                return offset;
            }
        }
        last_pos
            .wrapping_add(ticks.max(min))
            .wrapping_sub(p.position)
    }
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
