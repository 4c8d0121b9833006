//! RFC 3261 §17 / RFC 6026 transactions on the simulated network: every
//! transition of Figures 5–8, retransmission schedules measured on the wire,
//! timer instants asserted exactly in virtual time.
//!
//! Client machines are in `sim_transactions/client.rs`, server machines and
//! matching in `sim_transactions/server.rs`; this file holds the shared
//! helpers, the harness self-test and end-to-end scenarios.
#![allow(clippy::disallowed_methods)]

mod sim;

#[path = "sim_transactions/client.rs"]
mod client;
#[path = "sim_transactions/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callgate::sip::message::{Limits, Message, parse_datagram, response_to};
use callgate::sip::transaction::{TimerConfig, TxId, TxState};
use callgate::sip::transport::Transport;
use sim::nodes::{EndpointNode, ScriptNode};
use sim::{NodeId, Sim};

/// Address of the client side.
fn ua() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}

/// Address of the server side.
fn ub() -> SocketAddr {
    "192.0.2.2:5060".parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn parse(b: impl Into<Bytes>) -> Message {
    parse_datagram(b.into(), &Limits::default()).expect("test message parses")
}

/// A request sent from `from`; `branch: None` writes an RFC 2543 Via.
fn request(
    method: &str,
    branch: Option<&str>,
    cseq: u32,
    call_id: &str,
    from: SocketAddr,
    t: Transport,
) -> Message {
    let branch = branch.map(|b| format!(";branch={b}")).unwrap_or_default();
    parse(format!(
        "{method} sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/{} {from}{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@a.example>;tag=fa\r\nTo: <sip:bob@b.example>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        t.via_token()
    ))
}

fn reply(req: &Message, code: u16) -> Message {
    let reason = match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    };
    response_to(req, code, reason, Vec::new())
}

/// The ACK a UAC sends for `resp` to `inv`; `branch` overrides the INVITE's
/// (an ACK for a 2xx is a new transaction), `to` overrides the To line.
fn ack_for(inv: &Message, resp: &Message, branch: Option<&str>, to: Option<&str>) -> Message {
    let line = |m: &Message, name: &str| {
        m.headers
            .iter()
            .find(|h| h.is_named(name))
            .map(|h| String::from_utf8_lossy(h.value()).into_owned())
            .unwrap()
    };
    let mut via = line(inv, "Via");
    if let Some(b) = branch {
        let cut = via.find(";branch=").unwrap();
        via = format!("{};branch={b}", &via[..cut]);
    }
    let to = to.map_or_else(|| line(resp, "To"), str::to_string);
    parse(format!(
        "ACK {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\n\
         Call-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
        inv.uri().unwrap(),
        line(inv, "From"),
        line(inv, "Call-ID"),
        inv.cseq().unwrap().seq,
    ))
}

/// An endpoint at [`ua`] (client role) and a script peer at [`ub`].
fn client_setup(cfg: TimerConfig, t: Transport) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(Instant::now());
    let ep = sim.add_node(&[ua()], EndpointNode::new(ua(), t, cfg));
    let peer = sim.add_node(&[ub()], ScriptNode::new(ub()));
    (sim, ep, peer)
}

/// An endpoint at [`ub`] (server role) and a script peer at [`ua`].
fn server_setup(cfg: TimerConfig, t: Transport) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(Instant::now());
    let ep = sim.add_node(&[ub()], EndpointNode::new(ub(), t, cfg));
    let peer = sim.add_node(&[ua()], ScriptNode::new(ua()));
    (sim, ep, peer)
}

/// Milliseconds from the start of `sim` to `t`.
fn at_ms(sim: &Sim, t: Instant) -> u64 {
    u64::try_from((t - sim.start()).as_millis()).unwrap()
}

/// Send instants (ms) of packets from `from` whose first line starts with `prefix`.
fn sends(sim: &Sim, from: SocketAddr, prefix: &str) -> Vec<u64> {
    sim.send_times(|p| p.from == from && p.starts(prefix))
        .into_iter()
        .map(|d| u64::try_from(d.as_millis()).unwrap())
        .collect()
}

