//! Tests: whole-plan parsing and routing and the shipped dial plans.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{Decision, DialPlan, RouteMode, RouteQuery, Side, TransportKind};

const LOOPBACK: &str = include_str!("../../dialplans/loopback-proxy.yaml");
const LOOPBACK_TCP: &str = include_str!("../../dialplans/loopback-proxy-tcp.yaml");
const DEFAULT: &str = include_str!("../../dialplans/default.yaml");
const EXAMPLES: &str = include_str!("../../dialplans/examples.yaml");

fn plan(src: &str) -> DialPlan {
    DialPlan::from_yaml_str(src, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn query<'a>(to: &'a str, from: &'a str, listener: &'a str, src: &str) -> RouteQuery<'a> {
    RouteQuery {
        ruri_user: to,
        from_user: from,
        source_listener: listener,
        source_trunk: None,
        source_addr: addr(src),
    }
}

/// `route trunk,trunk ruri_user from_user mode` or the Display of others.
fn summary(d: &Decision) -> String {
    match d {
        Decision::Forward {
            route,
            trunks,
            ruri_user,
            from_user,
            mode,
            ..
        } => {
            let names: Vec<&str> = trunks.iter().map(|t| t.name.as_str()).collect();
            format!(
                "{route} {} {} {} {mode}",
                names.join(","),
                ruri_user.as_deref().unwrap_or("-"),
                from_user.as_deref().unwrap_or("-")
            )
        }
        other => other.to_string(),
    }
}

#[test]
fn dialplan_all_shipped_files_pass_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut checked = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            if let Err(e) = DialPlan::load(&path) {
                panic!("{e}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "only {checked} dial plans found in {}",
        dir.display()
    );
}

#[test]
fn dialplan_loopback_interface() {
    let p = plan(LOOPBACK);
    assert_eq!(p.admin, Some(addr("127.0.0.1:9090")));
    assert_eq!(p.timers, super::TimerConfig::default());
    assert_eq!(p.gateway.fqdn, None);
    let client = p
        .listener("client")
        .unwrap_or_else(|| panic!("no client listener"));
    assert_eq!(client.side, Side::Client);
    assert_eq!(client.udp, Some(addr("127.0.0.1:5060")));
    assert_eq!(client.tcp, Some(addr("127.0.0.1:5060")));
    let carrier = p
        .listener("carrier")
        .unwrap_or_else(|| panic!("no carrier listener"));
    assert_eq!(carrier.side, Side::Carrier);
    assert_eq!(carrier.udp, Some(addr("127.0.0.1:5080")));
    assert_eq!(carrier.tcp, Some(addr("127.0.0.1:5080")));
    let trunks: Vec<String> = p.trunks.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        trunks,
        [
            "carrier-a(127.0.0.1:5070/udp)",
            "carrier-b(127.0.0.1:5072/udp)",
            "platform(127.0.0.1:5066/udp)"
        ]
    );
    let d = p.route(&query(
        "+442079460000",
        "alice",
        "client",
        "127.0.0.1:40000",
    ));
    assert_eq!(
        summary(&d),
        "client-to-carriers carrier-a,carrier-b - - proxy"
    );
    let d = p.route(&query("anything", "", "carrier", "127.0.0.1:5070"));
    assert_eq!(summary(&d), "carrier-to-platform platform - - proxy");
    assert_eq!(
        p.route(&query("1", "", "elsewhere", "127.0.0.1:1")),
        Decision::NoRoute
    );
    assert_eq!(
        p.trunk_by_addr(addr("127.0.0.1:5072"))
            .map(|t| t.name.as_str()),
        Some("carrier-b")
    );
    assert_eq!(
        p.trunk_by_addr(addr("[::ffff:127.0.0.1]:5066"))
            .map(|t| t.name.as_str()),
        Some("platform")
    );
    assert_eq!(p.trunk_by_addr(addr("127.0.0.1:5060")), None);
    assert_eq!(
        p.trunk("carrier-a").map(|t| t.address),
        Some(addr("127.0.0.1:5070"))
    );
    assert!(p.trunk("nope").is_none());
    assert!(p.listener("nope").is_none());
}

