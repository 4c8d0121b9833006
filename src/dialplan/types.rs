//! The validated, public dial-plan types handed to the proxy and runtime.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which side of the gateway a listener faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Faces the (WebRTC-style) clients.
    Client,
    /// Faces the SIP trunks / carriers.
    Carrier,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Carrier => "carrier",
        })
    }
}

/// A SIP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// SIP over UDP (the default).
    #[default]
    Udp,
    /// SIP over TCP.
    Tcp,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
        })
    }
}

/// How a forwarded call is handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteMode {
    /// Stateful RFC 3261 §16 proxy (the default).
    #[default]
    Proxy,
    /// Hand the call to the back-to-back user agent.
    B2bua,
}

impl fmt::Display for RouteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteMode::Proxy => "proxy",
            RouteMode::B2bua => "b2bua",
        })
    }
}

/// Where a B2BUA call's media flows (route option `media`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// The gateway anchors RTP on its own ports and rewrites SDP (the default).
    #[default]
    Anchor,
    /// B2BUA signalling only: SDP addresses pass untouched, media flows end to end.
    Bypass,
}

impl fmt::Display for MediaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaMode::Anchor => "anchor",
            MediaMode::Bypass => "bypass",
        })
    }
}

/// How DTMF travels on a leg (trunk option `dtmf`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMode {
    /// RFC 4733 telephone-event packets in the RTP stream (the default).
    #[default]
    Rfc4733,
    /// Audible tones in the audio itself.
    Inband,
    /// SIP INFO requests (`application/dtmf-relay`).
    Info,
}

impl fmt::Display for DtmfMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DtmfMode::Rfc4733 => "rfc4733",
            DtmfMode::Inband => "inband",
            DtmfMode::Info => "info",
        })
    }
}

/// Ringback the gateway plays to the caller when the trunk rings without
/// early media (route option `ringback`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RingbackTone {
    /// Relay the 180 as is; the caller plays its own ringback (the default).
    #[default]
    None,
    /// North America: 440+480 Hz, 2 s on / 4 s off.
    Us,
    /// UK: 400+450 Hz, 0.4 on / 0.2 off / 0.4 on / 2.0 off.
    Uk,
    /// Europe (ETSI): 425 Hz, 1 s on / 4 s off.
    Eu,
}

impl fmt::Display for RingbackTone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingbackTone::None => "none",
            RingbackTone::Us => "us",
            RingbackTone::Uk => "uk",
            RingbackTone::Eu => "eu",
        })
    }
}

/// Media relay settings (dial plan `media:` section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address RTP is received on and advertised in SDP (`c=`).
    pub address: IpAddr,
    /// First port of the relay range (inclusive).
    pub port_first: u16,
    /// Last port of the relay range (inclusive).
    pub port_last: u16,
    /// No RTP from either leg for this long ends the call (BYE both legs).
    pub rtp_timeout: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_first: 20000,
            port_last: 20999,
            rtp_timeout: Duration::from_secs(30),
        }
    }
}

/// A header rewrite rule of a trunk's header policy: replace every match of
/// `pattern` (a regex) in the values of headers named `name` by `replace`
/// (`$1` etc. allowed).
#[derive(Clone, Debug)]
pub struct HeaderRewrite {
    /// Header name, case-insensitive, compact forms allowed; may be a
    /// pattern such as `X-*` (see [`HeaderRewrite::applies_to`]).
    pub name: String,
    /// Compiled pattern.
    pub pattern: regex::Regex,
    /// Replacement text.
    pub replace: String,
}

impl PartialEq for HeaderRewrite {
    fn eq(&self, other: &Self) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.pattern.as_str() == other.pattern.as_str()
            && self.replace == other.replace
    }
}

impl Eq for HeaderRewrite {}

