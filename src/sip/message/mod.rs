//! The lossless SIP message model (RFC 3261 §7).
//!
//! A [`Message`] keeps every header line exactly as received (folding,
//! compact names, odd spacing and all) and offers typed views parsed on
//! demand. Forwarding an unmodified header writes back the original bytes;
//! only headers the proxy changes (Via, Route, Record-Route, Max-Forwards)
//! are regenerated.

mod batch;
mod build;
mod error;
mod headers;
mod method;
pub mod name_addr;
mod parse;
pub mod scan;
pub mod text;
pub mod uri;
pub mod via;

pub use batch::HeaderBatch;
pub use build::{error_response_from_headers, response_to, response_with_tag, tag_for};
pub use error::ParseError;
pub use headers::HeaderName;
pub use method::Method;
pub use name_addr::NameAddr;
pub use parse::{Limits, ParseFailure, parse_datagram, parse_stream_message};
pub use uri::{Scheme, Uri};
pub use via::{Via, ViaRef};

use bytes::Bytes;

/// One header line: its kind plus the raw bytes of the whole line (folded
/// continuation lines included, final CRLF excluded).
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical kind, resolved from the raw name.
    pub name: HeaderName,
    raw: Bytes,
    name_end: usize,
    value: (usize, usize),
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.raw))
    }
}

impl Header {
    /// Build a header the gateway writes itself, with the canonical name.
    pub fn new(name: HeaderName, value: impl AsRef<[u8]>) -> Header {
        Header::with_name(name.canonical(), value)
    }

    /// Build a header with an arbitrary name (e.g. `X-Foo`).
    pub fn with_name(name: &str, value: impl AsRef<[u8]>) -> Header {
        Header::with_name_bytes(name.as_bytes(), value)
    }

    /// Build a header with the canonical name whose value `write` appends to
    /// the line (no intermediate value buffer).
    pub fn build(name: HeaderName, write: impl FnOnce(&mut Vec<u8>)) -> Header {
        Header::write_line(name, name.canonical().as_bytes(), write)
    }

    /// [`Header::build`] keeping a received name's bytes (e.g. a compact
    /// `t` when a To tag is added).
    pub fn build_with_name_bytes(name: &[u8], write: impl FnOnce(&mut Vec<u8>)) -> Header {
        Header::write_line(HeaderName::from_bytes(name), name, write)
    }

    /// The line `name_bytes: <what write appends>` as a header of kind `name`.
    fn write_line(name: HeaderName, name_bytes: &[u8], write: impl FnOnce(&mut Vec<u8>)) -> Header {
        let mut raw = Vec::with_capacity(name_bytes.len() + 96);
        raw.extend_from_slice(name_bytes);
        raw.extend_from_slice(b": ");
        let n = name_bytes.len();
        write(&mut raw);
        let end = raw.len();
        Header {
            name,
            raw: Bytes::from(raw),
            name_end: n,
            value: (n + 2, end),
        }
    }

    /// `Content-Length: 0`, in a static buffer (no allocation): the last
    /// header of every body-less message the gateway writes.
    pub fn content_length_zero() -> Header {
        Header::from_static_line(HeaderName::ContentLength, b"Content-Length: 0")
    }

    /// `Content-Type: application/sdp`, in a static buffer (no allocation).
    pub fn content_type_sdp() -> Header {
        Header::from_static_line(HeaderName::ContentType, b"Content-Type: application/sdp")
    }

    /// A canonical `Name: value` line kept in a static buffer; `line` is
    /// one of the constants above (name, `": "`, value).
    fn from_static_line(name: HeaderName, line: &'static [u8]) -> Header {
        let name_end = name.canonical().len();
        debug_assert_eq!(&line[name_end..name_end + 2], b": ");
        Header {
            name,
            raw: Bytes::from_static(line),
            name_end,
            value: ((name_end + 2).min(line.len()), line.len()),
        }
    }

    /// Build a header keeping a received name's bytes (e.g. a compact `v`
    /// when a proxy rewrites a received Via).
    pub fn with_name_bytes(name: &[u8], value: impl AsRef<[u8]>) -> Header {
        Header::build_with_name_bytes(name, |v| v.extend_from_slice(value.as_ref()))
    }

    /// Wrap a received line; `name_end`/`value` are offsets into `raw`.
    pub(crate) fn from_raw(raw: Bytes, name_end: usize, value: (usize, usize)) -> Header {
        let name = HeaderName::from_bytes(&raw[..name_end]);
        Header {
            name,
            raw,
            name_end,
            value,
        }
    }

    /// The name as received (e.g. `v`, `MaX-fOrWaRdS`).
    pub fn raw_name(&self) -> &[u8] {
        &self.raw[..self.name_end]
    }

    /// The value, trimmed of surrounding LWS; may contain folded line breaks.
    pub fn value(&self) -> &[u8] {
        &self.raw[self.value.0..self.value.1]
    }

    /// The value as a shareable buffer (for typed views that keep slices).
    pub fn value_bytes(&self) -> Bytes {
        self.raw.slice(self.value.0..self.value.1)
    }

    /// The whole line as received.
    pub fn raw_line(&self) -> &[u8] {
        &self.raw
    }

    /// True when this header's name (any form) equals `name` case-insensitively.
    pub fn is_named(&self, name: &str) -> bool {
        self.raw_name().eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The first line of a message.
#[derive(Debug, Clone)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method (case-sensitive, RFC 3261 §7.1).
        method: Method,
        /// The Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase exactly as received (may be empty or non-ASCII).
        reason: Bytes,
    },
}

/// A SIP request or response.
#[derive(Debug, Clone)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    /// Header lines in received order.
    pub headers: Vec<Header>,
    /// The body (exactly Content-Length bytes when the header is present).
    pub body: Bytes,
}

mod access;
mod edit;
pub use access::CSeq;
