//! Tests: validation errors of the B2BUA options (`media:`, the B2BUA
//! timers, route `media`, trunk `headers` / `codecs` / `plain_rtp`) with
//! their exact `file:line:col: message`.

use super::DialPlan;
use super::tests_errors::{HEAD, all, first, routes};

/// HEAD with `extra` inserted after `version: 1` (line 2 onwards).
fn top(extra: &str) -> String {
    HEAD.replace("version: 1\n", &format!("version: 1\n{extra}"))
}

/// HEAD plus a second trunk `b` whose options start at line 11.
fn trunk(options: &str) -> String {
    format!("{HEAD}  - name: b\n    address: 127.0.0.1:5071\n{options}")
}

#[test]
fn dialplan_err_b2bua_timers() {
    assert_eq!(
        first(&top("timers:\n  no_answer_s: 0\n")),
        "t.yaml:3:16: `no_answer_s` must be between 1 and 3600, got 0"
    );
    assert_eq!(
        first(&top("timers:\n  max_call_duration_s: 604801\n")),
        "t.yaml:3:24: `max_call_duration_s` must be between 1 and 604800, got 604801"
    );
    assert_eq!(
        first(&top("timers:\n  no_answer: 5\n")),
        "t.yaml:3:3: unknown field `no_answer`, expected one of t1_ms, t2_ms, t4_ms, \
         timer_c_s, no_answer_s, max_call_duration_s"
    );
}

#[test]
fn dialplan_err_media_address() {
    let pre = "t.yaml:3:12: media `address` must be an IP address such as `192.0.2.10` or \
               `2001:db8::10`, got";
    assert_eq!(
        first(&top("media:\n  address: 127.0.0.1:20000\n")),
        format!(
            "{pre} `127.0.0.1:20000`: write the address without a port; the ports go in `ports`"
        )
    );
    assert_eq!(
        first(&top("media:\n  address: media.example.test\n")),
        format!("{pre} `media.example.test`: host names are not allowed here, use an IP address")
    );
    assert_eq!(
        first(&top("media:\n  address: 1.2.3\n")),
        format!("{pre} `1.2.3`")
    );
    assert_eq!(
        first(&top("media:\n  address: 0.0.0.0\n")),
        "t.yaml:3:12: media `address` `0.0.0.0` cannot be advertised in SDP: use the address \
         peers send RTP to"
    );
    assert_eq!(
        first(&top("media:\n  address: \"ff02::1\"\n")),
        "t.yaml:3:12: media `address` `ff02::1` cannot be advertised in SDP: use the address \
         peers send RTP to"
    );
    assert_eq!(
        first(&top("media:\n  adress: 10.0.0.1\n")),
        "t.yaml:3:3: unknown field `adress`, expected one of address, ports, rtp_timeout_s"
    );
}

#[test]
fn dialplan_err_media_ports() {
    let p = |ports: &str| first(&top(&format!("media:\n  ports: {ports}\n")));
    let form = "t.yaml:3:10: `ports` must be a range `FIRST-LAST` such as `20000-20999`, got";
    assert_eq!(p("20000"), format!("{form} `20000`"));
    assert_eq!(p("20000-"), format!("{form} `20000-`"));
    assert_eq!(p("a-b"), format!("{form} `a-b`"));
    assert_eq!(
        p("{ first: 1, last: 2 }"),
        "t.yaml:3:10: expected string scalar".to_owned()
    );
    // The caret points at the offending number.
    assert_eq!(
        p("20000-70000"),
        "t.yaml:3:16: port `70000` is out of range (1–65535)"
    );
    assert_eq!(
        p("'0-100'"),
        "t.yaml:3:11: port `0` is out of range (1–65535)"
    );
    assert_eq!(
        p("21000-20000"),
        "t.yaml:3:10: `ports` range `21000-20000` is backwards: write `20000-21000`"
    );
    assert_eq!(
        p("20001-20999"),
        "t.yaml:3:10: `ports` must start on an even port (RTP uses even ports and RTCP the \
         next odd one, RFC 3550 §11): write `20000-20999` or `20002-20999`"
    );
    assert_eq!(
        p("65535-65535"),
        "t.yaml:3:10: `ports` must start on an even port (RTP uses even ports and RTCP the \
         next odd one, RFC 3550 §11): write `65534-65535`"
    );
    assert_eq!(
        p("1-3"),
        "t.yaml:3:10: `ports` must start on an even port (RTP uses even ports and RTCP the \
         next odd one, RFC 3550 §11): write `2-3`"
    );
    assert_eq!(
        p("20001-20001"),
        "t.yaml:3:10: `ports` must start on an even port (RTP uses even ports and RTCP the \
         next odd one, RFC 3550 §11): write `20000-20001`"
    );
    assert_eq!(
        p("20000-20000"),
        "t.yaml:3:10: `ports` range `20000-20000` has 1 port; an RTP/RTCP pair needs at least 2"
    );
    assert_eq!(
        p("5000-5999"),
        "t.yaml:3:10: `ports` 5000-5999 include UDP port 5060 of listener `client`; pick a \
         range that leaves SIP ports out"
    );
    // Another address does not clash; neither does a two-port range.
    let ok = top("media:\n  address: 10.0.0.1\n  ports: 5000-5999\n");
    assert!(DialPlan::from_yaml_str(&ok, "t.yaml").is_ok());
    let ok = top("media:\n  ports: \" 30000 - 30001 \"\n");
    assert!(DialPlan::from_yaml_str(&ok, "t.yaml").is_ok());
}

