//! Telephone-events (RFC 4733) from the source, per the sink's mode:
//! relayed (payload type and 48000<->8000 clock), played as tones, or
//! raised as [`Event::Dtmf`] for SIP INFO.

use std::time::Instant;

use crate::dtmf::{EventReceiver, EventRelay, EventsToInband, ReceivedEvent};

use super::super::error::DropReason;
use super::super::rtp::RtpHeader;
use super::super::types::{DtmfMode, Event};
use super::{Direction, EVENT_VOLUME};

/// Telephone-event handling of the source's events.
#[derive(Debug, Default)]
pub(super) struct EventsIn {
    pub(super) relay: Option<(EventRelay, u32, u32)>,
    pub(super) tones: Option<(EventsToInband, u32, u32)>,
    pub(super) info: Option<(EventReceiver, u32)>,
    pub(super) last: Option<Instant>,
}

impl Direction {
    /// A telephone-event packet from the source.
    pub(super) fn handle_event(
        &mut self,
        now: Instant,
        h: &RtpHeader,
        packet: &[u8],
        payload: &[u8],
        rate: u32,
    ) -> Result<(), DropReason> {
        if self.plan.src_mode != DtmfMode::Rfc4733 {
            // The leg's digits come another way (INFO, or in its audio).
            self.stats.suppressed_packets += 1;
            return Ok(());
        }
        let mapped = self.out.stream.mapping(h.payload_type).is_some();
        if mapped && !self.transcoding && self.inj.run.is_none() {
            return self.forward(now, h, packet);
        }
        self.events_in.last = Some(now);
        match self.plan.sink_mode {
            DtmfMode::Rfc4733 => {
                let Some((_, erate)) = self.plan.sink_event else {
                    return Err(DropReason::UnknownPayloadType(h.payload_type));
                };
                if self
                    .events_in
                    .relay
                    .as_ref()
                    .is_none_or(|r| (r.1, r.2) != (rate, erate))
                {
                    self.events_in.relay =
                        Some((EventRelay::new(rate, erate, EVENT_VOLUME), rate, erate));
                }
                self.ensure_run(now);
                let out_ts = self.run_ts(now);
                let pkts = match self.events_in.relay.as_mut() {
                    Some((relay, _, _)) => relay.handle(h.timestamp, payload, out_ts),
                    None => Vec::new(),
                };
                self.stats.dtmf_digits += pkts.iter().filter(|p| p.marker).count() as u64;
                self.send_events(now, &pkts);
                self.end_run_if_idle(now);
            }
            DtmfMode::Inband => {
                let Some(rate_out) = self.gen_rate() else {
                    return Err(DropReason::UnknownPayloadType(h.payload_type));
                };
                if self
                    .events_in
                    .tones
                    .as_ref()
                    .is_none_or(|t| (t.1, t.2) != (rate, rate_out))
                {
                    self.events_in.tones =
                        Some((EventsToInband::new(rate, rate_out), rate, rate_out));
                }
                let Some((tones, _, _)) = self.events_in.tones.as_mut() else {
                    return Ok(());
                };
                self.stats.dtmf_digits += tones.handle_packet(h.timestamp, payload) as u64;
                let busy = tones.busy();
                if busy && self.inj.run.is_none() {
                    self.ensure_run(now);
                    self.run_ticks(now);
                }
            }
            DtmfMode::Info => {
                if self.events_in.info.as_ref().is_none_or(|r| r.1 != rate) {
                    self.events_in.info = Some((EventReceiver::new(rate, 1000), rate));
                }
                let evs = match self.events_in.info.as_mut() {
                    Some((rx, _)) => rx.handle(h.timestamp, payload),
                    None => Vec::new(),
                };
                for ev in evs {
                    self.info_event(ev);
                }
            }
        }
        Ok(())
    }

    pub(super) fn info_event(&mut self, ev: ReceivedEvent) {
        if let ReceivedEvent::Ended { digit, duration } = ev {
            self.stats.dtmf_digits += 1;
            self.events.push(Event::Dtmf {
                from: self.from,
                digit: digit.to_char(),
                duration_ms: duration,
            });
        }
    }
}
