//! Tests: every validation error with its exact `file:line:col: message`
//! (YAML shape and top level; routes are in `tests_errors_routes`).

use super::DialPlan;

/// Lines 1–8: a valid plan without routes; cases append to it.
pub(super) const HEAD: &str = "version: 1
listeners:
  - name: client
    side: client
    udp: 127.0.0.1:5060
trunks:
  - name: carrier-a
    address: 127.0.0.1:5070
";

/// HEAD plus `routes:` at line 9 and `body` from line 10.
pub(super) fn routes(body: &str) -> String {
    format!("{HEAD}routes:\n{body}")
}

/// The headline of the first error.
pub(super) fn first(src: &str) -> String {
    match DialPlan::from_yaml_str(src, "t.yaml") {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e.headline(),
    }
}

/// The headlines of all errors.
pub(super) fn all(src: &str) -> Vec<String> {
    match DialPlan::check_yaml_str(src, "t.yaml") {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(es) => es.iter().map(|e| e.headline()).collect(),
    }
}

#[test]
fn dialplan_head_is_valid() {
    assert!(DialPlan::from_yaml_str(HEAD, "t.yaml").is_ok());
}

#[test]
fn dialplan_err_yaml_syntax_and_shape() {
    assert_eq!(
        first("version: 1\nlisteners: [\n"),
        "t.yaml:2:12: unclosed bracket '['"
    );
    assert_eq!(
        first("version: 1\nlistener: []\n"),
        "t.yaml:2:1: unknown field `listener`, expected one of version, gateway, admin, \
         timers, media, listeners, trunks, routes"
    );
    assert_eq!(
        first(&format!("{HEAD}    adress: x\n")),
        "t.yaml:9:5: unknown field `adress`, expected one of name, address, transport, \
         headers, codecs, plain_rtp, srtp, dtmf"
    );
    assert_eq!(
        first("version: 1\nlisteners: []\ntrunks:\n  - name: a\n"),
        "t.yaml:4:5: missing field `address`"
    );
    assert_eq!(
        first(&routes("  - name: r\n    reject: { status: abc }\n")),
        "t.yaml:11:23: expected a whole number"
    );
    assert_eq!(
        first(&format!("{HEAD}version: 1\n")),
        "t.yaml:9:1: duplicate mapping key `version` is not allowed here"
    );
    assert_eq!(
        first(&format!("{HEAD}---\n{HEAD}")),
        "t.yaml:10:1: only single YAML document expected but multiple found"
    );
    assert_eq!(first("- a\n"), "t.yaml:1:1: expected mapping start");
    assert_eq!(
        first("version: 1\nlisteners:\n\t- name: x\n"),
        "t.yaml:3:2: tabs disallowed within this context (block indentation)"
    );
    assert_eq!(
        first(&routes(
            "  - name: r\n    match:\n      source: [~]\n    trunks: [carrier-a]\n"
        )),
        "t.yaml:12:16: null is not allowed here"
    );
}

#[test]
fn dialplan_err_empty_file() {
    let msg = "t.yaml:1:1: the file has no content; a dial plan needs at least `version: 1` \
               and `listeners`";
    assert_eq!(first(""), msg);
    assert_eq!(first("# nothing\n\n"), msg);
}

#[test]
fn dialplan_err_enums() {
    assert_eq!(
        first("version: 1\nlisteners:\n  - name: c\n    side: clent\n"),
        "t.yaml:4:11: unknown variant `clent`, expected one of client, carrier"
    );
    assert_eq!(
        first(&format!(
            "{HEAD}  - name: b\n    address: 127.0.0.1:1\n    transport: sctp\n"
        )),
        "t.yaml:11:16: unknown variant `sctp`, expected one of udp, tcp"
    );
    assert_eq!(
        first(&routes("  - name: r\n    mode: redirect\n")),
        "t.yaml:11:11: unknown variant `redirect`, expected one of proxy, b2bua"
    );
}

#[test]
fn dialplan_err_version() {
    assert_eq!(
        first(&HEAD.replace("version: 1", "version: 2")),
        "t.yaml:1:10: unsupported dial plan version 2; this callgate reads version 1"
    );
}

#[test]
fn dialplan_err_listeners() {
    assert_eq!(
        first("version: 1\nlisteners:\n  - name: c\n    side: client\n"),
        "t.yaml:3:5: listener `c` needs at least one of `udp` or `tcp`"
    );
    assert_eq!(
        first("version: 1\nlisteners: []\n"),
        "t.yaml:2:12: at least one listener is required"
    );
    let dup = HEAD.replace(
        "trunks:",
        "  - name: client\n    side: carrier\n    udp: 127.0.0.1:5061\ntrunks:",
    );
    assert_eq!(
        first(&dup),
        "t.yaml:6:11: duplicate listener name `client` (first defined at line 3)"
    );
    let same = HEAD.replace(
        "trunks:",
        "  - name: c2\n    side: carrier\n    tcp: 127.0.0.1:5060\n    udp: 127.0.0.1:5060\ntrunks:",
    );
    assert_eq!(
        first(&same),
        "t.yaml:9:10: listener `c2` binds udp 127.0.0.1:5060, which conflicts with udp \
         127.0.0.1:5060 of listener `client` (line 5)"
    );
    let any = HEAD.replace(
        "trunks:",
        "  - name: c2\n    side: carrier\n    udp: 0.0.0.0:5060\ntrunks:",
    );
    assert_eq!(
        first(&any),
        "t.yaml:8:10: listener `c2` binds udp 0.0.0.0:5060, which conflicts with udp \
         127.0.0.1:5060 of listener `client` (line 5)"
    );
    // Port 0 (ephemeral) never conflicts; neither do different ports or v4 vs ::1.
    let ok = HEAD.replace(
        "trunks:",
        "  - name: a\n    side: carrier\n    udp: 127.0.0.1:0\n  - name: b\n    side: carrier\n    \
         udp: 127.0.0.1:0\n    tcp: \"[::1]:5060\"\ntrunks:",
    );
    assert!(DialPlan::from_yaml_str(&ok, "t.yaml").is_ok());
}

