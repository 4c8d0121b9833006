//! Server transactions: IST (RFC 3261 Figure 7 + RFC 6026 Accepted), NIST
//! (Figure 8), CANCEL and RFC 2543 matching. The endpoint sits at `ub()`, a
//! scripted client at `ua()`.

use std::time::Duration;

use callgate::sip::message::Message;
use callgate::sip::transaction::{TimerConfig, TxState};
use callgate::sip::transport::Transport;

use super::sim::Sim;
use super::sim::nodes::{EndpointNode, ScriptNode};
use super::*;

/// Schedule the scripted client to send `msg` at each of `at_ms`.
fn peer_sends(sim: &mut Sim, peer: usize, msg: &Message, at_ms: &[u64]) {
    let t0 = sim.start();
    let bytes = msg.to_bytes();
    for &t in at_ms {
        sim.node_mut::<ScriptNode>(peer)
            .send_at(t0 + ms(t), ub(), bytes.clone());
    }
}

/// The TU answers its `i`th request with `code` at the current instant.
fn respond(sim: &mut Sim, ep: usize, i: usize, code: u16) -> bool {
    let (tx, msg) = {
        let r = &sim.node::<EndpointNode>(ep).requests()[i];
        (r.1.expect("server tx"), r.2.clone())
    };
    sim.with(ep, |n: &mut EndpointNode, now| {
        n.send_response(now, tx, reply(&msg, code))
    })
}

fn invite(branch: Option<&str>, call_id: &str, t: Transport) -> Message {
    request("INVITE", branch, 1, call_id, ua(), t)
}

#[test]
fn ist_proceeding_absorbs_retransmissions_and_resends_last_provisional() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    peer_sends(
        &mut sim,
        peer,
        &invite(Some("z9hG4bKi1"), "i1", Transport::Udp),
        &[0, 50, 500, 900],
    );
    sim.run_to(ms(100));
    assert!(respond(&mut sim, ep, 0, 100));
    sim.run_to(ms(700));
    assert!(respond(&mut sim, ep, 0, 180));
    sim.run_to(Duration::from_secs(2));
    assert_eq!(sim.node::<EndpointNode>(ep).requests().len(), 1);
    assert_eq!(sends(&sim, ub(), "SIP/2.0 100"), vec![100, 500]);
    assert_eq!(sends(&sim, ub(), "SIP/2.0 180"), vec![700, 900]);
    let tx = nth_request_tx(&sim, ep, 0).unwrap();
    assert_eq!(state(&sim, ep, tx), Some(TxState::Proceeding));
    // No timers while the TU thinks.
    assert_eq!(sim.node::<EndpointNode>(ep).ep.poll_timeout(), None);
}

#[test]
fn ist_timer_g_doubles_capped_at_t2_until_timer_h() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    peer_sends(
        &mut sim,
        peer,
        &invite(Some("z9hG4bKg1"), "g1", Transport::Udp),
        &[0],
    );
    sim.run_to(ms(0));
    assert!(respond(&mut sim, ep, 0, 486));
    let tx = nth_request_tx(&sim, ep, 0).unwrap();
    assert_eq!(state(&sim, ep, tx), Some(TxState::Completed));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(
        sends(&sim, ub(), "SIP/2.0 486"),
        vec![
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert_eq!(event_ms(&sim, ep, "ServerTimeout"), vec![32_000]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_000]);
}

#[test]
fn ist_ack_confirms_absorbs_and_timer_i_ends_it() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    let inv = invite(Some("z9hG4bKk1"), "k1", Transport::Udp);
    let ack = ack_for(&inv, &reply(&inv, 486), None, None);
    peer_sends(&mut sim, peer, &inv, &[0, 200]);
    peer_sends(&mut sim, peer, &ack, &[1000, 2000]);
    sim.run_to(ms(0));
    assert!(respond(&mut sim, ep, 0, 486));
    sim.run_to(ms(1500));
    let tx = nth_request_tx(&sim, ep, 0).unwrap();
    assert_eq!(state(&sim, ep, tx), Some(TxState::Confirmed));
    sim.run_to(Duration::from_secs(60));
    // 0: answer, 200: INVITE retransmission, 500: Timer G; the ACK at 1000
    // stops G (next would be 1500).
    assert_eq!(sends(&sim, ub(), "SIP/2.0 486"), vec![0, 200, 500]);
    // The ACK for a non-2xx never reaches the TU.
    assert_eq!(sim.node::<EndpointNode>(ep).requests().len(), 1);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![6000]);
    assert!(event_ms(&sim, ep, "ServerTimeout").is_empty());
}