/// Which headers a B2BUA copies from one leg to the leg toward a trunk
/// (trunk option `headers:`). Names are case-insensitive and compact forms
/// count as their long name; `X-*` style wildcards match a prefix and `*`
/// every name. Whatever the lists say, the
/// [`B2BUA_OWNED_HEADERS`](super::B2BUA_OWNED_HEADERS) never cross (see
/// [`HeaderPolicy::passes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPolicy {
    /// Headers copied across (default: P-Asserted-Identity, Privacy, Diversion,
    /// History-Info, User-to-User, Reason, X-*).
    pub pass: Vec<String>,
    /// Headers never copied even if `pass` matches.
    pub drop: Vec<String>,
    /// Headers added to every request sent to the trunk (name, value), in
    /// dial-plan order.
    pub add: Vec<(String, String)>,
    /// Value rewrites applied to copied headers.
    pub rewrite: Vec<HeaderRewrite>,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy {
            pass: [
                "P-Asserted-Identity",
                "Privacy",
                "Diversion",
                "History-Info",
                "User-to-User",
                "Reason",
                "X-*",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            drop: Vec::new(),
            add: Vec::new(),
            rewrite: Vec::new(),
        }
    }
}

/// How a route uses its trunk list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForkMode {
    /// One trunk at a time, the next one only on 503/408/timeout/transport
    /// error (the default).
    #[default]
    Serial,
    /// Every trunk at once (RFC 3261 §16.6 parallel forking); the first 2xx
    /// wins and the other branches are cancelled.
    Parallel,
}

impl fmt::Display for ForkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForkMode::Serial => "serial",
            ForkMode::Parallel => "parallel",
        })
    }
}

/// SIP timer values (RFC 3261 §17 and proxy Timer C, §16.6 step 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1, RTT estimate (default 500 ms).
    pub t1: Duration,
    /// T2, maximum retransmit interval for non-INVITE requests and INVITE
    /// responses (default 4 s).
    pub t2: Duration,
    /// T4, maximum duration a message stays in the network (default 5 s).
    pub t4: Duration,
    /// Proxy INVITE Timer C (default 180 s).
    pub timer_c: Duration,
    /// B2BUA: no final answer from a trunk within this long → next trunk or
    /// 408 to the caller (default 60 s).
    pub no_answer: Duration,
    /// B2BUA: a call is ended with BYE on both legs after this long
    /// (default 4 h).
    pub max_call_duration: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4000),
            t4: Duration::from_millis(5000),
            timer_c: Duration::from_secs(180),
            no_answer: Duration::from_secs(60),
            max_call_duration: Duration::from_secs(4 * 3600),
        }
    }
}

/// Gateway-wide settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Host name used in Via / Record-Route / Contact when set; otherwise the
    /// listener's IP address is used.
    pub fqdn: Option<String>,
}

/// A local address the gateway listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Unique name, used by routes' `source`.
    pub name: String,
    /// Which side this listener faces.
    pub side: Side,
    /// UDP bind address, if any.
    pub udp: Option<SocketAddr>,
    /// TCP bind address, if any.
    pub tcp: Option<SocketAddr>,
}

/// A SIP trunk (next hop) calls can be forwarded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    /// Unique name.
    pub name: String,
    /// IP-literal socket address of the trunk.
    pub address: SocketAddr,
    /// Transport used to reach it.
    pub transport: TransportKind,
    /// B2BUA policy toward this trunk (headers, codecs, SDP), shared.
    pub policy: std::sync::Arc<TrunkPolicy>,
}

/// What the B2BUA does on a leg toward a trunk (trunk options in the dial plan).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkPolicy {
    /// Header policy for requests sent to the trunk and responses from it.
    pub headers: HeaderPolicy,
    /// Codecs offered to the trunk, in preference order (encoding names as in
    /// `a=rtpmap`, in the spelling of the dial plan's known-codec list, e.g.
    /// `PCMA`, `opus`; compare case-insensitively); empty = as offered.
    /// `telephone-event` and `CN` are kept whether listed or not.
    pub codecs: Vec<String>,
    /// Strip ICE candidates, SRTP crypto and DTLS fingerprints from SDP sent to
    /// this trunk (plain-RTP carrier trunk; default true).
    pub plain_rtp: bool,
    /// SDES-SRTP toward this trunk (a client platform): the gateway offers
    /// `RTP/SAVP` with its own `a=crypto` key and terminates SRTP on this
    /// leg (default false).
    pub srtp: bool,
    /// How the trunk sends and expects DTMF.
    pub dtmf: DtmfMode,
}

impl Default for TrunkPolicy {
    fn default() -> Self {
        TrunkPolicy {
            headers: HeaderPolicy::default(),
            codecs: Vec::new(),
            plain_rtp: true,
            srtp: false,
            dtmf: DtmfMode::Rfc4733,
        }
    }
}

