//! URIs: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966) and any other
//! scheme kept opaque. The raw bytes are kept exactly as received
//! (%-escapes included); accessors are views into them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::scan::{self, Param};

/// URI scheme; anything but sip/sips/tel is `Other` (a proxy answers 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other,
}

/// Why a URI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    /// No `scheme:` prefix.
    NoScheme,
    /// Whitespace, `<` or `>` inside the URI (RFC 4475 §3.1.2.7, §3.1.2.8).
    IllegalChar(u8),
    /// sip/sips URI without a host.
    NoHost,
    /// An IPv6 reference without the closing `]`.
    BadIpv6,
    /// A port that is not a number in 0..=65535.
    BadPort,
}

type Span = (usize, usize);

/// What parsing a URI finds, before it is tied to its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UriSpans {
    scheme: Scheme,
    user: Option<Span>,
    host: Span,
    port: Option<u16>,
    params: Span,
    headers: Span,
}

impl UriSpans {
    /// The URI these spans describe in `raw` (the buffer they were found in).
    pub(crate) fn over(self, raw: Bytes) -> Uri {
        Uri { raw, spans: self }
    }
}

/// A parsed URI holding its raw bytes and spans into them.
#[derive(Clone, PartialEq, Eq)]
pub struct Uri {
    raw: Bytes,
    spans: UriSpans,
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uri({})", String::from_utf8_lossy(&self.raw))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.raw))
    }
}

fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

impl Uri {
    /// Parse a URI from its raw bytes (no surrounding `<>`).
    pub fn parse(raw: Bytes) -> Result<Uri, UriError> {
        Uri::spans(&raw).map(|s| s.over(raw))
    }

    /// Whether `raw` parses as [`Uri::parse`] would take it, without
    /// building a `Uri` (no reference-counted buffer): message validation.
    pub fn check(raw: &[u8]) -> Result<(), UriError> {
        Uri::spans(raw).map(|_| ())
    }

    /// The scheme and the spans of a URI in `raw` (the work of `parse`).
    pub(crate) fn spans(raw: &[u8]) -> Result<UriSpans, UriError> {
        if let Some(&b) = raw
            .iter()
            .find(|b| b.is_ascii_whitespace() || matches!(b, b'<' | b'>'))
        {
            return Err(UriError::IllegalChar(b));
        }
        let colon = raw
            .iter()
            .position(|&b| b == b':')
            .ok_or(UriError::NoScheme)?;
        let scheme_bytes = &raw[..colon];
        if scheme_bytes.is_empty()
            || !scheme_bytes[0].is_ascii_alphabetic()
            || !scheme_bytes.iter().all(|&b| is_scheme_char(b))
        {
            return Err(UriError::NoScheme);
        }
        let scheme = if scheme_bytes.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_bytes.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme_bytes.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let rest_start = colon + 1;
        let len = raw.len();
        match scheme {
            Scheme::Other => Ok(UriSpans {
                scheme,
                user: None,
                host: (rest_start, len),
                port: None,
                params: (len, len),
                headers: (len, len),
            }),
            Scheme::Tel => {
                let end = raw[rest_start..]
                    .iter()
                    .position(|&b| b == b';')
                    .map_or(len, |p| rest_start + p);
                Ok(UriSpans {
                    scheme,
                    user: Some((rest_start, end)),
                    host: (end, end),
                    port: None,
                    params: (end, len),
                    headers: (len, len),
                })
            }
            Scheme::Sip | Scheme::Sips => Self::parse_sip(raw, scheme, rest_start),
        }
    }

