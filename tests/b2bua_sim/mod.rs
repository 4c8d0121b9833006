//! A simulated-time harness for B2BUA call flows: one sans-IO proxy shard
//! (hosting the B2BUA) fed scripted SIP text from a caller and trunks, with
//! every media command recorded and applied to a real `MediaHost`, so tests
//! can check ports are released. Time only moves when a test says so; timers
//! fire in order at their exact instants.
#![allow(dead_code, clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::dialplan::{DialPlan, Side};
use callgate::media::MediaCommand;
use callgate::proxy::{LocalSocket, Proxy, ProxyConfig, ProxyStats};
use callgate::sip::message::{HeaderName, Limits, Message, parse_datagram};
use callgate::sip::transport::{Flow, Transport};

/// The B2BUA loopback plan the tests use (same shape as dialplans/loopback.yaml).
pub const PLAN: &str = r#"
version: 1
listeners:
  - { name: client, side: client, udp: "127.0.0.1:5060" }
  - { name: carrier, side: carrier, udp: "127.0.0.1:5080" }
trunks:
  - { name: carrier-a, address: "127.0.0.1:5070" }
  - { name: carrier-b, address: "127.0.0.1:5072" }
  - { name: platform, address: "127.0.0.1:5066" }
routes:
  - name: bypass
    match: { source: client, to: { prefix: "+1999" } }
    mode: b2bua
    media: bypass
    trunks: [carrier-a, carrier-b]
  - name: from-client
    match: { source: client }
    mode: b2bua
    trunks: [carrier-a, carrier-b]
  - name: from-carrier
    match: { source: carrier }
    mode: b2bua
    trunks: [platform]
"#;

pub const UAC: &str = "127.0.0.1:6000";
pub const CARRIER_A: &str = "127.0.0.1:5070";
pub const CARRIER_B: &str = "127.0.0.1:5072";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The gateway under test plus what it has said.
pub struct Gw {
    pub proxy: Proxy,
    pub now: Instant,
    pub start: Instant,
    pub stats: Arc<ProxyStats>,
    pub media: Vec<MediaCommand>,
}

impl Gw {
    pub fn new() -> Gw {
        Gw::with_plan(PLAN)
    }

    pub fn with_plan(yaml: &str) -> Gw {
        Gw::build(yaml, None)
    }

    /// [`Gw::with_plan`] with entropy for SRTP keys (SDES termination on,
    /// as the runtime runs it).
    pub fn with_srtp(yaml: &str) -> Gw {
        Gw::build(yaml, Some([7; 32]))
    }

    fn build(yaml: &str, srtp_entropy: Option<[u8; 32]>) -> Gw {
        let plan = Arc::new(DialPlan::from_yaml_str(yaml, "test.yaml").unwrap());
        let sockets = vec![
            LocalSocket::udp("client", Side::Client, addr("127.0.0.1:5060")),
            LocalSocket::udp("carrier", Side::Carrier, addr("127.0.0.1:5080")),
        ];
        let cfg = ProxyConfig {
            seed: 7,
            srtp_entropy,
            ..ProxyConfig::new(sockets)
        };
        let stats = Arc::new(ProxyStats::default());
        let start = Instant::now();
        Gw {
            proxy: Proxy::new(cfg, plan, stats.clone()),
            now: start,
            start,
            stats,
            media: Vec::new(),
        }
    }

    /// Deliver SIP text (`\n` line ends) from `from` to listener 0 (client
    /// 5060) or 1 (carrier 5080).
    pub fn send(&mut self, listener: usize, from: &str, raw: &str) {
        let flow = Flow {
            listener,
            transport: Transport::Udp,
            remote: addr(from),
            conn: None,
        };
        let text = raw.replace("\r\n", "\n").replace('\n', "\r\n");
        self.proxy
            .handle_datagram(self.now, flow, Bytes::from(text));
        self.collect_media();
    }

    fn collect_media(&mut self) {
        while let Some(c) = self.proxy.poll_media_command() {
            self.media.push(c);
        }
    }

    /// Everything the gateway wants sent, parsed, as (destination, message).
    pub fn take(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        while let Some(t) = self.proxy.poll_transmit() {
            out.push((
                t.flow.remote,
                parse_datagram(t.bytes, &Limits::default()).expect("gateway output parses"),
            ));
        }
        out
    }

    /// The messages sent to `to` (drains everything).
    pub fn take_to(&mut self, to: &str) -> Vec<Message> {
        self.take()
            .into_iter()
            .filter(|(a, _)| *a == addr(to))
            .map(|(_, m)| m)
            .collect()
    }