#[test]
fn ist_over_tcp_no_timer_g_timer_h_still_runs_timer_i_zero() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Tcp);
    let quiet = invite(Some("z9hG4bKq1"), "q1", Transport::Tcp);
    let acked = invite(Some("z9hG4bKq2"), "q2", Transport::Tcp);
    peer_sends(&mut sim, peer, &quiet, &[0]);
    peer_sends(&mut sim, peer, &acked, &[0]);
    peer_sends(
        &mut sim,
        peer,
        &ack_for(&acked, &reply(&acked, 486), None, None),
        &[100],
    );
    sim.run_to(ms(0));
    assert!(respond(&mut sim, ep, 0, 486));
    assert!(respond(&mut sim, ep, 1, 486));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(sends(&sim, ub(), "SIP/2.0 486"), vec![0, 0]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![100, 32_000]);
    assert_eq!(event_ms(&sim, ep, "ServerTimeout"), vec![32_000]);
}

#[test]
fn ist_accepted_absorbs_invites_passes_acks_and_2xx_until_timer_l() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    let inv = invite(Some("z9hG4bKac"), "ac", Transport::Udp);
    let ok = reply(&inv, 200);
    peer_sends(&mut sim, peer, &inv, &[0, 500]);
    // RFC 3261 ACK for 2xx (new branch) and one reusing the INVITE's branch.
    peer_sends(
        &mut sim,
        peer,
        &ack_for(&inv, &ok, Some("z9hG4bKack2xx"), None),
        &[700],
    );
    peer_sends(&mut sim, peer, &ack_for(&inv, &ok, None, None), &[800]);
    sim.run_to(ms(100));
    assert!(respond(&mut sim, ep, 0, 200));
    let tx = nth_request_tx(&sim, ep, 0).unwrap();
    assert_eq!(state(&sim, ep, tx), Some(TxState::Accepted));
    sim.run_to(ms(600));
    // The TU retransmits its 2xx through the transaction (RFC 6026 §7.1).
    assert!(respond(&mut sim, ep, 0, 200));
    sim.run_to(ms(900));
    assert!(!respond(&mut sim, ep, 0, 486), "no second final");
    sim.run_to(Duration::from_secs(60));
    assert_eq!(sends(&sim, ub(), "SIP/2.0 200"), vec![100, 600]);
    let reqs: Vec<(u64, Option<u64>)> = sim
        .node::<EndpointNode>(ep)
        .requests()
        .iter()
        .map(|(at, tx, _)| (at_ms(&sim, *at), tx.map(|t| t.0)))
        .collect();
    assert_eq!(reqs, vec![(0, Some(tx.0)), (700, None), (800, None)]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_100]);
    assert!(event_ms(&sim, ep, "ServerTimeout").is_empty());
    assert!(!respond(&mut sim, ep, 0, 200), "terminated tx refuses");
}

#[test]
fn nist_trying_proceeding_completed_and_timer_j() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    let opt = request("OPTIONS", Some("z9hG4bKn1"), 5, "n1", ua(), Transport::Udp);
    peer_sends(&mut sim, peer, &opt, &[0, 100, 300, 600]);
    sim.run_to(ms(150));
    let tx = nth_request_tx(&sim, ep, 0).unwrap();
    assert_eq!(state(&sim, ep, tx), Some(TxState::Trying));
    sim.run_to(ms(200));
    assert!(respond(&mut sim, ep, 0, 100));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Proceeding));
    sim.run_to(ms(400));
    assert!(respond(&mut sim, ep, 0, 200));
    assert_eq!(state(&sim, ep, tx), Some(TxState::Completed));
    sim.run_to(ms(500));
    assert!(!respond(&mut sim, ep, 0, 200));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(sim.node::<EndpointNode>(ep).requests().len(), 1);
    // Trying absorbs silently; Proceeding resends the 100; Completed the 200.
    assert_eq!(sends(&sim, ub(), "SIP/2.0 100"), vec![200, 300]);
    assert_eq!(sends(&sim, ub(), "SIP/2.0 200"), vec![400, 600]);
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![32_400]);
}

