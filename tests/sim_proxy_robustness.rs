//! A malformed packet must never take the gateway down: every RFC 4475
//! torture message and thousands of deterministic mutations of them (and of
//! a real call's messages) go through the sans-IO proxy — as requests on
//! both listeners and as responses to live client transactions — while
//! simulated time runs every timer. Any panic fails the test; afterwards the
//! proxy must still route a clean call.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::dialplan::{DialPlan, Side};
use callgate::proxy::{LocalSocket, Proxy, ProxyConfig, ProxyStats};
use callgate::sip::message::{Limits, parse_datagram};
use callgate::sip::transport::{Flow, Transport};

const PLAN: &str = r#"
version: 1
listeners:
  - { name: client, side: client, udp: "127.0.0.1:5060" }
  - { name: carrier, side: carrier, udp: "127.0.0.1:5080" }
trunks:
  - { name: carrier-a, address: "127.0.0.1:5070" }
  - { name: carrier-b, address: "127.0.0.1:5072" }
routes:
  - { name: par, match: { source: client, to: { prefix: "9" } }, fork: parallel, trunks: [carrier-a, carrier-b] }
  - { name: all, match: { source: client }, trunks: [carrier-a, carrier-b] }
  - { name: back, match: { source: carrier }, trunks: [carrier-a] }
"#;

/// xorshift64*: a deterministic mutation source (no randomness in tests).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n ",
    b";",
    b",",
    b":",
    b"<",
    b">",
    b"\"",
    b"%",
    b"%00",
    b"@",
    b"[",
    b"]",
    b"SIP/2.0",
    b"z9hG4bKcg00000000.0.1",
    b"tag=",
    b";branch=",
    b"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcg1\r\n",
    b"Route: <sip:127.0.0.1:5060;lr>\r\n",
    b"Content-Length: 99999\r\n",
    b"Max-Forwards: 0\r\n",
    b"CSeq: 4294967295 INVITE\r\n",
    b"To: <sip:x@y>;tag=t\r\n",
    b"sips:",
    b"tel:+1",
    b"\xff\xfe",
    b"\0",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if m.is_empty() {
            m.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
            continue;
        }
        let at = rng.below(m.len());
        match rng.below(7) {
            0 => m[at] = rng.next() as u8,
            1 => m.truncate(at),
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                m.splice(at..at, t.iter().copied());
            }
            3 => {
                let end = (at + rng.below(40)).min(m.len());
                m.drain(at..end);
            }
            4 => {
                // duplicate a line
                let start = m[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = m[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(m.len(), |p| at + p + 1);
                let line = m[start..end].to_vec();
                m.splice(start..start, line);
            }
            5 => {
                // swap two bytes far apart
                let other = rng.below(m.len());
                m.swap(at, other);
            }
            _ => {
                let n = 1 + rng.below(3);
                let b = m[at];
                m.splice(at..at, std::iter::repeat_n(b, n));
            }
        }
    }
    m
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The same plan with every route handed to the B2BUA (anchored media).
fn b2bua_plan() -> String {
    PLAN.replace("trunks: [", "mode: b2bua, trunks: [")
}

const SDP_CALL: &str = "INVITE sip:5123@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-rob-2\r\n\
From: <sip:a@127.0.0.1>;tag=fb\r\nTo: <sip:5123@127.0.0.1>\r\nCall-ID: rob2\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:a@127.0.0.1:6000>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: 103\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=sendrecv\r\n";

fn proxy_with(yaml: &str) -> Proxy {
    let plan = Arc::new(DialPlan::from_yaml_str(yaml, "robust.yaml").unwrap());
    let sockets = vec![
        LocalSocket::udp("client", Side::Client, addr("127.0.0.1:5060")),
        LocalSocket::udp("carrier", Side::Carrier, addr("127.0.0.1:5080")),
    ];
    let cfg = ProxyConfig::new(sockets);
    Proxy::new(cfg, plan, Arc::new(ProxyStats::default()))
}

fn torture_corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (shared/ must be checked out beside the repo)",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 49, "the 49 RFC 4475 messages");
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

const CALL: &str = "INVITE sip:9123@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-rob-1\r\n\
From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:9123@127.0.0.1>\r\nCall-ID: rob1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:a@127.0.0.1:6000>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

/// Drain the proxy's transmits; returns the forwarded requests (to answer them with mutated responses).
fn drain(p: &mut Proxy) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(t) = p.poll_transmit() {
        out.push((t.flow.remote, t.bytes.to_vec()));
    }
    out
}

