//! Whole-call proxy scenarios in simulated time: the sans-IO `Proxy` is fed
//! datagrams from scripted user agents and stepped to its `poll_timeout`, so
//! Timer B (32 s), Timer C (180 s) and a three-hour call run in milliseconds.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::dialplan::{DialPlan, Side};
use callgate::proxy::{LocalSocket, Proxy, ProxyConfig, ProxyStats};
use callgate::sip::message::{HeaderName, Limits, Message, parse_datagram};
use callgate::sip::transport::{Flow, Transport};

const PLAN: &str = r#"
version: 1
listeners:
  - { name: client, side: client, udp: "127.0.0.1:5060" }
  - { name: carrier, side: carrier, udp: "127.0.0.1:5080" }
trunks:
  - { name: carrier-a, address: "127.0.0.1:5070" }
  - { name: carrier-b, address: "127.0.0.1:5072" }
  - { name: platform, address: "127.0.0.1:5066" }
routes:
  - name: parallel
    match: { source: client, to: { prefix: "+1999" } }
    fork: parallel
    trunks: [carrier-a, carrier-b]
  - name: from-client
    match: { source: client }
    trunks: [carrier-a, carrier-b]
  - name: from-carrier
    match: { source: carrier }
    trunks: [platform]
"#;

const UAC: &str = "127.0.0.1:6000";
const A: &str = "127.0.0.1:5070";
const B: &str = "127.0.0.1:5072";

struct Sim {
    proxy: Proxy,
    now: Instant,
    start: Instant,
    stats: Arc<ProxyStats>,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

impl Sim {
    fn new() -> Sim {
        Sim::with_plan(PLAN)
    }

    fn with_plan(yaml: &str) -> Sim {
        let plan = Arc::new(DialPlan::from_yaml_str(yaml, "test.yaml").unwrap());
        let sockets = vec![
            LocalSocket::udp("client", Side::Client, addr("127.0.0.1:5060")),
            LocalSocket::udp("carrier", Side::Carrier, addr("127.0.0.1:5080")),
        ];
        let cfg = ProxyConfig::new(sockets);
        let stats = Arc::new(ProxyStats::default());
        let start = Instant::now();
        Sim {
            proxy: Proxy::new(cfg, plan, stats.clone()),
            now: start,
            start,
            stats,
        }
    }

    /// Deliver raw text from `from` to listener `listener` (0 = client 5060, 1 = carrier 5080).
    fn send(&mut self, listener: usize, from: &str, raw: &str) {
        let flow = Flow {
            listener,
            transport: Transport::Udp,
            remote: addr(from),
            conn: None,
        };
        self.proxy
            .handle_datagram(self.now, flow, Bytes::from(raw.replace('\n', "\r\n")));
    }

    /// Everything the proxy wants sent, parsed, as (destination, message).
    fn take(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        while let Some(t) = self.proxy.poll_transmit() {
            out.push((
                t.flow.remote,
                parse_datagram(t.bytes, &Limits::default()).expect("proxy output parses"),
            ));
        }
        out
    }

    /// Advance simulated time to `at`, firing every timer due on the way.
    fn advance_to(&mut self, at: Instant) -> Vec<(Instant, SocketAddr, Message)> {
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            match self.proxy.poll_timeout() {
                Some(t) if t <= at => {
                    self.now = self.now.max(t);
                    self.proxy.handle_timeout(self.now);
                    for (to, m) in self.take() {
                        seen.push((self.now, to, m));
                    }
                }
                _ => break,
            }
        }
        self.now = at;
        seen
    }

    fn advance(&mut self, d: Duration) -> Vec<(Instant, SocketAddr, Message)> {
        let at = self.now + d;
        self.advance_to(at)
    }
}

fn invite(call: &str, extra: &str) -> String {
    format!(
        "INVITE sip:+15551234@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{call}-1
From: <sip:alice@127.0.0.1:6000>;tag=alice-{call}
To: <sip:+15551234@127.0.0.1:5060>
Call-ID: {call}
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:6000>
Max-Forwards: 70
X-Custom: kept   as-is
{extra}Content-Length: 0

"
    )
}

