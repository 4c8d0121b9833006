//! Header-name rules shared by the dial-plan validator and the B2BUA's
//! header copying: long names for compact forms, `X-*` style patterns, and
//! the headers the B2BUA always writes itself and never copies.

use std::borrow::Cow;

use crate::sip::message::HeaderName;

use super::types::{HeaderPolicy, HeaderRewrite};

/// Headers a B2BUA owns on each leg and never copies from the other leg,
/// whatever a trunk's header policy says (lower-case long names): dialog,
/// transaction and routing state, authentication, extension negotiation,
/// reliable provisionals, session timers, references to the other leg's
/// dialogs, and the description of the body (which the B2BUA rewrites).
pub const B2BUA_OWNED_HEADERS: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "route",
    "record-route",
    "max-forwards",
    "path",
    "service-route",
    "content-length",
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "mime-version",
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
    "authentication-info",
    "security-client",
    "security-server",
    "security-verify",
    "require",
    "proxy-require",
    "supported",
    "unsupported",
    "allow",
    "allow-events",
    "rseq",
    "rack",
    "session-expires",
    "min-se",
    "replaces",
    "join",
    "target-dialog",
];

/// Compact forms (RFC 3261 §7.3.3 and the IANA registry) that
/// [`HeaderName`] does not resolve itself.
const EXTRA_COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'd', "Request-Disposition"),
    (b'j', "Reject-Contact"),
    (b'n', "Identity-Info"),
    (b'u', "Allow-Events"),
    (b'y', "Identity"),
];

/// The long form of a header name as written or received: compact forms
/// (`v`, `i`, `s`, `u`, ...) become their long name; any other name is
/// returned as is. Compare the result case-insensitively.
pub fn header_long_name(raw: &[u8]) -> Cow<'_, str> {
    long_name_of(HeaderName::from_bytes(raw), raw)
}

/// [`header_long_name`] when the kind of `raw` is already known.
fn long_name_of(kind: HeaderName, raw: &[u8]) -> Cow<'_, str> {
    if kind != HeaderName::Other {
        if raw.len() == 1 {
            return Cow::Borrowed(kind.canonical());
        }
    } else if let [c] = raw
        && let Some((_, long)) = EXTRA_COMPACT
            .iter()
            .find(|(k, _)| *k == c.to_ascii_lowercase())
    {
        return Cow::Borrowed(long);
    }
    // Names are tokens (ASCII) once parsed; the lossy path is for the rest.
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// Whether a header of a kind the parser resolves is B2BUA-owned: the same
/// answer as a search of [`B2BUA_OWNED_HEADERS`] for its long name (a unit
/// test checks every kind), without the search.
fn owned_kind(kind: HeaderName) -> Option<bool> {
    use HeaderName as H;
    Some(match kind {
        H::Other => return None,
        H::Via
        | H::From
        | H::To
        | H::CallId
        | H::CSeq
        | H::Contact
        | H::Route
        | H::RecordRoute
        | H::MaxForwards
        | H::ContentLength
        | H::ContentType
        | H::ContentEncoding
        | H::Require
        | H::ProxyRequire
        | H::Supported
        | H::Unsupported
        | H::Allow
        | H::RSeq
        | H::RAck
        | H::SessionExpires => true,
        H::Accept
        | H::Expires
        | H::RetryAfter
        | H::Warning
        | H::Reason
        | H::Subject
        | H::Event
        | H::ReferTo
        | H::ReferredBy
        | H::Server
        | H::UserAgent => false,
    })
}

/// Whether a header of this name (any case, long or compact form) is one the
/// B2BUA never copies ([`B2BUA_OWNED_HEADERS`]).
pub fn is_b2bua_owned(raw: &[u8]) -> bool {
    let kind = HeaderName::from_bytes(raw);
    is_owned(kind, long_name_of(kind, raw).as_bytes())
}

