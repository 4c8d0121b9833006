//! Per-direction stream rewriting: payload type mapping and SSRC / sequence /
//! timestamp continuity.
//!
//! The far end must see one well-behaved RTP stream per direction (RFC 3550 §5.1,
//! §8) even when the source behind the relay changes: a re-INVITE moving the call
//! to another endpoint, or forked early media switching branches. So every
//! outgoing packet carries the direction's own SSRC, and sequence numbers and
//! timestamps are shifted by offsets (mod 2^16 / 2^32) that are recomputed at each
//! source change so that the sequence continues with +1 and the timestamp advances
//! by the wall-clock time elapsed since the last packet, in the payload's clock rate
//! — and at least by the last packet's own duration (the step between the previous
//! two), so the new source's audio never overlaps the old one's.

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

/// Rewriting state of one direction (A→B or B→A).
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    ssrc: u32,
    map: [Option<(u8, u32)>; 128],
    source: Option<u32>,
    last_in_seq: u16,
    seq_offset: u16,
    ts_offset: u32,
    last_out: Option<(u16, u32, Instant)>,
    /// Timestamp step between the last two consecutive packets of a source.
    last_step: Option<u32>,
}

impl StreamRewriter {
    /// A rewriter that sends under `ssrc` and maps payload types with `mappings`.
    pub fn new(ssrc: u32, mappings: &[PtMapping]) -> Self {
        let mut rw = Self {
            ssrc,
            map: [None; 128],
            source: None,
            last_in_seq: 0,
            seq_offset: 0,
            ts_offset: 0,
            last_out: None,
            last_step: None,
        };
        rw.set_mappings(mappings);
        rw
    }

    /// Replaces the payload type mappings (new offer/answer).
    pub fn set_mappings(&mut self, mappings: &[PtMapping]) {
        self.map = [None; 128];
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
        Some(self.rewrite_as(now, out_pt, clock, seq, ts, ssrc))
    }