/// A response from a UAS to a forwarded request: Vias, From, Call-ID, CSeq copied; To tagged.
fn reply(req: &Message, code: u16, reason: &str, to_tag: &str, contact: &str) -> String {
    let mut s = format!("SIP/2.0 {code} {reason}\n");
    for h in &req.headers {
        match h.name {
            HeaderName::Via
            | HeaderName::From
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::RecordRoute => {
                s.push_str(&String::from_utf8_lossy(h.raw_line()));
                s.push('\n');
            }
            HeaderName::To => {
                let v = String::from_utf8_lossy(h.value()).into_owned();
                if v.contains("tag=") || to_tag.is_empty() {
                    s.push_str(&format!("To: {v}\n"));
                } else {
                    s.push_str(&format!("To: {v};tag={to_tag}\n"));
                }
            }
            _ => {}
        }
    }
    if !contact.is_empty() {
        s.push_str(&format!("Contact: <sip:{contact}>\n"));
    }
    s.push_str("Content-Length: 0\n\n");
    s
}

fn only_to(msgs: &[(SocketAddr, Message)], to: &str) -> Vec<Message> {
    msgs.iter()
        .filter(|(a, _)| *a == addr(to))
        .map(|(_, m)| m.clone())
        .collect()
}

fn code_of(m: &Message) -> u16 {
    m.code().unwrap_or(0)
}

fn method_of(m: &Message) -> String {
    m.method().map(|x| x.to_string()).unwrap_or_default()
}

#[test]
fn basic_call_with_sipp_style_ack_and_bye() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c1", ""));
    let out = sim.take();
    let to_uac = only_to(&out, UAC);
    assert_eq!(to_uac.len(), 1);
    assert_eq!(code_of(&to_uac[0]), 100);
    let to_a = only_to(&out, A);
    assert_eq!(to_a.len(), 1, "INVITE forwarded to carrier-a only");
    let fwd = &to_a[0];
    assert_eq!(method_of(fwd), "INVITE");
    assert_eq!(fwd.max_forwards(), Some(69));
    let vias = fwd.vias();
    assert_eq!(vias.len(), 2);
    assert_eq!(&vias[0].host[..], b"127.0.0.1");
    assert_eq!(
        vias[0].port,
        Some(5080),
        "sent from the carrier-side socket"
    );
    let rr = fwd.record_routes();
    assert_eq!(
        rr.len(),
        2,
        "double Record-Route across client and carrier sockets"
    );
    assert_eq!(rr[0].uri.port(), Some(5080));
    assert_eq!(rr[1].uri.port(), Some(5060));
    assert_eq!(
        fwd.uri().unwrap().as_bytes(),
        b"sip:+15551234@127.0.0.1:5070",
        "R-URI that named us is retargeted"
    );
    assert!(
        fwd.headers
            .iter()
            .any(|h| h.raw_line() == b"X-Custom: kept   as-is"),
        "unknown header byte-for-byte"
    );

    sim.send(1, A, &reply(fwd, 180, "Ringing", "uas1", "127.0.0.1:5070"));
    let out = sim.take();
    let r = only_to(&out, UAC);
    assert_eq!(r.len(), 1);
    assert_eq!(code_of(&r[0]), 180);
    assert_eq!(r[0].vias().len(), 1, "our Via popped");
    sim.send(1, A, &reply(fwd, 200, "OK", "uas1", "127.0.0.1:5070"));
    let r = only_to(&sim.take(), UAC);
    assert_eq!(code_of(&r[0]), 200);
    assert_eq!(r[0].record_routes().len(), 2);

    // SIPp's built-in uac: ACK and BYE to the proxy's address, no Route.
    let ack = "ACK sip:+15551234@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-c1-ack
From: <sip:alice@127.0.0.1:6000>;tag=alice-c1
To: <sip:+15551234@127.0.0.1:5060>;tag=uas1
Call-ID: c1
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