#[test]
fn nist_over_tcp_timer_j_is_zero() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Tcp);
    let bye = request("BYE", Some("z9hG4bKbt"), 2, "bt", ua(), Transport::Tcp);
    peer_sends(&mut sim, peer, &bye, &[0]);
    sim.run_to(ms(30));
    assert!(respond(&mut sim, ep, 0, 200));
    sim.run_to(Duration::from_secs(60));
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![30]);
}

#[test]
fn cancel_gets_its_own_nist_and_finds_the_invite() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    let inv = invite(Some("z9hG4bKcx"), "cx", Transport::Udp);
    let cancel = request("CANCEL", Some("z9hG4bKcx"), 1, "cx", ua(), Transport::Udp);
    let opt = request("OPTIONS", Some("z9hG4bKco"), 1, "co", ua(), Transport::Udp);
    let cancel_opt = request("CANCEL", Some("z9hG4bKco"), 1, "co", ua(), Transport::Udp);
    let cancel_other = request("CANCEL", Some("z9hG4bKzz"), 1, "cx", ua(), Transport::Udp);
    peer_sends(&mut sim, peer, &inv, &[0]);
    peer_sends(&mut sim, peer, &opt, &[0]);
    peer_sends(&mut sim, peer, &cancel, &[1000]);
    sim.run_to(ms(0));
    assert!(respond(&mut sim, ep, 0, 180));
    sim.run_to(ms(1000));
    let inv_tx = nth_request_tx(&sim, ep, 0).unwrap();
    let cancel_tx = nth_request_tx(&sim, ep, 2).unwrap();
    assert_ne!(inv_tx, cancel_tx);
    let n = sim.node::<EndpointNode>(ep);
    assert_eq!(
        n.requests()[2].2.method(),
        Some(&callgate::sip::message::Method::Cancel)
    );
    assert_eq!(n.ep.find_invite_server_tx(&cancel), Some(inv_tx));
    assert_eq!(n.ep.find_invite_server_tx(&cancel_other), None);
    assert_eq!(
        n.ep.find_invite_server_tx(&cancel_opt),
        None,
        "not an INVITE tx"
    );
    assert!(respond(&mut sim, ep, 2, 200));
    assert!(respond(&mut sim, ep, 0, 487));
    let ack = ack_for(&inv, &reply(&inv, 487), None, None);
    peer_sends(&mut sim, peer, &ack, &[1100]);
    sim.run_to(ms(1200));
    assert_eq!(state(&sim, ep, inv_tx), Some(TxState::Confirmed));
    assert_eq!(state(&sim, ep, cancel_tx), Some(TxState::Completed));
    let oks: Vec<String> = sim
        .packets_where(|p| p.from == ub() && p.starts("SIP/2.0 200"))
        .iter()
        .map(|p| parse(p.bytes.clone()).cseq().unwrap().method.to_string())
        .collect();
    assert_eq!(oks, vec!["CANCEL"]);
    assert_eq!(sends(&sim, ub(), "SIP/2.0 487"), vec![1000]);
}

#[test]
fn rfc2543_requests_match_without_branch_cookie() {
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    let inv = invite(None, "old", Transport::Udp);
    let busy = reply(&inv, 486);
    peer_sends(&mut sim, peer, &inv, &[0, 500]);
    peer_sends(
        &mut sim,
        peer,
        &ack_for(&inv, &busy, None, Some("<sip:bob@b.example>;tag=wrong")),
        &[1300],
    );
    peer_sends(
        &mut sim,
        peer,
        &ack_for(&inv, &busy, None, None),
        &[1200, 1400],
    );
    sim.run_to(ms(100));
    assert!(respond(&mut sim, ep, 0, 180));
    sim.run_to(ms(1000));
    assert!(respond(&mut sim, ep, 0, 486));
    sim.run_to(ms(1250));
    let tx = nth_request_tx(&sim, ep, 0).unwrap();
    assert_eq!(state(&sim, ep, tx), Some(TxState::Confirmed));
    sim.run_to(Duration::from_secs(2));
    assert_eq!(sends(&sim, ub(), "SIP/2.0 180"), vec![100, 500]);
    assert_eq!(sends(&sim, ub(), "SIP/2.0 486"), vec![1000]);
    // Only the ACK whose To tag differs from the 486's is passed up.
    let reqs: Vec<(u64, bool)> = sim
        .node::<EndpointNode>(ep)
        .requests()
        .iter()
        .map(|(at, tx, _)| (at_ms(&sim, *at), tx.is_some()))
        .collect();
    assert_eq!(reqs, vec![(0, true), (1300, false)]);
    // RFC 2543 CANCEL matching (§9.2): same R-URI, Call-ID, From tag, CSeq
    // number and top Via.
    let inv2 = request("INVITE", None, 7, "old2", ua(), Transport::Udp);
    peer_sends(&mut sim, peer, &inv2, &[2000]);
    sim.run_to(ms(2000));
    let tx2 = nth_request_tx(&sim, ep, 2).unwrap();
    let cancel = request("CANCEL", None, 7, "old2", ua(), Transport::Udp);
    let wrong = request("CANCEL", None, 8, "old2", ua(), Transport::Udp);
    let n = sim.node::<EndpointNode>(ep);
    assert_eq!(n.ep.find_invite_server_tx(&cancel), Some(tx2));
    assert_eq!(n.ep.find_invite_server_tx(&wrong), None);
}

