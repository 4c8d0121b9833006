//! The `callgate` binary's dial-plan commands: `check`, `route`, `schema`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_callgate");

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `callgate ARGS` from the crate root.
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(manifest_dir())
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `content` to a per-test file under the system temp directory.
fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callgate-cli-dialplan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

#[test]
fn check_good_file() {
    let o = run(&["check", "dialplans/loopback-proxy.yaml"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "dialplans/loopback-proxy.yaml: ok (2 listeners, 3 trunks, 2 routes)\n"
    );
}

#[test]
fn check_good_b2bua_file() {
    let o = run(&["check", "dialplans/loopback.yaml"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "dialplans/loopback.yaml: ok (2 listeners, 3 trunks, 2 routes)\n"
    );
}

#[test]
fn check_every_shipped_dialplan() {
    let mut names: Vec<String> = std::fs::read_dir(manifest_dir().join("dialplans"))
        .unwrap_or_else(|e| panic!("dialplans/: {e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    for must in [
        "default.yaml",
        "examples.yaml",
        "loopback.yaml",
        "loopback-proxy.yaml",
        "loopback-proxy-tcp.yaml",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} missing: {names:?}");
    }
    for name in names {
        let path = format!("dialplans/{name}");
        let o = run(&["check", &path]);
        assert_eq!(o.status.code(), Some(0), "{path}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!("{path}: ok (")),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn check_bad_file_points_at_line_and_column() {
    let path = temp_file(
        "bad.yaml",
        "version: 1
listeners:
  - name: client
    side: client
    udp: 127.0.0.1:5060
trunks:
  - name: carrier-a
    address: 127.0.0.1:5070
routes:
  - name: out
    trunks: [carrier-a, carrier-c]
",
    );
    let p = path.display().to_string();
    let o = run(&["check", &p]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        format!(
            "{p}:11:25: unknown trunk `carrier-c` (did you mean `carrier-a`?) (trunks: carrier-a)\n\
             \x20   trunks: [carrier-a, carrier-c]\n\
             \x20                       ^\n"
        )
    );
}

#[test]
fn check_reports_every_error_and_yaml_errors() {
    let path = temp_file(
        "two.yaml",
        "version: 2\nlisteners:\n  - name: c\n    side: client\n",
    );
    let p = path.display().to_string();
    let o = run(&["check", &p]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let heads: Vec<&str> = err.lines().filter(|l| l.starts_with(&p)).collect();
    assert_eq!(
        heads,
        [
            format!("{p}:1:10: unsupported dial plan version 2; this callgate reads version 1"),
            format!("{p}:3:5: listener `c` needs at least one of `udp` or `tcp`"),
        ]
    );

    let path = temp_file("typo.yaml", "version: 1\nlisteners: []\ntrunk: []\n");
    let p = path.display().to_string();
    let o = run(&["check", &p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{p}:3:1: unknown field `trunk`, expected one of")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_missing_file() {
    let o = run(&["check", "dialplans/does-not-exist.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("dialplans/does-not-exist.yaml: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn route_dry_runs() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "route",
                "dialplans/loopback-proxy.yaml",
                "--to",
                "+442079460000",
            ],
            "route=client-to-carriers mode=proxy trunks=carrier-a(127.0.0.1:5070/udp),carrier-b(127.0.0.1:5072/udp)\n",
        ),
        (
            &[
                "route",
                "dialplans/loopback-proxy.yaml",
                "--to",
                "1",
                "--source",
                "carrier",
            ],
            "route=carrier-to-platform mode=proxy trunks=platform(127.0.0.1:5066/udp)\n",
        ),
        (
            &[
                "route",
                "dialplans/examples.yaml",
                "--to",
                "020 7946 0000",
                "--from",
                "07700 900123",
                "--source",
                "pbx",
                "--source-addr",
                "127.0.0.1",
            ],
            "route=pbx-uk mode=proxy ruri_user=+442079460000 from_user=+447700900123 trunks=uk-primary(127.0.0.1:5170/udp),uk-backup(127.0.0.1:5172/tcp)\n",
        ),
        (
            &["route", "dialplans/examples.yaml", "--to", "+19005550100"],
            "reject 403 Premium numbers are barred (route=block-premium)\n",
        ),
        (
            &[
                "route",
                "dialplans/loopback-proxy.yaml",
                "--to",
                "1",
                "--source-addr",
                "192.0.2.1:5060",
                "--source",
                "nowhere-listener",
            ],
            "",
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        if want.is_empty() {
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert!(
                stderr(&o).contains("is neither a listener nor a trunk"),
                "{}",
                stderr(&o)
            );
        } else {
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
            assert_eq!(stdout(&o), want, "{args:?}");
        }
    }
}

#[test]
fn route_dry_runs_b2bua() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["route", "dialplans/loopback.yaml", "--to", "+442079460000"],
            "route=client-to-carriers mode=b2bua media=anchor trunks=carrier-a(127.0.0.1:5070/udp),carrier-b(127.0.0.1:5072/udp)\n",
        ),
        (
            &[
                "route",
                "dialplans/default.yaml",
                "--to",
                "1",
                "--source",
                "carrier-b",
            ],
            "route=carrier-to-platform mode=b2bua media=anchor trunks=platform(127.0.0.1:5066/udp)\n",
        ),
        (
            &[
                "route",
                "dialplans/examples.yaml",
                "--to",
                "2345",
                "--source",
                "webrtc",
            ],
            "route=webrtc-bypass mode=b2bua media=bypass ruri_user=+442079462345 trunks=platform(127.0.0.1:5166/udp)\n",
        ),
        (
            &[
                "route",
                "dialplans/examples.yaml",
                "--to",
                "1234",
                "--source",
                "webrtc",
            ],
            "route=webrtc-extensions mode=b2bua media=anchor ruri_user=+442079461234 trunks=platform(127.0.0.1:5166/udp)\n",
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), want, "{args:?}");
    }
}

#[test]
fn check_bad_b2bua_options() {
    let path = temp_file(
        "bad-b2bua.yaml",
        "version: 1
timers: { no_answer_s: 0 }
media:
  address: 0.0.0.0
  ports: 20001-20999
listeners:
  - name: client
    side: client
    udp: 127.0.0.1:5060
trunks:
  - name: carrier-a
    address: 127.0.0.1:5070
    codecs: [PCMA, G711]
    headers:
      pass: [P-Asserted-Identity, Via]
      add: { Contact: x }
      rewrite:
        - { name: P-Asserted-Identity, match: '(@', replace: x }
routes:
  - name: out
    media: bypass
    trunks: [carrier-a]
",
    );
    let p = path.display().to_string();
    let o = run(&["check", &p]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    let heads: Vec<&str> = err.lines().filter(|l| l.starts_with(&p)).collect();
    let owned = "the B2BUA writes its own dialog, transaction, routing, authentication and \
                 negotiation headers on each leg";
    assert_eq!(
        heads,
        [
            format!("{p}:2:24: `no_answer_s` must be between 1 and 3600, got 0"),
            format!(
                "{p}:4:12: media `address` `0.0.0.0` cannot be advertised in SDP: use the \
                 address peers send RTP to"
            ),
            format!(
                "{p}:5:10: `ports` must start on an even port (RTP uses even ports and RTCP \
                 the next odd one, RFC 3550 §11): write `20000-20999` or `20002-20999`"
            ),
            format!(
                "{p}:13:20: unknown codec `G711` (did you mean `PCMU` (G.711 µ-law) or `PCMA` \
                 (G.711 A-law)?); known codecs: PCMU PCMA G722 G729 G723 GSM iLBC opus SILK \
                 speex AMR AMR-WB L16 CN telephone-event"
            ),
            format!("{p}:15:35: `Via` is never copied: {owned}"),
            format!("{p}:16:14: `Contact` cannot be added: {owned}"),
            format!("{p}:18:48: invalid regex: unclosed group"),
            format!(
                "{p}:21:12: `media` only applies to `mode: b2bua` routes; route `out` is \
                 `mode: proxy` (the default), where media always flows end to end"
            ),
        ]
    );
    // Each error is followed by its source line and a caret.
    assert!(
        err.contains(
            "        - { name: P-Asserted-Identity, match: '(@', replace: x }\n\
             \x20                                              ^\n"
        ),
        "{err}"
    );
}

#[test]
fn route_no_route_is_404() {
    let path = temp_file(
        "narrow.yaml",
        "version: 1
listeners: [{ name: l, side: client, udp: 127.0.0.1:5060 }]
trunks: [{ name: t, address: 127.0.0.1:5070 }]
routes:
  - { name: uk, match: { to: { prefix: '+44' } }, trunks: [t] }
",
    );
    let p = path.display().to_string();
    let o = run(&["route", &p, "--to", "+33123"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "no route (404)\n");
}

#[test]
fn schema_is_valid_json() {
    let o = run(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON: {e}"));
    assert_eq!(v["title"], "callgate dial plan");
    assert!(v["properties"]["routes"].is_object());
    assert!(v["$defs"]["RewriteStep"].is_object());
    // The B2BUA options are described.
    assert!(v["properties"]["media"].is_object(), "{v}");
    let defs = &v["$defs"];
    assert!(defs["MediaSection"]["properties"]["ports"].is_object());
    assert!(defs["TimersSection"]["properties"]["no_answer_s"].is_object());
    assert!(defs["TimersSection"]["properties"]["max_call_duration_s"].is_object());
    assert!(defs["TrunkEntry"]["properties"]["headers"].is_object());
    assert!(defs["TrunkEntry"]["properties"]["codecs"].is_object());
    assert!(defs["TrunkEntry"]["properties"]["plain_rtp"].is_object());
    assert!(defs["RouteEntry"]["properties"]["media"].is_object());
    assert!(defs["HeadersSection"]["properties"]["add"].is_object());
    assert!(defs["HeaderRewriteEntry"]["required"].is_array());
}
