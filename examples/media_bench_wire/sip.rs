//! The N calls through callgate's B2BUA over SIP/UDP on loopback: a UAC (the
//! callers) sends INVITE with an Opus-only SDP to the gateway's client
//! listener, the route sends it to a trunk whose `codecs: [PCMU]` makes the
//! B2BUA offer PCMU, and a UAS on the trunk's address (the callees) answers
//! 200 with a PCMU-only SDP, so the gateway must transcode both ways. BYE
//! from the UAC at the end. Everything is retransmitted on silence (RFC 3261
//! §17.1.1.2 / §13.3.1.4, T1 = 500 ms) and bounded by a deadline.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::sip::message::{HeaderName, Limits, Message, Method, parse_datagram};

use crate::Legs;
use crate::sdp::{OPUS_PT, callee_sdp, caller_sdp, sdp_media};

/// Retransmission interval (T1).
const T1: Duration = Duration::from_millis(500);
/// INVITEs outstanding at once during set-up.
const IN_FLIGHT: usize = 20;

#[derive(Default)]
struct Call {
    /// Our RTP ports: caller, callee.
    ports: (u16, u16),
    invite: Vec<u8>,
    sent_at: Option<Instant>,
    /// A provisional or final response arrived (stop retransmitting INVITE).
    heard: bool,
    /// The 2xx's To header (with the gateway's tag) and Contact URI.
    to: String,
    contact: String,
    a_dst: Option<SocketAddr>,
    /// The callee's side: the 200 it sent, where, and whether ACK came.
    b_ok: Option<(Vec<u8>, SocketAddr, Instant)>,
    b_dst: Option<SocketAddr>,
    b_acked: bool,
    bye: Option<(Vec<u8>, Instant)>,
    bye_done: bool,
    failed: Option<String>,
}

/// The callers' and callees' SIP endpoints.
pub struct Agent {
    uac: UdpSocket,
    uas: UdpSocket,
    gw: SocketAddr,
    calls: Vec<Call>,
    by_call_id: HashMap<Vec<u8>, usize>,
    /// Leg B's Call-IDs (the B2BUA makes its own) to call index.
    by_b_call_id: HashMap<Vec<u8>, usize>,
    tag: u32,
}

fn call_id(i: usize) -> String {
    format!("mbw-{i}-{}", std::process::id())
}

fn text(m: &Message, name: HeaderName) -> String {
    m.header(name)
        .map(|h| String::from_utf8_lossy(h.value()).into_owned())
        .unwrap_or_default()
}

/// The URI inside `<...>` of a name-addr, or the whole value.
fn uri_of(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}

impl Agent {
    /// A UAC on an ephemeral port and the UAS on `trunk` (the plan's trunk
    /// address), talking to the gateway's client listener `gw`.
    pub fn new(gw: SocketAddr, trunk: SocketAddr) -> std::io::Result<Agent> {
        let uac = UdpSocket::bind("127.0.0.1:0")?;
        let uas = UdpSocket::bind(trunk)?;
        uac.set_nonblocking(true)?;
        uas.set_nonblocking(true)?;
        Ok(Agent {
            uac,
            uas,
            gw,
            calls: Vec::new(),
            by_call_id: HashMap::new(),
            by_b_call_id: HashMap::new(),
            tag: std::process::id(),
        })
    }

    fn uac_addr(&self) -> SocketAddr {
        // A bound socket has a local address.
        self.uac.local_addr().expect("bound")
    }

    fn uas_addr(&self) -> SocketAddr {
        // A bound socket has a local address.
        self.uas.local_addr().expect("bound")
    }