#[test]
fn dialplan_loopback_tcp_and_default_variants() {
    let tcp = plan(LOOPBACK_TCP);
    let kinds: Vec<(&str, TransportKind)> = tcp
        .trunks
        .iter()
        .map(|t| (t.name.as_str(), t.transport))
        .collect();
    assert_eq!(
        kinds,
        [
            ("carrier-a", TransportKind::Tcp),
            ("carrier-b", TransportKind::Tcp),
            ("platform", TransportKind::Udp)
        ]
    );
    // default.yaml (the B2BUA loopback plan) has the proxy loopback plan's
    // listeners, trunks, admin and route names.
    let (a, b) = (plan(LOOPBACK), plan(DEFAULT));
    assert_eq!(a.listeners, b.listeners);
    assert_eq!(a.trunks, b.trunks);
    assert_eq!(a.admin, b.admin);
    assert_eq!(
        a.route_names().collect::<Vec<_>>(),
        b.route_names().collect::<Vec<_>>()
    );
}

#[test]
fn dialplan_examples_decisions() {
    let p = plan(EXAMPLES);
    assert_eq!(p.gateway.fqdn.as_deref(), Some("gw.example.test"));
    let lo = "127.0.0.1:40000";
    let cases = [
        (
            "09001234567",
            "",
            "pbx",
            lo,
            "reject 403 Premium numbers are barred (route=block-premium)",
        ),
        (
            "+19005550100",
            "",
            "webrtc",
            lo,
            "reject 403 Premium numbers are barred (route=block-premium)",
        ),
        (
            "999",
            "",
            "pbx",
            lo,
            "emergency uk-primary,uk-backup - - proxy",
        ),
        (
            "999",
            "",
            "webrtc",
            lo,
            "reject 404 Not Found (route=default-deny)",
        ),
        (
            "020 7946 0000",
            "07700 900123",
            "pbx",
            lo,
            "pbx-uk uk-primary,uk-backup +442079460000 +447700900123 proxy",
        ),
        (
            "+44 (0)20 7946 0000",
            "+447700900123",
            "pbx",
            "[::1]:5000",
            "pbx-uk uk-primary,uk-backup +442079460000 - proxy",
        ),
        // Outside the pbx-uk source_addr ranges: falls through to international.
        (
            "0044207946",
            "",
            "pbx",
            "192.0.2.1:5060",
            "pbx-international international +44207946 - proxy",
        ),
        (
            "0033123456",
            "",
            "pbx",
            lo,
            "pbx-international international +33123456 - proxy",
        ),
        (
            "1234",
            "",
            "webrtc",
            lo,
            "webrtc-extensions platform +442079461234 - b2bua",
        ),
        (
            "12345",
            "+4420",
            "webrtc",
            lo,
            "reject 404 Not Found (route=default-deny)",
        ),
        (
            "+3312",
            "+4420",
            "webrtc",
            lo,
            "webrtc-out uk-primary,international - - proxy",
        ),
        (
            "+3312",
            "+3312",
            "webrtc",
            lo,
            "reject 404 Not Found (route=default-deny)",
        ),
        (
            "x",
            "",
            "trunks-in-v6",
            "[::1]:1",
            "inbound platform - - proxy",
        ),
    ];
    for (to, from, listener, src, want) in cases {
        let d = p.route(&query(to, from, listener, src));
        assert_eq!(summary(&d), want, "to={to} from={from} via {listener}");
    }
    // A request from a known trunk address matches `source: <trunk>`.
    let mut q = query("x", "", "webrtc", "127.0.0.1:5172");
    q.source_trunk = p.trunk_by_addr(q.source_addr).map(|t| t.name.as_str());
    assert_eq!(q.source_trunk, Some("uk-backup"));
    assert_eq!(summary(&p.route(&q)), "inbound platform - - proxy");
}

