//! Parsing: framing of the header section, start line, header lines (folding
//! kept), body by Content-Length, then semantic validation.
//!
//! Two stages so a broken request can still be answered: [`tokenize`] is
//! lenient and keeps whatever header lines it found; [`validate`] is strict.
//! A failure carries the lenient header lines so the caller can build a 400
//! with the right Via/From/To/Call-ID/CSeq (RFC 3261 §8.2.6).

use bytes::Bytes;

use super::error::ParseError;
use super::headers::HeaderName;
use super::method::Method;
use super::name_addr::NameAddr;
use super::scan;
use super::uri::Uri;
use super::via::ViaRef;
use super::{Header, Message, StartLine};

/// Parser limits; every parser bound is explicit and configurable.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message accepted, in bytes.
    pub max_message: usize,
    /// Most header lines accepted.
    pub max_headers: usize,
    /// Longest line accepted (after unfolding), in bytes.
    pub max_line: usize,
    /// Longest Request-URI accepted.
    pub max_uri: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 256,
            max_line: 16_384,
            max_uri: 4_096,
        }
    }
}

/// What the parser could recover from a message it rejects.
#[derive(Debug, Clone)]
pub struct ParseFailure {
    /// What was wrong.
    pub error: ParseError,
    /// Whether the start line looked like a request (answer it) or not (drop it).
    pub looks_like_request: bool,
    /// The header lines found before the error, for building a response.
    pub headers: Vec<Header>,
}

impl ParseFailure {
    fn bare(error: ParseError) -> ParseFailure {
        ParseFailure {
            error,
            looks_like_request: false,
            headers: Vec::new(),
        }
    }
}

/// Parse one datagram (RFC 3261 §18.3: octets after Content-Length are
/// ignored; Content-Length larger than what arrived is an error).
pub fn parse_datagram(data: Bytes, limits: &Limits) -> Result<Message, ParseFailure> {
    parse_inner(data, limits, false)
}

/// Parse one message already framed from a stream (see `sip::transport`):
/// `data` holds exactly the header section plus Content-Length body bytes.
pub fn parse_stream_message(data: Bytes, limits: &Limits) -> Result<Message, ParseFailure> {
    parse_inner(data, limits, true)
}

/// Find the end of the header section: index of the first byte after the
/// empty line, and the index where the empty line starts.
pub fn find_header_end(data: &[u8]) -> Option<(usize, usize)> {
    // The first line feed followed by an empty line (CRLF or bare LF).
    memchr::memchr_iter(b'\n', data).find_map(|q| match &data[q + 1..] {
        [b'\r', b'\n', ..] => Some((q + 3, q + 1)),
        [b'\n', ..] => Some((q + 2, q + 1)),
        _ => None,
    })
}

fn parse_inner(data: Bytes, limits: &Limits, stream: bool) -> Result<Message, ParseFailure> {
    if data.len() > limits.max_message {
        return Err(ParseFailure::bare(ParseError::TooLarge {
            size: data.len(),
            limit: limits.max_message,
        }));
    }
    let skip = data
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if skip == data.len() {
        return Err(ParseFailure::bare(ParseError::KeepAlive));
    }
    let data = data.slice(skip..);
    let (head_end, lines_end, terminated) = match find_header_end(&data) {
        Some((end, lines_end)) => (end, lines_end, true),
        None => (data.len(), data.len(), false),
    };
    let (start_line, headers) = tokenize(&data, lines_end, limits)?;
    let looks_like_request = !start_line.starts_with(b"SIP/");
    let fail = |error, headers: Vec<Header>| ParseFailure {
        error,
        looks_like_request,
        headers,
    };
    if !terminated {
        return Err(fail(ParseError::NoHeaderEnd, headers));
    }
    let start = match parse_start_line(&data, start_line, limits) {
        Ok(s) => s,
        Err(e) => return Err(fail(e, headers)),
    };
    let body = match body_slice(&data, head_end, &headers, stream) {
        Ok(b) => b,
        Err(e) => return Err(fail(e, headers)),
    };
    let msg = Message {
        start,
        headers,
        body,
    };
    match validate(&msg) {
        Ok(()) => Ok(msg),
        Err(e) => Err(fail(e, msg.headers)),
    }
}

