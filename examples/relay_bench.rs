//! RTP relay benchmark client (run by `bench/relay.sh`, `make bench-relay`).
//!
//! Sets up N calls through a media relay, then sends 20 ms RTP (PCMU, 172-byte
//! packets) both ways on every call from UDP sockets on 127.0.0.1 at `--pps`
//! packets per second per direction, counts what comes back through the relay,
//! and reads the relay process's CPU time (utime+stime from /proc/PID/stat)
//! over a measurement window after a warm-up. Prints one machine-readable
//! `relay_bench:` line.
//!
//! * `callgate`: acts as caller and callee over SIP. INVITEs (PCMU offer,
//!   R-URI user `bench-<i>`) go to callgate's client listener (`--sip`) from
//!   `--uac`; callgate's INVITE for leg B arrives on `--uas` (the dial plan's
//!   trunk address), answered 200 with the callee's SDP; ACK, then media to
//!   the relay ports each leg was given; BYE at the end.
//! * `rtpengine`: the same calls set up through rtpengine's ng control
//!   protocol (bencode over UDP, `--ng`): `offer` with the caller's SDP,
//!   `answer` with the callee's, `delete` at the end.
//!
//! Caller i sends from and receives on `--rtp-base + 4i`, callee i on
//! `--rtp-base + 4i + 2` (even ports; the odd ones stay free for RTCP).
//!
//! `cargo run --release --example relay_bench -- callgate --calls 100 --pid $(pgrep -n callgate)`
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

#[path = "support/ng_client.rs"]
#[allow(dead_code)] // shared with media_bench_wire, which uses all of it
mod ng_client;
use ng_client::{Ben, Ng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Relay {
    Callgate,
    Rtpengine,
}

impl Relay {
    fn name(self) -> &'static str {
        match self {
            Relay::Callgate => "callgate",
            Relay::Rtpengine => "rtpengine",
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "RTP relay benchmark client: callgate (SIP) or rtpengine (ng)")]
struct Args {
    /// The relay under test.
    relay: Relay,
    /// Concurrent calls (two RTP streams each, one per direction).
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Packets per second per direction per call (50 = 20 ms packets).
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// Seconds of media before the measurement window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Length of the measurement window, seconds.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// PID of the relay process whose CPU time is measured.
    #[arg(long)]
    pid: Option<u32>,
    /// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// First local RTP port of the benchmark's own endpoints.
    #[arg(long, default_value_t = 27000)]
    rtp_base: u16,
    /// callgate: its client-side SIP listener.
    #[arg(long, default_value = "127.0.0.1:35060")]
    sip: SocketAddr,
    /// callgate: the caller's SIP address.
    #[arg(long, default_value = "127.0.0.1:35100")]
    uac: SocketAddr,
    /// callgate: the callee's SIP address (the dial plan's trunk).
    #[arg(long, default_value = "127.0.0.1:35070")]
    uas: SocketAddr,
    /// callgate: admin address, to read callgate_rtp_packets_relayed_total.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// rtpengine: its ng control address.
    #[arg(long, default_value = "127.0.0.1:39223")]
    ng: SocketAddr,
}

/// One call's media: where each end sends (the relay's ports for it).
#[derive(Debug, Clone, Copy, Default)]
struct Legs {
    /// Relay address the caller sends to (from the answer it got).
    a_dst: Option<SocketAddr>,
    /// Relay address the callee sends to (from the offer it got).
    b_dst: Option<SocketAddr>,
}

fn caller_port(base: u16, i: usize) -> u16 {
    base + (4 * i) as u16
}

fn callee_port(base: u16, i: usize) -> u16 {
    base + (4 * i + 2) as u16
}

fn sdp(id: usize, port: u16) -> String {
    format!(
        "v=0\r\no=bench {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The media address of an SDP body: `c=` address and `m=audio` port.
fn sdp_media(body: &str) -> Option<SocketAddr> {
    let mut ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            // the session-level c= unless a media-level one follows
            ip = c.trim().parse().ok().or(ip);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split_whitespace().next().and_then(|p| p.parse().ok());
        }
    }
    Some(SocketAddr::new(ip?, port?))
}

// ------------------------------------------------------------------ SIP ---

/// A parsed SIP message: start line, header lines, body.
struct Msg<'a> {
    start: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a str,
}

