//! What the codecs and DTMF modes of both legs make of one direction: which
//! payload types carry what, the sink's codec and telephone-event, the
//! effective DTMF modes and whether in-band digits must be detected.

use std::time::Duration;

use super::super::codec::CodecKind;
use super::super::rewrite::{Codec, PtMapping, map_codecs};
use super::super::transcode::SinkCodec;
use super::super::types::{DtmfMode, LegConfig};

/// What a payload type of the source leg carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SrcKind {
    Audio(CodecKind),
    Event(u32),
    Other,
}

/// What the codecs and DTMF modes of both legs make of this direction.
#[derive(Debug, Clone, Default)]
pub(super) struct Plan {
    pub(super) src: Vec<(u8, SrcKind)>,
    pub(super) sink: Option<SinkCodec>,
    /// The sink's telephone-event payload type and clock rate.
    pub(super) sink_event: Option<(u8, u32)>,
    /// Effective modes (RFC 4733 without telephone-event is in-band).
    pub(super) src_mode: DtmfMode,
    pub(super) sink_mode: DtmfMode,
    /// In-band digits from the source must be detected.
    pub(super) detect: bool,
    /// The source's preferred audio codec needs no transcoding.
    pub(super) first_passes: bool,
}

impl Plan {
    pub(super) fn new(
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

    pub(super) fn kind(&self, pt: u8) -> Option<SrcKind> {
        self.src.iter().find(|s| s.0 == pt).map(|s| s.1)
    }

    pub(super) fn audio_clock(&self) -> u32 {
        self.sink.as_ref().map_or(8000, |s| s.kind.rtp_clock_rate())
    }

    /// One packet time in the sink's audio clock.
    pub(super) fn step(&self) -> u32 {
        (u64::from(self.audio_clock()) * self.ptime().as_millis() as u64 / 1000) as u32
    }

    pub(super) fn ptime(&self) -> Duration {
        Duration::from_millis(self.sink.as_ref().map_or(20, |s| s.ptime_ms).into())
    }
}
