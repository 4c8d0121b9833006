//! The dial-plan file as written: serde types that mirror the YAML exactly.
//!
//! Every node is wrapped in [`Sp`] so validation can point at it, and every
//! struct denies unknown fields so typos are reported with their position.
//! The doc comments here become the descriptions in `callgate schema`.

use schemars::JsonSchema;
use serde::Deserialize;

use super::spanned::{Sp, SpPairs, StrList};
use super::types::{DtmfMode, ForkMode, MediaMode, RingbackTone, RouteMode, Side, TransportKind};

/// A callgate dial plan (version 1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "callgate dial plan")]
pub(crate) struct PlanFile {
    /// Format version; must be 1.
    #[schemars(extend("const" = 1))]
    pub version: Sp<u32>,
    /// Gateway-wide settings.
    #[serde(default)]
    pub gateway: Option<Sp<GatewaySection>>,
    /// Admin HTTP address (`IP:port`), e.g. `127.0.0.1:9090`.
    #[serde(default)]
    pub admin: Option<Sp<String>>,
    /// SIP timer values; each one defaults when omitted.
    #[serde(default)]
    pub timers: Option<Sp<TimersSection>>,
    /// Media relay (B2BUA routes with `media: anchor`); each key defaults
    /// when omitted.
    #[serde(default)]
    pub media: Option<Sp<MediaSection>>,
    /// Local addresses to listen on (at least one).
    pub listeners: Sp<Vec<Sp<ListenerEntry>>>,
    /// Next hops calls can be forwarded to.
    #[serde(default)]
    pub trunks: Option<Sp<Vec<Sp<TrunkEntry>>>>,
    /// Routes, evaluated in order; the first match wins.
    #[serde(default)]
    pub routes: Option<Sp<Vec<Sp<RouteEntry>>>>,
}

/// Gateway-wide settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewaySection {
    /// Host name used in Via, Record-Route and Contact instead of the
    /// listener's IP address.
    #[serde(default)]
    pub fqdn: Option<Sp<String>>,
}

/// SIP timers (RFC 3261 §17, §16.6).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimersSection {
    /// T1 in milliseconds, 1–60000 (default 500).
    #[serde(default)]
    pub t1_ms: Option<Sp<u64>>,
    /// T2 in milliseconds, at least T1, at most 600000 (default 4000).
    #[serde(default)]
    pub t2_ms: Option<Sp<u64>>,
    /// T4 in milliseconds, 1–600000 (default 5000).
    #[serde(default)]
    pub t4_ms: Option<Sp<u64>>,
    /// Proxy INVITE Timer C in seconds, 1–86400 (default 180).
    #[serde(default)]
    pub timer_c_s: Option<Sp<u64>>,
    /// B2BUA: seconds a trunk has to answer an INVITE finally before the next
    /// trunk is tried (or the caller gets 408), 1–3600 (default 60).
    #[serde(default)]
    pub no_answer_s: Option<Sp<u64>>,
    /// B2BUA: seconds after which a call is ended with BYE on both legs,
    /// 1–604800 (default 14400, 4 hours).
    #[serde(default)]
    pub max_call_duration_s: Option<Sp<u64>>,
}

/// Media relay settings for B2BUA calls with `media: anchor`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MediaSection {
    /// IP address RTP is received on and advertised in SDP (`c=`); a
    /// specific address, not `0.0.0.0` (default `127.0.0.1`).
    #[serde(default)]
    pub address: Option<Sp<String>>,
    /// UDP port range `FIRST-LAST` (inclusive) for RTP and RTCP, e.g.
    /// `20000-20999`; FIRST even, at least 2 ports (default `20000-20999`).
    #[serde(default)]
    #[schemars(regex(pattern = r"^ *[0-9]+ *- *[0-9]+ *$"))]
    pub ports: Option<Sp<String>>,
    /// Seconds without RTP from either leg before the call is ended,
    /// 1–86400 (default 30).
    #[serde(default)]
    pub rtp_timeout_s: Option<Sp<u64>>,
}

/// A local address the gateway listens on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerEntry {
    /// Unique name (letters, digits, `.`, `_`, `-`).
    pub name: Sp<String>,
    /// `client` or `carrier`.
    pub side: Sp<Side>,
    /// UDP bind address, `IPv4:port` or `[IPv6]:port`.
    #[serde(default)]
    pub udp: Option<Sp<String>>,
    /// TCP bind address, `IPv4:port` or `[IPv6]:port`.
    #[serde(default)]
    pub tcp: Option<Sp<String>>,
}

/// A SIP trunk.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrunkEntry {
    /// Unique name (letters, digits, `.`, `_`, `-`).
    pub name: Sp<String>,
    /// IP-literal socket address, `IPv4:port` or `[IPv6]:port`.
    pub address: Sp<String>,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: Option<Sp<TransportKind>>,
    /// B2BUA: which headers cross to the leg toward this trunk.
    #[serde(default)]
    pub headers: Option<Sp<HeadersSection>>,
    /// B2BUA: codecs offered to this trunk, in preference order (e.g.
    /// `[PCMA, PCMU]`); omitted: as offered by the caller.
    #[serde(default)]
    pub codecs: Option<StrList>,
    /// B2BUA: strip ICE, SRTP crypto and DTLS fingerprints from SDP sent to
    /// this trunk (default `true`).
    #[serde(default)]
    pub plain_rtp: Option<Sp<bool>>,
    /// B2BUA, anchored media: offer SDES-SRTP (`RTP/SAVP` with the
    /// gateway's own `a=crypto` key) to this trunk and terminate SRTP on
    /// its leg (default `false`).
    #[serde(default)]
    pub srtp: Option<Sp<bool>>,
    /// B2BUA: how this trunk carries DTMF: `rfc4733` (default), `inband`
    /// or `info` (SIP INFO).
    #[serde(default)]
    pub dtmf: Option<Sp<DtmfMode>>,
}