";
    sim.send(0, UAC, ack);
    let out = sim.take();
    let a = only_to(&out, A);
    assert_eq!(a.len(), 1);
    assert_eq!(method_of(&a[0]), "ACK");
    sim.advance(Duration::from_secs(3 * 3600));
    let bye = ack
        .replace("ACK sip", "BYE sip")
        .replace("1 ACK", "2 BYE")
        .replace("c1-ack", "c1-bye");
    sim.send(0, UAC, &bye);
    let a = only_to(&sim.take(), A);
    assert_eq!(
        a.len(),
        1,
        "BYE after a three-hour call still reaches the callee"
    );
    assert_eq!(method_of(&a[0]), "BYE");
    assert_eq!(sim.proxy.active_dialogs(), 1);
    sim.send(1, A, &reply(&a[0], 200, "OK", "", ""));
    let r = only_to(&sim.take(), UAC);
    assert_eq!(code_of(&r[0]), 200);
    assert_eq!(sim.proxy.active_dialogs(), 0, "dialog forgotten after BYE");
    // Every transaction ends within the longest timer (64*T1 = 32 s).
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.proxy.active_transactions(), 0);
}

#[test]
fn busy_is_passed_back_without_failover() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c2", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 486, "Busy Here", "uas2", ""));
    let out = sim.take();
    assert!(only_to(&out, B).is_empty(), "no failover on 486");
    let acks = only_to(&out, A);
    assert_eq!(acks.len(), 1);
    assert_eq!(
        method_of(&acks[0]),
        "ACK",
        "ACK for the non-2xx generated hop by hop"
    );
    let r = only_to(&out, UAC);
    assert_eq!(code_of(&r[0]), 486);
    let later = sim.advance(Duration::from_secs(60));
    assert!(later.iter().all(|(_, to, _)| *to != addr(B)));
}

#[test]
fn service_unavailable_fails_over_to_next_trunk() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c3", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 503, "Service Unavailable", "uas3", ""));
    let out = sim.take();
    assert!(
        only_to(&out, UAC).is_empty(),
        "caller sees nothing of the failed branch"
    );
    let b = only_to(&out, B);
    assert_eq!(b.len(), 1);
    assert_eq!(method_of(&b[0]), "INVITE");
    assert_ne!(
        b[0].top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch(),
        "new branch"
    );
    sim.send(1, B, &reply(&b[0], 200, "OK", "uasb", "127.0.0.1:5072"));
    let r = only_to(&sim.take(), UAC);
    assert_eq!(code_of(&r[0]), 200);
    assert_eq!(
        sim.stats
            .failovers
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn both_trunks_unavailable_gives_500() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c3b", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 503, "Service Unavailable", "x", ""));
    let b = only_to(&sim.take(), B).remove(0);
    sim.send(1, B, &reply(&b, 503, "Service Unavailable", "y", ""));
    let r = only_to(&sim.take(), UAC);
    assert_eq!(
        code_of(&r[0]),
        500,
        "RFC 3261 §16.7 step 6: 503 becomes 500"
    );
}

#[test]
fn silent_trunk_times_out_with_timer_b_then_fails_over() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c4", ""));
    let out = sim.take();
    assert_eq!(only_to(&out, A).len(), 1);
    let seen = sim.advance(Duration::from_secs(40));
    let retrans: Vec<f64> = seen
        .iter()
        .filter(|(_, to, m)| *to == addr(A) && method_of(m) == "INVITE")
        .map(|(t, _, _)| (*t - sim.start).as_secs_f64())
        .collect();
    assert_eq!(
        retrans,
        vec![0.5, 1.5, 3.5, 7.5, 15.5, 31.5],
        "Timer A doubling from T1"
    );
    let to_b: Vec<f64> = seen
        .iter()
        .filter(|(_, to, m)| *to == addr(B) && method_of(m) == "INVITE")
        .map(|(t, _, _)| (*t - sim.start).as_secs_f64())
        .collect();
    assert_eq!(
        to_b.first().copied(),
        Some(32.0),
        "Timer B (64*T1) moves the call to carrier-b"
    );
}

