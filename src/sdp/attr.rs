//! Parsing the value of `a=` lines (RFC 8866 §6 and the RFCs named in
//! [`Attribute`]); unknown attributes become [`Attribute::Other`].

use super::error::SdpError;
use super::parse::parse_connection;
use super::view::{Attribute, Direction};

/// Parses the value of an `a=` line (after `a=`).
pub(crate) fn parse_attribute(text: &str, number: usize) -> Result<Attribute, SdpError> {
    let (name, value) = match text.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (text, None),
    };
    let bad = |name: &'static str| SdpError::BadAttribute { line: number, name };
    let v = value.unwrap_or("");
    let attr = match name {
        "rtpmap" => parse_rtpmap(v).ok_or(bad("rtpmap"))?,
        "fmtp" => {
            let (fmt, params) = v.split_once(' ').ok_or(bad("fmtp"))?;
            if fmt.is_empty() {
                return Err(bad("fmtp"));
            }
            Attribute::Fmtp {
                fmt: fmt.to_string(),
                params: params.to_string(),
            }
        }
        "ptime" => Attribute::Ptime(v.trim().parse().map_err(|_| bad("ptime"))?),
        "maxptime" => Attribute::MaxPtime(v.trim().parse().map_err(|_| bad("maxptime"))?),
        "sendrecv" => Attribute::Direction(Direction::SendRecv),
        "sendonly" => Attribute::Direction(Direction::SendOnly),
        "recvonly" => Attribute::Direction(Direction::RecvOnly),
        "inactive" => Attribute::Direction(Direction::Inactive),
        "rtcp" => {
            let (port, rest) = v.split_once(' ').unwrap_or((v, ""));
            let port = port.parse().map_err(|_| bad("rtcp"))?;
            let connection = match rest.trim() {
                "" => None,
                rest => Some(parse_connection(rest).ok_or(bad("rtcp"))?),
            };
            Attribute::Rtcp { port, connection }
        }
        "rtcp-mux" => Attribute::RtcpMux,
        "rtcp-fb" => {
            let (fmt, value) = v.split_once(' ').ok_or(bad("rtcp-fb"))?;
            Attribute::RtcpFb {
                fmt: fmt.to_string(),
                value: value.to_string(),
            }
        }
        "crypto" => {
            let mut f = v.split(' ');
            let tag = f.next().and_then(|t| t.parse().ok()).ok_or(bad("crypto"))?;
            let suite = f.next().filter(|s| !s.is_empty()).ok_or(bad("crypto"))?;
            let key = f.next().filter(|s| !s.is_empty()).ok_or(bad("crypto"))?;
            let rest: Vec<&str> = f.collect();
            let session_params = (!rest.is_empty()).then(|| rest.join(" "));
            Attribute::Crypto {
                tag,
                suite: suite.to_string(),
                key_params: key.to_string(),
                session_params,
            }
        }
        "fingerprint" => {
            let (hash, value) = v.split_once(' ').ok_or(bad("fingerprint"))?;
            Attribute::Fingerprint {
                hash: hash.to_string(),
                value: value.to_string(),
            }
        }
        "setup" => Attribute::Setup(v.to_string()),
        "ice-ufrag" => Attribute::IceUfrag(v.to_string()),
        "ice-pwd" => Attribute::IcePwd(v.to_string()),
        "ice-lite" => Attribute::IceLite,
        "candidate" => Attribute::Candidate(v.to_string()),
        "end-of-candidates" => Attribute::EndOfCandidates,
        "mid" => Attribute::Mid(v.to_string()),
        "group" => {
            let mut f = v.split_ascii_whitespace();
            let semantics = f.next().ok_or(bad("group"))?.to_string();
            Attribute::Group {
                semantics,
                mids: f.map(str::to_string).collect(),
            }
        }
        _ => Attribute::Other {
            name: name.to_string(),
            value: value.map(str::to_string),
        },
    };
    Ok(attr)
}

fn parse_rtpmap(v: &str) -> Option<Attribute> {
    let (pt, rest) = v.split_once(' ')?;
    let mut f = rest.trim().splitn(3, '/');
    let encoding = f.next().filter(|e| !e.is_empty())?.to_string();
    let clock_rate = f.next()?.parse().ok()?;
    let params = f.next().map(str::to_string);
    Some(Attribute::Rtpmap {
        pt: pt.parse().ok()?,
        encoding,
        clock_rate,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(s: &str) -> Attribute {
        parse_attribute(s, 1).unwrap()
    }

    #[test]
    fn attributes() {
        assert_eq!(
            attr("rtpmap:111 opus/48000/2"),
            Attribute::Rtpmap {
                pt: 111,
                encoding: "opus".into(),
                clock_rate: 48000,
                params: Some("2".into())
            }
        );
        assert_eq!(
            attr("fmtp:101 0-16"),
            Attribute::Fmtp {
                fmt: "101".into(),
                params: "0-16".into()
            }
        );
        assert_eq!(attr("ptime:20"), Attribute::Ptime(20));
        assert_eq!(attr("maxptime:40"), Attribute::MaxPtime(40));
        assert_eq!(attr("recvonly"), Attribute::Direction(Direction::RecvOnly));
        let rtcp = attr("rtcp:4001 IN IP6 ::1");
        assert!(matches!(
            rtcp,
            Attribute::Rtcp {
                port: 4001,
                connection: Some(_)
            }
        ));
        assert_eq!(
            attr("rtcp:4001"),
            Attribute::Rtcp {
                port: 4001,
                connection: None
            }
        );
        let c = attr("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc|2^31");
        assert!(matches!(
            c,
            Attribute::Crypto {
                tag: 1,
                session_params: None,
                ..
            }
        ));
        assert!(matches!(
            attr("fingerprint:sha-256 AB:CD"),
            Attribute::Fingerprint { .. }
        ));
        assert_eq!(attr("group:BUNDLE 0 1").name(), "group");
        assert_eq!(attr("ice-lite"), Attribute::IceLite);
        assert_eq!(
            attr("x-custom:a:b"),
            Attribute::Other {
                name: "x-custom".into(),
                value: Some("a:b".into())
            }
        );
    }

    #[test]
    fn attribute_display_is_canonical() {
        for s in [
            "rtpmap:111 opus/48000/2",
            "rtpmap:0 PCMU/8000",
            "fmtp:111 minptime=10;useinbandfec=1",
            "rtcp:4001 IN IP4 1.2.3.4",
            "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc|2^31 UNENCRYPTED_SRTCP",
            "group:BUNDLE 0 1",
            "mid:0",
            "end-of-candidates",
            "x-custom:a",
            "sendonly",
        ] {
            assert_eq!(attr(s).to_string(), s);
        }
    }
}