    fn parse_sip(raw: &[u8], scheme: Scheme, start: usize) -> Result<UriSpans, UriError> {
        let len = raw.len();
        let headers_start = raw[start..]
            .iter()
            .position(|&b| b == b'?')
            .map_or(len, |p| start + p);
        // userinfo ends at the first '@' (RFC 3261 §19.1.1; '@' inside the
        // user part must be escaped).
        let at = raw[start..headers_start].iter().position(|&b| b == b'@');
        let (user, host_start) = match at {
            Some(p) => {
                let ui = &raw[start..start + p];
                // user ends at the first ':' (password follows, RFC 3261 §19.1.1).
                let uend = ui.iter().position(|&b| b == b':').unwrap_or(ui.len());
                (Some((start, start + uend)), start + p + 1)
            }
            None => (None, start),
        };
        let (host_end, after_host) = if raw.get(host_start) == Some(&b'[') {
            let close = raw[host_start..headers_start]
                .iter()
                .position(|&b| b == b']')
                .ok_or(UriError::BadIpv6)?;
            (host_start + close + 1, host_start + close + 1)
        } else {
            let e = raw[host_start..headers_start]
                .iter()
                .position(|&b| b == b':' || b == b';')
                .map_or(headers_start, |p| host_start + p);
            (e, e)
        };
        if host_end == host_start {
            return Err(UriError::NoHost);
        }
        let mut i = after_host;
        let mut port = None;
        if raw.get(i) == Some(&b':') {
            let p_start = i + 1;
            let p_end = raw[p_start..headers_start]
                .iter()
                .position(|&b| b == b';')
                .map_or(headers_start, |p| p_start + p);
            let digits = &raw[p_start..p_end];
            let v = scan::parse_u32(digits).ok_or(UriError::BadPort)?;
            port = Some(u16::try_from(v).map_err(|_| UriError::BadPort)?);
            i = p_end;
        }
        if i < headers_start && raw[i] != b';' {
            return Err(UriError::BadPort);
        }
        Ok(UriSpans {
            scheme,
            user,
            host: (host_start, host_end),
            port,
            params: (i, headers_start),
            headers: (headers_start, len),
        })
    }

    /// The URI exactly as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The raw bytes as a shareable buffer.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.spans.scheme
    }

    /// The user part (sip/sips) or the number (tel), still %-escaped.
    pub fn user(&self) -> Option<&[u8]> {
        self.spans.user.map(|(a, b)| &self.raw[a..b])
    }

    /// The user part with %-escapes decoded, lossily as UTF-8; empty when absent.
    pub fn user_decoded(&self) -> String {
        self.user_decoded_cow().into_owned()
    }

    /// [`Uri::user_decoded`] without a copy when there is nothing to decode
    /// (no `%`, valid UTF-8): what the dial plan matches against per request.
    pub fn user_decoded_cow(&self) -> std::borrow::Cow<'_, str> {
        match self.user() {
            None => std::borrow::Cow::Borrowed(""),
            Some(u) if !u.contains(&b'%') => String::from_utf8_lossy(u),
            Some(u) => std::borrow::Cow::Owned(percent_decode(u)),
        }
    }

    /// The host (IPv6 references keep their brackets); for other schemes,
    /// everything after the colon.
    pub fn host(&self) -> &[u8] {
        &self.raw[self.spans.host.0..self.spans.host.1]
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.spans.port
    }

    /// The raw `;params` section (leading `;` included), before any `?headers`.
    pub fn params_raw(&self) -> &[u8] {
        &self.raw[self.spans.params.0..self.spans.params.1]
    }

    /// The raw `?headers` section, `?` included.
    pub fn headers_raw(&self) -> &[u8] {
        &self.raw[self.spans.headers.0..self.spans.headers.1]
    }

    /// URI parameters; malformed parameter sections yield an empty list.
    pub fn params(&self) -> Vec<Param<'_>> {
        scan::parse_params(self.params_raw()).unwrap_or_default()
    }

    /// Look up a URI parameter: `Some(None)` for a flag like `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        let mut found = None;
        for p in scan::params(self.params_raw()) {
            // A malformed section has no parameters, as `params` says.
            let p = p.ok()?;
            if found.is_none() && p.name.eq_ignore_ascii_case(name.as_bytes()) {
                found = Some(p.value);
            }
        }
        found
    }

    /// True when the URI carries `;lr` (RFC 3261 §16.12 loose routing).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The host as an IP address, when it is a literal.
    pub fn host_ip(&self) -> Option<IpAddr> {
        let h = std::str::from_utf8(self.host()).ok()?;
        let h = h
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(h);
        h.parse().ok()
    }

    /// Host literal and port as a socket address; `default_port` when none is
    /// given (5060, or 5061 for sips: RFC 3263 §4.2).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let default = if self.spans.scheme == Scheme::Sips {
            5061
        } else {
            5060
        };
        Some(SocketAddr::new(
            self.host_ip()?,
            self.spans.port.unwrap_or(default),
        ))
    }

    /// A copy with the user part replaced (used by number rewriting); other
    /// bytes are kept as they were.
    pub fn with_user(&self, user: &str) -> Uri {
        let mut out = Vec::with_capacity(self.raw.len() + user.len());
        match (self.spans.scheme, self.spans.user) {
            (Scheme::Sip | Scheme::Sips | Scheme::Tel, Some((a, b))) => {
                out.extend_from_slice(&self.raw[..a]);
                out.extend_from_slice(user.as_bytes());
                out.extend_from_slice(&self.raw[b..]);
            }
            (Scheme::Sip | Scheme::Sips, None) => {
                out.extend_from_slice(&self.raw[..self.spans.host.0]);
                out.extend_from_slice(user.as_bytes());
                out.push(b'@');
                out.extend_from_slice(&self.raw[self.spans.host.0..]);
            }
            _ => return self.clone(),
        }
        // Re-parsing our own output of a URI that parsed cannot fail unless
        // the new user holds '@' or whitespace; keep the original then.
        Uri::parse(Bytes::from(out)).unwrap_or_else(|_| self.clone())
    }
}

