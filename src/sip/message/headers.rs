//! Header names: canonical kinds, compact forms (RFC 3261 §7.3.3) and
//! case-insensitive matching (§7.3.1).

/// The kind of a header, resolved once at parse time so lookups are cheap.
///
/// Unknown headers are `Other`; their raw name is kept in the [`super::Header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    Route,
    RecordRoute,
    ContentLength,
    ContentType,
    ContentEncoding,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Allow,
    Accept,
    Expires,
    RetryAfter,
    Warning,
    Reason,
    Subject,
    Event,
    ReferTo,
    ReferredBy,
    Server,
    UserAgent,
    RSeq,
    RAck,
    SessionExpires,
    Other,
}

impl HeaderName {
    /// Resolve a raw header name (any case, long or compact form).
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'e' => HeaderName::ContentEncoding,
                b'k' => HeaderName::Supported,
                b's' => HeaderName::Subject,
                b'o' => HeaderName::Event,
                b'r' => HeaderName::ReferTo,
                b'b' => HeaderName::ReferredBy,
                b'x' => HeaderName::SessionExpires,
                _ => HeaderName::Other,
            };
        }
        // Lower-case into a stack buffer, then one `match` (a switch on the
        // length plus a compare), instead of a scan over a table.
        let mut buf = [0u8; 16];
        let Some(lower) = buf.get_mut(..name.len()) else {
            return HeaderName::Other;
        };
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        match &*lower {
            b"via" => HeaderName::Via,
            b"from" => HeaderName::From,
            b"to" => HeaderName::To,
            b"call-id" => HeaderName::CallId,
            b"cseq" => HeaderName::CSeq,
            b"max-forwards" => HeaderName::MaxForwards,
            b"contact" => HeaderName::Contact,
            b"route" => HeaderName::Route,
            b"record-route" => HeaderName::RecordRoute,
            b"content-length" => HeaderName::ContentLength,
            b"content-type" => HeaderName::ContentType,
            b"content-encoding" => HeaderName::ContentEncoding,
            b"require" => HeaderName::Require,
            b"proxy-require" => HeaderName::ProxyRequire,
            b"supported" => HeaderName::Supported,
            b"unsupported" => HeaderName::Unsupported,
            b"allow" => HeaderName::Allow,
            b"accept" => HeaderName::Accept,
            b"expires" => HeaderName::Expires,
            b"retry-after" => HeaderName::RetryAfter,
            b"warning" => HeaderName::Warning,
            b"reason" => HeaderName::Reason,
            b"subject" => HeaderName::Subject,
            b"event" => HeaderName::Event,
            b"refer-to" => HeaderName::ReferTo,
            b"referred-by" => HeaderName::ReferredBy,
            b"server" => HeaderName::Server,
            b"user-agent" => HeaderName::UserAgent,
            b"rseq" => HeaderName::RSeq,
            b"rack" => HeaderName::RAck,
            b"session-expires" => HeaderName::SessionExpires,
            _ => HeaderName::Other,
        }
    }

    /// The canonical long form used when the gateway writes a header itself.
    pub fn canonical(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Contact => "Contact",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Supported => "Supported",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::Expires => "Expires",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Warning => "Warning",
            HeaderName::Reason => "Reason",
            HeaderName::Subject => "Subject",
            HeaderName::Event => "Event",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::Server => "Server",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::RSeq => "RSeq",
            HeaderName::RAck => "RAck",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::Other => "X-Unknown",
        }
    }

    /// Headers that may appear once only (RFC 3261 §7.3.1, §20): a second
    /// occurrence makes the message malformed (RFC 4475 §3.3.8, §3.3.9).
    pub fn is_single(self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
        )
    }

    /// Headers whose values are comma-separated lists that may be split or
    /// joined across lines (§7.3.1). Used by the list splitters.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Supported
                | HeaderName::Unsupported
                | HeaderName::Allow
                | HeaderName::Accept
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"VIA"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"cAlL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"L"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"X-Foo"), HeaderName::Other);
    }
}