#[test]
fn dialplan_err_media_rtp_timeout() {
    assert_eq!(
        first(&top("media:\n  rtp_timeout_s: 0\n")),
        "t.yaml:3:18: `rtp_timeout_s` must be between 1 and 86400, got 0"
    );
    assert_eq!(
        first(&top("media:\n  rtp_timeout_s: -1\n")),
        "t.yaml:3:18: expected a whole number"
    );
}

#[test]
fn dialplan_err_route_media() {
    assert_eq!(
        first(&routes(
            "  - name: r\n    media: anchor\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:11:12: `media` only applies to `mode: b2bua` routes; route `r` is `mode: proxy` \
         (the default), where media always flows end to end"
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    mode: proxy\n    media: bypass\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:12:12: `media` only applies to `mode: b2bua` routes; route `r` is `mode: proxy`, \
         where media always flows end to end"
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    media: bypass\n    reject: { status: 403 }\n"
        )),
        "t.yaml:11:12: `media` has no effect in route `r`, which rejects"
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    mode: b2bua\n    media: relay\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:12:12: unknown variant `relay`, expected one of anchor, bypass"
    );
}

#[test]
fn dialplan_err_trunk_codecs() {
    assert_eq!(
        first(&trunk("    codecs: [PCMA, pcmx]\n")),
        "t.yaml:11:20: unknown codec `pcmx` (did you mean `PCMU`?); known codecs: PCMU PCMA \
         G722 G729 G723 GSM iLBC opus SILK speex AMR AMR-WB L16 CN telephone-event"
    );
    assert_eq!(
        first(&trunk("    codecs: [MP3]\n")),
        "t.yaml:11:14: unknown codec `MP3`; known codecs: PCMU PCMA G722 G729 G723 GSM iLBC \
         opus SILK speex AMR AMR-WB L16 CN telephone-event"
    );
    let hint = |name: &str| {
        let e = first(&trunk(&format!("    codecs: ['{name}']\n")));
        e.split("; known").next().unwrap_or_default().to_owned()
    };
    assert_eq!(
        hint("G711"),
        "t.yaml:11:14: unknown codec `G711` (did you mean `PCMU` (G.711 µ-law) or `PCMA` \
         (G.711 A-law)?)"
    );
    assert_eq!(
        hint("g.711a"),
        "t.yaml:11:14: unknown codec `g.711a` (did you mean `PCMA` (G.711 A-law)?)"
    );
    assert_eq!(
        hint("G.722"),
        "t.yaml:11:14: unknown codec `G.722` (did you mean `G722`?)"
    );
    assert_eq!(
        hint("dtmf"),
        "t.yaml:11:14: unknown codec `dtmf` (did you mean `telephone-event` (RFC 4733 DTMF)?)"
    );
    assert_eq!(
        first(&trunk("    codecs: [PCMA, G722, pcma]\n")),
        "t.yaml:11:26: codec `PCMA` is listed twice"
    );
    assert_eq!(
        first(&trunk("    codecs: []\n")),
        "t.yaml:11:13: `codecs` is an empty list; omit `codecs` to offer the caller's codecs \
         as they are"
    );
    assert_eq!(
        first(&trunk("    codecs: [telephone-event, CN]\n")),
        "t.yaml:11:13: `codecs` lists no audio codec; name at least one, e.g. `[PCMA, PCMU]`"
    );
    assert_eq!(
        first(&trunk("    plain_rtp: maybe\n")),
        "t.yaml:11:16: expected `true` or `false`"
    );
}

#[test]
fn dialplan_err_trunk_header_names() {
    let h = |body: &str| first(&trunk(&format!("    headers:\n{body}")));
    assert_eq!(
        h("      pass: [P-Asserted-Identity, Via]\n"),
        "t.yaml:12:35: `Via` is never copied: the B2BUA writes its own dialog, transaction, \
         routing, authentication and negotiation headers on each leg"
    );
    assert_eq!(
        h("      pass: [i]\n"),
        "t.yaml:12:14: `i` is never copied: the B2BUA writes its own dialog, transaction, \
         routing, authentication and negotiation headers on each leg"
    );
    // The caret points at the offending character.
    assert_eq!(
        h("      pass: [X-*-Foo]\n"),
        "t.yaml:12:16: `X-*-Foo` is not a header name, `Prefix-*` or `*`: `*` cannot appear \
         in it; `*` may only end a name, as in `X-*`"
    );
    assert_eq!(
        h("      drop: ['X-Foo:']\n"),
        "t.yaml:12:20: `X-Foo:` is not a header name, `Prefix-*` or `*`: `:` cannot appear in \
         it; write the name without `:`"
    );
    assert_eq!(
        h("      drop: ['X Foo']\n"),
        "t.yaml:12:16: `X Foo` is not a header name, `Prefix-*` or `*`: ` ` cannot appear in \
         it; use letters, digits and `-.!%_+`'~`"
    );
    assert_eq!(
        h("      pass: ['']\n"),
        "t.yaml:12:14: `pass` needs a header name, `Prefix-*` or `*` of 1–64 characters"
    );
    assert_eq!(
        h("      pass: [Diversion, X-*, diversion]\n"),
        "t.yaml:12:30: `diversion` is listed twice in `pass` (first at line 12)"
    );
    assert_eq!(
        h("      pass: [Subject, Privacy]\n      drop: [s]\n"),
        "t.yaml:13:14: `s` is both in `pass` (line 12) and in `drop`; keep one"
    );
    assert_eq!(
        h("      pas: []\n"),
        "t.yaml:12:7: unknown field `pas`, expected one of pass, drop, add, rewrite"
    );
}