/// Split the header section into the start line and header lines, joining
/// folded continuation lines (RFC 3261 §7.3.1) without copying.
fn tokenize<'a>(
    data: &'a Bytes,
    lines_end: usize,
    limits: &Limits,
) -> Result<(&'a [u8], Vec<Header>), ParseFailure> {
    let section = &data[..lines_end];
    let mut lines = Vec::with_capacity(16);
    let mut pos = 0;
    while pos < section.len() {
        let nl = memchr::memchr(b'\n', &section[pos..]).map_or(section.len(), |p| pos + p);
        let mut end = nl;
        if end > pos && section[end - 1] == b'\r' {
            end -= 1;
        }
        if end - pos > limits.max_line {
            return Err(ParseFailure::bare(ParseError::LineTooLong {
                limit: limits.max_line,
            }));
        }
        lines.push((pos, end));
        pos = nl + 1;
    }
    let Some(&(s0, s1)) = lines.first() else {
        return Err(ParseFailure::bare(ParseError::BadStartLine("empty")));
    };
    let start_line = &section[s0..s1];
    let looks_like_request = !start_line.starts_with(b"SIP/");
    let mut headers: Vec<Header> = Vec::with_capacity(lines.len());
    let mut current: Option<(usize, usize)> = None;
    let mut bad_line = false;
    let flush = |cur: Option<(usize, usize)>, headers: &mut Vec<Header>| -> bool {
        let Some((a, b)) = cur else { return true };
        let line = &data[a..b];
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return false;
        };
        let name = scan::trim_lws(&line[..colon]);
        if name.is_empty()
            || !name.iter().all(|&c| scan::is_token(c))
            || line[0].is_ascii_whitespace()
        {
            return false;
        }
        let value = scan::trim_lws(&line[colon + 1..]);
        let (v0, v1) = scan::range_in(line, value);
        let (v0, v1) = if value.is_empty() {
            (line.len(), line.len())
        } else {
            (v0, v1)
        };
        headers.push(Header::from_raw(data.slice(a..b), name.len(), (v0, v1)));
        true
    };
    for &(a, b) in &lines[1..] {
        let folded = a < b && (data[a] == b' ' || data[a] == b'\t');
        match current {
            Some((ca, _)) if folded => current = Some((ca, b)),
            _ => {
                if !flush(current, &mut headers) {
                    bad_line = true;
                }
                if headers.len() >= limits.max_headers {
                    return Err(ParseFailure {
                        error: ParseError::TooManyHeaders {
                            limit: limits.max_headers,
                        },
                        looks_like_request,
                        headers,
                    });
                }
                current = if a == b { None } else { Some((a, b)) };
            }
        }
    }
    if !flush(current, &mut headers) {
        bad_line = true;
    }
    if bad_line {
        return Err(ParseFailure {
            error: ParseError::BadHeaderLine,
            looks_like_request,
            headers,
        });
    }
    Ok((start_line, headers))
}

/// RFC 3261 §7.1/§7.2: exactly single spaces, version SIP/2.0.
fn parse_start_line(data: &Bytes, line: &[u8], limits: &Limits) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix(b"SIP/") {
        if !rest.starts_with(b"2.0 ") {
            return Err(ParseError::BadVersion);
        }
        let rest = &rest[4..];
        let code_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let code = &rest[..code_end];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::BadStatusCode);
        }
        let code = u16::from(code[0] - b'0') * 100
            + u16::from(code[1] - b'0') * 10
            + u16::from(code[2] - b'0');
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStatusCode);
        }
        let reason = if code_end < rest.len() {
            &rest[code_end + 1..]
        } else {
            &rest[rest.len()..]
        };
        return Ok(StartLine::Response {
            code,
            reason: scan::slice_of(data, reason),
        });
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine(
            "expected `Method SP Request-URI SP SIP-Version`",
        ));
    };
    if method.is_empty() || !method.iter().all(|&b| scan::is_token(b)) {
        return Err(ParseError::BadStartLine("method is not a token"));
    }
    if uri.is_empty() {
        return Err(ParseError::BadStartLine("empty Request-URI"));
    }
    if version != b"SIP/2.0" {
        return if version.starts_with(b"SIP/") && version.len() > 4 && !version.contains(&b'\t') {
            Err(ParseError::BadVersion)
        } else {
            Err(ParseError::BadStartLine("bad SIP-Version"))
        };
    }
    if uri.len() > limits.max_uri {
        return Err(ParseError::UriTooLong {
            limit: limits.max_uri,
        });
    }
    let uri = Uri::parse(scan::slice_of(data, uri)).map_err(ParseError::BadRequestUri)?;
    Ok(StartLine::Request {
        method: Method::from_bytes(method),
        uri,
    })
}