impl<'a> Msg<'a> {
    fn parse(text: &'a str) -> Option<Msg<'a>> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
            .collect();
        Some(Msg {
            start,
            headers,
            body,
        })
    }

    fn all(&self, name: &'static str, compact: &'static str) -> impl Iterator<Item = &'a str> + '_ {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
            .map(|(_, v)| *v)
    }

    fn get(&self, name: &'static str, compact: &'static str) -> &'a str {
        self.all(name, compact).next().unwrap_or("")
    }

    fn is_request(&self) -> bool {
        !self.start.starts_with("SIP/2.0 ")
    }

    fn status(&self) -> u16 {
        self.start
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    fn method(&self) -> &'a str {
        self.start.split_whitespace().next().unwrap_or("")
    }

    fn cseq_method(&self) -> &'a str {
        self.get("CSeq", "CSeq")
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
    }

    /// A response to this request: Via, From, To (with `to_tag` if it has
    /// none), Call-ID, CSeq and Record-Route copied.
    fn response(&self, status: &str, to_tag: &str, extra: &str, body: &str) -> String {
        let mut s = format!("SIP/2.0 {status}\r\n");
        for (n, v) in &self.headers {
            let copy = [
                "via",
                "v",
                "from",
                "f",
                "call-id",
                "i",
                "cseq",
                "record-route",
            ]
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h));
            if copy {
                s.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        let to = self.get("To", "t");
        if to.contains(";tag=") {
            s.push_str(&format!("To: {to}\r\n"));
        } else {
            s.push_str(&format!("To: {to};tag={to_tag}\r\n"));
        }
        s.push_str(extra);
        s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s
    }
}

fn tag_of(header: &str) -> Option<&str> {
    let t = header.split(";tag=").nth(1)?;
    Some(t.split(';').next().unwrap_or(t).trim())
}

/// The URI of a Contact header value (`<uri>` or a bare URI).
fn contact_uri(v: &str) -> &str {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v).trim(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Idle,
    Inviting,
    Up,
    Byeing,
    Done,
    Failed,
}

struct SipCall {
    state: CallState,
    sent: Instant,
    tries: u32,
    to_tag: String,
    contact: String,
    legs: Legs,
    /// The BYE sent (resent as is on silence).
    bye: String,
}

/// Caller and callee over SIP through callgate.
struct SipSide {
    uac: UdpSocket,
    uas: UdpSocket,
    sip: SocketAddr,
    uac_addr: SocketAddr,
    uas_addr: SocketAddr,
    rtp_base: u16,
    run: u32,
    calls: Vec<SipCall>,
    /// The callee's 200 for each leg-B Call-ID (resent on retransmissions).
    answers: HashMap<String, String>,
    branch: u64,
}

impl SipSide {
    fn new(args: &Args) -> std::io::Result<SipSide> {
        let uac = UdpSocket::bind(args.uac)?;
        let uas = UdpSocket::bind(args.uas)?;
        for sock in [&uac, &uas] {
            sock.set_nonblocking(true)?;
            // room for a burst of answers while set-up and teardown send
            let _ = socket2::SockRef::from(sock).set_recv_buffer_size(4 << 20);
        }
        let now = Instant::now();
        let calls = (0..args.calls)
            .map(|_| SipCall {
                state: CallState::Idle,
                sent: now,
                tries: 0,
                to_tag: String::new(),
                contact: String::new(),
                legs: Legs::default(),
                bye: String::new(),
            })
            .collect();
        Ok(SipSide {
            uac,
            uas,
            sip: args.sip,
            uac_addr: args.uac,
            uas_addr: args.uas,
            rtp_base: args.rtp_base,
            run: std::process::id(),
            calls,
            answers: HashMap::new(),
            branch: 0,
        })
    }

    fn call_id(&self, i: usize) -> String {
        format!("bench-{i}-{}@127.0.0.1", self.run)
    }

    fn index_of_call_id(&self, call_id: &str) -> Option<usize> {
        let rest = call_id.strip_prefix("bench-")?;
        let i: usize = rest.split('-').next()?.parse().ok()?;
        (i < self.calls.len() && call_id == self.call_id(i)).then_some(i)
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bK-bench-{}-{}", self.run, self.branch)
    }