#[test]
fn dialplan_full_settings() {
    let p = plan(
        "version: 1
gateway: { fqdn: GW.Example.Test }
admin: '[::1]:9000'
timers: { t1_ms: 250, t2_ms: 250, t4_ms: 1000, timer_c_s: 200 }
listeners:
  - { name: l, side: carrier, tcp: '[::1]:5060' }
trunks:
  - { name: t, address: '[2001:db8::1]:5060', transport: tcp }
routes:
  - name: r
    match: { from: { regex: '^\\+1' } }
    trunks: [t]
",
    );
    assert_eq!(p.gateway.fqdn.as_deref(), Some("gw.example.test"));
    assert_eq!(p.admin, Some(addr("[::1]:9000")));
    assert_eq!(p.timers.t1, Duration::from_millis(250));
    assert_eq!(p.timers.t2, Duration::from_millis(250));
    assert_eq!(p.timers.t4, Duration::from_secs(1));
    assert_eq!(p.timers.timer_c, Duration::from_secs(200));
    assert_eq!(p.listeners.first().map(|l| l.udp), Some(None));
    assert_eq!(p.route_count(), 1);
    let d = p.route(&query("1", "+1555", "l", "[::1]:1"));
    assert!(
        matches!(
            d,
            Decision::Forward {
                mode: RouteMode::Proxy,
                ..
            }
        ),
        "{d:?}"
    );
    assert_eq!(
        p.route(&query("1", "+4455", "l", "[::1]:1")),
        Decision::NoRoute
    );
}

#[test]
fn dialplan_unquoted_numeric_prefixes_keep_their_text() {
    let p = plan(
        "version: 1
listeners: [{ name: l, side: client, udp: 127.0.0.1:5060 }]
trunks: [{ name: t, address: 127.0.0.1:5070 }]
routes:
  - { name: plus, match: { to: { prefix: +44 } }, trunks: [t] }
  - { name: zeros, match: { to: { prefix: 0033 } }, trunks: [t] }
  - { name: list, match: { to: { prefix: [+1, 001] } }, trunks: [t] }
",
    );
    let name = |to: &str| match p.route(&query(to, "", "l", "127.0.0.1:1")) {
        Decision::Forward { route, .. } => route.to_string(),
        other => other.to_string(),
    };
    assert_eq!(name("+4420"), "plus");
    assert_eq!(name("4420"), "no route (404)");
    assert_eq!(name("00331"), "zeros");
    assert_eq!(name("+1555"), "list");
    assert_eq!(name("001555"), "list");
}

#[test]
fn dialplan_anchors_aliases_and_merge_keys() {
    let src = "version: 1
listeners: [{ name: l, side: client, udp: 127.0.0.1:5060 }]
trunks:
  - { name: a, address: 127.0.0.1:5070 }
  - { name: b, address: 127.0.0.1:5071 }
routes:
  - &uk
    name: r1
    match: { to: { prefix: '+44' } }
    trunks: &both [a, b]
  - <<: *uk
    name: r2
    match: { to: { prefix: '+33' } }
  - name: r3
    match: { to: { prefix: '+1' } }
    trunks: *both
";
    let p = plan(src);
    assert_eq!(p.route_names().collect::<Vec<_>>(), ["r1", "r2", "r3"]);
    let d = p.route(&query("+331", "", "l", "127.0.0.1:1"));
    assert_eq!(summary(&d), "r2 a,b - - proxy");
    // An error reached through an alias is reported where the alias is used.
    let bad = src.replace("[a, b]", "[a, c]");
    let e = DialPlan::check_yaml_str(&bad, "t.yaml")
        .err()
        .unwrap_or_default();
    let heads: Vec<String> = e.iter().map(|e| e.headline()).collect();
    assert_eq!(
        heads,
        [
            "t.yaml:10:23: unknown trunk `c` (trunks: a, b)",
            "t.yaml:11:9: unknown trunk `c` (trunks: a, b)",
            "t.yaml:16:13: unknown trunk `c` (trunks: a, b)",
        ]
    );
}

#[test]
fn dialplan_load_errors() {
    let missing = Path::new("/nonexistent/callgate/plan.yaml");
    match DialPlan::load(missing) {
        Err(super::DialplanError::Io { file, .. }) => {
            assert_eq!(file, missing.display().to_string())
        }
        other => panic!("{other:?}"),
    }
    let dir = std::env::temp_dir().join(format!("callgate-dialplan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.join("latin1.yaml");
    std::fs::write(&bad, b"version: 1\n# caf\xe9\n").unwrap_or_else(|e| panic!("{e}"));
    let e = DialPlan::load(&bad)
        .err()
        .map(|e| e.headline())
        .unwrap_or_default();
    assert_eq!(e, format!("{}:2:6: file is not valid UTF-8", bad.display()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dialplan_json_schema_is_an_object_schema() {
    let schema = serde_json::to_value(super::json_schema()).unwrap_or_default();
    assert_eq!(schema["title"], "callgate dial plan");
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["required"].as_array().is_some_and(|r| r.len() == 2));
}
