//! Tests: route validation errors with their exact `file:line:col: message`.

use super::DialPlan;
use super::tests_errors::{HEAD, all, first, routes};

#[test]
fn dialplan_err_match_source() {
    let m = |cond: &str| {
        all(&routes(&format!(
            "  - name: r\n    match:\n      {cond}\n    trunks: [carrier-a]\n"
        )))
    };
    assert_eq!(
        m("source: [client, carier-a, nope]"),
        vec![
            "t.yaml:12:24: unknown source `carier-a`: not a listener or trunk name (did you mean \
             `carrier-a`?) (listeners: client; trunks: carrier-a)",
            "t.yaml:12:34: unknown source `nope`: not a listener or trunk name (listeners: \
             client; trunks: carrier-a)",
        ]
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    match: { source: clint }\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:11:22: unknown source `clint`: not a listener or trunk name (did you mean \
         `client`?) (listeners: client; trunks: carrier-a)"
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    match: { source: [] }\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:11:22: `source` is an empty list; omit `source` to match anything"
    );
}

#[test]
fn dialplan_err_match_source_addr() {
    let m = |cond: &str| {
        first(&routes(&format!(
            "  - name: r\n    match:\n      {cond}\n    trunks: [carrier-a]\n"
        )))
    };
    assert_eq!(
        m("source_addr: [10.0.0.0/8, 10.0.0/8]"),
        "t.yaml:12:33: `10.0.0/8` is not an IP address or CIDR network (e.g. `10.0.0.0/8`, \
         `2001:db8::/32`)"
    );
    assert_eq!(
        m("source_addr: 10.0.0.0/33"),
        "t.yaml:12:20: `10.0.0.0/33`: prefix length /33 is longer than the address"
    );
    assert_eq!(
        m("source_addr: \"2001:db8::1/32\""),
        "t.yaml:12:20: `2001:db8::1/32` has bits set after the prefix length; did you mean \
         `2001:db8::/32`?"
    );
}

#[test]
fn dialplan_err_match_numbers() {
    let m = |cond: &str| {
        first(&routes(&format!(
            "  - name: r\n    match:\n      {cond}\n    trunks: [carrier-a]\n"
        )))
    };
    assert_eq!(
        m("to: { prefix: '+44', regex: '^1' }"),
        "t.yaml:12:35: `to` has both `prefix` and `regex`; use one (or two routes)"
    );
    assert_eq!(m("to: {}"), "t.yaml:12:11: `to` needs `prefix` or `regex`");
    assert_eq!(
        m("from: { prefix: ['+44', ''] }"),
        "t.yaml:12:31: empty prefix matches every number; omit `from` instead"
    );
    // The caret points inside the pattern when the scalar maps 1:1 to it.
    assert_eq!(
        m("to: { regex: ^(12 }"),
        "t.yaml:12:21: invalid regex: unclosed group"
    );
    assert_eq!(
        m("from:\n        regex: '^\\+1[0-9'"),
        "t.yaml:13:21: invalid regex: unclosed character class"
    );
    assert_eq!(
        m("to: { regex: '\\p{Foo}' }"),
        "t.yaml:12:21: invalid regex: Unicode property not found"
    );
    // With escapes in a double-quoted scalar, the node itself is shown.
    assert_eq!(
        m("to: { regex: \"^\\\\d+(\" }"),
        "t.yaml:12:20: invalid regex: unclosed group"
    );
}

#[test]
fn dialplan_err_rewrite_steps() {
    let r = |step: &str| {
        first(&routes(&format!(
            "  - name: r\n    rewrite:\n      - {step}\n    trunks: [carrier-a]\n"
        )))
    };
    assert_eq!(
        r("stripp: 2"),
        "t.yaml:12:9: unknown variant `stripp`, expected one of strip, prepend, replace, e164"
    );
    assert_eq!(
        r("strip: 2\n        prepend: '+'"),
        "t.yaml:13:9: a rewrite step has exactly one key (strip, prepend, replace or e164); \
         start each step with its own `- `"
    );
    assert_eq!(r("strip: -1"), "t.yaml:12:16: expected a whole number");
    assert_eq!(r("prepend: ''"), "t.yaml:12:18: `prepend` text is empty");
    assert_eq!(
        r("prepend: 'a@b'"),
        "t.yaml:12:18: `prepend` text `a@b` contains `@`, which cannot appear in a SIP URI \
         user part"
    );
    assert_eq!(
        r("replace: { regex: 'a)', with: x }"),
        "t.yaml:12:29: invalid regex: unopened group"
    );
    assert_eq!(
        r("replace: { regex: '^0(\\d+)$', with: '+44$1x' }"),
        "t.yaml:12:45: `with` refers to group `1x` but the regex has 1 numbered group; to put \
         text right after group 1, write `${1}x`"
    );
}

