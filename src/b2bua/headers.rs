//! Which headers cross from one leg of a B2BUA call to the other, under the
//! header policy of the trunk the call goes to (dial-plan trunk option
//! `headers:`). Pure: no I/O, no state.
//!
//! A header crosses when its name matches an entry of `pass` (names are
//! case-insensitive, compact forms count as their long name, `X-*` matches
//! a prefix, `*` every name) and no entry of `drop`. Dialog, transaction,
//! routing, authentication and negotiation headers
//! ([`B2BUA_OWNED_HEADERS`](crate::dialplan::B2BUA_OWNED_HEADERS): Via,
//! From, To, Call-ID, CSeq, Contact, Route, Record-Route, Max-Forwards, the
//! Content-* headers, Authorization and the authenticate headers,
//! Require/Supported/Allow, RSeq/RAck, Session-Expires, Replaces, ...) never
//! cross, whatever the policy says: the B2BUA writes its own on each leg.
//!
//! A crossing header is copied byte for byte (name as received, spacing,
//! folding) unless a `rewrite` rule changes its value; a rewritten header is
//! written as `Name: value` with the name as received and folded line
//! breaks turned into single spaces.

use std::borrow::Cow;

use crate::dialplan::{HeaderPolicy, HeaderRewrite};
use crate::sip::message::{Header, Message};

/// Longest header value a rewrite may produce, in bytes; a longer result
/// leaves the header as received.
pub const MAX_REWRITTEN_VALUE: usize = 4096;

/// The headers of `from` that cross to the other leg under `policy`, in
/// their received order, with `rewrite` rules applied; then, when `from` is
/// a request, the policy's `add` headers in dial-plan order.
///
/// Use it for what goes toward the trunk the policy belongs to (the
/// caller's INVITE, and in-dialog requests from the caller's leg). For what
/// comes back from that trunk (its responses and its own requests) use
/// [`filter_headers`], which never adds.
pub fn copy_headers(from: &Message, policy: &HeaderPolicy) -> Vec<Header> {
    let mut out = filter_headers(from, policy);
    if from.is_request() {
        out.extend(
            policy
                .add
                .iter()
                .map(|(name, value)| Header::with_name(name, value)),
        );
    }
    out
}

/// Like [`copy_headers`] but without the policy's `add` headers: the headers
/// of `from` that cross under `pass` / `drop`, with `rewrite` applied.
pub fn filter_headers(from: &Message, policy: &HeaderPolicy) -> Vec<Header> {
    from.headers
        .iter()
        .filter(|h| policy.passes_kind(h.name, h.raw_name()))
        .map(|h| rewritten(h, &policy.rewrite))
        .collect()
}

/// `h` with every rule that applies to it run on its value, or `h` itself
/// (byte for byte) when no rule changes it.
fn rewritten(h: &Header, rules: &[HeaderRewrite]) -> Header {
    let mut rules = rules
        .iter()
        .filter(|r| r.applies_to(h.raw_name()))
        .peekable();
    if rules.peek().is_none() {
        return h.clone();
    }
    // Header values are normally UTF-8 text; anything else is left alone.
    let Ok(original) = std::str::from_utf8(h.value()) else {
        return h.clone();
    };
    let mut value = unfold(original);
    for rule in rules {
        if let Cow::Owned(next) = rule.pattern.replace_all(&value, rule.replace.as_str()) {
            if next.len() > MAX_REWRITTEN_VALUE {
                return h.clone();
            }
            value = Cow::Owned(next);
        }
    }
    if value == original {
        return h.clone();
    }
    Header::with_name_bytes(h.raw_name(), value.as_bytes())
}

