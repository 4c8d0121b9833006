//! Route conditions: source name, source address (CIDR), and number
//! matchers on the Request-URI and From users.

use std::net::{IpAddr, SocketAddr};

use regex::Regex;

use super::types::RouteQuery;

/// A condition on a user part (called or calling number).
#[derive(Clone, Debug)]
pub(crate) enum NumberMatcher {
    /// Matches when the user starts with any of the prefixes.
    Prefixes(Vec<String>),
    /// Matches when the regex finds a match anywhere (unanchored).
    Regex(Regex),
}

impl NumberMatcher {
    /// Whether `user` satisfies the condition.
    pub(crate) fn matches(&self, user: &str) -> bool {
        match self {
            NumberMatcher::Prefixes(ps) => ps.iter().any(|p| user.starts_with(p.as_str())),
            NumberMatcher::Regex(re) => re.is_match(user),
        }
    }
}

/// An IP network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    /// Network address (host bits zero).
    pub net: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CidrError {
    /// Not `IP` or `IP/len`.
    Syntax,
    /// Prefix length larger than the address.
    Length(u8),
    /// Bits set after the prefix; carries the network it probably meant.
    HostBits(Cidr),
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

/// Strips IPv4-mapped IPv6 (`::ffff:a.b.c.d`) down to IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned into IPv4.
pub(crate) fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// The top `len` bits of a `width`-bit address set to one.
fn mask(len: u8, width: u8) -> u128 {
    let width = u32::from(width.min(128));
    let len = u32::from(len).min(width);
    if len == 0 {
        return 0;
    }
    (u128::MAX >> (128 - len)) << (width - len)
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a host route).
    pub(crate) fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (ip_text, len_text) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip_text.parse().map_err(|_| CidrError::Syntax)?;
        let ip = canonical_ip(ip);
        let (value, width) = bits(ip);
        let len = match len_text {
            None => width,
            Some(t) if !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse::<u8>().map_err(|_| CidrError::Syntax)?
            }
            Some(_) => return Err(CidrError::Syntax),
        };
        if len > width {
            return Err(CidrError::Length(len));
        }
        let m = mask(len, width);
        if value & !m != 0 {
            let net = from_bits(value & m, width);
            return Err(CidrError::HostBits(Cidr { net, len }));
        }
        Ok(Cidr { net: ip, len })
    }

    /// Whether `ip` is inside the network (IPv4-mapped IPv6 counts as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        let (net, width) = bits(self.net);
        let (v, w) = bits(ip);
        w == width && (v & mask(self.len, width)) == net
    }
}

fn from_bits(v: u128, width: u8) -> IpAddr {
    if width == 32 {
        IpAddr::V4(u32::try_from(v).unwrap_or(0).into())
    } else {
        IpAddr::V6(v.into())
    }
}

/// All conditions of one route; empty lists / `None` mean "any".
#[derive(Clone, Debug, Default)]
pub(crate) struct RouteMatcher {
    /// Listener or trunk names.
    pub sources: Vec<String>,
    /// Source networks.
    pub source_addrs: Vec<Cidr>,
    /// Condition on the Request-URI user.
    pub to: Option<NumberMatcher>,
    /// Condition on the From user.
    pub from: Option<NumberMatcher>,
}

impl RouteMatcher {
    /// True when the matcher has no condition at all (a catch-all).
    pub(crate) fn is_catch_all(&self) -> bool {
        self.sources.is_empty()
            && self.source_addrs.is_empty()
            && self.to.is_none()
            && self.from.is_none()
    }

    /// Whether every given condition holds for `q`.
    pub(crate) fn matches(&self, q: &RouteQuery<'_>) -> bool {
        let source_ok = self.sources.is_empty()
            || self
                .sources
                .iter()
                .any(|s| s == q.source_listener || Some(s.as_str()) == q.source_trunk);
        let addr_ok = self.source_addrs.is_empty()
            || self
                .source_addrs
                .iter()
                .any(|c| c.contains(q.source_addr.ip()));
        source_ok
            && addr_ok
            && self.to.as_ref().is_none_or(|m| m.matches(q.ruri_user))
            && self.from.as_ref().is_none_or(|m| m.matches(q.from_user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q<'a>(to: &'a str, from: &'a str, listener: &'a str, addr: &str) -> RouteQuery<'a> {
        RouteQuery {
            ruri_user: to,
            from_user: from,
            source_listener: listener,
            source_trunk: None,
            source_addr: addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}")),
        }
    }

