//! RTP and RTCP wire format: validation, rtcp-mux demultiplexing and in-place
//! header rewriting.
//!
//! RTP parsing (fixed header, CSRC list, header extension, padding; RFC 3550 §5.1,
//! §5.3.1) is done by the `rtp-rs` reader, which checks every length before it
//! slices and therefore never panics on hostile input. RTCP (RFC 3550 §6.4) has no
//! parser there, so compound packets are walked here.

use rtp_rs::{RtpReader, RtpReaderError};

use super::error::Malformed;

/// RTCP packet types: sender report and receiver report (RFC 3550 §6.4).
const RTCP_SR: u8 = 200;
const RTCP_RR: u8 = 201;
/// Size of one report block in an SR/RR (RFC 3550 §6.4.1).
const REPORT_BLOCK_LEN: usize = 24;

/// The fields of an RTP fixed header the relay needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp, in the payload type's clock rate.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Number of CSRCs (0–15).
    pub csrc_count: u8,
    /// Payload length without header and padding.
    pub payload_len: usize,
}

/// Parses and validates one RTP packet (RFC 3550 §5.1, checks of Appendix A.1).
pub fn parse_rtp(bytes: &[u8]) -> Result<RtpHeader, Malformed> {
    let r = RtpReader::new(bytes).map_err(|e| match e {
        RtpReaderError::BufferTooShort(_) => Malformed::TooShort,
        RtpReaderError::UnsupportedVersion(_) => Malformed::BadVersion,
        RtpReaderError::HeadersTruncated { .. } => Malformed::HeaderTruncated,
        RtpReaderError::PaddingLengthInvalid(_) => Malformed::BadPadding,
    })?;
    Ok(RtpHeader {
        payload_type: r.payload_type(),
        marker: r.mark(),
        sequence: r.sequence_number().into(),
        timestamp: r.timestamp(),
        ssrc: r.ssrc(),
        csrc_count: r.csrc_count(),
        payload_len: r.payload().len(),
    })
}

/// The payload of an RTP packet already validated by [`parse_rtp`] (after
/// CSRCs and header extension, without padding).
pub fn rtp_payload(bytes: &[u8]) -> &[u8] {
    RtpReader::new(bytes).map_or(&[], |r| r.payload())
}

/// RFC 5761 §4: on a muxed port, a packet whose second byte (marker bit included)
/// is 192–223, i.e. RTP payload type 64–95, is RTCP; anything else is RTP.
pub fn is_rtcp(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && (192..=223).contains(&bytes[1])
}

/// Summary of a valid compound RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpInfo {
    /// Number of RTCP packets in the compound.
    pub packets: usize,
    /// Sender SSRC of the leading SR/RR.
    pub sender_ssrc: u32,
}

/// Validates a compound RTCP packet (RFC 3550 §6.1 and Appendix A.2): every packet
/// is version 2 with a type in 192–223, the length fields add up exactly to the
/// datagram, only the last packet may be padded, and the first is an SR or RR.
pub fn parse_rtcp(bytes: &[u8]) -> Result<RtcpInfo, Malformed> {
    if bytes.len() < 8 {
        return Err(Malformed::TooShort);
    }
    let mut off = 0;
    let mut packets = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        if rest.len() < 4 {
            return Err(Malformed::BadRtcpLength);
        }
        if rest[0] >> 6 != 2 {
            return Err(Malformed::BadVersion);
        }
        if !(192..=223).contains(&rest[1])
            || (packets == 0 && !matches!(rest[1], RTCP_SR | RTCP_RR))
        {
            return Err(Malformed::BadRtcpType);
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return Err(Malformed::BadRtcpLength);
        }
        let padded = rest[0] & 0x20 != 0;
        if padded {
            let last = off + len == bytes.len();
            let pad = usize::from(rest[len - 1]);
            if !last || pad == 0 || pad > len - 4 {
                return Err(Malformed::BadPadding);
            }
        }
        off += len;
        packets += 1;
    }
    Ok(RtcpInfo {
        packets,
        sender_ssrc: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
    })
}

/// Overwrites payload type (keeping the marker bit), sequence number, timestamp
/// and SSRC of an RTP packet already validated by [`parse_rtp`].
pub fn write_rtp_header(
    buf: &mut [u8],
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    buf[1] = (buf[1] & 0x80) | (payload_type & 0x7f);
    buf[2..4].copy_from_slice(&sequence.to_be_bytes());
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// How RTCP is rewritten so it matches the rewritten RTP streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpRewrite {
    /// SSRC the relay sends this sender's RTP under (replaces SR/RR sender SSRC).
    pub sender_ssrc: u32,
    /// Added (wrapping) to the SR's RTP timestamp, like the RTP timestamp offset.
    pub timestamp_offset: u32,
    /// Report blocks about `from` (the SSRC this endpoint saw from the relay) are
    /// rewritten to `to` (the SSRC the other endpoint really sends).
    pub report_ssrc: Option<(u32, u32)>,
    /// Subtracted from the low 16 bits of the extended highest sequence number of
    /// those report blocks, mapping it back to the sequence space the other
    /// endpoint sends in.
    pub report_seq_offset: u16,
}

