//! Tests: whole plans using the B2BUA options — the `media:` section, the
//! B2BUA timers, decisions carrying `media`, trunk policies — and the
//! shipped B2BUA plans.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::tests_errors::first;
use super::{
    Decision, DialPlan, MediaConfig, MediaMode, RouteMode, RouteQuery, TimerConfig, TrunkPolicy,
};

const LOOPBACK: &str = include_str!("../../dialplans/loopback.yaml");
const LOOPBACK_PROXY: &str = include_str!("../../dialplans/loopback-proxy.yaml");
const DEFAULT: &str = include_str!("../../dialplans/default.yaml");
const EXAMPLES: &str = include_str!("../../dialplans/examples.yaml");

fn plan(src: &str) -> DialPlan {
    DialPlan::from_yaml_str(src, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn query<'a>(to: &'a str, listener: &'a str, src: &str) -> RouteQuery<'a> {
    RouteQuery {
        ruri_user: to,
        from_user: "",
        source_listener: listener,
        source_trunk: None,
        source_addr: src.parse().unwrap_or_else(|e| panic!("{src}: {e}")),
    }
}

/// `route mode media` of a forward decision, or the Display of others.
fn mode_media(d: &Decision) -> String {
    match d {
        Decision::Forward {
            route, mode, media, ..
        } => format!("{route} {mode} {media}"),
        other => other.to_string(),
    }
}

const FULL: &str = "version: 1
timers: { no_answer_s: 20, max_call_duration_s: 7200 }
media:
  address: 192.0.2.10
  ports: 30000-30099
  rtp_timeout_s: 45
listeners: [{ name: l, side: client, udp: 127.0.0.1:5060 }]
trunks:
  - name: carrier
    address: 127.0.0.1:5070
    codecs: [pcma, PCMU, telephone-event]
    plain_rtp: false
    headers:
      pass: [P-Asserted-Identity, 'X-*', s]
      drop: [X-Internal-*]
      add:
        X-Gateway: callgate
        X-Trunk-Id: 42
      rewrite:
        - { name: P-Asserted-Identity, match: '@internal\\.example', replace: '@carrier.example' }
  - name: plain
    address: 127.0.0.1:5072
routes:
  - name: anchored
    match: { to: { prefix: '+44' } }
    mode: b2bua
    trunks: [carrier]
  - name: bypassed
    match: { to: { prefix: '+33' } }
    mode: b2bua
    media: bypass
    trunks: [carrier, plain]
  - name: proxied
    trunks: [plain]
";

#[test]
fn dialplan_b2bua_settings() {
    let p = plan(FULL);
    assert_eq!(p.timers.no_answer, Duration::from_secs(20));
    assert_eq!(p.timers.max_call_duration, Duration::from_secs(7200));
    assert_eq!(p.timers.t1, TimerConfig::default().t1);
    assert_eq!(
        p.media,
        MediaConfig {
            address: IpAddr::from([192, 0, 2, 10]),
            port_first: 30000,
            port_last: 30099,
            rtp_timeout: Duration::from_secs(45),
        }
    );
    let carrier = p.trunk("carrier").unwrap_or_else(|| panic!("no carrier"));
    let pol = &carrier.policy;
    assert_eq!(pol.codecs, ["PCMA", "PCMU", "telephone-event"]);
    assert!(!pol.plain_rtp);
    assert_eq!(pol.headers.pass, ["P-Asserted-Identity", "X-*", "s"]);
    assert_eq!(pol.headers.drop, ["X-Internal-*"]);
    assert_eq!(
        pol.headers.add,
        [
            ("X-Gateway".to_owned(), "callgate".to_owned()),
            ("X-Trunk-Id".to_owned(), "42".to_owned())
        ]
    );
    let rw = pol
        .headers
        .rewrite
        .first()
        .unwrap_or_else(|| panic!("no rule"));
    assert_eq!(rw.name, "P-Asserted-Identity");
    assert_eq!(rw.pattern.as_str(), "@internal\\.example");
    assert_eq!(rw.replace, "@carrier.example");
    assert!(pol.headers.passes(b"Subject"));
    assert!(pol.headers.passes(b"x-customer"));
    assert!(!pol.headers.passes(b"X-Internal-Id"));
    assert!(!pol.headers.passes(b"Diversion"));
    // A trunk without options gets the default policy.
    let plain = p.trunk("plain").unwrap_or_else(|| panic!("no plain"));
    assert_eq!(*plain.policy, TrunkPolicy::default());
    assert!(plain.policy.plain_rtp);
}

#[test]
fn dialplan_b2bua_decisions_carry_media() {
    let p = plan(FULL);
    let lo = "127.0.0.1:40000";
    assert_eq!(
        mode_media(&p.route(&query("+4420", "l", lo))),
        "anchored b2bua anchor"
    );
    assert_eq!(
        mode_media(&p.route(&query("+3312", "l", lo))),
        "bypassed b2bua bypass"
    );
    // Proxy routes carry the (ignored) default.
    assert_eq!(
        mode_media(&p.route(&query("+1555", "l", lo))),
        "proxied proxy anchor"
    );
    let d = p.route(&query("+3312", "l", lo));
    assert_eq!(
        d.to_string(),
        "route=bypassed mode=b2bua media=bypass trunks=carrier(127.0.0.1:5070/udp),\
         plain(127.0.0.1:5072/udp)"
    );
    // The trunks in a decision carry their policies.
    if let Decision::Forward { trunks, .. } = d {
        assert!(trunks.first().is_some_and(|t| !t.policy.plain_rtp));
        assert!(trunks.get(1).is_some_and(|t| t.policy.plain_rtp));
    }
}

#[test]
fn dialplan_b2bua_defaults_without_sections() {
    let p = plan(LOOPBACK_PROXY);
    assert_eq!(p.media, MediaConfig::default());
    assert_eq!(p.timers, TimerConfig::default());
    assert!(p.trunks.iter().all(|t| *t.policy == TrunkPolicy::default()));
}

#[test]
fn dialplan_b2bua_pass_empty_and_wildcards() {
    let src = FULL.replace("[P-Asserted-Identity, 'X-*', s]", "[]");
    let e = first(&src);
    // With nothing passed, the rewrite can never apply.
    assert!(
        e.contains("rewrite of `P-Asserted-Identity` never applies"),
        "{e}"
    );
    let src = FULL
        .replace("[P-Asserted-Identity, 'X-*', s]", "['*']")
        .replace("[X-Internal-*]", "[Privacy]");
    let p = plan(&src);
    let h = &p.trunk("carrier").map(|t| t.policy.headers.clone());
    let h = h.as_ref().unwrap_or_else(|| panic!("no carrier"));
    assert!(h.passes(b"Anything-At-All"));
    assert!(!h.passes(b"privacy"));
    assert!(!h.passes(b"Via"));
}

#[test]
fn dialplan_b2bua_loopback_interface() {
    let p = plan(LOOPBACK);
    let proxy = plan(LOOPBACK_PROXY);
    // Same listeners, trunks (names, addresses, order) and admin as the
    // proxy loopback plan; B2BUA routes with anchored media on 127.0.0.1.
    assert_eq!(p.listeners, proxy.listeners);
    assert_eq!(p.trunks, proxy.trunks);
    assert_eq!(p.admin, proxy.admin);
    assert_eq!(p.admin, Some(SocketAddr::from(([127, 0, 0, 1], 9090))));
    assert_eq!(
        p.media,
        MediaConfig {
            address: IpAddr::from([127, 0, 0, 1]),
            port_first: 20000,
            port_last: 20999,
            rtp_timeout: MediaConfig::default().rtp_timeout,
        }
    );
    assert_eq!(
        p.route_names().collect::<Vec<_>>(),
        proxy.route_names().collect::<Vec<_>>()
    );
    let lo = "127.0.0.1:40000";
    match p.route(&query("+442079460000", "client", lo)) {
        Decision::Forward {
            route,
            trunks,
            mode,
            media,
            ..
        } => {
            assert_eq!(&*route, "client-to-carriers");
            let names: Vec<&str> = trunks.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["carrier-a", "carrier-b"]);
            assert_eq!((mode, media), (RouteMode::B2bua, MediaMode::Anchor));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        mode_media(&p.route(&query("1", "carrier", "127.0.0.1:5070"))),
        "carrier-to-platform b2bua anchor"
    );
}

#[test]
fn dialplan_b2bua_default_is_loopback() {
    // default.yaml is the B2BUA loopback plan, comments aside.
    let (a, b) = (plan(LOOPBACK), plan(DEFAULT));
    assert_eq!(a.listeners, b.listeners);
    assert_eq!(a.trunks, b.trunks);
    assert_eq!(a.admin, b.admin);
    assert_eq!(a.media, b.media);
    assert_eq!(a.timers, b.timers);
    let lo = "127.0.0.1:40000";
    for (to, l, src) in [("+44", "client", lo), ("1", "carrier", "127.0.0.1:5070")] {
        assert_eq!(
            a.route(&query(to, l, src)),
            b.route(&query(to, l, src)),
            "{to} via {l}"
        );
    }
}

#[test]
fn dialplan_b2bua_examples() {
    let p = plan(EXAMPLES);
    let lo = "127.0.0.1:40000";
    assert_eq!(
        mode_media(&p.route(&query("1234", "webrtc", lo))),
        "webrtc-extensions b2bua anchor"
    );
    assert_eq!(
        mode_media(&p.route(&query("2345", "webrtc", lo))),
        "webrtc-bypass b2bua bypass"
    );
    let uk = p
        .trunk("uk-primary")
        .unwrap_or_else(|| panic!("no uk-primary"));
    assert_eq!(uk.policy.codecs, ["PCMA", "PCMU", "telephone-event"]);
    assert!(uk.policy.plain_rtp);
    assert!(!uk.policy.headers.add.is_empty());
    assert!(!uk.policy.headers.rewrite.is_empty());
}

#[test]
fn dialplan_b2bua_yaml_duplicate_add_key() {
    let src = FULL.replace("X-Trunk-Id: 42", "X-Gateway: again");
    let e = first(&src);
    assert!(e.starts_with("t.yaml:18:9: "), "{e}");
}

#[test]
fn dialplan_b2bua_dtmf_and_ringback_options() {
    let yaml = "version: 1
listeners:
  - { name: client, side: client, udp: \"127.0.0.1:5060\" }
trunks:
  - { name: pstn, address: \"127.0.0.1:5070\", dtmf: info }
  - { name: plain, address: \"127.0.0.1:5072\" }
routes:
  - { name: r, mode: b2bua, ringback: uk, trunks: [pstn, plain] }
";
    let p = plan(yaml);
    let d = p.route(&query("123", "client", "127.0.0.1:6000"));
    match d {
        Decision::Forward {
            trunks, ringback, ..
        } => {
            assert_eq!(ringback, crate::dialplan::RingbackTone::Uk);
            assert_eq!(trunks[0].policy.dtmf, crate::dialplan::DtmfMode::Info);
            assert_eq!(trunks[1].policy.dtmf, crate::dialplan::DtmfMode::Rfc4733);
        }
        other => panic!("{other:?}"),
    }
    let bad = yaml.replace(
        "mode: b2bua, ringback: uk",
        "mode: b2bua, media: bypass, ringback: uk",
    );
    let e = DialPlan::from_yaml_str(&bad, "t.yaml")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`ringback` needs `mode: b2bua` with `media: anchor`"),
        "{e}"
    );
    assert!(e.starts_with("t.yaml:8:"), "{e}");
    let bad = yaml.replace("dtmf: info", "dtmf: sip-info");
    let e = DialPlan::from_yaml_str(&bad, "t.yaml")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("sip-info") && e.contains("rfc4733"), "{e}");
}
