//! Pure rewrites of addresses, origin and transport security: each takes an
//! [`Sdp`] and returns a new one, every untouched line kept byte for byte.

use std::net::IpAddr;

use super::model::{Line, MediaSection, Sdp};
use super::view::{Attribute, Connection, Origin, View, addrtype};

/// Replaces a unicast `c=` by the relay address; an old-style hold
/// (`c=0.0.0.0`, RFC 3264 §8.4) stays a hold.
fn anchored_connection(line: &Line, addr: IpAddr) -> Line {
    match line.view() {
        View::Connection(c) if !c.is_hold() => {
            let new = Connection {
                nettype: c.nettype.clone(),
                ..Connection::for_ip(addr)
            };
            if &new == c {
                line.clone()
            } else {
                Line::from_view(View::Connection(new))
            }
        }
        _ => line.clone(),
    }
}

/// Points the media at a relay (RFC 3264 §8.3.1/§8.3.2): every unicast `c=`
/// (session and media level) becomes `addr`, the port of m-line `i` becomes
/// `ports[i]`, and `a=rtcp` (RFC 3605) follows (same port under rtcp-mux
/// style `a=rtcp:<rtp port>`, else RTP port + 1).
///
/// Holds stay meaningful: `c=0.0.0.0`/`c=::` and direction attributes are
/// kept; a rejected stream (port 0) stays rejected; m-lines beyond
/// `ports.len()` keep their port. ICE candidates are not touched (see
/// [`strip_for_plain_rtp_trunk`]).
pub fn anchor(sdp: &Sdp, addr: IpAddr, ports: &[u16]) -> Sdp {
    let session = sdp
        .session
        .iter()
        .map(|l| anchored_connection(l, addr))
        .collect();
    let media = sdp
        .media
        .iter()
        .enumerate()
        .map(|(i, section)| {
            let old_port = section.desc.port;
            let new_port = match ports.get(i) {
                Some(&p) if old_port != 0 => p,
                _ => old_port,
            };
            let lines = section
                .lines
                .iter()
                .map(|line| match line.attribute() {
                    Some(Attribute::Rtcp { port, connection }) if new_port != old_port => {
                        let port = if *port == old_port {
                            new_port
                        } else {
                            new_port.saturating_add(1)
                        };
                        let connection = connection.as_ref().map(|c| match c.is_hold() {
                            true => c.clone(),
                            false => Connection::for_ip(addr),
                        });
                        Line::attr(Attribute::Rtcp { port, connection })
                    }
                    _ => anchored_connection(line, addr),
                })
                .collect();
            let mut out = MediaSection {
                lines,
                ..section.clone()
            };
            out.set_media_line(super::view::MediaLine {
                port: new_port,
                ..section.desc.clone()
            });
            out
        })
        .collect();
    Sdp { session, media }
}

/// Sets the port of m-line `i` to `ports[i]` and nothing else: port 0
/// refuses a stream (RFC 3264 §6), e.g. the video a B2BUA does not anchor.
/// m-lines beyond `ports.len()` are unchanged.
pub fn set_ports(sdp: &Sdp, ports: &[u16]) -> Sdp {
    let media = sdp
        .media
        .iter()
        .enumerate()
        .map(|(i, section)| {
            let mut out = section.clone();
            if let Some(&port) = ports.get(i) {
                out.set_media_line(super::view::MediaLine {
                    port,
                    ..section.desc.clone()
                });
            }
            out
        })
        .collect();
    Sdp {
        session: sdp.session.clone(),
        media,
    }
}

/// Replaces `o=` with our own origin (RFC 8866 §5.2): a B2BUA presents one
/// origin per leg and keeps `username`/`sess_id` stable across the dialog.
pub fn set_origin(sdp: &Sdp, username: &str, sess_id: u64, version: u64, addr: IpAddr) -> Sdp {
    let origin = Origin {
        username: username.to_string(),
        sess_id: sess_id.to_string(),
        sess_version: version,
        nettype: "IN".into(),
        addrtype: addrtype(addr).into(),
        address: addr.to_string(),
    };
    replace_origin(sdp, |_| origin.clone())
}

fn replace_origin(sdp: &Sdp, f: impl Fn(&Origin) -> Origin) -> Sdp {
    let session = sdp
        .session
        .iter()
        .map(|line| match line.view() {
            View::Origin(o) => {
                let new = f(o);
                if &new == o {
                    line.clone()
                } else {
                    Line::from_view(View::Origin(new))
                }
            }
            _ => line.clone(),
        })
        .collect();
    Sdp {
        session,
        media: sdp.media.clone(),
    }
}

/// Gives `next` the session version RFC 3264 §8 asks for relative to
/// `previous`, the last SDP sent in this session: the same version when
/// nothing but `o=` differs, else `previous` + 1.
pub fn version_after(previous: &Sdp, next: &Sdp) -> Sdp {
    let prev = previous.origin().map_or(0, |o| o.sess_version);
    let changed = previous.content_without_origin() != next.content_without_origin();
    let version = if changed { prev.wrapping_add(1) } else { prev };
    replace_origin(next, |o| Origin {
        sess_version: version,
        ..o.clone()
    })
}

/// What [`strip_for_plain_rtp_trunk_with`] removes besides ICE and SRTP keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripOptions {
    /// Remove `a=rtcp-mux` (RFC 5761), which many trunks do not support.
    pub remove_rtcp_mux: bool,
}

impl Default for StripOptions {
    fn default() -> Self {
        StripOptions {
            remove_rtcp_mux: true,
        }
    }
}

