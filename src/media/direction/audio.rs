//! The source's audio: passed through (header rewrite) when the sink leg
//! has its codec, else put in order, decoded, resampled and re-encoded at
//! the sink's ptime on the transcoded timeline; decoded too when in-band
//! digits must be detected.

use std::time::Instant;

use super::super::codec::{CodecKind, Resampler};
use super::super::error::DropReason;
use super::super::reorder::Released;
use super::super::rewrite::OwnPacket;
use super::super::rtp::RtpHeader;
use super::super::transcode::{Decoder, Encoder, pcm_rate};
use super::Direction;

/// A packet waiting in the reorder window.
#[derive(Debug)]
pub(super) enum Held {
    /// Audio to decode (`transcode`: and to send on, re-encoded).
    Audio {
        kind: CodecKind,
        ts: u32,
        transcode: bool,
        payload: Vec<u8>,
        /// A passed-through packet to send once the detector heard it
        /// (see `delay`): its header and bytes.
        forward: Option<(RtpHeader, Vec<u8>)>,
    },
    /// A packet that only takes up its sequence number here.
    Filler,
}

impl Direction {
    pub(super) fn handle_audio(
        &mut self,
        now: Instant,
        h: &RtpHeader,
        packet: &[u8],
        payload: &[u8],
        kind: CodecKind,
    ) -> Result<(), DropReason> {
        let passes = self.out.stream.mapping(h.payload_type).is_some();
        let delayed = passes && self.plan.detect;
        let result = if passes {
            self.transcoding = false;
            if delayed {
                // Sent once the detector is done with it.
                Ok(())
            } else if self.inj.run.is_some() {
                self.stats.suppressed_packets += 1;
                Ok(())
            } else {
                self.forward(now, h, packet)
            }
        } else if self.plan.sink.is_some() {
            self.transcoding = true;
            Ok(())
        } else {
            Err(DropReason::UnknownPayloadType(h.payload_type))
        };
        let decode = result.is_ok() && (!passes || self.plan.detect);
        let held = if decode {
            Held::Audio {
                kind,
                ts: h.timestamp,
                transcode: !passes,
                payload: payload.to_vec(),
                forward: delayed.then(|| (*h, packet.to_vec())),
            }
        } else {
            Held::Filler
        };
        self.push_held(now, h.sequence, held);
        result
    }

    pub(super) fn push_held(&mut self, now: Instant, seq: u16, held: Held) {
        let decodes = matches!(held, Held::Audio { .. });
        if !decodes && !self.transcoding && !self.plan.detect {
            // Nothing is decoded: no order to restore, no timer to run.
            self.reorder.reset();
            return;
        }
        if self.reorder.push(now, seq, held).is_err() && decodes {
            self.stats.dropped_late += 1;
        }
        self.process_released(now);
    }

    pub(super) fn process_released(&mut self, now: Instant) {
        let released: Vec<Released<Held>> = self.reorder.drain().collect();
        for r in released {
            match r {
                Released::Packet(Held::Audio {
                    kind,
                    ts,
                    transcode,
                    payload,
                    forward,
                }) => self.decode(now, kind, ts, (transcode, forward), &payload),
                Released::Packet(Held::Filler) => {}
                Released::Lost(n) => {
                    if let Some(d) = self.dec.as_mut() {
                        d.lost(n);
                    }
                }
                Released::Restart => {
                    if let Some(d) = self.dec.as_mut() {
                        d.reset();
                    }
                    self.fifo.clear();
                    self.tl.0 = self.fresh_id();
                }
            }
        }
    }