    fn send_uac(&self, msg: &str) {
        let _ = self.uac.send_to(msg.as_bytes(), self.sip);
    }

    fn caller_from(&self, i: usize) -> String {
        format!("<sip:caller@{}>;tag=a{i}", self.uac_addr)
    }

    fn send_invite(&mut self, i: usize) {
        let body = sdp(i, caller_port(self.rtp_base, i));
        let branch = self.next_branch();
        let msg = format!(
            "INVITE sip:bench-{i}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: <sip:bench-{i}@{sip}>\r\nCall-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:caller@{uac}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            sip = self.sip,
            uac = self.uac_addr,
            from = self.caller_from(i),
            cid = self.call_id(i),
            len = body.len(),
        );
        self.send_uac(&msg);
        let c = &mut self.calls[i];
        c.state = CallState::Inviting;
        c.sent = Instant::now();
        c.tries += 1;
    }

    /// ACK (2xx: new branch, to the Contact) or BYE in the dialog of call i.
    fn in_dialog(&mut self, i: usize, method: &str, cseq: u32) -> String {
        let branch = self.next_branch();
        let c = &self.calls[i];
        let ruri = if c.contact.is_empty() {
            format!("sip:bench-{i}@{}", self.sip)
        } else {
            c.contact.clone()
        };
        let msg = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: <sip:bench-{i}@{sip}>;tag={tag}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            uac = self.uac_addr,
            from = self.caller_from(i),
            sip = self.sip,
            tag = c.to_tag,
            cid = self.call_id(i),
        );
        self.send_uac(&msg);
        msg
    }

    fn on_uac(&mut self, text: &str, from: SocketAddr) {
        let Some(m) = Msg::parse(text) else { return };
        if m.is_request() {
            // BYE / OPTIONS from callgate: accept (ACK needs no answer)
            if m.method() != "ACK" {
                let _ = self
                    .uac
                    .send_to(m.response("200 OK", "x", "", "").as_bytes(), from);
            }
            if m.method() == "BYE"
                && let Some(i) = self.index_of_call_id(m.get("Call-ID", "i"))
            {
                self.calls[i].state = CallState::Done;
            }
            return;
        }
        let Some(i) = self.index_of_call_id(m.get("Call-ID", "i")) else {
            return;
        };
        let status = m.status();
        match (m.cseq_method(), status) {
            ("INVITE", 100..=199) => {}
            ("INVITE", 200..=299) => {
                let c = &mut self.calls[i];
                c.to_tag = tag_of(m.get("To", "t")).unwrap_or("").to_string();
                c.contact = contact_uri(m.get("Contact", "m")).to_string();
                c.legs.a_dst = sdp_media(m.body);
                if c.state == CallState::Inviting {
                    c.state = if c.legs.a_dst.is_some() {
                        CallState::Up
                    } else {
                        CallState::Failed
                    };
                }
                self.in_dialog(i, "ACK", 1);
            }
            ("INVITE", _) => {
                // non-2xx final: ACK it (same branch; the proxy core absorbs it)
                let via = m.get("Via", "v");
                let branch = via.split("branch=").nth(1).unwrap_or("").split(';').next();
                let msg = format!(
                    "ACK sip:bench-{i}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch={b};rport\r\n\
                     Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
                     CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                    sip = self.sip,
                    uac = self.uac_addr,
                    b = branch.unwrap_or(""),
                    from = self.caller_from(i),
                    to = m.get("To", "t"),
                    cid = self.call_id(i),
                );
                self.send_uac(&msg);
                eprintln!("relay_bench: call {i} refused: {}", m.start);
                self.calls[i].state = CallState::Failed;
            }
            ("BYE", 200..=699) => self.calls[i].state = CallState::Done,
            _ => {}
        }
    }

    fn on_uas(&mut self, text: &str, from: SocketAddr) {
        let Some(m) = Msg::parse(text) else { return };
        if !m.is_request() {
            return;
        }
        let call_id = m.get("Call-ID", "i").to_string();
        match m.method() {
            "ACK" => {}
            "INVITE" => {
                if let Some(ans) = self.answers.get(&call_id) {
                    let _ = self.uas.send_to(ans.as_bytes(), from);
                    return;
                }
                // R-URI sip:bench-<i>@...
                let i = m
                    .start
                    .split_whitespace()
                    .nth(1)
                    .and_then(|u| u.strip_prefix("sip:bench-"))
                    .and_then(|u| u.split('@').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&i| i < self.calls.len());
                let Some(i) = i else {
                    let r = m.response("404 Not Found", "x", "", "");
                    let _ = self.uas.send_to(r.as_bytes(), from);
                    return;
                };
                self.calls[i].legs.b_dst = sdp_media(m.body);
                let body = sdp(i, callee_port(self.rtp_base, i));
                let extra = format!(
                    "Contact: <sip:callee@{}>\r\nContent-Type: application/sdp\r\n",
                    self.uas_addr
                );
                let ans = m.response("200 OK", &format!("b{i}"), &extra, &body);
                let _ = self.uas.send_to(ans.as_bytes(), from);
                self.answers.insert(call_id, ans);
            }
            _ => {
                let r = m.response("200 OK", "x", "", "");
                let _ = self.uas.send_to(r.as_bytes(), from);
            }
        }
    }

    /// Read both SIP sockets until nothing is waiting.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            let mut got = false;
            if let Ok((n, from)) = self.uac.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.on_uac(&text, from);
                got = true;
            }
            if let Ok((n, from)) = self.uas.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.on_uas(&text, from);
                got = true;
            }
            if !got {
                return any;
            }
            any = true;
        }
    }

    /// INVITE every call, at most `window` set-ups in flight. Returns the
    /// media addresses of each call (None: the call failed).
    fn setup(&mut self, window: usize, limit: Duration) -> Vec<Option<Legs>> {
        let deadline = Instant::now() + limit;
        let n = self.calls.len();
        let mut next = 0;
        while Instant::now() < deadline {
            let inviting = self
                .calls
                .iter()
                .filter(|c| c.state == CallState::Inviting)
                .count();
            let mut room = window.saturating_sub(inviting);
            while room > 0 && next < n {
                self.send_invite(next);
                next += 1;
                room -= 1;
            }
            let now = Instant::now();
            for i in 0..n {
                let c = &self.calls[i];
                if c.state == CallState::Inviting && now - c.sent > Duration::from_millis(500) {
                    if c.tries >= 6 {
                        self.calls[i].state = CallState::Failed;
                    } else {
                        self.send_invite(i);
                    }
                }
            }
            // done when every call is up (and its callee knows where to send)
            // or has failed
            let settled = next == n
                && self.calls.iter().all(|c| {
                    c.state == CallState::Failed
                        || (c.state == CallState::Up && c.legs.b_dst.is_some())
                });
            if settled {
                break;
            }
            if !self.pump() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        self.calls
            .iter()
            .map(|c| {
                (c.state == CallState::Up && c.legs.b_dst.is_some() && c.legs.a_dst.is_some())
                    .then_some(c.legs)
            })
            .collect()
    }

    /// BYE every call that is up; wait for the answers.
    /// BYE every call that is up, at most `window` in flight, retransmitted
    /// (same transaction) every 500 ms; returns the calls left unanswered.
    fn teardown(&mut self, window: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let n = self.calls.len();
        let mut next = 0;
        while Instant::now() < deadline {
            let mut room = window.saturating_sub(
                self.calls
                    .iter()
                    .filter(|c| c.state == CallState::Byeing)
                    .count(),
            );
            while room > 0 && next < n {
                if self.calls[next].state == CallState::Up {
                    self.calls[next].bye = self.in_dialog(next, "BYE", 2);
                    self.calls[next].state = CallState::Byeing;
                    self.calls[next].sent = Instant::now();
                    self.calls[next].tries = 1;
                    room -= 1;
                }
                next += 1;
            }
            let now = Instant::now();
            for i in 0..n {
                let c = &self.calls[i];
                if c.state == CallState::Byeing && now - c.sent > Duration::from_millis(500) {
                    if c.tries >= 6 {
                        self.calls[i].state = CallState::Failed;
                    } else {
                        self.send_uac(&c.bye.clone());
                        self.calls[i].sent = now;
                        self.calls[i].tries += 1;
                    }
                }
            }
            if next == n && !self.calls.iter().any(|c| c.state == CallState::Byeing) {
                break;
            }
            if !self.pump() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        self.calls
            .iter()
            .filter(|c| {
                c.state == CallState::Byeing || (c.state == CallState::Failed && !c.bye.is_empty())
            })
            .count()
    }
}

// -------------------------------------------------------- rtpengine ng ---

/// The bench's calls set up through rtpengine (`offer`/`answer`).
fn ng_setup(ng: &mut Ng, calls: usize, rtp_base: u16) -> Result<Vec<Option<Legs>>, String> {
    ng.call(vec![("command", Ben::s("ping"))])?;
    let mut out = Vec::with_capacity(calls);
    for i in 0..calls {
        let cid = format!("relay-bench-{i}-{}", std::process::id());
        let offer = ng.call(vec![
            ("command", Ben::s("offer")),
            ("call-id", Ben::s(&cid)),
            ("from-tag", Ben::s(&format!("a{i}"))),
            ("sdp", Ben::s(&sdp(i, caller_port(rtp_base, i)))),
            (
                "replace",
                Ben::List(vec![Ben::s("origin"), Ben::s("session-connection")]),
            ),
        ])?;
        let b_dst = offer
            .get("sdp")
            .and_then(Ben::str)
            .and_then(|s| sdp_media(&s));
        let answer = ng.call(vec![
            ("command", Ben::s("answer")),
            ("call-id", Ben::s(&cid)),
            ("from-tag", Ben::s(&format!("a{i}"))),
            ("to-tag", Ben::s(&format!("b{i}"))),
            ("sdp", Ben::s(&sdp(i, callee_port(rtp_base, i)))),
            (
                "replace",
                Ben::List(vec![Ben::s("origin"), Ben::s("session-connection")]),
            ),
        ])?;
        let a_dst = answer
            .get("sdp")
            .and_then(Ben::str)
            .and_then(|s| sdp_media(&s));
        out.push(match (a_dst, b_dst) {
            (Some(a), Some(b)) => Some(Legs {
                a_dst: Some(a),
                b_dst: Some(b),
            }),
            _ => None,
        });
    }
    Ok(out)
}

/// The bench's calls deleted; how many deletes failed.
fn ng_teardown(ng: &mut Ng, calls: usize) -> usize {
    let mut failed = 0;
    for i in 0..calls {
        let cid = format!("relay-bench-{i}-{}", std::process::id());
        let r = ng.call(vec![
            ("command", Ben::s("delete")),
            ("call-id", Ben::s(&cid)),
            ("from-tag", Ben::s(&format!("a{i}"))),
        ]);
        if r.is_err() {
            failed += 1;
        }
    }
    failed
}

// ---------------------------------------------------------------- media ---

/// Counters shared by the sender and the receivers.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    send_errors: AtomicU64,
    /// Received on callee sockets (caller → callee through the relay).
    recv_a2b: AtomicU64,
    /// Received on caller sockets.
    recv_b2a: AtomicU64,
    stop: AtomicBool,
}

