//! Client transactions: ICT (RFC 3261 Figure 5 + RFC 6026 Accepted) and
//! NICT (Figure 6). The endpoint sits at `ua()`, a scripted peer at `ub()`.

use std::time::Duration;

use callgate::sip::message::Method;
use callgate::sip::transaction::{TimerConfig, TxId, TxState};
use callgate::sip::transport::Transport;

use super::sim::Sim;
use super::sim::nodes::{EndpointNode, ScriptNode};
use super::*;

/// Send `method` with `branch` from the endpoint at the current instant.
fn send(sim: &mut Sim, ep: usize, method: &str, branch: &str, t: Transport) -> TxId {
    let req = request(method, Some(branch), 1, "c-1", ua(), t);
    sim.with(ep, |n: &mut EndpointNode, now| {
        n.send_request(now, ub(), req)
    })
}

/// Schedule the peer to send `code` for the endpoint's request of `tx` at `at_ms`.
fn peer_replies(sim: &mut Sim, ep: usize, peer: usize, tx: TxId, code: u16, at_ms: &[u64]) {
    let req = sim
        .node::<EndpointNode>(ep)
        .ep
        .request_of(tx)
        .unwrap()
        .clone();
    let resp = reply(&req, code).to_bytes();
    let t0 = sim.start();
    for &t in at_ms {
        sim.node_mut::<ScriptNode>(peer)
            .send_at(t0 + ms(t), ua(), resp.clone());
    }
}

#[test]
fn ict_timer_a_doubles_until_timer_b_fires_at_64_t1() {
    let (mut sim, ep, _) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "INVITE", "z9hG4bKa1", Transport::Udp);
    assert_eq!(state(&sim, ep, tx), Some(TxState::Calling));
    sim.run_to(Duration::from_secs(60));
    // Intervals 0.5, 1, 2, 4, 8, 16 s (no T2 cap for INVITE, §17.1.1.2).
    assert_eq!(
        sends(&sim, ua(), "INVITE "),
        vec![0, 500, 1500, 3500, 7500, 15_500, 31_500]
    );
    assert_eq!(event_ms(&sim, ep, "Timeout"), vec![32_000]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_000]);
    assert_eq!(state(&sim, ep, tx), None);
    assert_eq!(sim.node::<EndpointNode>(ep).ep.active_transactions(), 0);
}

#[test]
fn ict_over_tcp_sends_once_and_still_times_out() {
    let (mut sim, ep, _) = client_setup(TimerConfig::default(), Transport::Tcp);
    send(&mut sim, ep, "INVITE", "z9hG4bKt1", Transport::Tcp);
    sim.run_to(Duration::from_secs(60));
    assert_eq!(sends(&sim, ua(), "INVITE "), vec![0]);
    assert_eq!(event_ms(&sim, ep, "Timeout"), vec![32_000]);
}

#[test]
fn ict_provisional_stops_retransmissions_then_2xx_accepted_until_timer_m() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "INVITE", "z9hG4bKp1", Transport::Udp);
    peer_replies(&mut sim, ep, peer, tx, 180, &[1200]);
    peer_replies(&mut sim, ep, peer, tx, 200, &[100_000]);
    sim.run_to(Duration::from_secs(50));
    // Calling → Proceeding: no more INVITEs and no Timer B.
    assert_eq!(state(&sim, ep, tx), Some(TxState::Proceeding));
    sim.run_to(Duration::from_secs(200));
    assert_eq!(sends(&sim, ua(), "INVITE "), vec![0, 500]);
    assert!(event_ms(&sim, ep, "Timeout").is_empty());
    assert_eq!(tu_responses(&sim, ep), vec![(1200, 180), (100_000, 200)]);
    // Proceeding → Accepted (RFC 6026), Timer M = 64·T1; the TU ACKs 2xx.
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![132_000]);
    assert!(sends(&sim, ua(), "ACK ").is_empty());
}