/// Build a response to a forwarded request, as text, so it can be mutated.
fn response_text(req: &[u8], code: u16) -> Option<Vec<u8>> {
    let msg = parse_datagram(Bytes::copy_from_slice(req), &Limits::default()).ok()?;
    msg.method()?;
    let mut s = format!("SIP/2.0 {code} X\r\n").into_bytes();
    for h in &msg.headers {
        use callgate::sip::message::HeaderName as H;
        if matches!(
            h.name,
            H::Via | H::From | H::CallId | H::CSeq | H::RecordRoute
        ) {
            s.extend_from_slice(h.raw_line());
            s.extend_from_slice(b"\r\n");
        }
        if h.name == H::To {
            s.extend_from_slice(h.raw_line());
            s.extend_from_slice(b";tag=callee\r\n");
        }
    }
    s.extend_from_slice(b"Contact: <sip:b@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n");
    Some(s)
}

#[test]
fn mutated_traffic_never_panics_and_the_proxy_keeps_routing() {
    storm(PLAN);
}

#[test]
fn mutated_traffic_never_panics_the_b2bua_and_leaks_nothing() {
    let plan = b2bua_plan();
    let p = storm(&plan);
    assert_eq!(p.0, 0, "no B2BUA call left after every timer ran");
    assert_eq!(p.1, 0, "every media port released");
}

/// Storms a proxy built from `yaml`; returns (calls, media ports) left.
fn storm(yaml: &str) -> (usize, usize) {
    let mut p = proxy_with(yaml);
    let start = Instant::now();
    let mut now = start;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seeds = torture_corpus();
    seeds.push(CALL.as_bytes().to_vec());
    seeds.push(SDP_CALL.as_bytes().to_vec());
    assert_eq!(SDP_CALL.split("\r\n\r\n").nth(1).unwrap().len(), 103);
    let from_client = Flow {
        listener: 0,
        transport: Transport::Udp,
        remote: addr("127.0.0.1:6000"),
        conn: None,
    };
    let from_a = Flow {
        listener: 1,
        transport: Transport::Udp,
        remote: addr("127.0.0.1:5070"),
        conn: None,
    };
    let mut forwarded: Vec<Vec<u8>> = Vec::new();
    let mut sent = 0usize;
    for round in 0..6000 {
        let seed = &seeds[rng.below(seeds.len())];
        let data = if round % 10 == 0 {
            seed.clone()
        } else {
            mutate(&mut rng, seed)
        };
        let flow = if rng.below(3) == 0 {
            from_a
        } else {
            from_client
        };
        p.handle_datagram(now, flow, Bytes::from(data));
        sent += 1;
        // Answer what the proxy forwarded with (mutated) responses from the trunk.
        for (to, bytes) in drain(&mut p) {
            if to.port() == 5070 || to.port() == 5072 {
                forwarded.push(bytes);
            }
        }
        if !forwarded.is_empty() && rng.below(2) == 0 {
            let req = forwarded.swap_remove(rng.below(forwarded.len()));
            let code = [100u16, 180, 183, 200, 486, 503, 408, 699][rng.below(8)];
            if let Some(resp) = response_text(&req, code) {
                let resp = if rng.below(2) == 0 {
                    mutate(&mut rng, &resp)
                } else {
                    resp
                };
                p.handle_datagram(now, from_a, Bytes::from(resp));
                sent += 1;
                drain(&mut p);
            }
        }
        // Let time pass, sometimes past every transaction timer.
        now += Duration::from_millis(if round % 500 == 0 {
            40_000
        } else {
            rng.below(300) as u64
        });
        for _ in 0..10_000 {
            match p.poll_timeout() {
                Some(t) if t <= now => {
                    p.handle_timeout(t.max(start));
                    for (to, bytes) in drain(&mut p) {
                        if to.port() == 5070 || to.port() == 5072 {
                            forwarded.push(bytes);
                        }
                    }
                }
                _ => break,
            }
        }
        forwarded.truncate(64);
    }
    assert!(sent >= 6000);
    // Everything ends: after 5 simulated hours (past the B2BUA's maximum
    // call duration) no transaction is left.
    now += Duration::from_secs(5 * 3600);
    for _ in 0..100_000 {
        match p.poll_timeout() {
            Some(t) if t <= now => {
                p.handle_timeout(t);
                drain(&mut p);
            }
            _ => break,
        }
    }
    assert_eq!(
        p.active_transactions(),
        0,
        "no transaction leaks after the storm: {:#?}",
        p.describe_transactions()
    );
    assert_eq!(
        p.b2bua_tracked_transactions(),
        0,
        "the B2BUA's transaction index empties too"
    );
    // And a clean call still routes.
    let (calls, ports) = (p.active_calls(), p.media_ports_in_use());
    let clean = SDP_CALL
        .replace("rob2", "after-storm")
        .replace("z9hG4bK-rob-2", "z9hG4bK-after");
    p.handle_datagram(now, from_client, Bytes::from(clean));
    let out = drain(&mut p);
    assert!(
        out.iter()
            .any(|(to, b)| to.port() == 5070 && b.starts_with(b"INVITE ")),
        "still forwards INVITEs"
    );
    assert!(
        out.iter()
            .any(|(to, b)| to.port() == 6000 && b.starts_with(b"SIP/2.0 100")),
        "still answers 100 Trying"
    );
    (calls, ports)
}
