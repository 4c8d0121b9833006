//! SDP parse errors and offer/answer failures, each with the SIP status it
//! answers with (RFC 3261 §21.4, RFC 3264 §6).

use std::fmt;

/// Everything that can be wrong with a received SDP body. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// The body is empty (no `v=` line).
    Empty,
    /// The body exceeds the configured size limit.
    TooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// More lines than the configured limit.
    TooManyLines {
        /// The configured limit.
        limit: usize,
    },
    /// A line longer than the configured limit.
    LineTooLong {
        /// Line number.
        line: usize,
        /// The configured limit.
        limit: usize,
    },
    /// More `m=` sections than the configured limit.
    TooManyMedia {
        /// The configured limit.
        limit: usize,
    },
    /// A line that is not `<lowercase letter>=<value>` (RFC 8866 §5).
    BadLine {
        /// Line number.
        line: usize,
    },
    /// The first line is not `v=0` (RFC 8866 §5.1).
    BadVersion {
        /// Line number.
        line: usize,
    },
    /// A known line type (`o c t m b`) whose value does not follow its grammar.
    BadField {
        /// Line number.
        line: usize,
        /// The line type letter.
        kind: char,
    },
    /// A known attribute whose value does not follow its grammar.
    BadAttribute {
        /// Line number.
        line: usize,
        /// The attribute name.
        name: &'static str,
    },
    /// The session section has no `o=` line (RFC 8866 §5.2).
    MissingOrigin,
}

impl SdpError {
    /// The status an INVITE/UPDATE carrying this body is answered with.
    pub fn status(&self) -> (u16, &'static str) {
        (400, "Bad Request")
    }
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpError::Empty => write!(f, "empty SDP"),
            SdpError::TooLarge { size, limit } => {
                write!(f, "SDP of {size} bytes exceeds limit {limit}")
            }
            SdpError::TooManyLines { limit } => write!(f, "more than {limit} SDP lines"),
            SdpError::LineTooLong { line, limit } => {
                write!(f, "line {line} longer than {limit} bytes")
            }
            SdpError::TooManyMedia { limit } => write!(f, "more than {limit} m= sections"),
            SdpError::BadLine { line } => write!(f, "line {line} is not <type>=<value>"),
            SdpError::BadVersion { line } => write!(f, "line {line}: expected v=0"),
            SdpError::BadField { line, kind } => write!(f, "line {line}: malformed {kind}= line"),
            SdpError::BadAttribute { line, name } => {
                write!(f, "line {line}: malformed a={name} attribute")
            }
            SdpError::MissingOrigin => write!(f, "no o= line"),
        }
    }
}

impl std::error::Error for SdpError {}

/// Why an answer could not be built for an offer (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationError {
    /// No offered stream has a codec in common with the local capabilities.
    NoCommonCodec,
    /// [`AnswerParams::ports`](super::AnswerParams) has no port for this m-line index.
    MissingPort {
        /// Index of the m-line (0-based).
        index: usize,
    },
}

impl NegotiationError {
    /// The SIP status the offer is rejected with.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            NegotiationError::NoCommonCodec => (488, "Not Acceptable Here"),
            NegotiationError::MissingPort { .. } => (500, "Server Internal Error"),
        }
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiationError::NoCommonCodec => write!(f, "no common codec"),
            NegotiationError::MissingPort { index } => {
                write!(f, "no local port for m-line {index}")
            }
        }
    }
}

impl std::error::Error for NegotiationError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            NegotiationError::NoCommonCodec.status(),
            (488, "Not Acceptable Here")
        );
        assert_eq!(NegotiationError::MissingPort { index: 1 }.status().0, 500);
        assert_eq!(SdpError::Empty.status().0, 400);
    }

    #[test]
    fn display() {
        assert_eq!(
            SdpError::BadAttribute {
                line: 7,
                name: "rtpmap"
            }
            .to_string(),
            "line 7: malformed a=rtpmap attribute"
        );
        assert_eq!(
            NegotiationError::NoCommonCodec.to_string(),
            "no common codec"
        );
    }
}