#[test]
fn dialplan_err_e164_step() {
    let r = |args: &str| {
        first(&routes(&format!(
            "  - name: r\n    from_rewrite:\n      - e164: {{ {args} }}\n    trunks: [carrier-a]\n"
        )))
    };
    assert_eq!(
        r("country_code: '4444'"),
        "t.yaml:12:31: `country_code` must be 1–3 digits, got `4444`"
    );
    assert_eq!(
        r("country_code: '044'"),
        "t.yaml:12:31: `country_code` cannot start with 0"
    );
    assert_eq!(
        r("country_code: 44, national_prefix: x"),
        "t.yaml:12:52: `national_prefix` must be 0–4 digits, got `x`"
    );
    assert_eq!(
        r("country_code: 44, international_prefix: ''"),
        "t.yaml:12:57: `international_prefix` must be 1–4 digits, got ``"
    );
    assert_eq!(
        r("country_code: 44, national_prefix: '00', international_prefix: '0'"),
        "t.yaml:12:52: `national_prefix` `00` starts with `international_prefix` `0`, so \
         national numbers could not be told apart"
    );
}

#[test]
fn dialplan_err_route_targets() {
    let r = |body: &str| first(&routes(&format!("  - name: r\n{body}")));
    assert_eq!(
        r("    trunks: [carrier-a]\n    reject: { status: 403 }\n"),
        "t.yaml:12:13: route `r` has both `trunks` and `reject`; keep one"
    );
    assert_eq!(
        r("    mode: proxy\n"),
        "t.yaml:10:5: route `r` needs `trunks` (to forward) or `reject`"
    );
    assert_eq!(
        r("    trunks: []\n"),
        "t.yaml:11:13: `trunks` is empty; list at least one trunk"
    );
    assert_eq!(
        r("    trunks: [carrier-a, carrier-a]\n"),
        "t.yaml:11:25: trunk `carrier-a` is listed twice"
    );
    assert_eq!(
        r("    trunks:\n      - carrier-a\n      - carier-b\n"),
        "t.yaml:13:9: unknown trunk `carier-b` (did you mean `carrier-a`?) (trunks: carrier-a)"
    );
    assert_eq!(
        r("    reject: { status: 200 }\n"),
        "t.yaml:11:23: reject `status` must be between 400 and 699, got 200"
    );
    assert_eq!(
        r("    reject:\n      status: 700\n"),
        "t.yaml:12:15: reject `status` must be between 400 and 699, got 700"
    );
    assert_eq!(
        r("    reject: { status: 403, reason: \"a\\nb\" }\n"),
        "t.yaml:11:36: `reason` cannot contain line breaks or control characters"
    );
    assert_eq!(
        r("    mode: b2bua\n    reject: { status: 403 }\n"),
        "t.yaml:11:11: `mode` has no effect in route `r`, which rejects"
    );
    assert_eq!(
        r("    reject: { status: 403 }\n    rewrite: [ { strip: 1 } ]\n"),
        "t.yaml:12:14: `rewrite` has no effect in route `r`, which rejects"
    );
}

#[test]
fn dialplan_err_route_names_and_order() {
    assert_eq!(
        first(&routes(
            "  - name: all\n    trunks: [carrier-a]\n  - name: r\n    match: { to: { prefix: '1' } }\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:12:11: route `r` can never match: route `all` (line 10) before it has no \
         conditions and matches every call"
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    match: { to: { prefix: '1' } }\n    trunks: [carrier-a]\n  - name: r\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:13:11: duplicate route name `r` (first defined at line 10)"
    );
}

#[test]
fn dialplan_err_no_cascade_from_bad_trunk() {
    // The route names the broken trunk: only the trunk's own error is reported.
    let src =
        format!("{HEAD}  - name: b\n    address: nope\nroutes:\n  - name: r\n    trunks: [b]\n");
    assert_eq!(
        all(&src),
        vec![
            "t.yaml:10:14: `address` must be an IP address and port such as `127.0.0.1:5060` or \
             `[::1]:5060`, got `nope`: the port is missing"
        ]
    );
}

#[test]
fn dialplan_err_all_errors_sorted_by_position() {
    let src =
        routes("  - name: r2\n    trunks: [nope]\n  - name: r1\n    reject: { status: 99 }\n")
            .replace("version: 1", "version: 3");
    assert_eq!(
        all(&src),
        vec![
            "t.yaml:1:10: unsupported dial plan version 3; this callgate reads version 1",
            "t.yaml:11:14: unknown trunk `nope` (trunks: carrier-a)",
            "t.yaml:12:11: route `r1` can never match: route `r2` (line 10) before it has no \
             conditions and matches every call",
            "t.yaml:13:23: reject `status` must be between 400 and 699, got 99",
        ]
    );
    // from_yaml_str returns the first of them.
    assert_eq!(
        first(&src),
        "t.yaml:1:10: unsupported dial plan version 3; this callgate reads version 1"
    );
}

#[test]
fn dialplan_err_display_has_snippet_and_caret() {
    let src = routes("  - name: r\n    trunks: [carrier-a, carrier-c]\n");
    let e = DialPlan::from_yaml_str(&src, "plans/x.yaml").err();
    assert_eq!(
        e.map(|e| e.to_string()).unwrap_or_default(),
        "plans/x.yaml:11:25: unknown trunk `carrier-c` (did you mean `carrier-a`?) (trunks: \
         carrier-a)\n    trunks: [carrier-a, carrier-c]\n                        ^"
    );
}
