//! The Via header (RFC 3261 §20.42, §18.2.1 `received`, RFC 3581 `rport`).

use bytes::Bytes;

use super::scan::{self, Param, ScanError};

/// Why a Via value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViaError {
    /// `SIP/2.0/<transport>` missing or malformed.
    Protocol,
    /// No sent-by host, or a bad port.
    SentBy,
    /// Parameters are malformed (RFC 4475 §3.1.2.1 `;;,;,,`).
    Params(ScanError),
}

/// One Via value.
#[derive(Debug, Clone)]
pub struct Via {
    /// Transport token, upper-cased as received (`UDP`, `TCP`, `TLS`, …).
    pub transport: Bytes,
    /// sent-by host (IPv6 references keep their brackets).
    pub host: Bytes,
    /// sent-by port, when explicit.
    pub port: Option<u16>,
    /// Raw parameters, leading `;` included.
    pub params: Bytes,
}

/// The RFC 3261 branch magic cookie (§8.1.1.7).
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

impl Via {
    /// Parse one Via element (already split from its list). `owner` is the
    /// buffer `s` was sliced from. See [`ViaRef::parse`] for a borrowed view
    /// (no reference counting), which is what hot paths use.
    pub fn parse(owner: &Bytes, s: &[u8]) -> Result<Via, ViaError> {
        let v = ViaRef::parse(s)?;
        Ok(Via {
            transport: scan::slice_of(owner, v.transport),
            host: scan::slice_of(owner, v.host),
            port: v.port,
            params: scan::slice_of(owner, v.params),
        })
    }

    /// This Via as a borrowed view.
    pub fn as_ref(&self) -> ViaRef<'_> {
        ViaRef {
            transport: &self.transport,
            host: &self.host,
            port: self.port,
            params: &self.params,
        }
    }

    /// Parameters of this Via.
    pub fn params(&self) -> Vec<Param<'_>> {
        scan::parse_params(&self.params).unwrap_or_default()
    }

    /// A parameter by name: `Some(None)` for a flag such as a bare `rport`.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        scan::find_param_in(&self.params, name)
    }

    /// The branch parameter, if present.
    pub fn branch(&self) -> Option<&[u8]> {
        self.param("branch").flatten()
    }

    /// True when the branch starts with the RFC 3261 magic cookie and has
    /// something after it (see [`ViaRef::has_rfc3261_branch`]).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.as_ref().has_rfc3261_branch()
    }
}

/// One Via value borrowed from the message: what [`Via`] holds, without
/// the reference-counted slices (taking and dropping three of those on
/// every parse of a top Via was ~6 % of the proxy's CPU in `perf`).
#[derive(Debug, Clone, Copy)]
pub struct ViaRef<'a> {
    /// Transport token, as received.
    pub transport: &'a [u8],
    /// sent-by host (IPv6 references keep their brackets).
    pub host: &'a [u8],
    /// sent-by port, when explicit.
    pub port: Option<u16>,
    /// Raw parameters, leading `;` included.
    pub params: &'a [u8],
}