#[test]
fn cancel_before_answer() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c5", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 180, "Ringing", "uas5", ""));
    sim.take();
    let cancel = "CANCEL sip:+15551234@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-c5-1
From: <sip:alice@127.0.0.1:6000>;tag=alice-c5
To: <sip:+15551234@127.0.0.1:5060>
Call-ID: c5
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

";
    sim.send(0, UAC, cancel);
    let out = sim.take();
    let r = only_to(&out, UAC);
    assert_eq!(code_of(&r[0]), 200, "CANCEL answered hop by hop");
    let c = only_to(&out, A);
    assert_eq!(c.len(), 1);
    assert_eq!(method_of(&c[0]), "CANCEL");
    assert_eq!(
        c[0].top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch(),
        "CANCEL reuses the INVITE branch"
    );
    sim.send(1, A, &reply(&fwd, 487, "Request Terminated", "uas5", ""));
    let out = sim.take();
    let r = only_to(&out, UAC);
    assert_eq!(code_of(&r[0]), 487);
    assert!(only_to(&out, B).is_empty(), "no failover after CANCEL");
}

#[test]
fn max_forwards_zero_gets_483_and_bad_extension_gets_420() {
    let mut sim = Sim::new();
    sim.send(
        0,
        UAC,
        &invite("c6", "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    let out = sim.take();
    assert_eq!(code_of(&only_to(&out, UAC)[0]), 483);
    assert!(only_to(&out, A).is_empty());
    sim.send(0, UAC, &invite("c7", "Proxy-Require: foo, bar\n"));
    let out = sim.take();
    let r = &only_to(&out, UAC)[0];
    assert_eq!(code_of(r), 420);
    assert_eq!(
        r.header(HeaderName::Unsupported).unwrap().value(),
        b"foo, bar"
    );
    assert!(
        r.to_tag().is_some(),
        "a locally generated final carries a To tag"
    );
}

#[test]
fn unknown_scheme_gets_416_and_options_to_us_gets_200_then_503_when_draining() {
    let mut sim = Sim::new();
    let opts = "OPTIONS sip:127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-o1
From: <sip:probe@127.0.0.1>;tag=p1
To: <sip:127.0.0.1:5060>
Call-ID: o1
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

";
    sim.send(0, UAC, opts);
    assert_eq!(code_of(&only_to(&sim.take(), UAC)[0]), 200);
    sim.proxy.set_draining(true);
    sim.send(0, UAC, &opts.replace("o1", "o2"));
    assert_eq!(code_of(&only_to(&sim.take(), UAC)[0]), 503);
    sim.send(
        0,
        UAC,
        &invite("c8", "").replace("INVITE sip:+15551234@127.0.0.1:5060", "INVITE nobody:x"),
    );
    assert_eq!(code_of(&only_to(&sim.take(), UAC)[0]), 416);
}

#[test]
fn loop_is_detected() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c9", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    // A misconfigured trunk sends the request straight back. The first
    // return carries a Request-URI we retargeted, so it is a spiral (§16.3
    // step 4); the second return is unchanged and is a loop.
    let raw = String::from_utf8_lossy(&fwd.to_bytes()).replace("\r\n", "\n");
    sim.send(1, A, &raw);
    let out = sim.take();
    assert!(
        only_to(&out, A).iter().all(|m| code_of(m) != 482),
        "a spiral is not a loop"
    );
    // Arriving on the carrier side, the spiral is routed to the platform trunk.
    let again = only_to(&out, "127.0.0.1:5066")
        .into_iter()
        .find(|m| method_of(m) == "INVITE")
        .expect("spiral forwarded");
    let raw = String::from_utf8_lossy(&again.to_bytes()).replace("\r\n", "\n");
    sim.send(1, A, &raw);
    let r = only_to(&sim.take(), A);
    assert!(
        r.iter().any(|m| code_of(m) == 482),
        "482 Loop Detected, got {:?}",
        r.iter().map(code_of).collect::<Vec<_>>()
    );
}

#[test]
fn timer_c_cancels_a_ringing_branch_and_fails_over() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c10", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 180, "Ringing", "uas10", ""));
    sim.take();
    let seen = sim.advance(Duration::from_secs(181));
    let cancel = seen
        .iter()
        .find(|(_, to, m)| *to == addr(A) && method_of(m) == "CANCEL");
    let (at, _, _) = cancel.expect("Timer C sends CANCEL");
    assert_eq!((*at - sim.start).as_secs(), 180);
    sim.send(1, A, &reply(&fwd, 487, "Request Terminated", "uas10", ""));
    let out = sim.take();
    assert_eq!(
        only_to(&out, B).len(),
        1,
        "no answer within Timer C counts as 408 and fails over"
    );
}

