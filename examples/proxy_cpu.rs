//! In-process CPU cost of the sans-IO proxy per call (no sockets, no
//! kernel): N calls of INVITE/100/180/200/ACK/BYE/200 driven through one
//! `Proxy` shard with a scripted caller and callee. Prints µs per call.
//! `cargo run --release --example proxy_cpu -- 200000 [b2bua]` (with
//! `b2bua`, the route is `mode: b2bua, media: bypass`: two dialogs per call).
//! Also prints the heap allocations per call made inside the proxy.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::dialplan::{DialPlan, Side};
use callgate::proxy::{LocalSocket, Proxy, ProxyConfig, ProxyStats};
use callgate::sip::message::{HeaderName, Limits, parse_datagram};
use callgate::sip::transport::{Flow, Transport};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, allocations};

/// Same allocator as the `callgate` binary, so the figure matches
/// production, wrapped to count allocations (one relaxed add each).
#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` on the proxy and adds the allocations it made to `inside`
/// (the scripted peers' own message building is left out).
fn counted<R>(p: &mut Proxy, inside: &mut u64, f: impl FnOnce(&mut Proxy) -> R) -> R {
    let before = allocations();
    let r = f(p);
    *inside += allocations() - before;
    r
}

const PLAN: &str = r#"
version: 1
listeners:
  - { name: client, side: client, udp: "127.0.0.1:5060" }
  - { name: carrier, side: carrier, udp: "127.0.0.1:5080" }
trunks:
  - { name: carrier-a, address: "127.0.0.1:5070" }
routes:
  - { name: all, match: { source: client }, trunks: [carrier-a]MODE }
"#;

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let b2bua = std::env::args().nth(2).as_deref() == Some("b2bua");
    // As `callgate run` does (runtime::disable_transparent_huge_pages).
    // SAFETY: plain integer arguments; only sets a flag on the process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let plan = PLAN.replace(
        "MODE",
        if b2bua {
            ", mode: b2bua, media: bypass"
        } else {
            ""
        },
    );
    let plan = Arc::new(DialPlan::from_yaml_str(&plan, "bench.yaml").expect("plan"));
    let a = |s: &str| s.parse().expect("addr");
    let sockets = vec![
        LocalSocket::udp("client", Side::Client, a("127.0.0.1:5060")),
        LocalSocket::udp("carrier", Side::Carrier, a("127.0.0.1:5080")),
    ];
    let cfg = ProxyConfig::new(sockets);
    let mut p = Proxy::new(cfg, plan, Arc::new(ProxyStats::default()));
    let uac = Flow {
        listener: 0,
        transport: Transport::Udp,
        remote: a("127.0.0.1:6000"),
        conn: None,
    };
    let uas = Flow {
        listener: 1,
        transport: Transport::Udp,
        remote: a("127.0.0.1:5070"),
        conn: None,
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut out = Vec::new();
    let mut allocs = 0u64;
    let started = Instant::now();
    for i in 0..calls {
        let invite = format!(
            "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{i}-0\r\n\
From: sipp <sip:sipp@127.0.0.1:6000>;tag={i}SIPpTag00\r\nTo: service <sip:service@127.0.0.1:5060>\r\nCall-ID: {i}-bench@127.0.0.1\r\n\
CSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:6000\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\n\
v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        counted(&mut p, &mut allocs, |p| {
            p.handle_datagram(now, uac, Bytes::from(invite))
        });
        out.clear();
        while let Some(t) = p.poll_transmit() {
            out.push(t);
        }
        let fwd = out
            .iter()
            .find(|t| t.flow.remote == uas.remote)
            .expect("forwarded");
        let req = parse_datagram(fwd.bytes.clone(), &Limits::default()).expect("parse");
        let resp = |code: &str, cseq: &str| {
            let mut s = format!("SIP/2.0 {code}\r\n");
            for h in &req.headers {
                match h.name {
                    HeaderName::Via
                    | HeaderName::From
                    | HeaderName::CallId
                    | HeaderName::RecordRoute => {
                        s.push_str(std::str::from_utf8(h.raw_line()).unwrap_or(""));
                        s.push_str("\r\n");
                    }
                    HeaderName::To => s.push_str(&format!(
                        "To: service <sip:service@127.0.0.1:5060>;tag={i}uas\r\n"
                    )),
                    _ => {}
                }
            }
            s.push_str(&format!("CSeq: {cseq}\r\nContact: <sip:127.0.0.1:5070;transport=UDP>\r\nContent-Length: 0\r\n\r\n"));
            s
        };
        let r180 = resp("180 Ringing", "1 INVITE");
        let r200 = resp("200 OK", "1 INVITE");
        counted(&mut p, &mut allocs, |p| {
            p.handle_datagram(now, uas, Bytes::from(r180))
        });
        counted(&mut p, &mut allocs, |p| {
            p.handle_datagram(now, uas, Bytes::from(r200))
        });
        out.clear();
        while let Some(t) = p.poll_transmit() {
            out.push(t);
        }
        // The caller's To (with the tag the B2BUA chose, or the callee's).
        let ok = out
            .iter()
            .filter(|t| t.flow.remote == uac.remote)
            .filter_map(|t| parse_datagram(t.bytes.clone(), &Limits::default()).ok())
            .find(|m| m.code() == Some(200))
            .expect("200 to the caller");
        let to = std::str::from_utf8(ok.header(HeaderName::To).expect("To").raw_line())
            .expect("ascii")
            .to_owned();
        let dialog = format!(
            "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{i}-X\r\nFrom: sipp <sip:sipp@127.0.0.1:6000>;tag={i}SIPpTag00\r\n\
{to}\r\nCall-ID: {i}-bench@127.0.0.1\r\nMax-Forwards: 70\r\n"
        );
        let ack = format!(
            "ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n{}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            dialog.replace("-X", "-1")
        );
        counted(&mut p, &mut allocs, |p| {
            p.handle_datagram(now, uac, Bytes::from(ack))
        });
        let bye = format!(
            "BYE sip:service@127.0.0.1:5060 SIP/2.0\r\n{}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            dialog.replace("-X", "-2")
        );
        counted(&mut p, &mut allocs, |p| {
            p.handle_datagram(now, uac, Bytes::from(bye))
        });
        out.clear();
        while let Some(t) = p.poll_transmit() {
            out.push(t);
        }
        let fbye = out
            .iter()
            .rev()
            .find(|t| t.flow.remote == uas.remote)
            .expect("bye forwarded");
        let breq = parse_datagram(fbye.bytes.clone(), &Limits::default()).expect("parse bye");
        let mut s = String::from("SIP/2.0 200 OK\r\n");
        for h in &breq.headers {
            if matches!(
                h.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            ) {
                s.push_str(std::str::from_utf8(h.raw_line()).unwrap_or(""));
                s.push_str("\r\n");
            }
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        counted(&mut p, &mut allocs, |p| {
            p.handle_datagram(now, uas, Bytes::from(s))
        });
        while p.poll_transmit().is_some() {}
        now += Duration::from_micros(500);
        if let Some(t) = p.poll_timeout().filter(|t| *t <= now) {
            let _ = t;
            counted(&mut p, &mut allocs, |p| p.handle_timeout(now));
            while p.poll_transmit().is_some() {}
        }
    }
    let took = started.elapsed();
    // Building the test messages above costs too; report it as an upper bound.
    println!(
        "proxy_cpu: {calls} calls in {:.2} s: {:.1} us/call (includes building and re-parsing the scripted peers' messages), {:.1} allocations/call inside the proxy",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / calls as f64,
        allocs as f64 / calls as f64
    );
}