/// The one decision behind [`is_b2bua_owned`] and [`HeaderPolicy::passes`]:
/// by the parsed kind, or by the list for the kinds the parser leaves `Other`.
fn is_owned(kind: HeaderName, long: &[u8]) -> bool {
    owned_kind(kind).unwrap_or_else(|| is_owned_long(long))
}

fn is_owned_long(long: &[u8]) -> bool {
    B2BUA_OWNED_HEADERS
        .iter()
        .any(|o| o.as_bytes().eq_ignore_ascii_case(long))
}

/// Whether the header-name `pattern` of a policy matches the header name
/// `raw` (as received). A pattern is a name (case-insensitive, compact forms
/// resolved: `s` matches `Subject`), a prefix followed by `*` (`X-*` matches
/// every name starting with `X-`), or `*` alone (every name).
pub fn header_pattern_matches(pattern: &str, raw: &[u8]) -> bool {
    pattern_matches_long(pattern, header_long_name(raw).as_bytes())
}

/// [`header_pattern_matches`] against a name already in its long form.
fn pattern_matches_long(pattern: &str, long: &[u8]) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => long
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes())),
        None => header_long_name(pattern.as_bytes())
            .as_bytes()
            .eq_ignore_ascii_case(long),
    }
}

/// Whether two patterns can match at least one common header name.
pub(crate) fn patterns_overlap(a: &str, b: &str) -> bool {
    match (a.strip_suffix('*'), b.strip_suffix('*')) {
        (None, None) => header_pattern_matches(a, b.as_bytes()),
        (Some(_), None) => header_pattern_matches(a, b.as_bytes()),
        (None, Some(_)) => header_pattern_matches(b, a.as_bytes()),
        (Some(pa), Some(pb)) => {
            let n = pa.len().min(pb.len());
            pa.as_bytes().get(..n).map(<[u8]>::to_ascii_lowercase)
                == pb.as_bytes().get(..n).map(<[u8]>::to_ascii_lowercase)
        }
    }
}

/// Whether every name `inner` matches is also matched by `outer`.
pub(crate) fn pattern_covers(outer: &str, inner: &str) -> bool {
    match (outer.strip_suffix('*'), inner.strip_suffix('*')) {
        (Some(_), None) | (None, None) => header_pattern_matches(outer, inner.as_bytes()),
        (Some(po), Some(pi)) => pi
            .as_bytes()
            .get(..po.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(po.as_bytes())),
        (None, Some(_)) => false,
    }
}

impl HeaderPolicy {
    /// Whether a header of this name (as received) crosses to the other leg:
    /// it matches `pass`, matches no `drop`, and is not one of the
    /// [`B2BUA_OWNED_HEADERS`].
    pub fn passes(&self, raw_name: &[u8]) -> bool {
        self.passes_kind(HeaderName::from_bytes(raw_name), raw_name)
    }

    /// [`HeaderPolicy::passes`] for a header whose kind is already known
    /// (a parsed header's `name`): B2BUA-owned kinds answer at once, before
    /// any name pattern is compared.
    pub fn passes_kind(&self, kind: HeaderName, raw_name: &[u8]) -> bool {
        if owned_kind(kind) == Some(true) {
            return false;
        }
        // The long form once per header, not once per pattern.
        let long = long_name_of(kind, raw_name);
        let long = long.as_bytes();
        !is_owned(kind, long)
            && self.pass.iter().any(|p| pattern_matches_long(p, long))
            && !self.drop.iter().any(|p| pattern_matches_long(p, long))
    }
}