#[test]
fn timer_c_is_reset_by_each_provisional_and_cancels_once() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c10b", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 100, "Trying", "", ""));
    sim.send(1, A, &reply(&fwd, 180, "Ringing", "uas10b", ""));
    sim.take();
    // Another provisional 100 s in pushes Timer C to 280 s (§16.7 step 2).
    sim.advance(Duration::from_secs(100));
    sim.send(1, A, &reply(&fwd, 180, "Ringing", "uas10b", ""));
    sim.take();
    let seen = sim.advance(Duration::from_secs(200));
    let cancels: Vec<_> = seen
        .iter()
        .filter(|(_, to, m)| *to == addr(A) && method_of(m) == "CANCEL")
        .map(|(at, _, m)| {
            (
                (*at - sim.start).as_millis(),
                m.top_via().unwrap().branch().map(<[u8]>::to_vec),
            )
        })
        .collect();
    assert!(!cancels.is_empty(), "Timer C sends CANCEL");
    assert_eq!(
        cancels[0].0, 280_000,
        "not at 180 s: the provisional reset it"
    );
    assert_eq!(
        cancels.iter().filter(|c| c.0 == 280_000).count(),
        1,
        "one CANCEL, not one per provisional: {cancels:?}"
    );
}

#[test]
fn malformed_request_gets_400_with_warning_and_response_garbage_is_dropped() {
    let mut sim = Sim::new();
    sim.send(
        0,
        UAC,
        &invite("c11", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
    );
    let r = only_to(&sim.take(), UAC);
    assert_eq!(code_of(&r[0]), 400);
    let w = r[0].header(HeaderName::Warning).unwrap();
    assert!(String::from_utf8_lossy(w.value()).contains("CSeq method does not match"));
    sim.send(
        0,
        UAC,
        "SIP/2.0 4294967301 huge\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcg1\n\n",
    );
    assert!(sim.take().is_empty());
    assert_eq!(
        sim.stats
            .parse_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn parallel_fork_first_2xx_wins_and_other_branch_is_cancelled() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c12", "").replace("+15551234", "+19990001"));
    let out = sim.take();
    let a = only_to(&out, A).remove(0);
    let b = only_to(&out, B).remove(0);
    assert_eq!(method_of(&a), "INVITE");
    assert_eq!(method_of(&b), "INVITE");
    assert_ne!(a.top_via().unwrap().branch(), b.top_via().unwrap().branch());
    sim.send(1, A, &reply(&a, 180, "Ringing", "ua", ""));
    assert_eq!(code_of(&only_to(&sim.take(), UAC)[0]), 180);
    sim.send(1, B, &reply(&b, 200, "OK", "ub", "127.0.0.1:5072"));
    let out = sim.take();
    assert_eq!(code_of(&only_to(&out, UAC)[0]), 200);
    let cancel = only_to(&out, A);
    assert_eq!(cancel.len(), 1);
    assert_eq!(
        method_of(&cancel[0]),
        "CANCEL",
        "the losing branch is cancelled"
    );
    sim.send(1, A, &reply(&a, 487, "Request Terminated", "ua", ""));
    let to_uac = only_to(&sim.take(), UAC);
    assert!(
        to_uac.is_empty(),
        "the 487 of the losing branch is not relayed"
    );
}

#[test]
fn parallel_fork_busy_and_answer_gives_answer() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c13", "").replace("+15551234", "+19990002"));
    let out = sim.take();
    let a = only_to(&out, A).remove(0);
    let b = only_to(&out, B).remove(0);
    sim.send(1, A, &reply(&a, 486, "Busy Here", "ua", ""));
    assert!(
        only_to(&sim.take(), UAC).is_empty(),
        "waits for the other branch"
    );
    sim.send(1, B, &reply(&b, 200, "OK", "ub", "127.0.0.1:5072"));
    assert_eq!(code_of(&only_to(&sim.take(), UAC)[0]), 200);
}

#[test]
fn cancel_that_the_callee_never_answers_still_frees_every_transaction() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c14", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    sim.send(1, A, &reply(&fwd, 180, "Ringing", "uas14", ""));
    sim.take();
    let cancel = "CANCEL sip:+15551234@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-c14-1
From: <sip:alice@127.0.0.1:6000>;tag=alice-c14
To: <sip:+15551234@127.0.0.1:5060>
Call-ID: c14
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

";
    sim.send(0, UAC, cancel);
    sim.take();
    // The callee answers neither the CANCEL nor the INVITE. RFC 3261 §9.1:
    // after 64*T1 the INVITE branch is considered cancelled.
    let seen = sim.advance(Duration::from_secs(40));
    let r: Vec<u16> = seen
        .iter()
        .filter(|(_, to, _)| *to == addr(UAC))
        .map(|(_, _, m)| code_of(m))
        .collect();
    assert!(r.contains(&487), "the caller gets its 487, got {r:?}");
    sim.advance(Duration::from_secs(120));
    assert_eq!(
        sim.proxy.active_transactions(),
        0,
        "no transaction is left waiting for a 487 that never comes"
    );
}