    /// Set up one call per `(caller port, callee port)` within `limit`.
    pub fn setup(&mut self, ports: &[(u16, u16)], limit: Duration) -> Result<Vec<Legs>, String> {
        for (i, &p) in ports.iter().enumerate() {
            self.by_call_id.insert(call_id(i).into_bytes(), i);
            self.calls.push(Call {
                ports: p,
                ..Call::default()
            });
        }
        let deadline = Instant::now() + limit;
        let mut next = 0;
        loop {
            let now = Instant::now();
            let up = self.calls.iter().filter(|c| self.is_up(c)).count();
            if let Some((i, c)) = self
                .calls
                .iter()
                .enumerate()
                .find(|(_, c)| c.failed.is_some())
            {
                return Err(format!("call {i}: {}", c.failed.as_deref().unwrap_or("")));
            }
            if up == self.calls.len() {
                break;
            }
            if now > deadline {
                let count = |f: fn(&Call) -> bool| self.calls.iter().filter(|c| f(c)).count();
                return Err(format!(
                    "{up} of {} calls set up within {limit:?} (INVITE sent {next}, answered {}, \
                     200 to the caller {}, INVITE at the trunk {}, ACK at the trunk {})",
                    self.calls.len(),
                    count(|c| c.heard),
                    count(|c| c.a_dst.is_some()),
                    count(|c| c.b_dst.is_some()),
                    count(|c| c.b_acked),
                ));
            }
            let mut in_flight = self.calls[..next].iter().filter(|c| !self.is_up(c)).count();
            while next < self.calls.len() && in_flight < IN_FLIGHT {
                self.send_invite(next, now);
                next += 1;
                in_flight += 1;
            }
            self.retransmit(now);
            if !self.poll() {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        Ok(self
            .calls
            .iter()
            .map(|c| Legs {
                // is_up checked both.
                a_dst: c.a_dst.expect("a_dst"),
                b_dst: c.b_dst.expect("b_dst"),
            })
            .collect())
    }

    fn is_up(&self, c: &Call) -> bool {
        c.a_dst.is_some() && c.b_acked
    }

    fn send_invite(&mut self, i: usize, now: Instant) {
        let uac = self.uac_addr();
        let gw = self.gw;
        let body = caller_sdp(i, self.calls[i].ports.0);
        let msg = format!(
            "INVITE sip:bench{i}@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {uac};branch=z9hG4bK-mbw-{i}-{tag}-1\r\n\
             From: <sip:caller{i}@{uac}>;tag=c{i}-{tag}\r\n\
             To: <sip:bench{i}@{gw}>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:caller{i}@{uac}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            tag = self.tag,
            cid = call_id(i),
            len = body.len()
        );
        let _ = self.uac.send_to(msg.as_bytes(), gw);
        let c = &mut self.calls[i];
        c.invite = msg.into_bytes();
        c.sent_at = Some(now);
    }

    fn retransmit(&mut self, now: Instant) {
        for c in &mut self.calls {
            if let Some(at) = c.sent_at
                && !c.heard
                && now - at > T1
            {
                let _ = self.uac.send_to(&c.invite, self.gw);
                c.sent_at = Some(now);
            }
            if let Some((msg, to, at)) = &mut c.b_ok
                && !c.b_acked
                && now - *at > T1
            {
                let _ = self.uas.send_to(msg, *to);
                *at = now;
            }
            if let Some((msg, at)) = &mut c.bye
                && !c.bye_done
                && now - *at > T1
            {
                let _ = self.uac.send_to(msg, self.gw);
                *at = now;
            }
        }
    }

    /// Read everything waiting on both sockets; true if anything came.
    fn poll(&mut self) -> bool {
        let mut any = false;
        let mut buf = vec![0u8; 65536];
        for uas in [false, true] {
            for _ in 0..1000 {
                let sock = if uas { &self.uas } else { &self.uac };
                let (n, from) = match sock.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                };
                any = true;
                let Ok(m) = parse_datagram(Bytes::copy_from_slice(&buf[..n]), &Limits::default())
                else {
                    continue;
                };
                if uas {
                    self.on_uas(m, from);
                } else {
                    self.on_uac(m, from);
                }
            }
        }
        any
    }

    /// A response to the callers, or a request to them (answered 200).
    fn on_uac(&mut self, m: Message, from: SocketAddr) {
        if m.is_request() {
            if m.method() != Some(&Method::Ack) {
                let _ = self.uac.send_to(&self.ok_to(&m, "", ""), from);
            }
            return;
        }
        let Some(&i) = self.by_call_id.get(m.call_id()) else {
            return;
        };
        let code = m.code().unwrap_or(0);
        let Some(cseq) = m.cseq() else { return };
        let (gw, uac, tag) = (self.gw, self.uac_addr(), self.tag);
        let c = &mut self.calls[i];
        if cseq.method == Method::Bye {
            if code >= 200 {
                c.bye_done = true;
            }
            return;
        }
        c.heard = true;
        if code < 200 {
            return;
        }
        let to = text(&m, HeaderName::To);
        if code >= 300 {
            // RFC 3261 §17.1.1.3: the ACK of a failure reuses the INVITE's branch.
            let ack = format!(
                "ACK sip:bench{i}@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK-mbw-{i}-{tag}-1\r\n\
                 From: <sip:caller{i}@{uac}>;tag=c{i}-{tag}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
                 CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                cid = call_id(i),
            );
            let _ = self.uac.send_to(ack.as_bytes(), gw);
            c.failed = Some(format!("the gateway answered {code}"));
            return;
        }
        c.to = to;
        c.contact = uri_of(&text(&m, HeaderName::Contact));
        let body = String::from_utf8_lossy(&m.body);
        match sdp_media(&body) {
            Some((dst, fmts)) if fmts.split(' ').any(|f| f == OPUS_PT.to_string()) => {
                c.a_dst = Some(dst)
            }
            Some((_, fmts)) => {
                c.failed = Some(format!("answer to the caller without Opus: m=audio {fmts}"))
            }
            None => c.failed = Some("200 without SDP".into()),
        }
        // Every 2xx (retransmissions too) is ACKed (RFC 3261 §13.2.2.4).
        let ack = self.in_dialog(i, "ACK", 1);
        let _ = self.uac.send_to(ack.as_bytes(), self.gw);
    }

    /// An in-dialog request from caller `i` (no route set: a B2BUA answers
    /// as a UA, without Record-Route).
    fn in_dialog(&self, i: usize, method: &str, cseq: u32) -> String {
        let c = &self.calls[i];
        let uac = self.uac_addr();
        format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK-mbw-{i}-{tag}-{method}{cseq}\r\n\
             From: <sip:caller{i}@{uac}>;tag=c{i}-{tag}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            ruri = c.contact,
            tag = self.tag,
            to = c.to,
            cid = call_id(i),
        )
    }

