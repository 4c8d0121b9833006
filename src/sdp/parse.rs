//! The SDP parser (RFC 8866 §5, §9): splits lines (CRLF or bare LF), enforces
//! limits, and reads the line types and attributes we understand. Unknown line
//! types and attributes are kept verbatim. Never panics.

use bytes::Bytes;

use super::attr::parse_attribute;
use super::error::SdpError;
use super::model::{Line, MediaSection, Sdp};
use super::view::{Bandwidth, Connection, MediaLine, Origin, View};

/// Parser limits; network input beyond them is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpLimits {
    /// Maximum body size in bytes.
    pub max_size: usize,
    /// Maximum number of lines.
    pub max_lines: usize,
    /// Maximum length of one line in bytes.
    pub max_line_len: usize,
    /// Maximum number of `m=` sections.
    pub max_media: usize,
}

impl Default for SdpLimits {
    fn default() -> Self {
        SdpLimits {
            max_size: 16 * 1024,
            max_lines: 1024,
            max_line_len: 2048,
            max_media: 32,
        }
    }
}

impl Sdp {
    /// Parses a body with the default [`SdpLimits`].
    pub fn parse(input: &[u8]) -> Result<Sdp, SdpError> {
        Sdp::parse_with(input, &SdpLimits::default())
    }

    /// Parses a body with explicit limits.
    pub fn parse_with(input: &[u8], limits: &SdpLimits) -> Result<Sdp, SdpError> {
        if input.len() > limits.max_size {
            return Err(SdpError::TooLarge {
                size: input.len(),
                limit: limits.max_size,
            });
        }
        Sdp::parse_shared_with(&Bytes::copy_from_slice(input), limits)
    }

    /// Parses a body already in a [`Bytes`] (a SIP message's body): every
    /// line's raw bytes are a slice of it, not a copy. What the B2BUA uses.
    pub fn parse_shared(input: &Bytes) -> Result<Sdp, SdpError> {
        Sdp::parse_shared_with(input, &SdpLimits::default())
    }

    /// [`Sdp::parse_shared`] with explicit limits.
    pub fn parse_shared_with(input: &Bytes, limits: &SdpLimits) -> Result<Sdp, SdpError> {
        if input.len() > limits.max_size {
            return Err(SdpError::TooLarge {
                size: input.len(),
                limit: limits.max_size,
            });
        }
        // One allocation for the session lines instead of growing from 0
        // (every line is counted: an upper bound, capped by the limit).
        let lines = memchr::memchr_iter(b'\n', input).count() + 1;
        let mut session = Vec::with_capacity(lines.min(limits.max_lines));
        let mut media: Vec<MediaSection> = Vec::new();
        let mut count = 0;
        for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            // Empty lines (a trailing CRLF, a stray blank) carry nothing: skip them.
            if raw.is_empty() {
                continue;
            }
            count += 1;
            if count > limits.max_lines {
                return Err(SdpError::TooManyLines {
                    limit: limits.max_lines,
                });
            }
            if raw.len() > limits.max_line_len {
                return Err(SdpError::LineTooLong {
                    line: number,
                    limit: limits.max_line_len,
                });
            }
            let line = parse_line(input.slice_ref(raw), number)?;
            if count == 1 && !matches!(line.view(), View::Version(_)) {
                return Err(SdpError::BadVersion { line: number });
            }
            // Only an m= line's view is copied (its section keeps it typed);
            // every other line moves in as parsed.
            match line.view() {
                View::Media(desc) => {
                    let desc = desc.clone();
                    if media.len() >= limits.max_media {
                        return Err(SdpError::TooManyMedia {
                            limit: limits.max_media,
                        });
                    }
                    media.push(MediaSection {
                        m: line,
                        desc,
                        lines: Vec::new(),
                    });
                }
                _ => match media.last_mut() {
                    Some(section) => section.lines.push(line),
                    None => session.push(line),
                },
            }
        }
        if session.is_empty() {
            return Err(SdpError::Empty);
        }
        if !session.iter().any(|l| matches!(l.view(), View::Origin(_))) {
            return Err(SdpError::MissingOrigin);
        }
        Ok(Sdp { session, media })
    }
}

