//! Stream framing (RFC 3261 §18.3): on a reliable transport the message
//! boundary is the end of the header section plus Content-Length octets.
//!
//! ```text
//!   [CRLF keep-alives]* start-line CRLF *(header CRLF) CRLF body{Content-Length}
//!   └─ skipped ───────┘ └──────────── returned as one message ──────────────┘
//! ```

use bytes::{Buf, Bytes, BytesMut};

use crate::sip::message::Limits;
use crate::sip::message::scan;

/// Why a stream cannot be framed; the connection must be closed (there is no
/// way to find the next message boundary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// The header section or the whole message exceeds `Limits::max_message`.
    TooLarge {
        /// Bytes buffered or declared (header section + Content-Length).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Content-Length is not a number, or two Content-Length headers disagree.
    BadContentLength,
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FramingError::TooLarge { size, limit } => {
                write!(f, "stream message of {size} bytes exceeds limit {limit}")
            }
            FramingError::BadContentLength => write!(f, "unusable Content-Length on a stream"),
        }
    }
}

impl std::error::Error for FramingError {}

/// Splits a byte stream into SIP messages by Content-Length.
///
/// Feed it with [`push`](Self::push), then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    /// Bytes at the head of `buf` already searched for the end of headers.
    scanned: usize,
    /// Total length of the message at the head, once its headers are complete.
    pending: Option<usize>,
}

impl StreamFramer {
    /// A framer enforcing `limits.max_message`.
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            scanned: 0,
            pending: None,
        }
    }

    /// Append bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message (header section plus exactly Content-Length
    /// body bytes, ready for `parse_stream_message`), `Ok(None)` when more
    /// bytes are needed. CRLF keep-alives between messages (RFC 5626 §3.5.1)
    /// are skipped. A missing Content-Length counts as 0 (§18.3). On error
    /// the connection must be closed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, FramingError> {
        let limit = self.limits.max_message;
        let total = match self.pending {
            Some(t) => t,
            None => {
                let skip = self
                    .buf
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                if skip > 0 {
                    self.buf.advance(skip);
                    self.scanned = 0;
                }
                let Some(head_end) = find_header_end(&self.buf, self.scanned) else {
                    if self.buf.len() > limit {
                        return Err(FramingError::TooLarge {
                            size: self.buf.len(),
                            limit,
                        });
                    }
                    self.scanned = self.buf.len().saturating_sub(2);
                    return Ok(None);
                };
                let body = content_length(&self.buf[..head_end])?;
                let total = head_end.saturating_add(body);
                if total > limit {
                    return Err(FramingError::TooLarge { size: total, limit });
                }
                self.pending = Some(total);
                total
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        self.scanned = 0;
        Ok(Some(self.buf.split_to(total).freeze()))
    }
}

/// Offset just past the empty line ending the header section (CRLF CRLF or
/// bare LF LF), searching from `from`.
fn find_header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        let nl = i + memchr::memchr(b'\n', &buf[i..])?;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// The Content-Length (`Content-Length` or compact `l`) of a header section;
/// 0 when absent (RFC 3261 §18.3 makes it mandatory on streams, so a missing
/// one can only mean an empty body).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = scan::trim_lws(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value: Vec<u8> = line[colon + 1..].to_vec();
        while let Some(cont) =
            lines.next_if(|l| l.first().is_some_and(|&b| b == b' ' || b == b'\t'))
        {
            value.extend_from_slice(cont);
        }
        let n =
            scan::parse_u32(scan::trim_lws(&value)).ok_or(FramingError::BadContentLength)? as usize;
        match found {
            Some(prev) if prev != n => return Err(FramingError::BadContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse_stream_message;

    const MSG1: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK1\r\nTo: <sip:bob@example.com>\r\n\
        From: <sip:a@example.com>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
        Content-Length: 14\r\n\r\nv=0\r\n\r\nx=1\r\nAB";
    const MSG2: &str = "BYE sip:bob@example.com SIP/2.0\r\n\
        v: SIP/2.0/TCP a.example.com;branch=z9hG4bK2\r\nt: <sip:bob@example.com>;tag=2\r\n\
        f: <sip:a@example.com>;tag=1\r\ni: c1\r\nCSeq: 2 BYE\r\nl:\r\n 0\r\n\r\n";

    fn framer() -> StreamFramer {
        StreamFramer::new(Limits::default())
    }

    fn drain(f: &mut StreamFramer) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(m) = f.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn two_messages_in_one_read_with_keepalives() {
        let mut f = framer();
        f.push(format!("\r\n\r\n{MSG1}\r\n\r\n{MSG2}").as_bytes());
        let got = drain(&mut f);
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][..], MSG1.as_bytes());
        assert_eq!(&got[1][..], MSG2.as_bytes());
        assert_eq!(f.buffered(), 0);
        let m = parse_stream_message(got[0].clone(), &Limits::default()).unwrap();
        assert_eq!(&m.body[..], b"v=0\r\n\r\nx=1\r\nAB");
        let m = parse_stream_message(got[1].clone(), &Limits::default()).unwrap();
        assert!(m.body.is_empty());
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let all = format!("{MSG1}{MSG2}\r\n");
        let bytes = all.as_bytes();
        for cut in 0..=bytes.len() {
            let mut f = framer();
            let mut got = Vec::new();
            f.push(&bytes[..cut]);
            got.extend(drain(&mut f));
            f.push(&bytes[cut..]);
            got.extend(drain(&mut f));
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(&got[0][..], MSG1.as_bytes(), "cut at {cut}");
            assert_eq!(&got[1][..], MSG2.as_bytes(), "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut f = framer();
        let mut got = Vec::new();
        for b in format!("{MSG2}{MSG1}").bytes() {
            f.push(&[b]);
            got.extend(drain(&mut f));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(&got[1][..], MSG1.as_bytes());
    }

    #[test]
    fn missing_content_length_is_zero_and_lf_only() {
        let m = "OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\n\nOPTIONS";
        let mut f = framer();
        f.push(m.as_bytes());
        let got = f.next_message().unwrap().unwrap();
        assert_eq!(
            &got[..],
            b"OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\n\n"
        );
        assert_eq!(f.next_message().unwrap(), None);
        assert_eq!(f.buffered(), 7);
    }

    #[test]
    fn errors() {
        let mut f = framer();
        f.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: abc\r\n\r\n");
        assert_eq!(f.next_message(), Err(FramingError::BadContentLength));
        let mut f = framer();
        f.push(b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab");
        assert_eq!(f.next_message(), Err(FramingError::BadContentLength));
        let mut f = framer();
        f.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 70000\r\n\r\n");
        assert_eq!(
            f.next_message(),
            Err(FramingError::TooLarge {
                size: 70_048,
                limit: 65_535
            })
        );
        let small = Limits {
            max_message: 100,
            ..Limits::default()
        };
        let mut f = StreamFramer::new(small);
        f.push(&[b'A'; 100]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(b"A");
        assert_eq!(
            f.next_message(),
            Err(FramingError::TooLarge {
                size: 101,
                limit: 100
            })
        );
    }
}
