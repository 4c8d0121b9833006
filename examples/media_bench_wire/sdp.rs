//! The SDP both gateways get: an Opus-only caller and a PCMU-only callee.

use std::net::{IpAddr, SocketAddr};

/// The caller's Opus payload type.
pub const OPUS_PT: u8 = 111;

/// The caller's offer: Opus only (RFC 7587), 20 ms.
pub fn caller_sdp(id: usize, port: u16) -> String {
    format!(
        "v=0\r\no=caller {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {OPUS_PT}\r\na=rtpmap:{OPUS_PT} opus/48000/2\r\n\
         a=fmtp:{OPUS_PT} minptime=10;useinbandfec=1\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The callee's answer: PCMU only, 20 ms.
pub fn callee_sdp(id: usize, port: u16) -> String {
    format!(
        "v=0\r\no=callee {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The media address of an SDP body and the payload types of its `m=audio`.
pub fn sdp_media(body: &str) -> Option<(SocketAddr, String)> {
    let mut ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut fmts = String::new();
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip = c.trim().parse().ok().or(ip);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            let mut it = m.split_whitespace();
            port = it.next().and_then(|p| p.parse().ok());
            fmts = it.skip(1).collect::<Vec<_>>().join(" ");
        }
    }
    Some((SocketAddr::new(ip?, port?), fmts))
}