#[test]
fn ict_acks_non_2xx_itself_and_absorbs_retransmissions_until_timer_d() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "INVITE", "z9hG4bKn1", Transport::Udp);
    peer_replies(&mut sim, ep, peer, tx, 486, &[200, 700, 1700]);
    sim.run_to(Duration::from_secs(1));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Completed));
    sim.run_to(Duration::from_secs(40));
    assert_eq!(sends(&sim, ua(), "INVITE "), vec![0]);
    assert_eq!(sends(&sim, ua(), "ACK "), vec![200, 700, 1700]);
    assert_eq!(tu_responses(&sim, ep), vec![(200, 486)]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_200]);
    // §17.1.1.3: R-URI, Call-ID, From, CSeq number of the INVITE; To of the
    // response; the INVITE's single top Via.
    let ack = sim.node::<ScriptNode>(peer).last("ACK ").unwrap();
    let inv = sim.node::<ScriptNode>(peer).last("INVITE ").unwrap();
    let resp = reply(&inv, 486);
    assert_eq!(ack.uri(), inv.uri());
    assert_eq!(ack.call_id(), inv.call_id());
    assert_eq!(ack.from_tag(), inv.from_tag());
    assert_eq!(ack.to_tag(), resp.to_tag());
    assert!(ack.to_tag().is_some());
    let cseq = ack.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (1, Method::Ack));
    assert_eq!(ack.vias().len(), 1);
    assert_eq!(ack.top_via().unwrap().branch(), Some(&b"z9hG4bKn1"[..]));
}

#[test]
fn ict_proceeding_to_completed_over_tcp_terminates_at_once() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Tcp);
    let tx = send(&mut sim, ep, "INVITE", "z9hG4bKc1", Transport::Tcp);
    peer_replies(&mut sim, ep, peer, tx, 180, &[50]);
    peer_replies(&mut sim, ep, peer, tx, 183, &[70]);
    peer_replies(&mut sim, ep, peer, tx, 486, &[100]);
    sim.run_to(ms(60));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Proceeding));
    sim.run_to(Duration::from_secs(40));
    assert_eq!(
        tu_responses(&sim, ep),
        vec![(50, 180), (70, 183), (100, 486)]
    );
    // Timer D is zero on reliable transports.
    assert_eq!(sends(&sim, ua(), "ACK "), vec![100]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![100]);
}

#[test]
fn ict_accepted_passes_2xx_retransmissions_to_the_tu() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "INVITE", "z9hG4bKok", Transport::Udp);
    peer_replies(&mut sim, ep, peer, tx, 200, &[100, 600, 1600, 40_000]);
    sim.run_to(Duration::from_secs(2));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Accepted));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(
        tu_responses(&sim, ep),
        vec![(100, 200), (600, 200), (1600, 200)]
    );
    assert!(sends(&sim, ua(), "ACK ").is_empty());
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_100]);
    // After Timer M the late 2xx is stray (a proxy forwards it statelessly).
    assert_eq!(event_ms(&sim, ep, "StrayResponse"), vec![40_000]);
}

#[test]
fn transport_errors_end_client_transactions() {
    let (mut sim, ep, _) = client_setup(TimerConfig::default(), Transport::Tcp);
    let inv = send(&mut sim, ep, "INVITE", "z9hG4bKte1", Transport::Tcp);
    let opt = send(&mut sim, ep, "OPTIONS", "z9hG4bKte2", Transport::Tcp);
    sim.run_to(ms(10));
    sim.with(ep, |n: &mut EndpointNode, now| {
        n.transport_error(now, inv);
        n.transport_error(now, opt);
        n.transport_error(now, TxId(999));
    });
    sim.run_to(Duration::from_secs(60));
    let n = sim.node::<EndpointNode>(ep);
    assert_eq!(
        n.events_named("TransportError"),
        vec![
            (sim.start() + ms(10), Some(inv)),
            (sim.start() + ms(10), Some(opt))
        ]
    );
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![10, 10]);
    assert!(event_ms(&sim, ep, "Timeout").is_empty());
}

#[test]
fn nict_timer_e_doubles_capped_at_t2_until_timer_f() {
    let (mut sim, ep, _) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "OPTIONS", "z9hG4bKo1", Transport::Udp);
    assert_eq!(state(&sim, ep, tx), Some(TxState::Trying));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(
        sends(&sim, ua(), "OPTIONS "),
        vec![
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(event_ms(&sim, ep, "Timeout"), vec![32_000]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_000]);
}

#[test]
fn nict_proceeding_retransmits_every_t2_until_timer_f() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "OPTIONS", "z9hG4bKo2", Transport::Udp);
    peer_replies(&mut sim, ep, peer, tx, 100, &[200]);
    sim.run_to(Duration::from_secs(60));
    assert_eq!(
        sends(&sim, ua(), "OPTIONS "),
        vec![0, 500, 4500, 8500, 12_500, 16_500, 20_500, 24_500, 28_500]
    );
    assert_eq!(tu_responses(&sim, ep), vec![(200, 100)]);
    assert_eq!(event_ms(&sim, ep, "Timeout"), vec![32_000]);
}

#[test]
fn nict_completed_absorbs_final_retransmissions_until_timer_k() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "OPTIONS", "z9hG4bKo3", Transport::Udp);
    peer_replies(&mut sim, ep, peer, tx, 200, &[1000, 2000]);
    sim.run_to(Duration::from_secs(3));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Completed));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(sends(&sim, ua(), "OPTIONS "), vec![0, 500]);
    assert_eq!(tu_responses(&sim, ep), vec![(1000, 200)]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![6000]);
}