/// Replaces each folded line break (optional blanks, CRLF or LF, then
/// blanks) by one space (RFC 3261 §7.3.1), so a rewrite can never leave a
/// line break that starts a header of its own.
fn unfold(value: &str) -> Cow<'_, str> {
    if !value.contains(['\r', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            out.truncate(out.trim_end_matches([' ', '\t']).len());
            while chars
                .next_if(|n| matches!(n, '\r' | '\n' | ' ' | '\t'))
                .is_some()
            {}
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::sip::message::{Limits, parse_datagram};

    /// An INVITE with owned headers (some in compact form), policy-relevant
    /// headers with odd spacing and folding, and custom headers.
    const INVITE: &str = "INVITE sip:+442079460000@gw.example.test SIP/2.0\r\n\
        v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\n\
        f: <sip:alice@pbx.example.test>;tag=a1\r\n\
        t: <sip:+442079460000@gw.example.test>\r\n\
        i: call-1@pbx\r\n\
        CSeq: 1 INVITE\r\n\
        m: <sip:alice@192.0.2.1:5060>\r\n\
        Route: <sip:gw.example.test;lr>\r\n\
        Record-Route: <sip:pbx.example.test;lr>\r\n\
        Proxy-Authorization: Digest username=\"alice\"\r\n\
        Supported: 100rel, timer\r\n\
        k: replaces\r\n\
        Require: timer\r\n\
        Allow: INVITE, ACK, BYE\r\n\
        x: 1800;refresher=uac\r\n\
        Replaces: other@pbx;to-tag=1;from-tag=2\r\n\
        P-Asserted-Identity :  <sip:+447700900123@pbx.example.test>\r\n\
        Privacy: id\r\n\
        Diversion: <sip:+441234@pbx.example.test>;reason=unconditional,\r\n\
        \x20  <sip:+445678@pbx.example.test>;reason=no-answer\r\n\
        s: hello\r\n\
        X-Customer:42\r\n\
        x-internal-id: secret\r\n\
        User-Agent: pbx/1.0\r\n\
        c: application/sdp\r\n\
        l: 0\r\n\r\n";

    fn msg(raw: &str) -> Message {
        parse_datagram(Bytes::copy_from_slice(raw.as_bytes()), &Limits::default())
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn lines(hs: &[Header]) -> Vec<String> {
        hs.iter()
            .map(|h| String::from_utf8_lossy(h.raw_line()).into_owned())
            .collect()
    }

    fn rule(name: &str, pattern: &str, replace: &str) -> HeaderRewrite {
        HeaderRewrite {
            name: name.into(),
            pattern: regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{e}")),
            replace: replace.into(),
        }
    }

    #[test]
    fn b2bua_headers_default_policy_copies_bytes() {
        let got = copy_headers(&msg(INVITE), &HeaderPolicy::default());
        assert_eq!(
            lines(&got),
            [
                "P-Asserted-Identity :  <sip:+447700900123@pbx.example.test>",
                "Privacy: id",
                "Diversion: <sip:+441234@pbx.example.test>;reason=unconditional,\r\n   \
                 <sip:+445678@pbx.example.test>;reason=no-answer",
                "X-Customer:42",
                "x-internal-id: secret",
            ]
        );
    }

    #[test]
    fn b2bua_headers_owned_never_cross() {
        let all = HeaderPolicy {
            pass: vec!["*".into()],
            ..HeaderPolicy::default()
        };
        let got = lines(&copy_headers(&msg(INVITE), &all));
        assert_eq!(
            got.iter()
                .map(|l| l.split(':').next().unwrap_or_default().trim())
                .collect::<Vec<_>>(),
            [
                "P-Asserted-Identity",
                "Privacy",
                "Diversion",
                "s",
                "X-Customer",
                "x-internal-id",
                "User-Agent"
            ]
        );
        // Even when named explicitly (the dial-plan validator refuses that,
        // but a hand-built policy must not leak either).
        let named = HeaderPolicy {
            pass: [
                "Via",
                "i",
                "Contact",
                "CSeq",
                "Supported",
                "k",
                "x",
                "Replaces",
            ]
            .map(String::from)
            .to_vec(),
            ..HeaderPolicy::default()
        };
        assert!(copy_headers(&msg(INVITE), &named).is_empty());
    }

    #[test]
    fn b2bua_headers_pass_drop_compact_and_wildcards() {
        let p = HeaderPolicy {
            pass: ["subject", "X-*", "user-agent"].map(String::from).to_vec(),
            drop: ["X-Internal-*", "USER-AGENT"].map(String::from).to_vec(),
            ..HeaderPolicy::default()
        };
        assert_eq!(
            lines(&copy_headers(&msg(INVITE), &p)),
            ["s: hello", "X-Customer:42"]
        );
        let none = HeaderPolicy {
            pass: Vec::new(),
            ..HeaderPolicy::default()
        };
        assert!(copy_headers(&msg(INVITE), &none).is_empty());
    }

    #[test]
    fn b2bua_headers_rewrite_values() {
        let p = HeaderPolicy {
            rewrite: vec![
                rule(
                    "P-Asserted-Identity",
                    r"@pbx\.example\.test",
                    "@gw.example.test",
                ),
                rule("p-asserted-identity", r"^<sip:\+44(\d+)", "<sip:+44-$1"),
                rule("X-*", "^(\\d+)$", "n=$1"),
                rule("Privacy", "nomatch", "x"),
            ],
            ..HeaderPolicy::default()
        };
        let got = lines(&copy_headers(&msg(INVITE), &p));
        assert_eq!(
            got,
            [
                // Rewritten: name as received, `: `, new value.
                "P-Asserted-Identity: <sip:+44-7700900123@gw.example.test>",
                // No rule matched: byte for byte.
                "Privacy: id",
                "Diversion: <sip:+441234@pbx.example.test>;reason=unconditional,\r\n   \
                 <sip:+445678@pbx.example.test>;reason=no-answer",
                "X-Customer: n=42",
                "x-internal-id: secret",
            ]
        );
    }

    #[test]
    fn b2bua_headers_rewrite_unfolds_and_cannot_inject() {
        // Removing every blank from a folded value must not leave a bare
        // line break that would start a header of its own.
        let p = HeaderPolicy {
            rewrite: vec![rule("Diversion", r"\s+", "")],
            ..HeaderPolicy::default()
        };
        let got = copy_headers(&msg(INVITE), &p);
        let div = got
            .iter()
            .find(|h| h.is_named("Diversion"))
            .unwrap_or_else(|| panic!("no Diversion"));
        assert_eq!(
            String::from_utf8_lossy(div.raw_line()),
            "Diversion: <sip:+441234@pbx.example.test>;reason=unconditional,\
             <sip:+445678@pbx.example.test>;reason=no-answer"
        );
        assert_eq!(unfold("a \r\n\t b\nc"), "a b c");
        assert_eq!(unfold("plain"), "plain");
    }

    #[test]
    fn b2bua_headers_rewrite_limits_and_non_utf8() {
        let p = HeaderPolicy {
            rewrite: vec![rule("Privacy", "", &"y".repeat(MAX_REWRITTEN_VALUE))],
            ..HeaderPolicy::default()
        };
        let got = lines(&filter_headers(&msg(INVITE), &p));
        assert!(got.contains(&"Privacy: id".to_owned()), "{got:?}");
        let mut raw = INVITE.as_bytes().to_vec();
        let at = INVITE.find("secret").unwrap_or_else(|| panic!("no secret"));
        raw[at] = 0xff;
        let m = parse_datagram(Bytes::from(raw), &Limits::default())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let p = HeaderPolicy {
            rewrite: vec![rule("X-*", ".*", "gone")],
            ..HeaderPolicy::default()
        };
        let got = filter_headers(&m, &p);
        let last = got
            .last()
            .map(|h| h.raw_line().to_vec())
            .unwrap_or_default();
        assert_eq!(last, b"x-internal-id: \xffecret");
    }

    #[test]
    fn b2bua_headers_add_on_requests_only() {
        let p = HeaderPolicy {
            pass: vec!["Privacy".into()],
            add: vec![
                ("X-Gateway".into(), "callgate".into()),
                ("P-Charge-Info".into(), "<sip:+44@gw>".into()),
            ],
            ..HeaderPolicy::default()
        };
        assert_eq!(
            lines(&copy_headers(&msg(INVITE), &p)),
            [
                "Privacy: id",
                "X-Gateway: callgate",
                "P-Charge-Info: <sip:+44@gw>"
            ]
        );
        assert_eq!(lines(&filter_headers(&msg(INVITE), &p)), ["Privacy: id"]);
        let resp = msg("SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
            From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\n\
            CSeq: 1 INVITE\r\nPrivacy: none\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(lines(&copy_headers(&resp, &p)), ["Privacy: none"]);
    }
}