#[test]
fn loop_is_detected_when_the_gateway_uses_its_fqdn() {
    let plan = PLAN.replace(
        "version: 1\n",
        "version: 1\ngateway: { fqdn: gw.example.test }\n",
    );
    let mut sim = Sim::with_plan(&plan);
    sim.send(
        0,
        UAC,
        &invite("c15", "").replace(
            "sip:+15551234@127.0.0.1:5060",
            "sip:+15551234@carrier.example",
        ),
    );
    let fwd = only_to(&sim.take(), A).remove(0);
    let via = fwd.top_via().unwrap();
    assert_eq!(&via.host[..], b"gw.example.test", "Via carries the FQDN");
    assert!(
        fwd.record_routes()[0].uri.host() == b"gw.example.test",
        "Record-Route carries the FQDN"
    );
    // The trunk sends it straight back on the client side: unchanged R-URI, a loop.
    let raw = String::from_utf8_lossy(&fwd.to_bytes()).replace("\r\n", "\n");
    sim.send(0, A, &raw);
    let r = only_to(&sim.take(), A);
    assert!(
        r.iter().any(|m| code_of(m) == 482),
        "482 with an FQDN Via, got {:?}",
        r.iter().map(code_of).collect::<Vec<_>>()
    );
}

#[test]
fn answered_call_frees_its_context_and_still_relays_2xx_retransmissions() {
    let mut sim = Sim::new();
    sim.send(0, UAC, &invite("c16", ""));
    let fwd = only_to(&sim.take(), A).remove(0);
    let ok = reply(&fwd, 200, "OK", "uas16", "127.0.0.1:5070");
    sim.send(1, A, &ok);
    assert_eq!(code_of(&only_to(&sim.take(), UAC)[0]), 200);
    assert_eq!(
        sim.proxy.active_contexts(),
        0,
        "context freed once answered"
    );
    assert!(
        sim.proxy.active_transactions() > 0,
        "transactions still linger (RFC 6026 Timer L/M)"
    );
    // The callee did not see the ACK yet and retransmits its 200.
    sim.advance(Duration::from_millis(500));
    sim.send(1, A, &ok);
    let r = only_to(&sim.take(), UAC);
    assert_eq!(r.len(), 1, "the 2xx retransmission reaches the caller");
    assert_eq!(code_of(&r[0]), 200);
    assert_eq!(r[0].vias().len(), 1, "our Via popped");
}