#[test]
fn nict_over_tcp_proceeding_to_completed_terminates_at_once() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Tcp);
    let tx = send(&mut sim, ep, "BYE", "z9hG4bKb1", Transport::Tcp);
    peer_replies(&mut sim, ep, peer, tx, 100, &[20]);
    peer_replies(&mut sim, ep, peer, tx, 200, &[40]);
    sim.run_to(ms(30));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Proceeding));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(sends(&sim, ua(), "BYE "), vec![0]);
    assert_eq!(tu_responses(&sim, ep), vec![(20, 100), (40, 200)]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![40]);
}

#[test]
fn stray_responses_are_reported_with_their_flow() {
    let (mut sim, ep, peer) = client_setup(TimerConfig::default(), Transport::Udp);
    let tx = send(&mut sim, ep, "INVITE", "z9hG4bKs1", Transport::Udp);
    let inv = sim
        .node::<EndpointNode>(ep)
        .ep
        .request_of(tx)
        .unwrap()
        .clone();
    let other = request(
        "INVITE",
        Some("z9hG4bKnope"),
        1,
        "c-1",
        ua(),
        Transport::Udp,
    );
    // Same branch, other CSeq method: a different transaction (§17.1.3).
    let cancel = request("CANCEL", Some("z9hG4bKs1"), 1, "c-1", ua(), Transport::Udp);
    let t0 = sim.start();
    let p = sim.node_mut::<ScriptNode>(peer);
    p.send_at(t0 + ms(10), ua(), reply(&other, 200).to_bytes());
    p.send_at(t0 + ms(20), ua(), reply(&cancel, 200).to_bytes());
    p.send_at(t0 + ms(30), ua(), reply(&inv, 180).to_bytes());
    sim.run_to(Duration::from_secs(1));
    assert_eq!(event_ms(&sim, ep, "StrayResponse"), vec![10, 20]);
    assert_eq!(tu_responses(&sim, ep), vec![(30, 180)]);
    let n = sim.node::<EndpointNode>(ep);
    let flows: Vec<_> = n
        .events
        .iter()
        .filter_map(|(_, o)| match o {
            callgate::sip::transaction::Output::StrayResponse { flow, .. } => Some(flow.remote),
            _ => None,
        })
        .collect();
    assert_eq!(flows, vec![ub(), ub()]);
}

#[test]
fn custom_t1_t2_t4_scale_every_client_timer() {
    let cfg = TimerConfig {
        t1: ms(100),
        t2: Duration::from_secs(1),
        t4: Duration::from_secs(2),
    };
    let (mut sim, ep, peer) = client_setup(cfg, Transport::Udp);
    send(&mut sim, ep, "INVITE", "z9hG4bKc100", Transport::Udp);
    send(&mut sim, ep, "OPTIONS", "z9hG4bKc101", Transport::Udp);
    let reg = send(&mut sim, ep, "REGISTER", "z9hG4bKc102", Transport::Udp);
    let rej = send(&mut sim, ep, "INVITE", "z9hG4bKc103", Transport::Udp);
    peer_replies(&mut sim, ep, peer, reg, 200, &[50]);
    peer_replies(&mut sim, ep, peer, rej, 486, &[10]);
    sim.run_to(Duration::from_secs(60));
    let inv = |p: &crate::sim::Packet| p.from == ua() && p.text().contains("z9hG4bKc100");
    let opt = |p: &crate::sim::Packet| p.from == ua() && p.text().contains("z9hG4bKc101");
    let ms_of = |v: Vec<Duration>| -> Vec<u128> { v.iter().map(Duration::as_millis).collect() };
    // A: 0.1, 0.2, 0.4, 0.8, 1.6, 3.2 s; B = 64·T1 = 6.4 s.
    assert_eq!(
        ms_of(sim.send_times(inv)),
        vec![0, 100, 300, 700, 1500, 3100, 6300]
    );
    // E capped at T2 = 1 s; F = 6.4 s.
    assert_eq!(
        ms_of(sim.send_times(opt)),
        vec![0, 100, 300, 700, 1500, 2500, 3500, 4500, 5500]
    );
    assert_eq!(event_ms(&sim, ep, "Timeout"), vec![6400, 6400]);
    // K = T4 = 2 s after the 200 at 50 ms; D stays 32 s after the 486.
    assert_eq!(
        event_ms(&sim, ep, "Terminated"),
        vec![2050, 6400, 6400, 32_010]
    );
}