    /// A request to the callees: INVITE answered 200 with PCMU, ACK noted,
    /// anything else answered 200.
    fn on_uas(&mut self, m: Message, from: SocketAddr) {
        if !m.is_request() {
            return;
        }
        let method = m.method().cloned();
        // The B2BUA keeps the INVITE's Request-URI user, `bench{i}`; later
        // requests go to our Contact, known by their Call-ID.
        let i = self.by_b_call_id.get(m.call_id()).copied().or_else(|| {
            let user = m.uri().map(|u| u.to_string()).unwrap_or_default();
            user.split_once("bench")
                .and_then(|(_, r)| r.split(|ch: char| !ch.is_ascii_digit()).next())
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|&i| i < self.calls.len() && method == Some(Method::Invite))
        });
        match (method, i) {
            (Some(Method::Invite), Some(i)) => {
                if let Some((msg, to, _)) = &self.calls[i].b_ok {
                    let _ = self.uas.send_to(msg, *to);
                    return;
                }
                self.by_b_call_id.insert(m.call_id().to_vec(), i);
                let body = String::from_utf8_lossy(&m.body);
                let dst = sdp_media(&body);
                let c = &mut self.calls[i];
                match dst {
                    Some((d, fmts)) if fmts.split(' ').any(|f| f == "0") => c.b_dst = Some(d),
                    Some((_, fmts)) => {
                        c.failed = Some(format!("offer to the trunk without PCMU: m=audio {fmts}"));
                        return;
                    }
                    None => {
                        c.failed = Some("INVITE to the trunk without SDP".into());
                        return;
                    }
                }
                let sdp = callee_sdp(i, c.ports.1);
                let ok = self.ok_to(&m, &format!("b{i}-{}", self.tag), &sdp);
                let _ = self.uas.send_to(&ok, from);
                self.calls[i].b_ok = Some((ok, from, Instant::now()));
            }
            (Some(Method::Ack), Some(i)) => self.calls[i].b_acked = true,
            (Some(Method::Ack), None) => {}
            _ => {
                let _ = self.uas.send_to(&self.ok_to(&m, "", ""), from);
            }
        }
    }

    /// `200 OK` to `req` (RFC 3261 §8.2.6.2), with To tag `tag` if it has
    /// none, our Contact and `sdp` as body when not empty.
    fn ok_to(&self, req: &Message, tag: &str, sdp: &str) -> Vec<u8> {
        let mut s = String::from("SIP/2.0 200 OK\r\n");
        for h in &req.headers {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    s.push_str(&String::from_utf8_lossy(h.raw_line()));
                    s.push_str("\r\n");
                }
                HeaderName::To => {
                    let v = String::from_utf8_lossy(h.value());
                    if v.contains("tag=") || tag.is_empty() {
                        s.push_str(&format!("To: {v}\r\n"));
                    } else {
                        s.push_str(&format!("To: {v};tag={tag}\r\n"));
                    }
                }
                _ => {}
            }
        }
        s.push_str(&format!("Contact: <sip:callee@{}>\r\n", self.uas_addr()));
        if !sdp.is_empty() {
            s.push_str("Content-Type: application/sdp\r\n");
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
        s.into_bytes()
    }

    /// BYE every call from the caller side; the number not confirmed by a
    /// final response within `limit`.
    pub fn teardown(&mut self, limit: Duration) -> usize {
        let now = Instant::now();
        for i in 0..self.calls.len() {
            if self.calls[i].a_dst.is_none() {
                self.calls[i].bye_done = true;
                continue;
            }
            let bye = self.in_dialog(i, "BYE", 2).into_bytes();
            let _ = self.uac.send_to(&bye, self.gw);
            self.calls[i].bye = Some((bye, now));
            if i % 50 == 49 {
                // Let the gateway keep up (bounded pause, not a wait).
                self.poll();
            }
        }
        let deadline = now + limit;
        while Instant::now() < deadline && self.calls.iter().any(|c| !c.bye_done) {
            self.retransmit(Instant::now());
            if !self.poll() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.calls.iter().filter(|c| !c.bye_done).count()
    }
}