impl fmt::Display for Trunk {
    /// `name(address/transport)`, e.g. `carrier-a(127.0.0.1:5070/udp)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}/{})", self.name, self.address, self.transport)
    }
}

/// What routing looks at: the facts of one incoming request.
#[derive(Clone, Copy, Debug)]
pub struct RouteQuery<'a> {
    /// User part of the Request-URI (the called number).
    pub ruri_user: &'a str,
    /// User part of the From URI (the calling number).
    pub from_user: &'a str,
    /// Name of the listener the request arrived on.
    pub source_listener: &'a str,
    /// Name of the trunk the request came from, if its source address is a
    /// known trunk (see [`DialPlan::trunk_by_addr`](super::DialPlan::trunk_by_addr)).
    pub source_trunk: Option<&'a str>,
    /// Source address of the request.
    pub source_addr: SocketAddr,
}

/// The outcome of routing one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward to the trunks, trying them in order (failover).
    Forward {
        /// Name of the route that matched (shared with the compiled plan:
        /// routing a call copies no strings).
        route: std::sync::Arc<str>,
        /// Trunks in failover order (never empty), shared with the plan.
        trunks: std::sync::Arc<[Trunk]>,
        /// New Request-URI user, `Some` only if the rewrite changed it.
        ruri_user: Option<String>,
        /// New From user, `Some` only if the rewrite changed it.
        from_user: Option<String>,
        /// Proxy or B2BUA.
        mode: RouteMode,
        /// Serial failover or parallel forking over `trunks`.
        fork: ForkMode,
        /// B2BUA media handling (ignored in proxy mode).
        media: MediaMode,
        /// B2BUA: ringback played to the caller on a 180 without SDP.
        ringback: RingbackTone,
    },
    /// Answer with a final error response.
    Reject {
        /// Name of the route that matched.
        route: std::sync::Arc<str>,
        /// Status code, 400–699.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// No route matched; the proxy answers 404 Not Found.
    NoRoute,
}

impl fmt::Display for Decision {
    /// One line, as printed by `callgate route`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Forward {
                route,
                trunks,
                ruri_user,
                from_user,
                mode,
                fork,
                media,
                ringback,
            } => {
                write!(f, "route={route} mode={mode}")?;
                if *mode == RouteMode::B2bua {
                    write!(f, " media={media}")?;
                    if *ringback != RingbackTone::None {
                        write!(f, " ringback={ringback}")?;
                    }
                }
                if *fork == ForkMode::Parallel {
                    f.write_str(" fork=parallel")?;
                }
                if let Some(u) = ruri_user {
                    write!(f, " ruri_user={u}")?;
                }
                if let Some(u) = from_user {
                    write!(f, " from_user={u}")?;
                }
                f.write_str(" trunks=")?;
                for (i, t) in trunks.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
            Decision::Reject {
                route,
                status,
                reason,
            } => write!(f, "reject {status} {reason} (route={route})"),
            Decision::NoRoute => f.write_str("no route (404)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialplan_decision_display() {
        let t = Trunk {
            name: "a".into(),
            address: SocketAddr::from(([127, 0, 0, 1], 5070)),
            transport: TransportKind::Tcp,
            policy: Default::default(),
        };
        let d = Decision::Forward {
            route: "r".into(),
            trunks: vec![t.clone(), t].into(),
            ruri_user: Some("+44".into()),
            from_user: None,
            mode: RouteMode::B2bua,
            fork: ForkMode::Serial,
            media: MediaMode::Anchor,
            ringback: RingbackTone::None,
        };
        assert_eq!(
            d.to_string(),
            "route=r mode=b2bua media=anchor ruri_user=+44 trunks=a(127.0.0.1:5070/tcp),a(127.0.0.1:5070/tcp)"
        );
        let r = Decision::Reject {
            route: "r".into(),
            status: 403,
            reason: "Forbidden".into(),
        };
        assert_eq!(r.to_string(), "reject 403 Forbidden (route=r)");
        assert_eq!(Decision::NoRoute.to_string(), "no route (404)");
    }

    #[test]
    fn dialplan_timer_defaults() {
        let t = TimerConfig::default();
        assert_eq!(t.t1, Duration::from_millis(500));
        assert_eq!(t.t2, Duration::from_secs(4));
        assert_eq!(t.t4, Duration::from_secs(5));
        assert_eq!(t.timer_c, Duration::from_secs(180));
    }
}
