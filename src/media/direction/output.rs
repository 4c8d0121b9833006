//! The outgoing stream of a direction: every packet, forwarded or made by
//! the relay, goes through its [`StreamRewriter`] (our SSRC, one continuous
//! sequence and timestamp).

use std::time::Instant;

use super::super::error::DropReason;
use super::super::rewrite::{OwnPacket, StreamRewriter};
use super::super::rtp::RtpHeader;
use super::Direction;

/// The outgoing stream: header rewriting and the packets ready to send.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) stream: StreamRewriter,
    pub(super) packets: Vec<Vec<u8>>,
}

impl Output {
    /// Queues a packet the relay made (`p`: its header in an internal
    /// source's numbering). `marker`: an event's own marker bit; `None` for
    /// audio, whose marker flags the start of a talkspurt (a new source in
    /// the rewriter).
    pub(super) fn send(
        &mut self,
        at: Instant,
        p: &OwnPacket,
        marker: Option<bool>,
        payload: &[u8],
    ) {
        let r = self.stream.rewrite_own(at, p);
        let m = marker.unwrap_or(r.source_changed);
        let mut p = Vec::with_capacity(12 + payload.len());
        p.extend_from_slice(&[0x80, (u8::from(m) << 7) | (r.payload_type & 0x7f)]);
        p.extend_from_slice(&r.sequence.to_be_bytes());
        p.extend_from_slice(&r.timestamp.to_be_bytes());
        p.extend_from_slice(&r.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.packets.push(p);
    }
}

impl Direction {
    pub(super) fn forward(
        &mut self,
        now: Instant,
        h: &RtpHeader,
        packet: &[u8],
    ) -> Result<(), DropReason> {
        let r = self
            .out
            .stream
            .rewrite(now, h.payload_type, h.sequence, h.timestamp, h.ssrc)
            .ok_or(DropReason::UnknownPayloadType(h.payload_type))?;
        let mut out = packet.to_vec();
        super::super::rtp::write_rtp_header(
            &mut out,
            r.payload_type,
            r.sequence,
            r.timestamp,
            r.ssrc,
        );
        self.out.packets.push(out);
        Ok(())
    }
}