/// [`strip_for_plain_rtp_trunk_with`] with the default options (rtcp-mux removed).
pub fn strip_for_plain_rtp_trunk(sdp: &Sdp) -> Sdp {
    strip_for_plain_rtp_trunk_with(sdp, &StripOptions::default())
}

/// Makes a WebRTC/platform SDP fit a plain-RTP UDP trunk (interop.md,
/// "strip ICE candidates, crypto…"): drops ICE (RFC 8839 §5), SDES keys
/// (RFC 4568), DTLS fingerprint/setup (RFC 8122, RFC 4145) and optionally
/// rtcp-mux, and turns SAVP/SAVPF/DTLS profiles into `RTP/AVP` (RFC 3551).
pub fn strip_for_plain_rtp_trunk_with(sdp: &Sdp, opts: &StripOptions) -> Sdp {
    let keep = |line: &Line| match line.attribute() {
        Some(
            Attribute::IceUfrag(_)
            | Attribute::IcePwd(_)
            | Attribute::IceLite
            | Attribute::Candidate(_)
            | Attribute::EndOfCandidates
            | Attribute::Crypto { .. }
            | Attribute::Fingerprint { .. }
            | Attribute::Setup(_),
        ) => false,
        Some(Attribute::RtcpMux) => !opts.remove_rtcp_mux,
        Some(Attribute::Other { name, .. }) => {
            !(name.starts_with("ice-") || name == "remote-candidates")
        }
        _ => true,
    };
    let session = sdp.session.iter().filter(|l| keep(l)).cloned().collect();
    let media = sdp
        .media
        .iter()
        .map(|section| {
            let lines = section.lines.iter().filter(|l| keep(l)).cloned().collect();
            let proto = match section.desc.proto.as_str() {
                "RTP/SAVP" | "RTP/SAVPF" | "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF" => "RTP/AVP",
                p => p,
            };
            section.with_lines_and_proto(lines, proto)
        })
        .collect();
    Sdp { session, media }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "v=0\r\no=- 7 3 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\na=ice-lite\r\na=ice-options:trickle\r\nm=audio 50000 RTP/SAVPF 0 101\r\nc=IN IP4 192.0.2.11\r\na=rtcp:50001 IN IP4 192.0.2.11\r\na=ice-ufrag:abc\r\na=ice-pwd:defghijklmnopqrstuvwxy\r\na=candidate:1 1 UDP 2130706431 192.0.2.11 50000 typ host\r\na=end-of-candidates\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=rtcp-mux\r\na=x-keep:1\r\nm=video 0 RTP/AVP 31\r\n";

    fn parse(s: &str) -> Sdp {
        Sdp::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn anchor_rewrites_addresses_ports_and_rtcp() {
        let relay: IpAddr = "203.0.113.5".parse().unwrap();
        let out = anchor(&parse(WEB), relay, &[40000, 40002]).to_string();
        assert!(out.contains("c=IN IP4 203.0.113.5\r\nt=0 0"));
        assert!(out.contains("m=audio 40000 RTP/SAVPF 0 101\r\nc=IN IP4 203.0.113.5\r\na=rtcp:40001 IN IP4 203.0.113.5\r\n"));
        assert!(
            out.contains("m=video 0 RTP/AVP 31"),
            "rejected stream stays rejected"
        );
        assert!(
            out.contains("o=- 7 3 IN IP4 192.0.2.10"),
            "origin untouched"
        );
        let v6 = anchor(&parse(WEB), "2001:db8::5".parse().unwrap(), &[40000]);
        assert_eq!(v6.connection().unwrap().to_string(), "IN IP6 2001:db8::5");
    }

    #[test]
    fn anchor_keeps_holds() {
        let hold = "v=0\r\no=- 1 2 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4000\r\na=sendonly\r\n";
        let out = anchor(&parse(hold), "203.0.113.5".parse().unwrap(), &[6000]).to_string();
        assert!(out.contains("c=IN IP4 0.0.0.0\r\n"));
        assert!(out.contains("m=audio 6000 RTP/AVP 0\r\na=rtcp:6000\r\na=sendonly\r\n"));
    }

    #[test]
    fn origin_and_version() {
        let sdp = parse(WEB);
        let ours = set_origin(&sdp, "callgate", 42, 1, "2001:db8::1".parse().unwrap());
        assert_eq!(
            ours.session_lines()[1].raw(),
            b"o=callgate 42 1 IN IP6 2001:db8::1"
        );
        let same = version_after(
            &ours,
            &set_origin(&sdp, "callgate", 42, 9, "2001:db8::1".parse().unwrap()),
        );
        assert_eq!(same.origin().unwrap().sess_version, 1);
        let changed = anchor(&ours, "203.0.113.5".parse().unwrap(), &[1]);
        assert_eq!(
            version_after(&ours, &changed)
                .origin()
                .unwrap()
                .sess_version,
            2
        );
    }

    #[test]
    fn strip_removes_ice_and_srtp() {
        let out = strip_for_plain_rtp_trunk(&parse(WEB)).to_string();
        for gone in [
            "ice-",
            "candidate",
            "crypto",
            "fingerprint",
            "setup",
            "rtcp-mux",
            "SAVPF",
        ] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        assert!(out.contains("m=audio 50000 RTP/AVP 0 101\r\nc=IN IP4 192.0.2.11\r\na=rtcp:50001 IN IP4 192.0.2.11\r\na=x-keep:1\r\n"));
        Sdp::parse(out.as_bytes()).unwrap();
        let keep_mux = strip_for_plain_rtp_trunk_with(
            &parse(WEB),
            &StripOptions {
                remove_rtcp_mux: false,
            },
        );
        assert!(keep_mux.media()[0].has_attribute("rtcp-mux"));
    }
}