impl Counters {
    fn received(&self) -> u64 {
        self.recv_a2b.load(Ordering::Relaxed) + self.recv_b2a.load(Ordering::Relaxed)
    }
}

/// Sends `pps` packets/s from every socket to its destination, spread evenly
/// over each packet interval (1 ms slots), until `stop`.
fn sender(socks: Vec<(UdpSocket, SocketAddr)>, pps: u32, c: Arc<Counters>) {
    const SLOT: Duration = Duration::from_millis(1);
    let slots = (1000 / pps.max(1)).max(1) as usize;
    let mut seq: Vec<u16> = vec![0; socks.len()];
    let mut pkt = [0xffu8; 172];
    pkt[0] = 0x80;
    pkt[1] = 0; // PCMU
    let start = Instant::now();
    let mut tick: u64 = 0;
    while !c.stop.load(Ordering::Relaxed) {
        let due = start + SLOT * tick as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let slot = (tick % slots as u64) as usize;
        let (mut sent, mut errs) = (0, 0);
        for k in (slot..socks.len()).step_by(slots) {
            let (sock, to) = &socks[k];
            seq[k] = seq[k].wrapping_add(1);
            let ts = u32::from(seq[k]).wrapping_mul(160);
            pkt[2..4].copy_from_slice(&seq[k].to_be_bytes());
            pkt[4..8].copy_from_slice(&ts.to_be_bytes());
            pkt[8..12].copy_from_slice(&(k as u32 + 1).to_be_bytes());
            match sock.send_to(&pkt, to) {
                Ok(_) => sent += 1,
                Err(_) => errs += 1,
            }
        }
        c.sent.fetch_add(sent, Ordering::Relaxed);
        c.send_errors.fetch_add(errs, Ordering::Relaxed);
        tick += 1;
    }
}