impl HeaderRewrite {
    /// Whether this rule applies to a header of this name (as received);
    /// `name` may be a pattern such as `X-*`.
    pub fn applies_to(&self, raw_name: &[u8]) -> bool {
        header_pattern_matches(&self.name, raw_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_kinds_agree_with_the_list() {
        use HeaderName as H;
        for kind in [
            H::Via,
            H::From,
            H::To,
            H::CallId,
            H::CSeq,
            H::MaxForwards,
            H::Contact,
            H::Route,
            H::RecordRoute,
            H::ContentLength,
            H::ContentType,
            H::ContentEncoding,
            H::Require,
            H::ProxyRequire,
            H::Supported,
            H::Unsupported,
            H::Allow,
            H::Accept,
            H::Expires,
            H::RetryAfter,
            H::Warning,
            H::Reason,
            H::Subject,
            H::Event,
            H::ReferTo,
            H::ReferredBy,
            H::Server,
            H::UserAgent,
            H::RSeq,
            H::RAck,
            H::SessionExpires,
        ] {
            let listed = is_owned_long(kind.canonical().as_bytes());
            assert_eq!(owned_kind(kind), Some(listed), "{kind:?}");
        }
        assert_eq!(owned_kind(H::Other), None);
    }

    #[test]
    fn dialplan_header_long_names() {
        assert_eq!(header_long_name(b"v"), "Via");
        assert_eq!(header_long_name(b"S"), "Subject");
        assert_eq!(header_long_name(b"u"), "Allow-Events");
        assert_eq!(header_long_name(b"y"), "Identity");
        assert_eq!(header_long_name(b"q"), "q");
        assert_eq!(header_long_name(b"vIa"), "vIa");
        assert_eq!(header_long_name(b"X-Foo"), "X-Foo");
    }

    #[test]
    fn dialplan_header_owned() {
        for n in [
            "Via", "v", "CALL-ID", "i", "Contact", "m", "l", "c", "e", "k", "x", "u",
        ] {
            assert!(is_b2bua_owned(n.as_bytes()), "{n}");
        }
        for n in ["Proxy-Authorization", "WWW-Authenticate", "RAck", "Min-SE"] {
            assert!(is_b2bua_owned(n.as_bytes()), "{n}");
        }
        for n in ["P-Asserted-Identity", "X-Foo", "s", "Subject", "Reason"] {
            assert!(!is_b2bua_owned(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn dialplan_header_patterns() {
        assert!(header_pattern_matches("X-*", b"x-carrier"));
        assert!(header_pattern_matches("X-*", b"X-"));
        assert!(!header_pattern_matches("X-*", b"X"));
        assert!(header_pattern_matches("*", b"anything"));
        assert!(header_pattern_matches("subject", b"s"));
        assert!(header_pattern_matches("s", b"SUBJECT"));
        assert!(header_pattern_matches("Sub*", b"s"));
        assert!(!header_pattern_matches("Privacy", b"P-Privacy"));
        assert!(header_pattern_matches(
            "P-Asserted-Identity",
            b"p-asserted-identity"
        ));
    }

    #[test]
    fn dialplan_header_pattern_relations() {
        assert!(patterns_overlap("X-*", "x-a"));
        assert!(patterns_overlap("x-a", "X-*"));
        assert!(patterns_overlap("X-*", "X-A*"));
        assert!(patterns_overlap("X-A*", "x-*"));
        assert!(!patterns_overlap("X-*", "P-*"));
        assert!(!patterns_overlap("X-A", "X-B"));
        assert!(patterns_overlap("s", "Subject"));
        assert!(pattern_covers("X-*", "X-A*"));
        assert!(pattern_covers("X-*", "x-b"));
        assert!(!pattern_covers("X-A*", "X-*"));
        assert!(!pattern_covers("X-A", "X-*"));
        assert!(pattern_covers("*", "X-*"));
    }

    #[test]
    fn dialplan_header_policy_passes() {
        let p = HeaderPolicy::default();
        assert!(p.passes(b"P-Asserted-Identity"));
        assert!(p.passes(b"x-anything"));
        assert!(!p.passes(b"Via"));
        assert!(!p.passes(b"Subject"));
        let p = HeaderPolicy {
            pass: vec!["*".into()],
            drop: vec!["X-Internal-*".into(), "s".into()],
            ..HeaderPolicy::default()
        };
        assert!(p.passes(b"X-Other"));
        assert!(!p.passes(b"x-internal-id"));
        assert!(!p.passes(b"Subject"));
        assert!(!p.passes(b"Contact"));
        assert!(!p.passes(b"m"));
    }
}