/// Instants (ms) of the endpoint events named `name`.
fn event_ms(sim: &Sim, node: NodeId, name: &str) -> Vec<u64> {
    sim.node::<EndpointNode>(node)
        .events_named(name)
        .into_iter()
        .map(|(at, _)| at_ms(sim, at))
        .collect()
}

/// (ms, code) of the responses the endpoint's TU received.
fn tu_responses(sim: &Sim, node: NodeId) -> Vec<(u64, u16)> {
    sim.node::<EndpointNode>(node)
        .responses()
        .into_iter()
        .map(|(at, _, code)| (at_ms(sim, at), code))
        .collect()
}

/// The server transaction of the `i`th request the TU received.
fn nth_request_tx(sim: &Sim, node: NodeId, i: usize) -> Option<TxId> {
    sim.node::<EndpointNode>(node).requests()[i].1
}

fn state(sim: &Sim, node: NodeId, tx: TxId) -> Option<TxState> {
    sim.node::<EndpointNode>(node).ep.state_of(tx)
}

#[test]
fn harness_delay_and_nth_loss_are_deterministic() {
    let mut sim = Sim::new(Instant::now());
    let t0 = sim.start();
    let mut a = ScriptNode::new(ua());
    for i in 0..5u64 {
        a.send_at(t0 + ms(i), ub(), format!("x{}", i + 1));
    }
    let a = sim.add_node(&[ua()], a);
    let b = sim.add_node(
        &[ub()],
        ScriptNode::new(ub()).with_responder(Box::new(|_, b| vec![(ms(5), b.clone())])),
    );
    sim.set_delay(ua(), ub(), ms(30));
    sim.set_delay(ub(), ua(), ms(7));
    sim.drop_matches(&[2, 4], |p| p.from == ua());
    sim.run_to(Duration::from_secs(3600));
    let inbox: Vec<(u64, String)> = sim
        .node::<ScriptNode>(b)
        .inbox
        .iter()
        .map(|(at, _, x)| (at_ms(&sim, *at), String::from_utf8_lossy(x).into_owned()))
        .collect();
    assert_eq!(
        inbox,
        vec![(30, "x1".into()), (32, "x3".into()), (34, "x5".into())]
    );
    // Echoes: sent 5 ms after arrival, 7 ms back.
    assert_eq!(sim.node::<ScriptNode>(a).received("x"), {
        let t = sim.start();
        vec![t + ms(42), t + ms(44), t + ms(46)]
    });
    assert_eq!(sim.packets().iter().filter(|p| p.dropped).count(), 2);
    assert_eq!(sim.elapsed(), Duration::from_secs(3600));
    // Only real events cost steps: 3 arrivals + 3 echoes sent + 3 arrivals + 5 sends.
    assert!(sim.steps() <= 14, "steps = {}", sim.steps());
}

