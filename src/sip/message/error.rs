//! Parse errors and the SIP status each maps to (RFC 3261 §21), in the way
//! rustls maps its errors to alerts.

use std::fmt;

use super::name_addr::NameAddrError;
use super::uri::UriError;
use super::via::ViaError;

/// Everything that can be wrong with a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Only CRLFs: a keep-alive (RFC 5626 §3.5.1), not an error to answer.
    KeepAlive,
    /// The message exceeds the configured size limit.
    TooLarge { size: usize, limit: usize },
    /// More header lines than the configured limit.
    TooManyHeaders { limit: usize },
    /// A line longer than the configured limit.
    LineTooLong { limit: usize },
    /// The Request-URI is longer than the configured limit.
    UriTooLong { limit: usize },
    /// The header section has no terminating empty line.
    NoHeaderEnd,
    /// The start line is not `Method SP URI SP SIP/2.0` nor `SIP/2.0 SP code SP reason`.
    BadStartLine(&'static str),
    /// A SIP version other than 2.0 (answered with 505).
    BadVersion,
    /// A status code outside 100..=699.
    BadStatusCode,
    /// The Request-URI does not parse.
    BadRequestUri(UriError),
    /// A header line without a colon or with a name that is not a token.
    BadHeaderLine,
    /// A required header is missing (RFC 3261 §8.1.1).
    MissingHeader(&'static str),
    /// A header that may appear once appears more often (RFC 4475 §3.3.8).
    DuplicateHeader(&'static str),
    /// CSeq is not `number method` or the number does not fit 32 bits.
    BadCSeq,
    /// The CSeq method differs from the request method (RFC 4475 §3.1.2.17).
    CSeqMismatch,
    /// Max-Forwards is not a number in 0..=255.
    BadMaxForwards,
    /// Content-Length is not a non-negative number.
    BadContentLength,
    /// Content-Length exceeds the bytes present (RFC 4475 §3.1.2.2).
    BodyTruncated { declared: usize, available: usize },
    /// From or To is malformed.
    BadAddress(&'static str, NameAddrError),
    /// The top Via is malformed.
    BadVia(ViaError),
    /// Call-ID empty.
    BadCallId,
}

impl ParseError {
    /// The status a request with this error is answered with; `None` when
    /// nothing is sent back (keep-alives).
    pub fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            ParseError::KeepAlive => None,
            ParseError::TooLarge { .. } => Some((513, "Message Too Large")),
            ParseError::UriTooLong { .. } => Some((414, "Request-URI Too Long")),
            ParseError::BadVersion => Some((505, "Version Not Supported")),
            _ => Some((400, "Bad Request")),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::KeepAlive => write!(f, "keep-alive"),
            ParseError::TooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds limit {limit}")
            }
            ParseError::TooManyHeaders { limit } => write!(f, "more than {limit} header lines"),
            ParseError::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            ParseError::UriTooLong { limit } => write!(f, "Request-URI longer than {limit} bytes"),
            ParseError::NoHeaderEnd => write!(f, "header section not terminated by an empty line"),
            ParseError::BadStartLine(why) => write!(f, "malformed start line: {why}"),
            ParseError::BadVersion => write!(f, "SIP version not supported"),
            ParseError::BadStatusCode => write!(f, "status code out of range"),
            ParseError::BadRequestUri(e) => write!(f, "malformed Request-URI: {e:?}"),
            ParseError::BadHeaderLine => write!(f, "malformed header line"),
            ParseError::MissingHeader(h) => write!(f, "missing {h} header"),
            ParseError::DuplicateHeader(h) => write!(f, "{h} header appears more than once"),
            ParseError::BadCSeq => write!(f, "malformed CSeq"),
            ParseError::CSeqMismatch => write!(f, "CSeq method does not match request method"),
            ParseError::BadMaxForwards => write!(f, "Max-Forwards not in 0-255"),
            ParseError::BadContentLength => write!(f, "malformed Content-Length"),
            ParseError::BodyTruncated {
                declared,
                available,
            } => write!(
                f,
                "Content-Length {declared} exceeds the {available} body bytes received"
            ),
            ParseError::BadAddress(h, e) => write!(f, "malformed {h} header: {e:?}"),
            ParseError::BadVia(e) => write!(f, "malformed Via header: {e:?}"),
            ParseError::BadCallId => write!(f, "empty Call-ID"),
        }
    }
}

impl std::error::Error for ParseError {}