/// One SR or RR of a compound RTCP packet (RFC 3550 §6.4.1/§6.4.2), as
/// positions in the buffer: nothing borrowed, so a caller may edit the bytes.
struct ReportPacket {
    /// Offset of the packet's header.
    off: usize,
    /// SR (with its 20-byte sender info) or RR.
    is_sr: bool,
    /// Offset of the first report block.
    blocks_at: usize,
    /// End of the packet (clamped to the buffer).
    end: usize,
    /// Report count from the header.
    count: usize,
}

impl ReportPacket {
    /// Offsets of the report blocks that fit inside the packet.
    fn blocks(&self) -> impl Iterator<Item = usize> + use<> {
        let (at, end) = (self.blocks_at, self.end);
        (0..self.count)
            .map(move |i| at + i * REPORT_BLOCK_LEN)
            .take_while(move |b| b + REPORT_BLOCK_LEN <= end)
    }
}

/// The SR and RR packets of a compound already validated by [`parse_rtcp`],
/// in order (other packet types, and an SR too short for its sender info,
/// are skipped).
fn report_packets(buf: &[u8]) -> Vec<ReportPacket> {
    let mut packets = Vec::new();
    let mut off = 0;
    while off + 8 <= buf.len() {
        let len = (usize::from(u16::from_be_bytes([buf[off + 2], buf[off + 3]])) + 1) * 4;
        let end = (off + len).min(buf.len());
        let count = usize::from(buf[off] & 0x1f);
        let (is_sr, blocks_at) = match buf[off + 1] {
            RTCP_SR => (true, off + 28),
            RTCP_RR => (false, off + 8),
            _ => (false, usize::MAX),
        };
        if blocks_at <= end {
            packets.push(ReportPacket {
                off,
                is_sr,
                blocks_at,
                end,
                count,
            });
        }
        off += len;
    }
    packets
}

/// Rewrites the SR/RR packets of a compound already validated by [`parse_rtcp`]
/// (RFC 3550 §6.4.1/§6.4.2 field offsets). Other packet types pass unchanged.
pub fn rewrite_rtcp(buf: &mut [u8], rw: &RtcpRewrite) {
    for p in report_packets(buf) {
        let off = p.off;
        if p.is_sr {
            let ts =
                u32::from_be_bytes([buf[off + 16], buf[off + 17], buf[off + 18], buf[off + 19]]);
            let ts = ts.wrapping_add(rw.timestamp_offset);
            buf[off + 16..off + 20].copy_from_slice(&ts.to_be_bytes());
        }
        buf[off + 4..off + 8].copy_from_slice(&rw.sender_ssrc.to_be_bytes());
        for b in p.blocks() {
            if let Some((from, to)) = rw.report_ssrc
                && buf[b..b + 4] == from.to_be_bytes()
            {
                buf[b..b + 4].copy_from_slice(&to.to_be_bytes());
                let seq = u16::from_be_bytes([buf[b + 10], buf[b + 11]]);
                let seq = seq.wrapping_sub(rw.report_seq_offset);
                buf[b + 10..b + 12].copy_from_slice(&seq.to_be_bytes());
            }
        }
    }
}