/// One tokio task per socket counting what arrives, until `stop`.
fn receivers(socks: Vec<(UdpSocket, bool)>, c: Arc<Counters>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for (sock, is_callee) in socks {
                let sock = tokio::net::UdpSocket::from_std(sock).expect("tokio socket");
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    while let Ok(n) = sock.recv(&mut buf).await {
                        if n >= 12 {
                            let ctr = if is_callee { &c.recv_a2b } else { &c.recv_b2a };
                            ctr.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            while !c.stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for t in tasks {
                t.abort();
            }
        });
    })
}

/// (utime, stime) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

/// A counter from callgate's /metrics.
fn metric(admin: SocketAddr, name: &str) -> Option<u64> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn main() {
    let args = Args::parse();
    let n = args.calls;
    let name = args.relay.name();
    if n == 0 || caller_port(args.rtp_base, n - 1) as usize + 2 > u16::MAX as usize {
        eprintln!("relay_bench: --calls {n} does not fit above --rtp-base");
        std::process::exit(2);
    }

    // the endpoints' RTP sockets first: the SDP advertises them
    let mut a_socks = Vec::with_capacity(n);
    let mut b_socks = Vec::with_capacity(n);
    for i in 0..n {
        for (port, v) in [
            (caller_port(args.rtp_base, i), &mut a_socks),
            (callee_port(args.rtp_base, i), &mut b_socks),
        ] {
            match UdpSocket::bind(("127.0.0.1", port)) {
                Ok(s) => v.push(s),
                Err(e) => {
                    eprintln!("relay_bench: cannot bind 127.0.0.1:{port}: {e}");
                    std::process::exit(1);
                }
            }
        }
    }

    // call set-up
    let t_setup = Instant::now();
    let mut sip = None;
    let mut ng = None;
    let legs: Vec<Option<Legs>> = match args.relay {
        Relay::Callgate => {
            let mut s = SipSide::new(&args).unwrap_or_else(|e| {
                eprintln!("relay_bench: cannot bind the SIP sockets: {e}");
                std::process::exit(1);
            });
            let l = s.setup(32, Duration::from_secs(30));
            sip = Some(s);
            l
        }
        Relay::Rtpengine => {
            let mut g = Ng::new(args.ng).expect("ng socket");
            match ng_setup(&mut g, n, args.rtp_base) {
                Ok(l) => {
                    ng = Some(g);
                    l
                }
                Err(e) => {
                    eprintln!("relay_bench: rtpengine set-up failed: {e}");
                    std::process::exit(1);
                }
            }
        }
    };
    let up = legs.iter().filter(|l| l.is_some()).count();
    let setup_s = t_setup.elapsed().as_secs_f64();
    eprintln!("relay_bench: {name}: {up}/{n} calls set up in {setup_s:.2} s");
    if up == 0 {
        std::process::exit(1);
    }

    // media
    let c = Arc::new(Counters::default());
    let mut tx = Vec::new();
    let mut rx = Vec::new();
    for (i, (a, b)) in a_socks.into_iter().zip(b_socks).enumerate() {
        let Some(l) = legs[i] else { continue };
        for (sock, dst, is_callee) in [(a, l.a_dst, false), (b, l.b_dst, true)] {
            let dst = dst.expect("set-up gave both");
            sock.set_nonblocking(true).expect("nonblocking");
            tx.push((sock.try_clone().expect("clone"), dst));
            rx.push((sock, is_callee));
        }
    }
    let streams = tx.len();
    let rx_thread = receivers(rx, c.clone());
    let tx_thread = {
        let c = c.clone();
        let pps = args.pps;
        std::thread::spawn(move || sender(tx, pps, c))
    };

    std::thread::sleep(Duration::from_secs_f64(args.warmup));
    let snap = |c: &Counters| {
        (
            Instant::now(),
            args.pid.and_then(cpu_ticks),
            c.sent.load(Ordering::Relaxed),
            c.received(),
            args.admin
                .and_then(|a| metric(a, "callgate_rtp_packets_relayed_total")),
        )
    };
    let (t0, cpu0, sent0, recv0, m0) = snap(&c);
    std::thread::sleep(Duration::from_secs_f64(args.secs));
    let (t1, cpu1, sent1, recv1, m1) = snap(&c);
    c.stop.store(true, Ordering::Relaxed);
    let _ = tx_thread.join();
    // Stragglers: packets still in the relay or not yet counted by the
    // receiver thread (on a loaded machine it can lag by more than 300 ms,
    // which showed as `lost` though no socket dropped anything): wait until
    // the count stands still for 300 ms, 3 s at most.
    let mut last = c.received();
    let (mut still, t_end) = (0, Instant::now());
    while still < 3 && t_end.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
        let now = c.received();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    let sent = c.sent.load(Ordering::Relaxed);
    let received = c.received();
    let (a2b, b2a) = (
        c.recv_a2b.load(Ordering::Relaxed),
        c.recv_b2a.load(Ordering::Relaxed),
    );
    let send_errors = c.send_errors.load(Ordering::Relaxed);
    c.stop.store(true, Ordering::Relaxed);
    let _ = rx_thread.join();

    // tear down
    let unfinished = match (sip.as_mut(), ng.as_mut()) {
        (Some(s), _) => s.teardown(32, Duration::from_secs(10)),
        (_, Some(g)) => ng_teardown(g, n),
        _ => 0,
    };

    let window = (t1 - t0).as_secs_f64();
    let relayed = recv1 - recv0;
    let offered_pps = (sent1 - sent0) as f64 / window;
    let lost = sent.saturating_sub(received);
    // in the window (steady state): sent minus received there, give or take
    // the few packets in flight at either end of it
    let window_lost = (sent1 - sent0) as i64 - relayed as i64;
    let loss_pct = if sent > 0 {
        100.0 * lost as f64 / sent as f64
    } else {
        0.0
    };
    let (cpu_s, user_s, sys_s, us) = match (cpu0, cpu1) {
        (Some(a), Some(b)) if relayed > 0 => {
            let hz = args.clk_tck as f64;
            let (u, k) = ((b.0 - a.0) as f64 / hz, (b.1 - a.1) as f64 / hz);
            (
                format!("{:.2}", u + k),
                format!("{u:.2}"),
                format!("{k:.2}"),
                format!("{:.2}", (u + k) * 1e6 / relayed as f64),
            )
        }
        _ => ("NA".into(), "NA".into(), "NA".into(), "NA".into()),
    };
    // callgate's own view: packets it relayed in the window, ports it could
    // not bind (taken by another process: that leg gets no media)
    let mut counted = match (m0, m1) {
        (Some(a), Some(b)) => format!(" relay_counted={}", b - a),
        _ => String::new(),
    };
    if let Some(e) = args
        .admin
        .and_then(|a| metric(a, "callgate_media_bind_errors_total"))
    {
        counted.push_str(&format!(" relay_bind_errors={e}"));
    }
    println!(
        "relay_bench: relay={name} calls={up} streams={streams} offered_pps={offered_pps:.0} \
         window_s={window:.2} relayed={relayed}{counted} cpu_s={cpu_s} user_s={user_s} sys_s={sys_s} us_per_packet={us} \
         sent_total={sent} received_total={received} a2b={a2b} b2a={b2a} lost={lost} window_lost={window_lost} \
         loss_pct={loss_pct:.3} send_errors={send_errors} setup_failed={} teardown_failed={unfinished}",
        n - up
    );
}
