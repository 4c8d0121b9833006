//! RTP on the wire for the real-peer tests:
//!
//! * [`write_pcmu_pcap`]: a pcap of G.711 µ-law RTP (a 1 kHz tone, 20 ms
//!   packets) for SIPp's `play_pcap_audio`;
//! * [`WireCounter`]: counts the UDP datagrams that really cross the
//!   loopback to or from given ports ([`super::media::WireCapture`]: a raw
//!   IPv4/UDP socket, to which the kernel hands a copy of every UDP datagram
//!   delivered locally). Like SIPp's pcap play it needs root or CAP_NET_RAW.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::media::{Datagram, WireCapture};

/// G.711 µ-law encoding of one 16-bit sample (ITU-T G.711, with the usual
/// bias of 0x84 and clip at 32635).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Payload type, SSRC and size of the packets [`write_pcmu_pcap`] writes.
pub const PCAP_PT: u8 = 0;
pub const PCAP_SSRC: u32 = 0x5EED_0001;
pub const PCAP_PAYLOAD: usize = 160;

/// Writes a pcap (Ethernet link type) of `packets` RTP packets, PCMU, 20 ms
/// (160 samples) each, a 1 kHz tone, sequence numbers from 1, 20 ms apart.
/// SIPp's `play_pcap_audio` replaces the addresses and ports with the call's.
pub fn write_pcmu_pcap(path: &Path, packets: usize) {
    let mut out = Vec::new();
    // global header: magic, v2.4, tz 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let (src_port, dst_port) = (5000u16, 6000u16);
    for i in 0..packets {
        let seq = (i + 1) as u16;
        let ts = (i as u32) * 160;
        let mut rtp = Vec::with_capacity(12 + PCAP_PAYLOAD);
        rtp.push(0x80);
        rtp.push(if i == 0 { 0x80 | PCAP_PT } else { PCAP_PT });
        rtp.extend_from_slice(&seq.to_be_bytes());
        rtp.extend_from_slice(&ts.to_be_bytes());
        rtp.extend_from_slice(&PCAP_SSRC.to_be_bytes());
        for k in 0..PCAP_PAYLOAD {
            let n = (i * PCAP_PAYLOAD + k) as f64;
            let v = 8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n / 8000.0).sin();
            rtp.push(linear_to_ulaw(v as i16));
        }
        let udp_len = (8 + rtp.len()) as u16;
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + usize::from(ip_len));
        frame.extend_from_slice(&[0u8; 12]); // MAC addresses
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&ip_len.to_be_bytes());
        ip.extend_from_slice(&seq.to_be_bytes()); // identification
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]); // DF, TTL 64, UDP, checksum
        ip.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        let sum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&src_port.to_be_bytes());
        frame.extend_from_slice(&dst_port.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes()); // SIPp recomputes it
        frame.extend_from_slice(&rtp);
        let usec = (i as u64) * 20_000;
        out.extend_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    fs::write(path, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One UDP datagram seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WirePacket {
    pub src_port: u16,
    pub dst_port: u16,
    /// UDP payload length.
    pub len: usize,
    /// RTP payload type, if the payload looks like RTP (version 2, not an
    /// RTCP packet type).
    pub rtp_pt: Option<u8>,
    pub rtp_seq: Option<u16>,
    pub rtp_ssrc: Option<u32>,
}

/// Counts UDP datagrams to or from some ports while it runs: a
/// [`WireCapture`] whose datagrams are summarised as [`WirePacket`]s.
pub struct WireCounter {
    capture: WireCapture,
}

impl WireCounter {
    /// Starts counting datagrams whose source or destination port is in
    /// `ports` (IPv4, any address). Fails the test with a hint if the raw
    /// socket cannot be opened (root or CAP_NET_RAW needed).
    pub fn start(ports: &[u16]) -> WireCounter {
        WireCounter {
            capture: WireCapture::start(ports),
        }
    }

    /// Stops counting (after draining what the kernel queued) and returns
    /// what was seen.
    pub fn stop(self) -> WireLog {
        WireLog {
            packets: self.capture.stop().iter().map(WirePacket::of).collect(),
        }
    }
}

impl WirePacket {
    /// The summary of a captured datagram.
    fn of(d: &Datagram) -> WirePacket {
        let payload = &d.bytes;
        let is_rtp = payload.len() >= 12
            && payload[0] >> 6 == 2
            && !(72..=76).contains(&(payload[1] & 0x7f));
        WirePacket {
            src_port: d.src_port,
            dst_port: d.dst_port,
            len: payload.len(),
            rtp_pt: is_rtp.then(|| payload[1] & 0x7f),
            rtp_seq: is_rtp.then(|| u16::from_be_bytes([payload[2], payload[3]])),
            rtp_ssrc: is_rtp
                .then(|| u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]])),
        }
    }
}

