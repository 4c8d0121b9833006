//! RFC 4475 torture messages against the running gateway, over UDP on
//! 127.0.0.1. The list and the expected handling come from
//! `../shared/conformance/rfc4475/MANIFEST.tsv` (4th column), parsed into a
//! table of allowed outcomes.
//!
//! For each `.dat` file: a fresh UDP socket sends it to callgate :5060;
//! plain UDP sockets on :5070 (carrier-a) and :5072 (carrier-b) stand in for
//! the trunks (they answer OPTIONS with 200, nothing else). For ~300 ms the
//! test collects what comes back to the sender (the gateway answers the
//! packet's source address) and what reaches the trunks with the entry's
//! Call-ID. The entry passes if one of its allowed outcomes happened:
//!
//! * `NNN` (e.g. 400, 505, 416, 483; `401/403`): a response with that code
//!   came back and the request was not forwarded (a 420 must carry an
//!   `Unsupported` header when the manifest says so);
//! * `drop`: nothing was sent anywhere;
//! * `accept`: no 4xx/5xx/6xx came back and, for a request, it was forwarded
//!   to a trunk or answered with 1xx/2xx;
//! * `forward`: forwarded to a trunk and no 4xx/5xx/6xx came back.
//!
//! Several torture messages share a transaction key (top Via branch,
//! sent-by and method: RFC 3261 17.2.3) with an earlier one, so a stateful
//! gateway rightly takes them for retransmissions. The gateway therefore runs
//! with fast timers (T1 = 50 ms, the `loopback-proxy.yaml` plan otherwise
//! unchanged) and such a message is sent only after the earlier transaction
//! has certainly ended (Timer F + Timer J = 2*64*T1, plus margin).
//!
//! Afterwards the gateway must still be running, complete a small SIPp
//! uac -> uas run, and serve `GET /metrics`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod support;

use std::fs;
use std::path::PathBuf;

/// One manifest line.
#[derive(Debug, Clone)]
struct Entry {
    file: String,
    section: String,
    class: String,
    expected: String,
}

/// Allowed outcomes parsed from the manifest's 4th column.
#[derive(Debug, Clone, Default, PartialEq)]
struct Expectation {
    accept: bool,
    forward: bool,
    drop: bool,
    codes: Vec<u16>,
    needs_unsupported: bool,
}

impl Expectation {
    fn is_empty(&self) -> bool {
        !self.accept && !self.forward && !self.drop && self.codes.is_empty()
    }
}

/// Reads the manifest's wording, e.g. "400 or accept", "401/403 or forward;
/// never crash ...", "415 (or forward, from a proxy)", "406 (Accept rules out
/// SDP) or forward", "420 with Unsupported header", "drop (response)",
/// "accept (unknown method: forward, or 405/501 from a UA)",
/// "accept (proxy forwards) or 400", "accept or 400; never register ...".
fn parse_expectation(text: &str) -> Expectation {
    let t = text.trim();
    let codes = t
        .split(|c: char| !c.is_ascii_digit())
        .filter(|tok| tok.len() == 3)
        .filter_map(|tok| tok.parse::<u16>().ok())
        .filter(|c| (100..700).contains(c))
        .collect();
    Expectation {
        // "Accept" with a capital A names the SIP header (sdp01), not the outcome
        accept: t.starts_with("accept") || t.contains("or accept"),
        // case-sensitive: "Max-Forwards" is not "forward"
        forward: t.contains("forward"),
        drop: t.starts_with("drop"),
        codes,
        needs_unsupported: t.contains("Unsupported"),
    }
}

fn manifest_dir() -> PathBuf {
    support::shared_dir().join("conformance").join("rfc4475")
}

fn read_manifest() -> Vec<Entry> {
    let path = manifest_dir().join("MANIFEST.tsv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): shared/ must be checked out beside the repository",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(
                cols.len() >= 4,
                "bad manifest line (want 4 tab-separated columns): {l:?}"
            );
            Entry {
                file: cols[0].trim().to_string(),
                section: cols[1].trim().to_string(),
                class: cols[2].trim().to_string(),
                expected: cols[3].trim().to_string(),
            }
        })
        .collect()
}

/// What the gateway did with one message.
#[derive(Debug, Default)]
struct Observed {
    /// Everything sent back to the sending socket.
    back: Vec<String>,
    /// Messages with this entry's Call-ID that reached a trunk socket.
    forwarded: Vec<String>,
}

