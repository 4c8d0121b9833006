//! Typed views of single SDP lines (RFC 8866 §5) and of the attributes we
//! understand; everything else is [`View::Other`] / [`Attribute::Other`].

use std::fmt;
use std::net::IpAddr;

pub use super::direction::Direction;

/// The typed reading of one line; the raw bytes stay in [`Line`](super::Line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// `v=0` (RFC 8866 §5.1).
    Version(u32),
    /// `o=` (RFC 8866 §5.2).
    Origin(Origin),
    /// `s=` (RFC 8866 §5.3).
    SessionName(String),
    /// `c=` (RFC 8866 §5.7).
    Connection(Connection),
    /// `b=` (RFC 8866 §5.8).
    Bandwidth(Bandwidth),
    /// `t=` (RFC 8866 §5.9).
    Timing(u64, u64),
    /// `m=` (RFC 8866 §5.14).
    Media(MediaLine),
    /// `a=` (RFC 8866 §5.13).
    Attribute(Attribute),
    /// Any other line type (`i u e p z k r` and unknown letters): raw bytes only.
    Other,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id: a numeric string.
    pub sess_id: String,
    /// Session version, bumped on every change (RFC 3264 §8).
    pub sess_version: u64,
    /// Network type, `IN`.
    pub nettype: String,
    /// `IP4` or `IP6`.
    pub addrtype: String,
    /// Unicast address or FQDN.
    pub address: String,
}

/// `c=<nettype> <addrtype> <address>[/<ttl>][/<count>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub nettype: String,
    /// `IP4` or `IP6`.
    pub addrtype: String,
    /// The address without the `/ttl/count` suffix.
    pub address: String,
    /// The `/ttl/count` suffix for multicast, kept verbatim (without the first `/`).
    pub suffix: Option<String>,
}

impl Connection {
    /// A unicast `IN IP4|IP6 <addr>` connection for `addr`.
    pub fn for_ip(addr: IpAddr) -> Connection {
        Connection {
            nettype: "IN".into(),
            addrtype: addrtype(addr).into(),
            address: addr.to_string(),
            suffix: None,
        }
    }

    /// The address as an IP, `None` for an FQDN.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Old-style hold: `c=0.0.0.0` (RFC 3264 §8.4) or `c=::`.
    pub fn is_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `IP4` or `IP6` for an address (RFC 8866 §5.7).
pub fn addrtype(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "IP4" } else { "IP6" }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`…
    pub bwtype: String,
    /// Value in the unit of the type.
    pub value: u64,
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// `audio`, `video`, `application`…
    pub media: String,
    /// Transport port; 0 rejects/disables the stream (RFC 3264 §6).
    pub port: u16,
    /// Optional `/<number of ports>`.
    pub num_ports: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`…
    pub proto: String,
    /// Format list; payload type numbers for RTP protocols.
    pub fmts: Vec<String>,
}