/// Parses one line (without line ending); `number` is used in errors.
pub(crate) fn parse_line(raw: Bytes, number: usize) -> Result<Line, SdpError> {
    let (kind, value) = match &raw[..] {
        [k, b'=', rest @ ..] if k.is_ascii_lowercase() => (*k, rest),
        _ => return Err(SdpError::BadLine { line: number }),
    };
    let known = matches!(kind, b'v' | b'o' | b'c' | b't' | b'm' | b'b' | b'a' | b's');
    if !known {
        return Ok(Line::from_parts(raw, View::Other));
    }
    let bad = SdpError::BadField {
        line: number,
        kind: kind as char,
    };
    let Ok(text) = std::str::from_utf8(value) else {
        // s= may carry another charset (RFC 8866 §5.3); keep it raw.
        return match kind {
            b's' => Ok(Line::from_parts(raw, View::Other)),
            _ => Err(bad),
        };
    };
    let view = match kind {
        b'v' => match text {
            "0" => View::Version(0),
            _ => return Err(SdpError::BadVersion { line: number }),
        },
        b'o' => View::Origin(parse_origin(text).ok_or(bad)?),
        b's' => View::SessionName(text.to_string()),
        b'c' => View::Connection(parse_connection(text).ok_or(bad)?),
        b't' => {
            let mut it = text.split_ascii_whitespace().map(str::parse::<u64>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(a)), Some(Ok(b)), None) => View::Timing(a, b),
                _ => return Err(bad),
            }
        }
        b'm' => View::Media(parse_media(text).ok_or(bad)?),
        b'b' => {
            let (bwtype, value) = text.split_once(':').ok_or(bad.clone())?;
            let value = value.trim().parse().map_err(|_| bad.clone())?;
            View::Bandwidth(Bandwidth {
                bwtype: bwtype.to_string(),
                value,
            })
        }
        _ => View::Attribute(parse_attribute(text, number)?),
    };
    Ok(Line::from_parts(raw, view))
}

fn parse_origin(text: &str) -> Option<Origin> {
    let mut f = text.split_ascii_whitespace();
    let [username, sess_id, version, nettype, addrtype, address] = fields(&mut f)?;
    Some(Origin {
        username: username.to_string(),
        sess_id: sess_id.to_string(),
        sess_version: version.parse().ok()?,
        nettype: nettype.to_string(),
        addrtype: addrtype.to_string(),
        address: address.to_string(),
    })
}

pub(crate) fn parse_connection(text: &str) -> Option<Connection> {
    let mut f = text.split_ascii_whitespace();
    let [nettype, addrtype, address] = fields(&mut f)?;
    let (address, suffix) = match address.split_once('/') {
        Some((a, s)) => (a, Some(s.to_string())),
        None => (address, None),
    };
    if address.is_empty() {
        return None;
    }
    Some(Connection {
        nettype: nettype.to_string(),
        addrtype: addrtype.to_string(),
        address: address.to_string(),
        suffix,
    })
}

/// Exactly `N` whitespace-separated fields, none left over (no `Vec`).
fn fields<'a, const N: usize>(f: &mut impl Iterator<Item = &'a str>) -> Option<[&'a str; N]> {
    let mut out = [""; N];
    for slot in &mut out {
        *slot = f.next()?;
    }
    f.next().is_none().then_some(out)
}