/// The `fraction lost` of the report block about `ssrc` in a compound RTCP
/// packet validated by [`parse_rtcp`] (RFC 3550 §6.4.1: lost/expected × 256
/// since the reporter's previous report), from the first SR or RR that has one.
pub fn fraction_lost_about(buf: &[u8], ssrc: u32) -> Option<u8> {
    report_packets(buf)
        .iter()
        .flat_map(ReportPacket::blocks)
        .find(|&b| buf[b..b + 4] == ssrc.to_be_bytes())
        .map(|b| buf[b + 4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut v = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        write_rtp_header(&mut v, pt, seq, ts, ssrc);
        v.extend_from_slice(&[0xd5; 160]);
        v
    }

    /// SR with one report block about `about`.
    pub(crate) fn sr(sender: u32, ts: u32, about: u32) -> Vec<u8> {
        let mut v = vec![0x81, 200, 0, 12];
        v.extend_from_slice(&sender.to_be_bytes());
        v.extend_from_slice(&[0; 8]); // NTP
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&[0; 8]); // counts
        v.extend_from_slice(&about.to_be_bytes());
        v.extend_from_slice(&[0; 20]);
        v
    }

    #[test]
    fn parses_fixed_header() {
        let p = rtp(0, 65535, 0xdead_beef, 42);
        let h = parse_rtp(&p).unwrap();
        assert_eq!(
            (h.payload_type, h.sequence, h.timestamp, h.ssrc),
            (0, 65535, 0xdead_beef, 42)
        );
        assert_eq!(h.payload_len, 160);
        assert!(!h.marker);
    }

    #[test]
    fn csrc_extension_and_padding() {
        // 2 CSRCs, extension of 1 word, 4 bytes of padding.
        let mut p = vec![0xb2, 0x80 | 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 10]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        p.extend_from_slice(&[7; 10]); // payload
        p.extend_from_slice(&[0, 0, 0, 4]); // padding
        let h = parse_rtp(&p).unwrap();
        assert_eq!(
            (h.csrc_count, h.payload_len, h.payload_type, h.marker),
            (2, 10, 8, true)
        );
        let mut bad = p.clone();
        *bad.last_mut().unwrap() = 0;
        assert_eq!(parse_rtp(&bad), Err(Malformed::BadPadding));
        *bad.last_mut().unwrap() = 200;
        assert_eq!(parse_rtp(&bad), Err(Malformed::BadPadding));
        assert_eq!(parse_rtp(&p[..20]), Err(Malformed::HeaderTruncated));
        assert_eq!(parse_rtp(&p[..11]), Err(Malformed::TooShort));
        let mut v1 = p.clone();
        v1[0] = 0x40;
        assert_eq!(parse_rtp(&v1), Err(Malformed::BadVersion));
    }

    #[test]
    fn mux_demux_by_second_byte() {
        assert!(is_rtcp(&sr(1, 2, 3)));
        assert!(!is_rtcp(&rtp(0, 1, 1, 1)));
        assert!(!is_rtcp(&rtp(111, 1, 1, 1)));
        assert!(!is_rtcp(&rtp(96, 1, 1, 1)));
        let mut marked = rtp(96, 1, 1, 1);
        marked[1] |= 0x80; // PT 96 + marker = 224: still RTP
        assert!(!is_rtcp(&marked));
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn rtcp_compound_validation() {
        let mut c = sr(7, 0, 0);
        c.extend_from_slice(&[0x81, 202, 0, 2, 0, 0, 0, 7, 1, 0, 0, 0]); // SDES, 1 chunk
        assert_eq!(
            parse_rtcp(&c),
            Ok(RtcpInfo {
                packets: 2,
                sender_ssrc: 7
            })
        );
        assert_eq!(parse_rtcp(&c[..c.len() - 1]), Err(Malformed::BadRtcpLength));
        let mut first_sdes = c[52..].to_vec();
        first_sdes.extend_from_slice(&sr(7, 0, 0));
        assert_eq!(parse_rtcp(&first_sdes), Err(Malformed::BadRtcpType));
        let mut v1 = c.clone();
        v1[0] = 0x41;
        assert_eq!(parse_rtcp(&v1), Err(Malformed::BadVersion));
        let mut padded_first = c.clone();
        padded_first[0] |= 0x20;
        assert_eq!(parse_rtcp(&padded_first), Err(Malformed::BadPadding));
        assert_eq!(parse_rtcp(&c[..7]), Err(Malformed::TooShort));
    }

    #[test]
    fn rtcp_rewrite_sender_ts_and_report_blocks() {
        let mut p = sr(0x1111, 1000, 0xaaaa);
        rewrite_rtcp(
            &mut p,
            &RtcpRewrite {
                sender_ssrc: 0x2222,
                timestamp_offset: u32::MAX,
                report_ssrc: Some((0xaaaa, 0xbbbb)),
                report_seq_offset: 10,
            },
        );
        assert_eq!(parse_rtcp(&p).unwrap().sender_ssrc, 0x2222);
        assert_eq!(&p[16..20], &999u32.to_be_bytes());
        assert_eq!(&p[28..32], &0xbbbbu32.to_be_bytes());
        assert_eq!(&p[36..40], &[0, 0, 0xff, 0xf6], "highest seq 0 - 10");
        let mut other = sr(0x1111, 1000, 0xcccc);
        rewrite_rtcp(
            &mut other,
            &RtcpRewrite {
                sender_ssrc: 5,
                timestamp_offset: 0,
                report_ssrc: Some((0xaaaa, 0xbbbb)),
                report_seq_offset: 10,
            },
        );
        assert_eq!(
            &other[28..32],
            &0xccccu32.to_be_bytes(),
            "unrelated block untouched"
        );
    }

    #[test]
    fn fraction_lost_of_the_block_about_an_ssrc() {
        // An SR whose block is about another source, then an RR with two
        // blocks: the second is about ours, 64/256 lost.
        let mut c = sr(0x1111, 0, 0xcccc);
        c[32] = 200;
        let mut rr = vec![0x82, 201, 0, 13];
        rr.extend_from_slice(&0x1111u32.to_be_bytes());
        for (about, lost) in [(0xdddd_u32, 7u8), (0xaaaa, 64)] {
            rr.extend_from_slice(&about.to_be_bytes());
            rr.push(lost);
            rr.extend_from_slice(&[0; 19]);
        }
        c.extend_from_slice(&rr);
        assert!(parse_rtcp(&c).is_ok());
        assert_eq!(fraction_lost_about(&c, 0xaaaa), Some(64));
        assert_eq!(fraction_lost_about(&c, 0xcccc), Some(200));
        assert_eq!(fraction_lost_about(&c, 0xeeee), None);
        // A count larger than the blocks present stops at the packet's end.
        let mut short = sr(0x1111, 0, 0xaaaa);
        short[0] = 0x85;
        assert_eq!(fraction_lost_about(&short, 0xbbbb), None);
    }
}