/// Two endpoints over a 20 ms link; the first INVITE and the first 486 are
/// lost, and both transactions recover through Timers A and G.
#[test]
fn end_to_end_invite_rejected_over_lossy_link() {
    let cfg = TimerConfig::default();
    let mut sim = Sim::new(Instant::now());
    let a = sim.add_node(&[ua()], EndpointNode::new(ua(), Transport::Udp, cfg));
    let b = sim.add_node(&[ub()], EndpointNode::new(ub(), Transport::Udp, cfg));
    sim.set_default_delay(ms(20));
    sim.drop_nth(1, |p| p.starts("INVITE "));
    sim.drop_nth(1, |p| p.starts("SIP/2.0 486"));
    let inv = request("INVITE", Some("z9hG4bKe2e"), 1, "e2e", ua(), Transport::Udp);
    let tx_a = sim.with(a, |n: &mut EndpointNode, now| {
        n.send_request(now, ub(), inv)
    });
    sim.run_to(ms(520));
    let tx_b = nth_request_tx(&sim, b, 0).expect("server tx");
    let req = sim.node::<EndpointNode>(b).requests()[0].2.clone();
    assert!(sim.with(b, |n: &mut EndpointNode, now| n.send_response(
        now,
        tx_b,
        reply(&req, 486)
    )));
    sim.run_to(Duration::from_secs(40));

    assert_eq!(sends(&sim, ua(), "INVITE "), vec![0, 500]);
    assert_eq!(sends(&sim, ub(), "SIP/2.0 486"), vec![520, 1020]);
    assert_eq!(sends(&sim, ua(), "ACK "), vec![1040]);
    assert_eq!(tu_responses(&sim, a), vec![(1040, 486)]);
    assert_eq!(sim.node::<EndpointNode>(b).requests().len(), 1);
    // B: ACK at 1060 → Confirmed, Timer I = T4 → 6060. A: Timer D = 32 s.
    assert_eq!(event_ms(&sim, b, "Terminated"), vec![6060]);
    assert_eq!(event_ms(&sim, a, "Terminated"), vec![33_040]);
    assert!(event_ms(&sim, b, "ServerTimeout").is_empty());
    assert_eq!(state(&sim, a, tx_a), None);
}

/// A three-hour call with an OPTIONS keep-alive every minute runs in a few
/// thousand clock steps: the simulator jumps between events.
#[test]
fn three_hour_call_runs_in_virtual_time() {
    let cfg = TimerConfig::default();
    let mut sim = Sim::new(Instant::now());
    let a = sim.add_node(&[ua()], EndpointNode::new(ua(), Transport::Udp, cfg));
    let b = sim.add_node(&[ub()], EndpointNode::new(ub(), Transport::Udp, cfg));
    sim.set_default_delay(ms(10));
    let mut answered = 0;
    let mut answer_all = |sim: &mut Sim, code: u16| {
        let reqs: Vec<(TxId, Message)> = sim.node::<EndpointNode>(b).requests()[answered..]
            .iter()
            .filter_map(|(_, tx, m)| tx.map(|t| (t, (*m).clone())))
            .collect();
        answered = sim.node::<EndpointNode>(b).requests().len();
        for (tx, m) in reqs {
            sim.with(b, |n: &mut EndpointNode, now| {
                n.send_response(now, tx, reply(&m, code))
            });
        }
    };
    let inv = request(
        "INVITE",
        Some("z9hG4bKcall"),
        1,
        "long",
        ua(),
        Transport::Udp,
    );
    sim.with(a, |n: &mut EndpointNode, now| {
        n.send_request(now, ub(), inv)
    });
    sim.run_to(ms(10));
    answer_all(&mut sim, 200);
    for i in 1..=180u32 {
        sim.run_to(Duration::from_secs(60 * u64::from(i)));
        let branch = format!("z9hG4bKka{i}");
        let opt = request(
            "OPTIONS",
            Some(&branch),
            i + 1,
            "long",
            ua(),
            Transport::Udp,
        );
        sim.with(a, |n: &mut EndpointNode, now| {
            n.send_request(now, ub(), opt)
        });
        sim.run_for(ms(10));
        answer_all(&mut sim, 200);
    }
    sim.run_to(Duration::from_secs(3 * 3600 + 60));
    let codes = tu_responses(&sim, a);
    assert_eq!(codes.len(), 181);
    assert!(codes.iter().all(|&(_, c)| c == 200));
    assert_eq!(codes[180].0, 3 * 3600 * 1000 + 20);
    assert_eq!(sim.node::<EndpointNode>(a).ep.active_transactions(), 0);
    assert_eq!(sim.node::<EndpointNode>(b).ep.active_transactions(), 0);
    assert_eq!(sim.elapsed(), Duration::from_secs(3 * 3600 + 60));
    assert!(sim.steps() < 3_000, "steps = {}", sim.steps());
}