#[test]
fn dialplan_err_trunks() {
    let t = |extra: &str| first(&format!("{HEAD}{extra}"));
    assert_eq!(
        t("  - name: carrier-a\n    address: 127.0.0.1:5071\n"),
        "t.yaml:9:11: duplicate trunk name `carrier-a` (first defined at line 7)"
    );
    assert_eq!(
        t("  - name: client\n    address: 127.0.0.1:5071\n"),
        "t.yaml:9:11: trunk name `client` is already used by the listener at line 3; listener \
         and trunk names must differ because `source` can name either"
    );
    assert_eq!(
        t("  - name: 'my trunk'\n    address: 127.0.0.1:5071\n"),
        "t.yaml:9:11: trunk name `my trunk` is not valid: use 1–64 letters, digits, `.`, `_` \
         or `-`, starting with a letter or digit"
    );
    assert_eq!(
        t("  - name: b\n    address: 0.0.0.0:5060\n"),
        "t.yaml:10:14: trunk `b` address `0.0.0.0:5060` cannot be sent to: use a specific IP \
         address and a non-zero port"
    );
    assert_eq!(
        t("  - name: b\n    address: 10.0.0.1:0\n"),
        "t.yaml:10:14: trunk `b` address `10.0.0.1:0` cannot be sent to: use a specific IP \
         address and a non-zero port"
    );
    assert_eq!(
        t("  - name: b\n    address: 127.0.0.1:5070\n"),
        "t.yaml:10:14: trunk `b` has the same address and transport (127.0.0.1:5070/udp) as \
         trunk `carrier-a`"
    );
    // Same address over another transport is fine.
    let ok = format!("{HEAD}  - name: b\n    address: 127.0.0.1:5070\n    transport: tcp\n");
    assert!(DialPlan::from_yaml_str(&ok, "t.yaml").is_ok());
}

#[test]
fn dialplan_err_socket_addresses() {
    let t = |addr: &str| first(&format!("{HEAD}  - name: b\n    address: {addr}\n"));
    let pre = "t.yaml:10:14: `address` must be an IP address and port such as `127.0.0.1:5060` \
               or `[::1]:5060`, got";
    assert_eq!(
        t("sip.example.com:5060"),
        format!("{pre} `sip.example.com:5060`: host names are not allowed here, use an IP address")
    );
    assert_eq!(
        t("10.0.0.1"),
        format!("{pre} `10.0.0.1`: the port is missing (`10.0.0.1:PORT`)")
    );
    assert_eq!(
        t("'::1:5060'"),
        format!(
            "{pre} `::1:5060`: write IPv6 addresses in brackets with the port after them, \
             e.g. `[::1]:5060`"
        )
    );
    assert_eq!(
        t("10.0.0.1:70000"),
        format!("{pre} `10.0.0.1:70000`: port `70000` is out of range (0–65535)")
    );
    assert_eq!(
        first(&HEAD.replace("version: 1\n", "version: 1\nadmin: localhost:9090\n")),
        "t.yaml:2:8: `admin` must be an IP address and port such as `127.0.0.1:5060` or \
         `[::1]:5060`, got `localhost:9090`: host names are not allowed here, use an IP address"
    );
}

#[test]
fn dialplan_err_gateway_and_timers() {
    let top = |extra: &str| first(&HEAD.replace("version: 1\n", &format!("version: 1\n{extra}")));
    assert_eq!(
        top("gateway:\n  fqdn: gw_1.example.\n"),
        "t.yaml:3:9: `fqdn` must be a host name such as `gw.example.test` (letters, digits and \
         `-` in dot-separated labels, no trailing dot), got `gw_1.example.`"
    );
    assert_eq!(
        top("timers:\n  t1_ms: 0\n"),
        "t.yaml:3:10: `t1_ms` must be between 1 and 60000, got 0"
    );
    assert_eq!(
        top("timers:\n  timer_c_s: 100000\n"),
        "t.yaml:3:14: `timer_c_s` must be between 1 and 86400, got 100000"
    );
    assert_eq!(
        top("timers:\n  t1_ms: 5000\n  t2_ms: 4000\n"),
        "t.yaml:3:10: `t1_ms` (5000) must not exceed `t2_ms` (4000)"
    );
    assert_eq!(
        top("timers:\n  t1_ms: 5000\n"),
        "t.yaml:3:10: `t1_ms` (5000) must not exceed `t2_ms` (4000, the default)"
    );
    assert_eq!(
        top("timers:\n  t2_ms: 100\n"),
        "t.yaml:3:10: `t2_ms` (100) must be at least `t1_ms` (500, the default)"
    );
}