/// An `a=` attribute (RFC 8866 §6 and the RFCs named per variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<params>]` (RFC 8866 §6.6).
    Rtpmap {
        /// Payload type.
        pt: u8,
        /// Encoding name as written (`opus`, `PCMU`).
        encoding: String,
        /// RTP clock rate.
        clock_rate: u32,
        /// Encoding parameters (audio: channel count).
        params: Option<String>,
    },
    /// `a=fmtp:<fmt> <params>` (RFC 8866 §6.15).
    Fmtp {
        /// The format (payload type) it applies to.
        fmt: String,
        /// Parameters, verbatim.
        params: String,
    },
    /// `a=ptime:<ms>` (RFC 8866 §6.4).
    Ptime(u32),
    /// `a=maxptime:<ms>` (RFC 8866 §6.5).
    MaxPtime(u32),
    /// `a=sendrecv|sendonly|recvonly|inactive` (RFC 8866 §6.7).
    Direction(Direction),
    /// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
    Rtcp {
        /// RTCP port.
        port: u16,
        /// Optional address.
        connection: Option<Connection>,
    },
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    RtcpMux,
    /// `a=rtcp-fb:<fmt> <value>` (RFC 4585 §4.2).
    RtcpFb {
        /// Payload type or `*`.
        fmt: String,
        /// Feedback type and parameters, verbatim.
        value: String,
    },
    /// `a=crypto:<tag> <suite> <key-params> [<session-params>]` (RFC 4568 §9.1).
    Crypto {
        /// Tag.
        tag: u32,
        /// Crypto suite, e.g. `AES_CM_128_HMAC_SHA1_80`.
        suite: String,
        /// `inline:<key||salt>[|lifetime][|MKI:len]`, verbatim.
        key_params: String,
        /// Session parameters, verbatim.
        session_params: Option<String>,
    },
    /// `a=fingerprint:<hash> <value>` (RFC 8122 §5).
    Fingerprint {
        /// Hash function name.
        hash: String,
        /// Hex fingerprint.
        value: String,
    },
    /// `a=setup:<role>` (RFC 4145 §4).
    Setup(String),
    /// `a=ice-ufrag:` (RFC 8839 §5.4).
    IceUfrag(String),
    /// `a=ice-pwd:` (RFC 8839 §5.4).
    IcePwd(String),
    /// `a=ice-lite` (RFC 8839 §5.3).
    IceLite,
    /// `a=candidate:` value, verbatim (RFC 8839 §5.1).
    Candidate(String),
    /// `a=end-of-candidates` (RFC 8840 §8.2).
    EndOfCandidates,
    /// `a=mid:` (RFC 9143 §4 / RFC 5888 §4).
    Mid(String),
    /// `a=group:<semantics> <mid>...` (RFC 5888 §5).
    Group {
        /// `BUNDLE`, `LS`…
        semantics: String,
        /// Identification tags.
        mids: Vec<String>,
    },
    /// Any other attribute: name and optional value.
    Other {
        /// Attribute name.
        name: String,
        /// Value after the first `:`.
        value: Option<String>,
    },
}

impl Attribute {
    /// The attribute name (`rtpmap`, `x-custom`…).
    pub fn name(&self) -> &str {
        match self {
            Attribute::Rtpmap { .. } => "rtpmap",
            Attribute::Fmtp { .. } => "fmtp",
            Attribute::Ptime(_) => "ptime",
            Attribute::MaxPtime(_) => "maxptime",
            Attribute::Direction(d) => d.as_str(),
            Attribute::Rtcp { .. } => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::RtcpFb { .. } => "rtcp-fb",
            Attribute::Crypto { .. } => "crypto",
            Attribute::Fingerprint { .. } => "fingerprint",
            Attribute::Setup(_) => "setup",
            Attribute::IceUfrag(_) => "ice-ufrag",
            Attribute::IcePwd(_) => "ice-pwd",
            Attribute::IceLite => "ice-lite",
            Attribute::Candidate(_) => "candidate",
            Attribute::EndOfCandidates => "end-of-candidates",
            Attribute::Mid(_) => "mid",
            Attribute::Group { .. } => "group",
            Attribute::Other { name, .. } => name,
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[String]) -> fmt::Result {
    for item in items {
        write!(f, " {item}")?;
    }
    Ok(())
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.nettype, self.addrtype, self.address)?;
        match &self.suffix {
            Some(s) => write!(f, "/{s}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Rtpmap {
                pt,
                encoding,
                clock_rate,
                params,
            } => {
                write!(f, "rtpmap:{pt} {encoding}/{clock_rate}")?;
                match params {
                    Some(p) => write!(f, "/{p}"),
                    None => Ok(()),
                }
            }
            Attribute::Fmtp { fmt, params } => write!(f, "fmtp:{fmt} {params}"),
            Attribute::Ptime(v) => write!(f, "ptime:{v}"),
            Attribute::MaxPtime(v) => write!(f, "maxptime:{v}"),
            Attribute::Rtcp { port, connection } => match connection {
                Some(c) => write!(f, "rtcp:{port} {c}"),
                None => write!(f, "rtcp:{port}"),
            },
            Attribute::RtcpFb { fmt, value } => write!(f, "rtcp-fb:{fmt} {value}"),
            Attribute::Crypto {
                tag,
                suite,
                key_params,
                session_params,
            } => {
                write!(f, "crypto:{tag} {suite} {key_params}")?;
                match session_params {
                    Some(p) => write!(f, " {p}"),
                    None => Ok(()),
                }
            }
            Attribute::Fingerprint { hash, value } => write!(f, "fingerprint:{hash} {value}"),
            Attribute::Setup(v)
            | Attribute::IceUfrag(v)
            | Attribute::IcePwd(v)
            | Attribute::Candidate(v)
            | Attribute::Mid(v) => write!(f, "{}:{v}", self.name()),
            Attribute::Group { semantics, mids } => {
                write!(f, "group:{semantics}")?;
                join(f, mids)
            }
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
            _ => f.write_str(self.name()),
        }
    }
}