#[test]
fn rfc4475_bare_cookie_branch_and_2543_invite_use_fallback_matching() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475");
    let (mut sim, ep, peer) = server_setup(TimerConfig::default(), Transport::Udp);
    let bad = parse(std::fs::read(dir.join("badbranch.dat")).unwrap());
    // Same bare `branch=z9hG4bK`, different Call-ID: a different transaction.
    let text = String::from_utf8(bad.to_bytes().to_vec()).unwrap();
    let bad2 = parse(text.replace("badbranch.sadonfo23i420jv0as0derf3j3n", "other-call"));
    let old = parse(std::fs::read(dir.join("inv2543.dat")).unwrap());
    peer_sends(&mut sim, peer, &bad, &[0, 100]);
    peer_sends(&mut sim, peer, &bad2, &[50]);
    peer_sends(&mut sim, peer, &old, &[0, 100]);
    sim.run_to(Duration::from_secs(1));
    let n = sim.node::<EndpointNode>(ep);
    let calls: Vec<&[u8]> = n.requests().iter().map(|(_, _, m)| m.call_id()).collect();
    assert_eq!(
        calls,
        vec![
            &b"badbranch.sadonfo23i420jv0as0derf3j3n"[..],
            &b"inv2543.1717@ift.client.example.com"[..],
            &b"other-call"[..],
        ]
    );
    assert_eq!(n.ep.active_transactions(), 3);
}

#[test]
fn custom_t1_t2_scale_every_server_timer() {
    let cfg = TimerConfig {
        t1: ms(100),
        t2: Duration::from_secs(1),
        t4: Duration::from_secs(2),
    };
    let (mut sim, ep, peer) = server_setup(cfg, Transport::Udp);
    let inv = invite(Some("z9hG4bKs100"), "s100", Transport::Udp);
    let opt = request(
        "OPTIONS",
        Some("z9hG4bKs101"),
        1,
        "s101",
        ua(),
        Transport::Udp,
    );
    let inv2 = invite(Some("z9hG4bKs102"), "s102", Transport::Udp);
    peer_sends(&mut sim, peer, &inv, &[0]);
    peer_sends(&mut sim, peer, &opt, &[0]);
    peer_sends(&mut sim, peer, &inv2, &[0]);
    peer_sends(
        &mut sim,
        peer,
        &ack_for(&inv2, &reply(&inv2, 486), None, None),
        &[50],
    );
    sim.run_to(ms(0));
    assert!(respond(&mut sim, ep, 0, 486));
    assert!(respond(&mut sim, ep, 1, 200));
    assert!(respond(&mut sim, ep, 2, 486));
    sim.run_to(Duration::from_secs(60));
    let g: Vec<u128> = sim
        .send_times(|p| p.from == ub() && p.text().contains("z9hG4bKs100"))
        .iter()
        .map(Duration::as_millis)
        .collect();
    assert_eq!(g, vec![0, 100, 300, 700, 1500, 2500, 3500, 4500, 5500]);
    assert_eq!(event_ms(&sim, ep, "ServerTimeout"), vec![6400]);
    // I = T4 = 2 s after the ACK at 50; J = 64·T1 = 6.4 s; H = 6.4 s.
    assert_eq!(event_ms(&sim, ep, "Terminated"), vec![2050, 6400, 6400]);
}
