//! `name-addr` / `addr-spec` values (RFC 3261 §20.10, §25.1): From, To,
//! Contact, Route, Record-Route, Refer-To.

use bytes::Bytes;

use super::scan::{self, Param, ScanError};
use super::uri::{Uri, UriError, UriSpans};

/// Why a name-addr could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameAddrError {
    /// Quotes or angle brackets do not balance (RFC 4475 §3.1.2.6).
    Unbalanced,
    /// An unquoted display name with characters outside `token`
    /// (RFC 4475 §3.1.2.15: `Bell, Alexander <sip:...>`).
    BadDisplayName,
    /// The URI inside is malformed.
    Uri(UriError),
    /// Header parameters are malformed.
    Params(ScanError),
    /// Nothing there.
    Empty,
}

/// A parsed name-addr: optional display name, URI, header parameters.
#[derive(Debug, Clone)]
pub struct NameAddr {
    /// The display name as received (quotes included), if any.
    pub display: Option<Bytes>,
    /// The URI.
    pub uri: Uri,
    /// Raw header parameters after the URI, leading `;` included.
    pub params: Bytes,
    /// Whether the URI was written inside `<...>`.
    pub bracketed: bool,
}

impl NameAddr {
    /// Parse one name-addr from a trimmed header element (`owner` is the
    /// buffer `s` was sliced from, so results share it).
    pub fn parse(owner: &Bytes, s: &[u8]) -> Result<NameAddr, NameAddrError> {
        let p = Parts::of(s)?;
        Ok(NameAddr {
            display: p.display.map(|d| scan::slice_of(owner, d)),
            uri: p.uri_spans.over(scan::slice_of(owner, p.uri)),
            params: scan::slice_of(owner, p.params),
            bracketed: p.bracketed,
        })
    }

    /// Whether `s` parses as [`NameAddr::parse`] would take it, without
    /// building one (no reference-counted slices): message validation of
    /// From and To on every message.
    pub fn check(s: &[u8]) -> Result<(), NameAddrError> {
        Parts::of(s).map(|_| ())
    }

    /// Header parameters (already validated at parse time).
    pub fn params(&self) -> Vec<Param<'_>> {
        scan::parse_params(&self.params).unwrap_or_default()
    }

    /// A header parameter by name: `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        scan::find_param_in(&self.params, name)
    }

    /// The `tag` parameter (From/To, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&[u8]> {
        self.param("tag").flatten()
    }
}

/// The pieces of a name-addr, borrowed from the element they were found in.
struct Parts<'a> {
    display: Option<&'a [u8]>,
    uri: &'a [u8],
    uri_spans: UriSpans,
    params: &'a [u8],
    bracketed: bool,
}