fn parse_media(text: &str) -> Option<MediaLine> {
    let mut f = text.split_ascii_whitespace();
    let media = f.next()?.to_string();
    let port = f.next()?;
    let (port, num_ports) = match port.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port.parse().ok()?, None),
    };
    let proto = f.next()?.to_string();
    let fmts: Vec<String> = f.map(str::to_string).collect();
    Some(MediaLine {
        media,
        port,
        num_ports,
        proto,
        fmts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_and_crlf() {
        let lf = Sdp::parse(b"v=0\no=- 1 1 IN IP6 ::1\ns=-\nm=audio 1 RTP/AVP 0\n").unwrap();
        assert_eq!(
            lf.to_bytes(),
            b"v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n"
        );
        assert_eq!(lf.origin().unwrap().addrtype, "IP6");
    }

    #[test]
    fn errors_with_line_numbers() {
        let e = |b: &[u8]| Sdp::parse(b).unwrap_err();
        assert_eq!(e(b""), SdpError::Empty);
        assert_eq!(
            e(b"o=- 1 1 IN IP4 1.1.1.1\r\n"),
            SdpError::BadVersion { line: 1 }
        );
        assert_eq!(e(b"v=0\r\ns=-\r\n"), SdpError::MissingOrigin);
        assert_eq!(e(b"v=0\r\nX=1\r\n"), SdpError::BadLine { line: 2 });
        assert_eq!(
            e(b"v=0\r\no=- x 1\r\n"),
            SdpError::BadField { line: 2, kind: 'o' }
        );
        assert_eq!(
            e(b"v=0\nc=IN IP4\n"),
            SdpError::BadField { line: 2, kind: 'c' }
        );
        assert_eq!(
            e(b"v=0\nm=audio x RTP/AVP 0\n"),
            SdpError::BadField { line: 2, kind: 'm' }
        );
        assert_eq!(
            e(b"v=0\na=rtpmap:96 opus\n"),
            SdpError::BadAttribute {
                line: 2,
                name: "rtpmap"
            }
        );
        assert_eq!(
            e(b"v=0\na=ptime:x\n"),
            SdpError::BadAttribute {
                line: 2,
                name: "ptime"
            }
        );
        assert_eq!(e(b"v=0\nt=0\n"), SdpError::BadField { line: 2, kind: 't' });
        assert_eq!(e(b"v=0\nb=AS\n"), SdpError::BadField { line: 2, kind: 'b' });
    }

    #[test]
    fn limits() {
        let l = SdpLimits {
            max_size: 40,
            max_lines: 3,
            max_line_len: 20,
            max_media: 1,
        };
        let body = b"v=0\no=- 1 1 IN IP4 1.1.1.1\n";
        assert_eq!(
            Sdp::parse_with(body, &l).unwrap_err(),
            SdpError::LineTooLong { line: 2, limit: 20 }
        );
        assert_eq!(
            Sdp::parse_with(&[b'a'; 41], &l).unwrap_err(),
            SdpError::TooLarge {
                size: 41,
                limit: 40
            }
        );
        assert_eq!(
            Sdp::parse_with(b"v=0\ns=a\ns=b\ns=c\n", &l).unwrap_err(),
            SdpError::TooManyLines { limit: 3 }
        );
        let l = SdpLimits {
            max_media: 1,
            ..SdpLimits::default()
        };
        let two = b"v=0\no=- 1 1 IN IP4 1.1.1.1\nm=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0\n";
        assert_eq!(
            Sdp::parse_with(two, &l).unwrap_err(),
            SdpError::TooManyMedia { limit: 1 }
        );
    }

    #[test]
    fn shared_parse_slices_the_body() {
        let body = Bytes::from_static(
            b"v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nm=audio 4000 RTP/AVP 0\r\na=x-unknown:1\r\n",
        );
        let sdp = Sdp::parse_shared(&body).unwrap();
        let range = body.as_ptr_range();
        let lines = sdp.session_lines().iter().chain(sdp.media()[0].lines());
        for line in lines {
            assert!(
                range.contains(&line.raw().as_ptr()),
                "{:?} copied",
                line.raw()
            );
        }
        assert_eq!(sdp.to_bytes(), &body[..]);
        assert_eq!(Sdp::parse(&body).unwrap(), sdp);
    }

    #[test]
    fn unknown_lines_and_multicast() {
        let sdp = Sdp::parse(b"v=0\no=- 1 1 IN IP4 1.1.1.1\nz=0 -1h\nc=IN IP4 224.2.1.1/127/3\n")
            .unwrap();
        assert_eq!(sdp.session_lines()[2].view(), &View::Other);
        let c = sdp.connection().unwrap();
        assert_eq!(
            (c.address.as_str(), c.suffix.as_deref()),
            ("224.2.1.1", Some("127/3"))
        );
    }
}