impl fmt::Display for View {
    /// The full line without line ending; [`View::Other`] writes nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            View::Version(v) => write!(f, "v={v}"),
            View::Origin(o) => write!(
                f,
                "o={} {} {} {} {} {}",
                o.username, o.sess_id, o.sess_version, o.nettype, o.addrtype, o.address
            ),
            View::SessionName(s) => write!(f, "s={s}"),
            View::Connection(c) => write!(f, "c={c}"),
            View::Bandwidth(b) => write!(f, "b={}:{}", b.bwtype, b.value),
            View::Timing(a, b) => write!(f, "t={a} {b}"),
            View::Media(m) => {
                write!(f, "m={} {}", m.media, m.port)?;
                if let Some(n) = m.num_ports {
                    write!(f, "/{n}")?;
                }
                write!(f, " {}", m.proto)?;
                join(f, &m.fmts)
            }
            View::Attribute(a) => write!(f, "a={a}"),
            View::Other => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_helpers() {
        let v4 = Connection::for_ip("192.0.2.1".parse().unwrap());
        assert_eq!(v4.to_string(), "IN IP4 192.0.2.1");
        assert_eq!(v4.ip(), Some("192.0.2.1".parse().unwrap()));
        assert!(!v4.is_hold());
        assert!(Connection::for_ip("0.0.0.0".parse().unwrap()).is_hold());
        assert!(Connection::for_ip("::".parse().unwrap()).is_hold());
        assert_eq!(addrtype("2001:db8::1".parse().unwrap()), "IP6");
        let fqdn = Connection {
            address: "media.example.com".into(),
            ..v4
        };
        assert_eq!(fqdn.ip(), None);
    }

    #[test]
    fn view_display() {
        let m = MediaLine {
            media: "audio".into(),
            port: 4000,
            num_ports: Some(2),
            proto: "RTP/AVP".into(),
            fmts: vec!["0".into(), "8".into()],
        };
        assert_eq!(View::Media(m).to_string(), "m=audio 4000/2 RTP/AVP 0 8");
        assert_eq!(View::Timing(0, 0).to_string(), "t=0 0");
        let b = Bandwidth {
            bwtype: "AS".into(),
            value: 64,
        };
        assert_eq!(View::Bandwidth(b).to_string(), "b=AS:64");
        assert_eq!(View::Version(0).to_string(), "v=0");
        assert_eq!(View::Other.to_string(), "");
        let a = Attribute::Rtcp {
            port: 9,
            connection: None,
        };
        assert_eq!(View::Attribute(a).to_string(), "a=rtcp:9");
    }

    #[test]
    fn attribute_names() {
        assert_eq!(Attribute::Direction(Direction::Inactive).name(), "inactive");
        assert_eq!(Attribute::IceLite.name(), "ice-lite");
        assert_eq!(Attribute::IceLite.to_string(), "ice-lite");
        let other = Attribute::Other {
            name: "x-flag".into(),
            value: None,
        };
        assert_eq!(
            (other.name(), other.to_string().as_str()),
            ("x-flag", "x-flag")
        );
    }
}