impl<'a> Parts<'a> {
    /// RFC 3261 §20.10, §25.1 `name-addr / addr-spec`, with the tolerance
    /// RFC 4475 asks for.
    fn of(s: &'a [u8]) -> Result<Parts<'a>, NameAddrError> {
        let s = scan::trim_lws(s);
        if s.is_empty() {
            return Err(NameAddrError::Empty);
        }
        let mut i = 0;
        let mut display = None;
        let n = s.len();
        if s[0] == b'"' {
            i = scan::skip_quoted(s, 0).ok_or(NameAddrError::Unbalanced)?;
            display = Some(&s[..i]);
            while i < n && scan::is_lws(s[i]) {
                i += 1;
            }
            if i >= n || s[i] != b'<' {
                return Err(NameAddrError::Unbalanced);
            }
        } else if let Some(lt) = s.iter().position(|&b| b == b'<') {
            let name = scan::trim_lws(&s[..lt]);
            if !name.iter().all(|&b| scan::is_token(b) || scan::is_lws(b)) {
                return Err(NameAddrError::BadDisplayName);
            }
            if !name.is_empty() {
                display = Some(name);
            }
            i = lt;
        }
        let (uri, rest, bracketed) = if i < n && s[i] == b'<' {
            let close = s[i..]
                .iter()
                .position(|&b| b == b'>')
                .ok_or(NameAddrError::Unbalanced)?;
            // RFC 4475 §3.1.2.14 tolerates LWS inside the brackets.
            let inner = scan::trim_lws(&s[i + 1..i + close]);
            (inner, &s[i + close + 1..], true)
        } else {
            // addr-spec: parameters after ';' belong to the header (§20.10).
            let end = s
                .iter()
                .position(|&b| b == b';' || scan::is_lws(b))
                .unwrap_or(n);
            (&s[..end], &s[end..], false)
        };
        let uri_spans = Uri::spans(uri).map_err(NameAddrError::Uri)?;
        scan::validate_params(rest).map_err(NameAddrError::Params)?;
        Ok(Parts {
            display,
            uri,
            uri_spans,
            params: rest,
            bracketed,
        })
    }
}

/// The header-parameter section of a name-addr value (what
/// [`NameAddr::params`] would hold), found without parsing the URI: the
/// cheap path for a From/To tag on every message. Meant for values that
/// already passed [`NameAddr::parse`] (the parser's validation does that
/// for From and To); `None` where the quoting is unbalanced.
pub fn header_params_of(s: &[u8]) -> Option<&[u8]> {
    let s = scan::trim_lws(s);
    let n = s.len();
    let mut i = 0;
    if s.first() == Some(&b'"') {
        i = scan::skip_quoted(s, 0)?;
    }
    if let Some(lt) = s[i..].iter().position(|&b| b == b'<') {
        let lt = i + lt;
        let close = s[lt..].iter().position(|&b| b == b'>')?;
        return Some(&s[lt + close + 1..]);
    }
    if i > 0 {
        return None;
    }
    // addr-spec: parameters after ';' belong to the header (§20.10).
    let end = s
        .iter()
        .position(|&b| b == b';' || scan::is_lws(b))
        .unwrap_or(n);
    Some(&s[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn na(s: &str) -> Result<NameAddr, NameAddrError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        NameAddr::parse(&b, &b)
    }

    #[test]
    fn forms() {
        let a = na(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
        assert_eq!(a.uri.user(), Some(&b"jdrosen"[..]));
        let a = na("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.tag(), Some(&b"1918181833n"[..]));
        assert!(!a.bracketed);
        let a = na("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display.as_deref(), Some(&b"caller"[..]));
        let a = na("< sip:t.watson@example.org >").unwrap();
        assert_eq!(a.uri.host(), b"example.org");
        let a = na("<name:John_Smith>").unwrap();
        assert_eq!(a.uri.host(), b"John_Smith");
    }

    #[test]
    fn header_params_found_without_the_uri_parse() {
        for v in [
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
            "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            "caller<sip:caller@example.com;tag=no>;tag=323",
            "\"a<b>;tag=x\" <sip:x@y;tag=no>;tag=real;lr",
            "<sip:t.watson@example.org>",
            "sip:a@b;tag=t1",
        ] {
            let full = na(v).unwrap();
            let fast = header_params_of(v.as_bytes()).unwrap();
            assert_eq!(fast, &full.params[..], "{v}");
            assert_eq!(
                scan::find_param_in(fast, "tag").flatten(),
                full.tag(),
                "{v}"
            );
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            na("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").unwrap_err(),
            NameAddrError::BadDisplayName
        );
        assert_eq!(
            na("\"Mr. J. User <sip:j.user@example.com>").unwrap_err(),
            NameAddrError::Unbalanced
        );
        assert!(na("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    }

    #[test]
    fn check_agrees_with_parse() {
        for v in [
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
            "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            "<sip:t.watson@example.org>",
            "tel:+15551234;tag=1",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:[2001:db8::1>",
            "<sip:a@b:99999>",
            "<nocolon>",
            "",
        ] {
            assert_eq!(NameAddr::check(v.as_bytes()), na(v).map(|_| ()), "{v:?}");
        }
    }
}