    /// Advance simulated time by `d`, firing due timers; returns what was sent.
    pub fn advance(&mut self, d: Duration) -> Vec<(Instant, SocketAddr, Message)> {
        let at = self.now + d;
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            match self.proxy.poll_timeout() {
                Some(t) if t <= at => {
                    self.now = self.now.max(t);
                    self.proxy.handle_timeout(self.now);
                    self.collect_media();
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

    /// Open media sessions (Open minus Close) per the recorded commands.
    pub fn open_sessions(&self) -> i64 {
        self.media
            .iter()
            .map(|c| match c {
                MediaCommand::Open { .. } => 1,
                MediaCommand::Close { .. } => -1,
                _ => 0,
            })
            .sum()
    }
}

/// SDP text for a media endpoint at `ip:port` offering `fmts` (`0 8 101`).
pub fn sdp(ip: &str, port: u16, fmts: &str, extra: &str) -> String {
    let mut s = format!(
        "v=0\no=ua 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {port} RTP/AVP {fmts}\n"
    );
    if fmts.split(' ').any(|f| f == "101") {
        s.push_str("a=rtpmap:101 telephone-event/8000\n");
    }
    s.push_str(extra);
    s
}

/// The caller's INVITE to `to_user` (with an SDP body unless `body` is empty).
pub fn invite(call: &str, to_user: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\n".to_string()
    };
    format!(
        "INVITE sip:{to_user}@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{call}-1
From: \"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-{call}
To: <sip:{to_user}@127.0.0.1:5060>
Call-ID: {call}
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:6000>
Max-Forwards: 70
P-Asserted-Identity: <sip:+15550001@example.com>
X-Trace: abc
Secret-Internal: do-not-leak
{ct}Content-Length: {}

{body}",
        body.replace('\n', "\r\n").len()
    )
}

/// A response to `req` with To tag `tag`, a Contact at `contact` and an
/// optional SDP body (as a UAS writes it).
pub fn reply(
    req: &Message,
    code: u16,
    reason: &str,
    tag: &str,
    contact: &str,
    body: &str,
) -> String {
    let mut s = format!("SIP/2.0 {code} {reason}\n");
    for h in &req.headers {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                s.push_str(&String::from_utf8_lossy(h.raw_line()));
                s.push('\n');
            }
            HeaderName::To => {
                let v = String::from_utf8_lossy(h.value()).into_owned();
                if v.contains("tag=") || tag.is_empty() {
                    s.push_str(&format!("To: {v}\n"));
                } else {
                    s.push_str(&format!("To: {v};tag={tag}\n"));
                }
            }
            _ => {}
        }
    }
    if !contact.is_empty() {
        s.push_str(&format!("Contact: <sip:{contact}>\n"));
    }
    if !body.is_empty() {
        s.push_str("Content-Type: application/sdp\n");
    }
    s.push_str(&format!(
        "Content-Length: {}\n\n{body}",
        body.replace('\n', "\r\n").len()
    ));
    s
}

/// An in-dialog request built from a message the peer received: swaps
/// From/To per `as_uac` and uses `cseq`.
#[allow(clippy::too_many_arguments)]
pub fn in_dialog(
    method: &str,
    ruri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    via_host: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\n".to_string()
    };
    format!(
        "{method} {ruri} SIP/2.0
Via: SIP/2.0/UDP {via_host};branch=z9hG4bK-{method}-{cseq}-{call_id}
From: {from}
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
Contact: <sip:{via_host}>
Max-Forwards: 70
{ct}Content-Length: {}

{body}",
        body.replace('\n', "\r\n").len()
    )
}

pub fn hv(m: &Message, name: HeaderName) -> String {
    m.header(name)
        .map(|h| String::from_utf8_lossy(h.value()).into_owned())
        .unwrap_or_default()
}

pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

pub fn method(m: &Message) -> String {
    m.method().map(|x| x.to_string()).unwrap_or_default()
}

pub fn code(m: &Message) -> u16 {
    m.code().unwrap_or(0)
}

/// carrier-a answers `inv_b` 200 with `answer` (tag `carrier-tag`): the 200
/// the gateway then sends the caller (everything else sent is drained).
pub fn trunk_answers(gw: &mut Gw, inv_b: &Message, answer: &str) -> Message {
    gw.send(
        1,
        CARRIER_A,
        &reply(inv_b, 200, "OK", "carrier-tag", "127.0.0.1:5070", answer),
    );
    gw.take()
        .into_iter()
        .find(|(a, m)| *a == addr(UAC) && code(m) == 200)
        .map(|(_, m)| m)
        .expect("200 to the caller")
}

/// A call set up to Confirmed through carrier-a: returns (leg B INVITE as
/// the trunk saw it, 200 to the caller).
pub fn establish(gw: &mut Gw, call: &str) -> (Message, Message) {
    gw.send(
        0,
        UAC,
        &invite(call, "+15551234", &sdp("10.0.0.1", 4000, "0 8 101", "")),
    );
    let to_a = gw.take_to(CARRIER_A);
    assert_eq!(to_a.len(), 1, "one INVITE to carrier-a");
    let inv_b = to_a[0].clone();
    let ok = trunk_answers(gw, &inv_b, &sdp("10.0.0.2", 6000, "0 101", ""));
    let ack_caller = in_dialog(
        "ACK",
        "sip:127.0.0.1:5060",
        &format!("\"Alice\" <sip:alice@127.0.0.1:6000>;tag=alice-{call}"),
        &hv(&ok, HeaderName::To),
        call,
        1,
        "127.0.0.1:6000",
        "",
    );
    gw.send(0, UAC, &ack_caller);
    (inv_b, ok)
}