    /// Like [`Self::rewrite`] for a packet whose outgoing payload type is
    /// already known (`out_pt`, clock `clock`): packets the relay makes itself
    /// (transcoded audio, tones, telephone-events) under an internal source id
    /// `ssrc`. Switching between such sources and real ones keeps the outgoing
    /// stream continuous like any source change.
    pub fn rewrite_as(
        &mut self,
        now: Instant,
        out_pt: u8,
        clock: u32,
        seq: u16,
        ts: u32,
        ssrc: u32,
    ) -> Rewritten {
        let restart = match self.source {
            Some(s) if s == ssrc => {
                // RFC 3550 A.1: within [−MAX_MISORDER, +MAX_DROPOUT) is the same run.
                let delta = seq.wrapping_sub(self.last_in_seq);
                (MAX_DROPOUT..=u16::MAX - MAX_MISORDER).contains(&delta)
            }
            _ => true,
        };
        if restart {
            match self.last_out {
                // First packet of the direction: keep the source's numbering.
                None => {
                    self.seq_offset = 0;
                    self.ts_offset = 0;
                }
                Some((last_seq, last_ts, last_t)) => {
                    let elapsed = now.saturating_duration_since(last_t);
                    let ticks = elapsed.as_nanos() * u128::from(clock) / 1_000_000_000;
                    // At least the last packet's duration (else one tick), so
                    // timestamps never overlap, go backwards or repeat.
                    let min = u128::from(self.last_step.unwrap_or(1).max(1));
                    let ticks = (ticks.max(min) % (1u128 << 32)) as u32;
                    self.seq_offset = last_seq.wrapping_add(1).wrapping_sub(seq);
                    self.ts_offset = last_ts.wrapping_add(ticks).wrapping_sub(ts);
                }
            }
            self.source = Some(ssrc);
            self.last_in_seq = seq;
        } else if seq.wrapping_sub(self.last_in_seq) < MAX_DROPOUT {
            self.last_in_seq = seq;
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // Track the newest packet sent (not a reordered older one).
        let newest = match self.last_out {
            Some((s, _, _)) if !restart => out_seq.wrapping_sub(s) < MAX_DROPOUT,
            _ => true,
        };
        if newest {
            // A restart keeps the last step known: a source that sends a
            // single packet before the next switch still has a duration.
            if let (false, Some((_, last_ts, _))) = (restart, self.last_out) {
                // A packet's duration: the step to the next one, when it is a
                // plausible packet time (up to 120 ms; events repeat their ts).
                let step = out_ts.wrapping_sub(last_ts);
                if step > 0 && u64::from(step) <= u64::from(clock) * 120 / 1000 {
                    self.last_step = Some(step);
                }
            }
            self.last_out = Some((out_seq, out_ts, now));
        }
        Rewritten {
            payload_type: out_pt,
            sequence: out_seq,
            timestamp: out_ts,
            ssrc: self.ssrc,
            source_changed: restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PCMU: [PtMapping; 1] = [PtMapping {
        from: 0,
        to: 0,
        clock_rate: 8000,
    }];

    #[test]
    fn first_source_keeps_numbering_and_gets_our_ssrc() {
        let t0 = super::super::test_epoch();
        let mut rw = StreamRewriter::new(0xabcd, &PCMU);
        let r = rw.rewrite(t0, 0, 100, 5000, 1).unwrap();
        assert_eq!(
            (r.sequence, r.timestamp, r.ssrc, r.source_changed),
            (100, 5000, 0xabcd, true)
        );
        let r = rw.rewrite(t0, 0, 101, 5160, 1).unwrap();
        assert_eq!(
            (r.sequence, r.timestamp, r.source_changed),
            (101, 5160, false)
        );
        assert_eq!(rw.rewrite(t0, 8, 102, 5320, 1), None, "PT 8 not negotiated");
    }

    #[test]
    fn source_switch_continues_seq_and_ts_with_wrapping() {
        let t0 = super::super::test_epoch();
        let mut rw = StreamRewriter::new(7, &PCMU);
        rw.rewrite(t0, 0, 65535, u32::MAX - 10, 1).unwrap();
        let t1 = t0 + Duration::from_millis(60);
        let r = rw.rewrite(t1, 0, 3, 12345, 2).unwrap();
        assert!(r.source_changed);
        assert_eq!(r.sequence, 0);
        assert_eq!(r.timestamp, (u32::MAX - 10).wrapping_add(480));
        assert_eq!(rw.source_ssrc(), Some(2));
        let r = rw
            .rewrite(t1 + Duration::from_millis(20), 0, 4, 12345 + 160, 2)
            .unwrap();
        assert_eq!(
            (r.sequence, r.timestamp),
            (1, (u32::MAX - 10).wrapping_add(640))
        );
    }

    #[test]
    fn same_ssrc_restart_is_detected_but_reordering_is_not() {
        let t0 = super::super::test_epoch();
        let mut rw = StreamRewriter::new(7, &PCMU);
        rw.rewrite(t0, 0, 1000, 0, 1).unwrap();
        rw.rewrite(t0, 0, 1001, 160, 1).unwrap();
        let late = rw.rewrite(t0, 0, 999, 0, 1).unwrap();
        assert_eq!((late.sequence, late.source_changed), (999, false));
        let t1 = t0 + Duration::from_millis(20);
        let r = rw.rewrite(t1, 0, 40000, 99, 1).unwrap();
        assert!(r.source_changed);
        assert_eq!((r.sequence, r.timestamp), (1002, 160 + 160));
    }

    #[test]
    fn pt_mapping_from_codecs() {
        let a = [
            Codec::new(111, "opus", 48000),
            Codec::new(0, "PCMU", 8000),
            Codec::new(126, "telephone-event", 48000),
            Codec::new(101, "telephone-event", 8000),
        ];
        let b = [
            Codec::new(0, "pcmu", 8000),
            Codec::new(96, "telephone-event", 8000),
        ];
        let m = map_codecs(&a, &b);
        assert_eq!(
            m,
            vec![
                PtMapping {
                    from: 0,
                    to: 0,
                    clock_rate: 8000
                },
                PtMapping {
                    from: 101,
                    to: 96,
                    clock_rate: 8000
                }
            ]
        );
        let mut rw = StreamRewriter::new(1, &m);
        assert_eq!(
            rw.rewrite(super::super::test_epoch(), 101, 1, 1, 1)
                .unwrap()
                .payload_type,
            96
        );
        assert_eq!(rw.mapping(111), None);
        rw.set_mappings(&[PtMapping {
            from: 111,
            to: 0,
            clock_rate: 8000,
        }]);
        assert_eq!(rw.mapping(111), Some((0, 8000)));
    }
}