fn verdict(e: &Expectation, dat_is_response: bool, obs: &Observed) -> Result<String, String> {
    let codes: Vec<u16> = obs
        .back
        .iter()
        .filter_map(|m| support::status_code(m))
        .collect();
    let error_back = codes.iter().any(|&c| c >= 400);
    let forwarded = !obs.forwarded.is_empty();
    let seen = format!("back={codes:?} forwarded={}", obs.forwarded.len());

    if e.drop && obs.back.is_empty() && !forwarded {
        return Ok(format!("dropped ({seen})"));
    }
    for m in &obs.back {
        let Some(c) = support::status_code(m) else {
            continue;
        };
        if e.codes.contains(&c) && !(c >= 300 && forwarded) {
            if c == 420
                && e.needs_unsupported
                && support::header_values(m, "Unsupported", None).is_empty()
            {
                continue;
            }
            return Ok(format!("answered {c} ({seen})"));
        }
    }
    if e.accept
        && !error_back
        && (dat_is_response || forwarded || codes.iter().any(|c| (100..300).contains(c)))
    {
        return Ok(format!("accepted ({seen})"));
    }
    if e.forward && forwarded && !error_back {
        return Ok(format!("forwarded ({seen})"));
    }
    Err(seen)
}

#[test]
fn manifest_expectations_parse() {
    let entries = read_manifest();
    assert!(
        entries.len() >= 40,
        "manifest has only {} entries",
        entries.len()
    );
    for e in &entries {
        let exp = parse_expectation(&e.expected);
        assert!(!exp.is_empty(), "no outcome understood in {:?}", e.expected);
        assert!(
            manifest_dir().join(&e.file).is_file(),
            "{} listed in the manifest is missing",
            e.file
        );
    }
    let p = parse_expectation;
    assert_eq!(p("400").codes, vec![400]);
    assert!(!p("400").accept && !p("400").forward);
    let e = p("400 or accept (trailing SP in request line)");
    assert!(e.accept && e.codes == vec![400]);
    assert_eq!(p("400 or 501").codes, vec![400, 501]);
    let e = p("401/403 or forward; never crash on unknown auth scheme");
    assert!(e.forward && !e.accept && e.codes == vec![401, 403]);
    let e = p("415 (or forward, from a proxy)");
    assert!(e.forward && !e.accept && e.codes == vec![415]);
    let e = p("406 (Accept rules out SDP) or forward");
    assert!(e.forward && !e.accept && e.codes == vec![406]);
    let e = p("483 (Max-Forwards 0 at a proxy)");
    assert!(!e.forward && !e.accept && e.codes == vec![483]);
    let e = p("420 with Unsupported header");
    assert!(e.needs_unsupported && e.codes == vec![420]);
    assert_eq!(p("505").codes, vec![505]);
    assert_eq!(p("416").codes, vec![416]);
    let e = p("drop (response)");
    assert!(e.drop && !e.accept && e.codes.is_empty());
    let e = p("accept (RFC 2543 syntax, no branch cookie)");
    assert!(e.accept && e.codes.is_empty());
    let e = p("accept (proxy forwards) or 400");
    assert!(e.accept && e.codes == vec![400]);
    let e = p("accept or 400; never register the escaped Route as a header");
    assert!(e.accept && e.codes == vec![400]);
    let e = p("accept (unknown method: forward, or 405/501 from a UA)");
    assert!(e.accept && e.codes == vec![405, 501]);

    // the verdicts themselves
    let obs = |back: &[&str], fwd: usize| Observed {
        back: back.iter().map(|s| s.to_string()).collect(),
        forwarded: vec!["INVITE x".to_string(); fwd],
    };
    let r400 = "SIP/2.0 400 Bad Request\r\nCSeq: 1 INVITE\r\n\r\n";
    let r100 = "SIP/2.0 100 Trying\r\nCSeq: 1 INVITE\r\n\r\n";
    let r420 = "SIP/2.0 420 Bad Extension\r\nUnsupported: x\r\n\r\n";
    let r420_bare = "SIP/2.0 420 Bad Extension\r\n\r\n";
    assert!(verdict(&p("400"), false, &obs(&[r400], 0)).is_ok());
    assert!(verdict(&p("400"), false, &obs(&[], 1)).is_err());
    assert!(verdict(&p("400"), false, &obs(&[r400], 1)).is_err());
    assert!(verdict(&p("accept"), false, &obs(&[r100], 1)).is_ok());
    assert!(verdict(&p("accept"), false, &obs(&[r100, r400], 1)).is_err());
    assert!(verdict(&p("accept"), false, &obs(&[], 0)).is_err());
    assert!(verdict(&p("accept"), true, &obs(&[], 0)).is_ok());
    assert!(verdict(&p("drop (response)"), true, &obs(&[], 0)).is_ok());
    assert!(verdict(&p("drop (response)"), true, &obs(&[], 1)).is_err());
    assert!(verdict(&p("420 with Unsupported header"), false, &obs(&[r420], 0)).is_ok());
    assert!(
        verdict(
            &p("420 with Unsupported header"),
            false,
            &obs(&[r420_bare], 0)
        )
        .is_err()
    );
    assert!(
        verdict(
            &p("415 (or forward, from a proxy)"),
            false,
            &obs(&[r100], 1)
        )
        .is_ok()
    );
}

