//! [`Context`]: one direction of SRTP and SRTCP under one master key
//! (RFC 3711 §3.2), with per-SSRC state (rollover counter, replay window,
//! SRTCP index).
//!
//! ```text
//!  SRTP   | RTP header | encrypted payload | tag (80/32 bits) |
//!           ^ authenticated ───────────────^ + ROC (not sent)
//!  SRTCP  | first 8 bytes | encrypted rest | E | index (31) | tag (80 bits) |
//!           ^ authenticated ──────────────────────────────^
//! ```
//!
//! State for an SSRC is created only by a packet that authenticated (or
//! that we protect), so forged SSRCs cannot fill the table; at most
//! [`MAX_STREAMS`] are kept, the least recently used is forgotten.

use hmac::Mac;
use subtle::ConstantTimeEq;

use super::SrtpError;
use super::kdf::{SRTCP_LABELS, SRTP_LABELS, SessionKeys};
use super::replay::ReplayWindow;
use super::sdes::MasterKey;
use super::suite::Suite;

/// SSRCs remembered per context.
pub const MAX_STREAMS: usize = 16;

/// Largest SRTP packet index (48 bits, §3.3.1) and SRTCP index (31 bits, §3.4).
const MAX_RTP_INDEX: u64 = (1 << 48) - 1;
const MAX_RTCP_INDEX: u32 = (1 << 31) - 1;

/// Length of the E flag + SRTCP index word.
const E_INDEX_LEN: usize = 4;

#[derive(Debug, Clone)]
struct Stream {
    ssrc: u32,
    /// SRTP indices seen (its top is ROC · 2^16 + s_l).
    rtp: ReplayWindow,
    /// SRTCP indices received.
    rtcp: ReplayWindow,
    /// Next SRTCP index to send.
    rtcp_next: u32,
    /// Last use, for eviction.
    used: u64,
}

/// SRTP and SRTCP keys of one direction, and its streams.
#[derive(Debug)]
pub struct Context {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: Vec<Stream>,
    clock: u64,
}

/// The packet index of `seq` given the highest index so far (RFC 3711
/// Appendix A): the guess of the rollover counter that puts `seq` closest
/// to `s_l`. `None` when that guess is before the first rollover period.
fn estimate(top: Option<u64>, seq: u16) -> Option<u64> {
    let Some(top) = top else {
        return Some(u64::from(seq)); // ROC starts at 0 (§3.3.1)
    };
    let roc = (top >> 16) as i64;
    let s_l = (top & 0xffff) as i64;
    let seq_i = i64::from(seq);
    let v = if s_l < 32768 {
        if seq_i - s_l > 32768 { roc - 1 } else { roc }
    } else if s_l - 32768 > seq_i {
        roc + 1
    } else {
        roc
    };
    (v >= 0).then(|| ((v as u64) << 16) | u64::from(seq))
}