impl<'a> ViaRef<'a> {
    /// Parse one Via element (already split from its list), borrowing it. LWS may appear around `/` (RFC 4475 §3.1.1.1).
    pub fn parse(s: &'a [u8]) -> Result<ViaRef<'a>, ViaError> {
        let v = ViaRef::parse_validated(s)?;
        scan::validate_params(v.params).map_err(ViaError::Params)?;
        Ok(v)
    }

    /// [`ViaRef::parse`] without the check of the parameters' syntax: for
    /// a Via that already passed it (the top Via of a parsed message, which
    /// the parser's validation checked; one the gateway wrote). Reading
    /// parameters never fails on malformed ones either, so this is safe on
    /// any input; it only skips re-checking, on every look at the top Via.
    pub fn parse_validated(s: &'a [u8]) -> Result<ViaRef<'a>, ViaError> {
        let n = s.len();
        let mut i = 0;
        let mut parts: [&[u8]; 3] = [b"", b"", b""];
        for (k, part) in parts.iter_mut().enumerate() {
            while i < n && scan::is_lws(s[i]) {
                i += 1;
            }
            if k > 0 {
                if i >= n || s[i] != b'/' {
                    return Err(ViaError::Protocol);
                }
                i += 1;
                while i < n && scan::is_lws(s[i]) {
                    i += 1;
                }
            }
            let st = i;
            while i < n && scan::is_token(s[i]) {
                i += 1;
            }
            if st == i {
                return Err(ViaError::Protocol);
            }
            *part = &s[st..i];
        }
        if !parts[0].eq_ignore_ascii_case(b"SIP") {
            return Err(ViaError::Protocol);
        }
        while i < n && scan::is_lws(s[i]) {
            i += 1;
        }
        let host_start = i;
        if i < n && s[i] == b'[' {
            while i < n && s[i] != b']' {
                i += 1;
            }
            if i >= n {
                return Err(ViaError::SentBy);
            }
            i += 1;
        } else {
            while i < n && (s[i].is_ascii_alphanumeric() || matches!(s[i], b'.' | b'-' | b'_')) {
                i += 1;
            }
        }
        if i == host_start {
            return Err(ViaError::SentBy);
        }
        let host = &s[host_start..i];
        while i < n && scan::is_lws(s[i]) {
            i += 1;
        }
        let mut port = None;
        if i < n && s[i] == b':' {
            i += 1;
            while i < n && scan::is_lws(s[i]) {
                i += 1;
            }
            let st = i;
            while i < n && s[i].is_ascii_digit() {
                i += 1;
            }
            let v = scan::parse_u32(&s[st..i]).ok_or(ViaError::SentBy)?;
            port = Some(u16::try_from(v).map_err(|_| ViaError::SentBy)?);
        }
        let rest = &s[i..];
        Ok(ViaRef {
            transport: parts[2],
            host,
            port,
            params: rest,
        })
    }

    /// A parameter by name: `Some(None)` for a flag such as a bare `rport`.
    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        scan::find_param_in(self.params, name)
    }

    /// The branch parameter, if present.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.param("branch").flatten()
    }

    /// True when the branch starts with the RFC 3261 magic cookie and has
    /// something after it (RFC 4475 §3.2.1: a bare cookie is not enough to
    /// be unique, so it is matched the RFC 2543 way).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &str) -> Result<Via, ViaError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        Via::parse(&b, &b)
    }

    #[test]
    fn folded_and_spaced() {
        let v = via("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(&v.transport[..], b"UDP");
        assert_eq!(&v.host[..], b"192.0.2.2");
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        assert!(!v.has_rfc3261_branch());
        let v = via("SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(&v.host[..], b"[2001:db8::9]");
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.param("rport"), Some(None));
        assert!(v.has_rfc3261_branch());
    }

    #[test]
    fn bad() {
        assert!(via("192.0.2.15;;,;,,").is_err());
        assert!(via("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(via("SIP/2.0/UDP host:99999").is_err());
    }

    #[test]
    fn validated_parse_skips_only_the_parameter_check() {
        let good = "SIP/2.0/UDP [2001:db8::1]:5060 ;branch=z9hG4bK1;rport;received=1.2.3.4";
        let (a, b) = (
            ViaRef::parse(good.as_bytes()).unwrap(),
            ViaRef::parse_validated(good.as_bytes()).unwrap(),
        );
        assert_eq!(
            (a.transport, a.host, a.port, a.params),
            (b.transport, b.host, b.port, b.params)
        );
        assert_eq!(b.branch(), Some(&b"z9hG4bK1"[..]));
        // Malformed parameters: only the full parse refuses them.
        let bad = "SIP/2.0/UDP 192.0.2.15;;";
        assert!(ViaRef::parse(bad.as_bytes()).is_err());
        assert_eq!(
            ViaRef::parse_validated(bad.as_bytes()).unwrap().branch(),
            None
        );
        // Protocol and sent-by are still checked.
        assert!(ViaRef::parse_validated(b"192.0.2.15;;,;,,").is_err());
        assert!(ViaRef::parse_validated(b"SIP/2.0/UDP host:99999").is_err());
    }
}