mod real_peers {
    use super::support::*;
    use super::*;
    use std::net::{SocketAddr, UdpSocket};
    use std::thread;
    use std::time::{Duration, Instant};

    /// How long to collect what the gateway does with one message.
    const WINDOW: Duration = Duration::from_millis(300);
    /// Longest life of a non-INVITE transaction with T1 = 50 ms: Timer F
    /// (client side, 64*T1) then Timer J (server side, 64*T1), plus margin.
    const TXN_LIFETIME: Duration = Duration::from_millis(2 * 64 * 50 + 1500);

    /// RFC 3261 17.2.3 server-transaction key of a request: top Via branch
    /// (magic-cookie form only), sent-by, method. `None` for responses.
    fn transaction_key(dat: &[u8]) -> Option<(String, String, String)> {
        let text = String::from_utf8_lossy(dat);
        if text.starts_with("SIP/") {
            return None;
        }
        let method = text.split_whitespace().next()?.to_string();
        let via = header_values(&text, "Via", Some("v")).into_iter().next()?;
        let top = split_header_list(&via).into_iter().next()?;
        let mut parts = top.split(';');
        let sent_by = parts
            .next()?
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_ascii_lowercase();
        let branch = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("branch"))
            .map(|(_, v)| v.trim().to_string())?;
        branch
            .starts_with("z9hG4bK")
            .then_some((branch, sent_by, method))
    }

    fn call_id(dat: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(dat);
        header_values(&text, "Call-ID", Some("i"))
            .into_iter()
            .next()
            .filter(|v| !v.is_empty())
    }

    /// A 200 for an OPTIONS, so a trunk socket looks like a healthy trunk.
    fn answer_options(sock: &UdpSocket, req: &str, from: SocketAddr) {
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for (name, compact) in [
            ("Via", Some("v")),
            ("From", Some("f")),
            ("To", Some("t")),
            ("Call-ID", Some("i")),
            ("CSeq", None),
        ] {
            for v in header_values(req, name, compact) {
                resp.push_str(&format!("{name}: {v}"));
                if name == "To" && !v.contains("tag=") {
                    resp.push_str(";tag=rfc4475-trunk");
                }
                resp.push_str("\r\n");
            }
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        let _ = sock.send_to(resp.as_bytes(), from);
    }

    /// Reads everything pending on a trunk socket; answers OPTIONS.
    fn drain_trunk(sock: &UdpSocket, into: &mut Vec<String>) {
        let mut buf = vec![0u8; 65536];
        // bounded: at most 1000 datagrams per call
        for _ in 0..1000 {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if msg.starts_with("OPTIONS ") {
                        answer_options(sock, &msg, from);
                    }
                    into.push(msg);
                }
                Err(_) => break,
            }
        }
    }

    fn drain_sender(sock: &UdpSocket, into: &mut Vec<String>) {
        let mut buf = vec![0u8; 65536];
        for _ in 0..1000 {
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => into.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) => break,
            }
        }
    }

    #[test]
    fn torture_messages_handled_per_manifest_and_gateway_survives() {
        let _serial = serial();
        let work = work_dir("rfc4475");
        let entries = read_manifest();
        let all_call_ids: Vec<String> = entries
            .iter()
            .filter_map(|e| fs::read(manifest_dir().join(&e.file)).ok())
            .filter_map(|d| call_id(&d))
            .collect();

        let fast = fast_dialplan(&work);
        check_dialplan(&fast);
        let mut gw = start_gateway(&fast, &work);
        let trunk_a = UdpSocket::bind((LOOPBACK, CARRIER_A_PORT)).expect("bind carrier-a 5070");
        let trunk_b = UdpSocket::bind((LOOPBACK, CARRIER_B_PORT)).expect("bind carrier-b 5072");
        trunk_a.set_nonblocking(true).unwrap();
        trunk_b.set_nonblocking(true).unwrap();
        let gateway: SocketAddr = gateway_target().parse().unwrap();

        let mut table = Vec::new();
        let mut failures = Vec::new();
        let mut sent_keys: Vec<((String, String, String), Instant)> = Vec::new();
        for e in &entries {
            let dat = fs::read(manifest_dir().join(&e.file))
                .unwrap_or_else(|err| panic!("{}: {err}", e.file));
            let key = transaction_key(&dat);
            if let Some(k) = &key
                && let Some((_, at)) = sent_keys.iter().find(|(sk, _)| sk == k)
            {
                // same transaction key as an earlier message: let it end first
                let until = *at + TXN_LIFETIME;
                let mut ignored = Vec::new();
                while Instant::now() < until {
                    drain_trunk(&trunk_a, &mut ignored);
                    drain_trunk(&trunk_b, &mut ignored);
                    thread::sleep(Duration::from_millis(20));
                }
            }
            if let Some(k) = key {
                sent_keys.retain(|(sk, _)| sk != &k);
                sent_keys.push((k, Instant::now()));
            }
            let expectation = parse_expectation(&e.expected);
            let is_response = dat.starts_with(b"SIP/");
            let cid = call_id(&dat);

            // forget what earlier entries left at the trunks (retransmissions)
            let mut stale = Vec::new();
            drain_trunk(&trunk_a, &mut stale);
            drain_trunk(&trunk_b, &mut stale);

            let sender = UdpSocket::bind((LOOPBACK, 0)).expect("bind sender");
            sender.set_nonblocking(true).unwrap();
            sender.send_to(&dat, gateway).expect("send to gateway");

            let mut obs = Observed::default();
            let mut at_trunks = Vec::new();
            let deadline = Instant::now() + WINDOW;
            while Instant::now() < deadline {
                drain_sender(&sender, &mut obs.back);
                drain_trunk(&trunk_a, &mut at_trunks);
                drain_trunk(&trunk_b, &mut at_trunks);
                thread::sleep(Duration::from_millis(2));
            }
            obs.forwarded = at_trunks
                .into_iter()
                .filter(|m| match &cid {
                    Some(c) => m.contains(c.as_str()),
                    None => !all_call_ids.iter().any(|c| m.contains(c.as_str())),
                })
                .collect();

            let result = verdict(&expectation, is_response, &obs);
            let line = format!(
                "{:<15} {:<9} {:<8} {:<58} {}",
                e.file,
                e.section,
                e.class,
                e.expected,
                match &result {
                    Ok(s) => format!("PASS {s}"),
                    Err(s) => format!("FAIL {s}"),
                }
            );
            if result.is_err() {
                let first_back = obs
                    .back
                    .iter()
                    .map(|m| m.lines().next().unwrap_or("").to_string())
                    .collect::<Vec<_>>();
                failures.push(format!("{line}\n      first lines back: {first_back:?}"));
            }
            table.push(line);
            gw.assert_alive(&format!("after {} ({})", e.file, e.section));
        }
        drop(trunk_a);
        drop(trunk_b);
        eprintln!("RFC 4475 results:\n{}", table.join("\n"));

        // still completes calls
        let uas = Sipp::uas("uas", &work, CARRIER_A_PORT)
            .builtin("uas")
            .spawn();
        let uac = Sipp::uac("uac", &work, &gateway_target())
            .builtin("uac")
            .rate(10)
            .calls(10)
            .timeout(Duration::from_secs(20))
            .spawn()
            .wait(Duration::from_secs(30));
        let uas = uas.stop();
        gw.assert_alive("after the RFC 4475 messages and the SIPp calls");
        let metrics = gw.get("/metrics");

        assert!(
            failures.is_empty(),
            "{} of {} RFC 4475 messages not handled as the manifest says:\n{}\n--- callgate log (tail) ---\n{}",
            failures.len(),
            entries.len(),
            failures.join("\n"),
            gw.log_tail(3000)
        );
        uac.assert_all_successful(
            10,
            &format!(
                "calls after the torture messages\n{}\n--- callgate log (tail) ---\n{}",
                uas.summary(),
                gw.log_tail(3000)
            ),
        );
        match metrics {
            Ok(r) => {
                assert!(
                    r.status == 200 && r.body.contains("# TYPE "),
                    "GET /metrics must answer 200 with Prometheus text; got {}: {}",
                    r.status,
                    r.body.chars().take(500).collect::<String>()
                );
                let value = |name: &str| -> Option<f64> {
                    r.body
                        .lines()
                        .find(|l| l.split_whitespace().next() == Some(name))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                };
                // Malformed input is counted, and none of it reached a panic.
                assert!(
                    value("callgate_sip_parse_errors_total").is_some_and(|v| v >= 15.0),
                    "parse errors counted in /metrics:\n{}",
                    r.body
                );
                assert_eq!(
                    value("callgate_internal_errors_total"),
                    Some(0.0),
                    "no panic was caught while handling the torture messages"
                );
            }
            Err(err) => panic!("GET /metrics failed: {err}"),
        }
        gw.stop(Duration::from_secs(10));
    }
}