    #[test]
    fn dialplan_prefix_matcher() {
        let m = NumberMatcher::Prefixes(vec!["+44".into(), "0044".into()]);
        assert!(m.matches("+442079460000"));
        assert!(m.matches("00441"));
        assert!(!m.matches("+4"));
        assert!(!m.matches("+1555"));
        assert!(!m.matches(""));
    }

    #[test]
    fn dialplan_regex_matcher_is_unanchored() {
        let re = Regex::new("^\\+1").unwrap_or_else(|e| panic!("{e}"));
        assert!(NumberMatcher::Regex(re).matches("+1555"));
        let re = Regex::new("99").unwrap_or_else(|e| panic!("{e}"));
        assert!(NumberMatcher::Regex(re).matches("1993"));
    }

    #[test]
    fn dialplan_cidr_parse_and_contains() {
        let c = Cidr::parse("10.0.0.0/8").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(c.contains("10.255.1.2".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!c.contains("11.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(c.contains("::ffff:10.1.1.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!c.contains("::1".parse().unwrap_or_else(|e| panic!("{e}"))));
        let all = Cidr::parse("0.0.0.0/0").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(all.contains("192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        let host = Cidr::parse("192.0.2.7").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(host.len, 32);
        assert!(host.contains("192.0.2.7".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!host.contains("192.0.2.8".parse().unwrap_or_else(|e| panic!("{e}"))));
        let v6 = Cidr::parse("2001:db8::/32").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(v6.contains("2001:db8:1::5".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!v6.contains("2001:db9::".parse().unwrap_or_else(|e| panic!("{e}"))));
        let v6all = Cidr::parse("::/0").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(v6all.contains("::1".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!v6all.contains("127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        let one = Cidr::parse("::1/128").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(one.contains("::1".parse().unwrap_or_else(|e| panic!("{e}"))));
    }

    #[test]
    fn dialplan_cidr_errors() {
        assert_eq!(Cidr::parse("10.0.0.0/33"), Err(CidrError::Length(33)));
        assert_eq!(Cidr::parse("::/129"), Err(CidrError::Length(129)));
        assert_eq!(Cidr::parse("10.0.0.0/"), Err(CidrError::Syntax));
        assert_eq!(Cidr::parse("10.0.0.0/+8"), Err(CidrError::Syntax));
        assert_eq!(Cidr::parse("10.0.0.0/8/8"), Err(CidrError::Syntax));
        assert_eq!(Cidr::parse("10.0.0/8"), Err(CidrError::Syntax));
        assert_eq!(Cidr::parse("example.com/8"), Err(CidrError::Syntax));
        assert_eq!(Cidr::parse("10.0.0.0/0008"), Err(CidrError::Syntax));
        match Cidr::parse("10.1.2.3/8") {
            Err(CidrError::HostBits(c)) => assert_eq!(c.to_string(), "10.0.0.0/8"),
            other => panic!("{other:?}"),
        }
        match Cidr::parse("2001:db8::1/32") {
            Err(CidrError::HostBits(c)) => assert_eq!(c.to_string(), "2001:db8::/32"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dialplan_route_matcher_all_conditions() {
        let m = RouteMatcher {
            sources: vec!["client".into(), "carrier-a".into()],
            source_addrs: vec![Cidr::parse("127.0.0.0/8").unwrap_or_else(|e| panic!("{e:?}"))],
            to: Some(NumberMatcher::Prefixes(vec!["+44".into()])),
            from: Some(NumberMatcher::Prefixes(vec!["+1".into()])),
        };
        assert!(m.matches(&q("+4420", "+1555", "client", "127.0.0.1:5000")));
        assert!(!m.matches(&q("+4420", "+1555", "other", "127.0.0.1:5000")));
        assert!(!m.matches(&q("+4420", "+1555", "client", "10.0.0.1:5000")));
        assert!(!m.matches(&q("+3320", "+1555", "client", "127.0.0.1:5000")));
        assert!(!m.matches(&q("+4420", "+3355", "client", "127.0.0.1:5000")));
        let mut via_trunk = q("+4420", "+1555", "other", "127.0.0.1:5000");
        via_trunk.source_trunk = Some("carrier-a");
        assert!(m.matches(&via_trunk));
        assert!(!m.is_catch_all());
        assert!(RouteMatcher::default().is_catch_all());
        assert!(RouteMatcher::default().matches(&q("", "", "x", "[::1]:1")));
    }
}