/// A trunk's header policy (B2BUA routes only).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadersSection {
    /// Header names copied from the other leg; `X-*` matches a prefix, `*`
    /// every header. Replaces the default list (P-Asserted-Identity,
    /// Privacy, Diversion, History-Info, User-to-User, Reason, X-*).
    #[serde(default)]
    pub pass: Option<StrList>,
    /// Header names never copied even when `pass` matches them.
    #[serde(default)]
    pub drop: Option<StrList>,
    /// Headers added to every request sent to the trunk: `{Name: value}`.
    #[serde(default)]
    pub add: Option<SpPairs>,
    /// Value rewrites applied to copied headers, in order.
    #[serde(default)]
    pub rewrite: Option<Sp<Vec<Sp<HeaderRewriteEntry>>>>,
}

/// One header value rewrite.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderRewriteEntry {
    /// Header name (or `X-*` style pattern) whose values are rewritten.
    pub name: Sp<String>,
    /// Regular expression (Rust `regex` syntax, unanchored); every match in
    /// the value is replaced.
    #[serde(rename = "match")]
    pub pattern: Sp<String>,
    /// Replacement; `$1` / `${1}` / `${name}` insert capture groups, `$$` is `$`.
    pub replace: Sp<String>,
}

/// One route: conditions, rewrites and a target (trunks or a rejection).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteEntry {
    /// Unique name, reported in decisions and logs.
    pub name: Sp<String>,
    /// Conditions; all given must hold. Omitted or empty matches every call.
    #[serde(default, rename = "match")]
    pub matches: Option<Sp<MatchSection>>,
    /// Steps applied in order to the Request-URI user.
    #[serde(default)]
    pub rewrite: Option<Sp<Vec<Sp<RewriteStep>>>>,
    /// Steps applied in order to the From user.
    #[serde(default)]
    pub from_rewrite: Option<Sp<Vec<Sp<RewriteStep>>>>,
    /// `proxy` (default) or `b2bua`.
    #[serde(default)]
    pub mode: Option<Sp<RouteMode>>,
    /// `serial` (default: failover in order) or `parallel` (fork to all).
    #[serde(default)]
    pub fork: Option<Sp<ForkMode>>,
    /// `anchor` (default: RTP through the gateway) or `bypass` (SDP passes
    /// untouched); only with `mode: b2bua`.
    #[serde(default)]
    pub media: Option<Sp<MediaMode>>,
    /// `none` (default), `us`, `uk` or `eu`: on a 180 without SDP from the
    /// trunk, answer the caller with 183 + SDP and play this ringback;
    /// only with `mode: b2bua` and `media: anchor`.
    #[serde(default)]
    pub ringback: Option<Sp<RingbackTone>>,
    /// Trunks to try, in failover order. Exactly one of `trunks` / `reject`.
    #[serde(default)]
    pub trunks: Option<Sp<Vec<Sp<String>>>>,
    /// Reject the call. Exactly one of `trunks` / `reject`.
    #[serde(default)]
    pub reject: Option<Sp<RejectEntry>>,
}

/// Route conditions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSection {
    /// Listener or trunk name(s) the request came from.
    #[serde(default)]
    pub source: Option<StrList>,
    /// Source address range(s) in CIDR notation (`10.0.0.0/8`, `::1/128`) or
    /// single IP addresses.
    #[serde(default)]
    pub source_addr: Option<StrList>,
    /// Condition on the Request-URI user (called number).
    #[serde(default)]
    pub to: Option<Sp<NumberMatchEntry>>,
    /// Condition on the From user (calling number).
    #[serde(default)]
    pub from: Option<Sp<NumberMatchEntry>>,
}

/// A condition on a user part: exactly one of `prefix` or `regex`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumberMatchEntry {
    /// Prefix(es); matches if the user starts with any of them.
    #[serde(default)]
    pub prefix: Option<StrList>,
    /// Regular expression (Rust `regex` syntax, unanchored: use `^`/`$`).
    #[serde(default)]
    pub regex: Option<Sp<String>>,
}

/// One rewrite step; a map with exactly one key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RewriteStep {
    /// Remove this many leading characters.
    Strip(Sp<u32>),
    /// Put this text in front.
    Prepend(Sp<String>),
    /// Replace the first match of `regex` with `with` (`$1`, `${name}`).
    Replace(ReplaceEntry),
    /// Normalise to E.164 (`+` and digits).
    E164(E164Entry),
}

/// Arguments of the `replace` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplaceEntry {
    /// Regular expression (Rust `regex` syntax).
    pub regex: Sp<String>,
    /// Replacement; `$1` / `${1}` / `${name}` insert capture groups, `$$` is `$`.
    pub with: Sp<String>,
}

/// Arguments of the `e164` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct E164Entry {
    /// Country calling code, 1–3 digits, e.g. `"44"`.
    pub country_code: Sp<String>,
    /// National (trunk) prefix, digits, may be empty (default `"0"`).
    #[serde(default)]
    pub national_prefix: Option<Sp<String>>,
    /// International call prefix, 1–4 digits (default `"00"`).
    #[serde(default)]
    pub international_prefix: Option<Sp<String>>,
}

/// Reject the call with a final response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectEntry {
    /// Status code, 400–699.
    #[schemars(range(min = 400, max = 699))]
    pub status: Sp<u16>,
    /// Reason phrase (default: the standard phrase for the status).
    #[serde(default)]
    pub reason: Option<Sp<String>>,
}