/// Length of the RTP header (fixed part, CSRCs, extension) inside
/// `packet[..end]`.
fn rtp_header_len(packet: &[u8], end: usize) -> Result<usize, SrtpError> {
    if end < 12 || end > packet.len() {
        return Err(SrtpError::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::BadHeader);
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        if len + 4 > end {
            return Err(SrtpError::BadHeader);
        }
        let words = u16::from_be_bytes([packet[len + 2], packet[len + 3]]);
        len += 4 + 4 * usize::from(words);
    }
    if len > end {
        return Err(SrtpError::BadHeader);
    }
    Ok(len)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Context {
    /// A context for `suite` under `master` (session keys derived at once).
    pub fn new(suite: Suite, master: &MasterKey) -> Context {
        Context {
            suite,
            rtp: SessionKeys::derive(master, SRTP_LABELS),
            rtcp: SessionKeys::derive(master, SRTCP_LABELS),
            streams: Vec::new(),
            clock: 0,
        }
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn find(&mut self, ssrc: u32) -> Option<usize> {
        self.clock += 1;
        let i = self.streams.iter().position(|s| s.ssrc == ssrc)?;
        self.streams[i].used = self.clock;
        Some(i)
    }

    /// The stream of `ssrc`, created (evicting the least recently used one
    /// when full) if new.
    fn stream(&mut self, ssrc: u32) -> &mut Stream {
        let i = match self.find(ssrc) {
            Some(i) => i,
            None => {
                let fresh = Stream {
                    ssrc,
                    rtp: ReplayWindow::default(),
                    rtcp: ReplayWindow::default(),
                    rtcp_next: 0,
                    used: self.clock,
                };
                if self.streams.len() < MAX_STREAMS {
                    self.streams.push(fresh);
                    self.streams.len() - 1
                } else {
                    let (lru, _) = self
                        .streams
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.used)
                        .unwrap_or((0, &self.streams[0]));
                    self.streams[lru] = fresh;
                    lru
                }
            }
        };
        &mut self.streams[i]
    }

    fn tag(keys: &SessionKeys, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = keys.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Encrypts an RTP packet in place and appends its tag (RFC 3711 §3.3).
    /// The rollover counter follows the packet's sequence numbers.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header = rtp_header_len(packet, packet.len())?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = be32(&packet[8..12]);
        let top = self.find(ssrc).and_then(|i| self.streams[i].rtp.top());
        let index = estimate(top, seq).unwrap_or(u64::from(seq));
        if index > MAX_RTP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        self.rtp.apply_keystream(ssrc, index, &mut packet[header..]);
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = Self::tag(&self.rtp, &[packet, &roc]);
        packet.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        self.stream(ssrc).rtp.accept(index);
        Ok(())
    }

    /// Checks and decrypts an SRTP packet in place, removing its tag
    /// (RFC 3711 §3.3): index estimate, replay check, tag, decryption.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let end = packet
            .len()
            .checked_sub(self.suite.rtp_tag_len())
            .ok_or(SrtpError::TooShort)?;
        let header = rtp_header_len(packet, end)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = be32(&packet[8..12]);
        let found = self.find(ssrc);
        let window = found.map(|i| self.streams[i].rtp).unwrap_or_default();
        let index = estimate(window.top(), seq).ok_or(SrtpError::Replayed)?;
        if !window.check(index) {
            return Err(SrtpError::Replayed);
        }
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = Self::tag(&self.rtp, &[&packet[..end], &roc]);
        if !bool::from(tag[..self.suite.rtp_tag_len()].ct_eq(&packet[end..])) {
            return Err(SrtpError::AuthFailed);
        }
        self.rtp
            .apply_keystream(ssrc, index, &mut packet[header..end]);
        packet.truncate(end);
        self.stream(ssrc).rtp.accept(index);
        Ok(())
    }

    /// Encrypts an RTCP compound packet in place (E = 1) and appends the
    /// SRTCP index and tag (RFC 3711 §3.4).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::TooShort);
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::BadHeader);
        }
        let ssrc = be32(&packet[4..8]);
        let stream = self.stream(ssrc);
        let index = stream.rtcp_next;
        if index > MAX_RTCP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        stream.rtcp_next += 1;
        self.rtcp
            .apply_keystream(ssrc, u64::from(index), &mut packet[8..]);
        packet.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = Self::tag(&self.rtcp, &[packet]);
        packet.extend_from_slice(&tag[..self.suite.rtcp_tag_len()]);
        Ok(())
    }

    /// Checks and decrypts an SRTCP packet in place, removing the E flag,
    /// index and tag (RFC 3711 §3.4). A packet sent with E = 0 is only
    /// authenticated.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.suite.rtcp_tag_len();
        if packet.len() < 8 + E_INDEX_LEN + tag_len {
            return Err(SrtpError::TooShort);
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::BadHeader);
        }
        let end = packet.len() - tag_len;
        let e_index = be32(&packet[end - E_INDEX_LEN..end]);
        let index = u64::from(e_index & MAX_RTCP_INDEX);
        let ssrc = be32(&packet[4..8]);
        let found = self.find(ssrc);
        let window = found.map(|i| self.streams[i].rtcp).unwrap_or_default();
        if !window.check(index) {
            return Err(SrtpError::Replayed);
        }
        let tag = Self::tag(&self.rtcp, &[&packet[..end]]);
        if !bool::from(tag[..tag_len].ct_eq(&packet[end..])) {
            return Err(SrtpError::AuthFailed);
        }
        let body_end = end - E_INDEX_LEN;
        if e_index & 0x8000_0000 != 0 {
            self.rtcp
                .apply_keystream(ssrc, index, &mut packet[8..body_end]);
        }
        packet.truncate(body_end);
        self.stream(ssrc).rtcp.accept(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_estimate_follows_appendix_a() {
        assert_eq!(estimate(None, 65000), Some(65000));
        // Near the wrap: a small seq after a large s_l is the next ROC.
        assert_eq!(estimate(Some(65530), 3), Some((1 << 16) | 3));
        // A late packet from before the wrap keeps the old ROC.
        assert_eq!(estimate(Some((1 << 16) | 3), 65530), Some(65530));
        assert_eq!(estimate(Some((5 << 16) | 100), 200), Some((5 << 16) | 200));
        // Before ROC 0: no index.
        assert_eq!(estimate(Some(10), 60000), None);
    }

    #[test]
    fn header_length_counts_csrcs_and_extension() {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(rtp_header_len(&p, p.len()), Ok(12));
        p[0] = 0x91; // X + one CSRC
        p.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(rtp_header_len(&p, p.len()), Err(SrtpError::BadHeader));
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
        assert_eq!(rtp_header_len(&p, p.len()), Ok(24));
        assert_eq!(rtp_header_len(&p, 20), Err(SrtpError::BadHeader));
        assert_eq!(rtp_header_len(&p[..5], 5), Err(SrtpError::TooShort));
        p[0] = 0x40;
        assert_eq!(rtp_header_len(&p, p.len()), Err(SrtpError::BadHeader));
    }
}