#[test]
fn dialplan_err_trunk_header_add() {
    let h = |body: &str| first(&trunk(&format!("    headers:\n      add:\n{body}")));
    assert_eq!(
        h("        Contact: <sip:gw@example.test>\n"),
        "t.yaml:13:9: `Contact` cannot be added: the B2BUA writes its own dialog, transaction, \
         routing, authentication and negotiation headers on each leg"
    );
    assert_eq!(
        h("        X-*: v\n"),
        "t.yaml:13:11: `X-*` is not a header name: `*` cannot appear in it; `*` patterns are \
         not allowed here, write the exact name"
    );
    assert_eq!(
        h("        X-A: 1\n        x-a: 2\n"),
        "t.yaml:14:9: `x-a` is added twice (first at line 13); one entry per header"
    );
    assert_eq!(
        h("        X-A: ''\n"),
        "t.yaml:13:14: the value of `X-A` must be 1–1024 bytes of text"
    );
    assert_eq!(
        h("        X-A: \"a\\r\\nVia: x\"\n"),
        "t.yaml:13:14: the value of `X-A` cannot contain line breaks or control characters"
    );
    assert_eq!(
        h("        X-A: [1]\n"),
        "t.yaml:13:14: expected string scalar"
    );
}

#[test]
fn dialplan_err_trunk_header_rewrite() {
    let h = |body: &str| first(&trunk(&format!("    headers:\n{body}")));
    let rw = |rule: &str| h(&format!("      rewrite:\n        - {rule}\n"));
    assert_eq!(
        rw("{ name: P-Asserted-Identity, match: '(@', replace: x }"),
        "t.yaml:13:48: invalid regex: unclosed group"
    );
    assert_eq!(
        rw("{ name: P-Asserted-Identity, match: '(@)', replace: '$2' }"),
        "t.yaml:13:63: `replace` refers to group `2` but the regex has 1 numbered group"
    );
    assert_eq!(
        rw("{ name: To, match: a, replace: b }"),
        "t.yaml:13:19: `To` cannot be rewritten: the B2BUA writes its own dialog, transaction, \
         routing, authentication and negotiation headers on each leg"
    );
    assert_eq!(
        rw("{ name: Subject, match: a, replace: b }"),
        "t.yaml:13:19: rewrite of `Subject` never applies: no `pass` entry matches it (pass \
         (the default): P-Asserted-Identity, Privacy, Diversion, History-Info, User-to-User, \
         Reason, X-*)"
    );
    assert_eq!(
        h("      pass: [X-A*]\n      rewrite:\n        - { name: X-B, match: a, replace: b }\n"),
        "t.yaml:14:19: rewrite of `X-B` never applies: no `pass` entry matches it (pass: X-A*)"
    );
    assert_eq!(
        h("      drop: [X-*]\n      rewrite:\n        - { name: X-B, match: a, replace: b }\n"),
        "t.yaml:14:19: rewrite of `X-B` never applies: `drop` entry `X-*` (line 12) removes it"
    );
    assert_eq!(
        rw("{ name: X-A, match: a, replace: \"b\\n\" }"),
        "t.yaml:13:43: `replace` cannot contain line breaks or control characters"
    );
    assert_eq!(
        rw("{ name: X-A, replace: b }"),
        "t.yaml:13:24: missing field `match`"
    );
}

#[test]
fn dialplan_err_b2bua_options_all_reported() {
    // Errors of every section are collected, in file order.
    let src = top("timers: { no_answer_s: 0 }\nmedia: { ports: 3-2 }\n")
        + "  - name: b\n    address: 127.0.0.1:5071\n    codecs: [x]\n    headers: { add: { Via: x } }\n"
        + "routes:\n  - name: r\n    media: bypass\n    trunks: [b]\n";
    let heads = all(&src);
    let positions: Vec<&str> = heads
        .iter()
        .map(|h| h.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        positions,
        [
            "t.yaml:2:24",
            "t.yaml:3:17",
            "t.yaml:13:14",
            "t.yaml:14:23",
            "t.yaml:17:12"
        ]
    );
}