/// Decode %XX escapes; invalid escapes are kept literally.
pub fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    // One allocation when the result is valid UTF-8 (the usual case).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        Uri::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    #[test]
    fn sip_with_everything() {
        let u = uri("sip:alice:pw@[2001:db8::1]:5070;transport=tcp;lr?Subject=x");
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some(&b"alice"[..]));
        assert_eq!(u.host(), b"[2001:db8::1]");
        assert_eq!(u.port(), Some(5070));
        assert!(u.is_loose_route());
        assert_eq!(u.param("transport"), Some(Some(&b"tcp"[..])));
        assert_eq!(u.headers_raw(), b"?Subject=x");
        assert_eq!(u.socket_addr(), Some("[2001:db8::1]:5070".parse().unwrap()));
    }

    #[test]
    fn escapes_kept_and_decoded() {
        let u = uri("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.user(), Some(&b"sips%3Auser%40example.com"[..]));
        assert_eq!(u.user_decoded(), "sips:user@example.com");
        assert_eq!(u.host(), b"example.net");
        let u = uri("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some(&b"user;par=u%40example.net"[..]));
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = uri("tel:+1-201-555-0123;phone-context=example.com");
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some(&b"+1-201-555-0123"[..]));
        assert_eq!(uri("soap.beep://192.0.2.103:3002").scheme(), Scheme::Other);
        assert_eq!(uri("nobodyKnowsThisScheme:x").scheme(), Scheme::Other);
    }

    #[test]
    fn rejects_bad_uris() {
        let p = |s: &str| Uri::parse(Bytes::copy_from_slice(s.as_bytes()));
        assert_eq!(p("<sip:a@b>"), Err(UriError::IllegalChar(b'<')));
        assert_eq!(p("sip:a@b; lr"), Err(UriError::IllegalChar(b' ')));
        assert_eq!(p("sip:a@[::1"), Err(UriError::BadIpv6));
        assert_eq!(p("sip:a@b:99999"), Err(UriError::BadPort));
        assert_eq!(p("sip:"), Err(UriError::NoHost));
        assert_eq!(p("nocolon"), Err(UriError::NoScheme));
    }

    #[test]
    fn rewrite_user_keeps_rest() {
        let u = uri("sip:0207@10.0.0.1:5060;user=phone");
        assert_eq!(
            u.with_user("+44207").as_bytes(),
            b"sip:+44207@10.0.0.1:5060;user=phone"
        );
        let u = uri("sip:10.0.0.1");
        assert_eq!(u.with_user("bob").as_bytes(), b"sip:bob@10.0.0.1");
    }
}