/// The datagrams a [`WireCounter`] saw.
#[derive(Debug, Clone, Default)]
pub struct WireLog {
    pub packets: Vec<WirePacket>,
}

impl WireLog {
    /// RTP packets matching `f`.
    pub fn rtp(&self, f: impl Fn(&WirePacket) -> bool) -> Vec<WirePacket> {
        self.packets
            .iter()
            .filter(|p| p.rtp_pt.is_some() && f(p))
            .copied()
            .collect()
    }

    /// RTP packets sent to `port`.
    pub fn rtp_to(&self, port: u16) -> Vec<WirePacket> {
        self.rtp(|p| p.dst_port == port)
    }

    /// RTP packets sent from `port`.
    pub fn rtp_from(&self, port: u16) -> Vec<WirePacket> {
        self.rtp(|p| p.src_port == port)
    }

    /// Datagram counts per (source port, destination port), for messages.
    pub fn flows(&self) -> String {
        let mut m: BTreeMap<(u16, u16), (usize, usize)> = BTreeMap::new();
        for p in &self.packets {
            let e = m.entry((p.src_port, p.dst_port)).or_default();
            e.0 += 1;
            if p.rtp_pt.is_some() {
                e.1 += 1;
            }
        }
        if m.is_empty() {
            return "no datagram seen".into();
        }
        m.iter()
            .map(|((s, d), (n, r))| format!(":{s} -> :{d}: {n} datagrams ({r} RTP)"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Distinct sequence numbers among `packets` (duplicates would hide losses).
pub fn distinct_seqs(packets: &[WirePacket]) -> usize {
    let mut s: Vec<u16> = packets.iter().filter_map(|p| p.rtp_seq).collect();
    s.sort_unstable();
    s.dedup();
    s.len()
}

/// SIPp's `-rtp_echo` count, from its screen output: the last
/// `N Total echo RTP pckts 1st stream` line.
pub fn sipp_echo_count(screen: &str) -> Option<u64> {
    screen
        .lines()
        .rev()
        .find(|l| l.contains("Total echo RTP pckts 1st stream"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
    }

    #[test]
    fn udp_parse_and_echo_count() {
        let mut b = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        b.extend_from_slice(&6100u16.to_be_bytes());
        b.extend_from_slice(&20000u16.to_be_bytes());
        b.extend_from_slice(&[0, 20, 0, 0]);
        b.extend_from_slice(&[0x80, 0, 0, 7, 0, 0, 0, 0, 1, 2, 3, 4]);
        let d = super::super::media::parse_ipv4_udp(&b, std::time::Instant::now()).unwrap();
        let p = WirePacket::of(&d);
        assert_eq!((p.src_port, p.dst_port), (6100, 20000));
        assert_eq!(
            (p.rtp_pt, p.rtp_seq, p.rtp_ssrc),
            (Some(0), Some(7), Some(0x01020304))
        );
        let screen = "  10 Total echo RTP pckts 1st stream  1.0 kB/s\n  \
                      250 Total echo RTP pckts 1st stream  0.0 kB/s\n";
        assert_eq!(sipp_echo_count(screen), Some(250));
    }
}