    /// Decodes one audio packet in order; re-encodes it toward the sink when
    /// `transcode`, and looks for in-band digits when the plan says so
    /// (`forward`: the packet to pass through after the detector).
    pub(super) fn decode(
        &mut self,
        now: Instant,
        kind: CodecKind,
        ts: u32,
        (transcode, forward): (bool, Option<(RtpHeader, Vec<u8>)>),
        payload: &[u8],
    ) {
        let sink_kind = self.plan.sink.as_ref().map(|s| s.kind);
        let rate = if transcode {
            pcm_rate(kind, sink_kind)
        } else {
            pcm_rate(kind, None)
        };
        if self
            .dec
            .as_ref()
            .is_none_or(|d| d.kind() != kind || d.rate() != rate)
        {
            match Decoder::new(kind, rate) {
                Ok(d) => self.dec = Some(d),
                Err(_) => {
                    // Not decodable here: a passed-through packet still goes.
                    if let Some((h, packet)) = forward {
                        self.release_delayed(now, true);
                        if self.forward(now, &h, &packet).is_err() {
                            self.stats.suppressed_packets += 1;
                        }
                    }
                    return;
                }
            }
        }
        let Some(dec) = self.dec.as_mut() else { return };
        self.pcm.clear();
        let d = dec.decode(ts, payload, &mut self.pcm);
        let rate = dec.rate();
        self.stats.concealed_packets += u64::from(d.concealed);
        if self.plan.detect {
            self.ensure_detector(now, rate);
            if let Some((h, packet)) = forward {
                self.delay(now, h, packet, self.pcm.len() as u64);
            }
            self.run_detector(now);
            self.release_delayed(now, false);
        }
        if !transcode {
            return;
        }
        if d.discontinuity {
            self.fifo.clear();
            self.tl.0 = self.fresh_id();
        }
        if self.inj.run.is_some() {
            // The injector owns the stream: this audio is suppressed.
            self.fifo.clear();
            self.stats.suppressed_packets += 1;
            return;
        }
        let Some(sink) = self.plan.sink.clone() else {
            return;
        };
        let want = if sink.kind == CodecKind::Opus {
            rate
        } else {
            sink.kind.native_rate()
        };
        if self
            .enc
            .as_ref()
            .is_none_or(|e| e.rate() != want || *e.sink() != sink)
        {
            match Encoder::new(&sink, want) {
                Ok(mut e) => {
                    e.set_expected_loss(self.far_loss);
                    self.enc = Some(e);
                }
                Err(_) => return,
            }
            self.fifo.clear();
        }
        if self.fifo.is_empty() {
            // Where the FIFO starts in the detector's input (see `delay`).
            let heard = self.detect.as_ref().map_or(0, |d| d.pos);
            self.fifo_start = heard.saturating_sub(self.pcm.len() as u64);
        }
        if rate != want {
            if self
                .resampler
                .as_ref()
                .is_none_or(|r| (r.1, r.2) != (rate, want))
            {
                match Resampler::new(rate, want) {
                    Ok(r) => self.resampler = Some((r, rate, want)),
                    Err(_) => return,
                }
            }
            if let Some((r, _, _)) = self.resampler.as_mut() {
                self.resampled.clear();
                r.process(&self.pcm, &mut self.resampled);
                self.fifo.extend_from_slice(&self.resampled);
            }
        } else {
            self.fifo.extend_from_slice(&self.pcm);
        }
        let limit = self.fifo_limit(now, self.pcm.len() as u64);
        self.encode_fifo(now, limit);
    }

    /// Sends the whole frames among the FIFO's first `limit` samples on the
    /// transcoded timeline.
    pub(super) fn encode_fifo(&mut self, now: Instant, limit: usize) {
        let Some(enc) = self.enc.as_mut() else { return };
        let frame = enc.frame();
        let limit = limit.min(self.fifo.len());
        let mut at = 0;
        while limit - at >= frame {
            self.payload.clear();
            if enc
                .encode(&self.fifo[at..at + frame], &mut self.payload)
                .is_ok()
            {
                let (id, seq, ts) = self.tl;
                let (pt, clock) = (enc.sink().payload_type, enc.clock());
                self.out.send(
                    now,
                    &OwnPacket::audio(pt, clock, id, seq, ts),
                    None,
                    &self.payload,
                );
                self.stats.transcoded_packets += 1;
                self.tl.1 = seq.wrapping_add(1);
            }
            self.tl.2 = self.tl.2.wrapping_add(enc.step());
            at += frame;
        }
        if let Some(d) = self.detect.as_ref() {
            self.fifo_start += at as u64 * u64::from(d.rate) / u64::from(enc.rate().max(1));
        }
        self.fifo.drain(..at);
    }
}
