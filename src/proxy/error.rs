//! Why the proxy answers a request itself, and with which status
//! (RFC 3261 §16.3 request validation, §16.4–16.5 routing).

use std::fmt;

/// A request the proxy refuses, mapped to the SIP status it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// Request-URI scheme is not sip/sips/tel (§16.3 step 2).
    UnsupportedScheme,
    /// Max-Forwards reached zero (§16.3 step 3).
    TooManyHops,
    /// The request came back with our own loop hash (§16.3 step 4).
    LoopDetected,
    /// Proxy-Require names extensions we do not support (§16.3 step 5).
    BadExtension(Vec<String>),
    /// The dial plan has no route for the request.
    NoRoute,
    /// The dial plan rejects the request.
    Rejected { status: u16, reason: String },
    /// The gateway is draining and takes no new work.
    Draining,
    /// A CANCEL or in-dialog request for a transaction or dialog we do not know.
    NoTransaction,
}

impl ProxyError {
    /// Status code and reason phrase for the response.
    pub fn status(&self) -> (u16, String) {
        match self {
            ProxyError::UnsupportedScheme => (416, "Unsupported URI Scheme".into()),
            ProxyError::TooManyHops => (483, "Too Many Hops".into()),
            ProxyError::LoopDetected => (482, "Loop Detected".into()),
            ProxyError::BadExtension(_) => (420, "Bad Extension".into()),
            ProxyError::NoRoute => (404, "Not Found".into()),
            ProxyError::Rejected { status, reason } => (*status, reason.clone()),
            ProxyError::Draining => (503, "Service Unavailable".into()),
            ProxyError::NoTransaction => (481, "Call/Transaction Does Not Exist".into()),
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, reason) = self.status();
        write!(f, "{code} {reason}")
    }
}

impl std::error::Error for ProxyError {}