fn body_slice(
    data: &Bytes,
    head_end: usize,
    headers: &[Header],
    stream: bool,
) -> Result<Bytes, ParseError> {
    let available = data.len() - head_end.min(data.len());
    let mut cl = None;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        if cl.is_some() {
            return Err(ParseError::DuplicateHeader("Content-Length"));
        }
        let v = scan::parse_u32(h.value()).ok_or(ParseError::BadContentLength)? as usize;
        cl = Some(v);
    }
    match cl {
        Some(n) if n > available => Err(ParseError::BodyTruncated {
            declared: n,
            available,
        }),
        Some(n) => Ok(data.slice(head_end..head_end + n)),
        // RFC 3261 §18.3: on streams Content-Length is mandatory; the framer
        // has already treated a missing one as zero.
        None if stream => Ok(Bytes::new()),
        None => Ok(data.slice(head_end.min(data.len())..)),
    }
}

/// Semantic checks every request/response must pass before a transaction sees it.
fn validate(msg: &Message) -> Result<(), ParseError> {
    let mut counts = [0usize; 6];
    const NAMES: [(HeaderName, &str); 6] = [
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::Via, "Via"),
        (HeaderName::MaxForwards, "Max-Forwards"),
    ];
    // One bit per kind (a fieldless enum of fewer than 64 kinds).
    const _: () = assert!((HeaderName::Other as u32) < 64);
    let mut seen_single = 0u64;
    for h in &msg.headers {
        if let Some(i) = NAMES.iter().position(|(n, _)| *n == h.name) {
            counts[i] += 1;
        }
        if h.name.is_single() && h.name != HeaderName::ContentLength {
            let bit = 1u64 << (h.name as u32 % 64);
            if seen_single & bit != 0 {
                return Err(ParseError::DuplicateHeader(h.name.canonical()));
            }
            seen_single |= bit;
        }
    }
    for (i, (_, name)) in NAMES.iter().enumerate().take(5) {
        if counts[i] == 0 {
            return Err(ParseError::MissingHeader(name));
        }
    }
    if msg.call_id().is_empty() {
        return Err(ParseError::BadCallId);
    }
    let cseq = msg.cseq().ok_or(ParseError::BadCSeq)?;
    if let StartLine::Request { method, .. } = &msg.start
        && cseq.method != *method
    {
        return Err(ParseError::CSeqMismatch);
    }
    if counts[5] > 0 && msg.max_forwards().is_none() {
        return Err(ParseError::BadMaxForwards);
    }
    for (kind, label) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
        if let Some(h) = msg.header(kind) {
            NameAddr::check(h.value()).map_err(|e| ParseError::BadAddress(label, e))?;
        }
    }
    if let Some(h) = msg.header(HeaderName::Via) {
        let owner = h.value();
        let bad_list = |e| ParseError::BadVia(super::via::ViaError::Params(e));
        let mut items = scan::list_items(owner);
        let first = items
            .next()
            .ok_or(ParseError::BadVia(super::via::ViaError::Protocol))?
            .map_err(bad_list)?;
        ViaRef::parse(first).map_err(ParseError::BadVia)?;
        let mut count = 1;
        for item in items {
            ViaRef::parse(item.map_err(bad_list)?).map_err(ParseError::BadVia)?;
            count += 1;
        }
        // The whole top Via line must be well-formed: an empty element such
        // as `;;,;,,` (RFC 4475 §3.1.2.1) poisons it.
        if memchr::memchr_iter(b',', owner).count() + 1 != count {
            return Err(ParseError::BadVia(super::via::ViaError::Protocol));
        }
    }
    Ok(())
}
