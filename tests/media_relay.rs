//! Whole-call media relay scenarios in simulated time: the sans-IO `RelaySession`
//! is fed RTP/RTCP from scripted endpoints and stepped by a virtual clock, so a
//! three-hour call at 50 packets/s each way runs in well under a second.
#![allow(clippy::disallowed_methods)] // one real Instant as the origin of virtual time

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callgate::media::rtp::write_rtp_header;
use callgate::media::{
    Codec, Component, DropReason, Event, Leg, LegConfig, MediaError, PortAllocator, PortPair,
    RelayConfig, RelaySession, Transmit,
};

const FRAME: Duration = Duration::from_millis(20);
const PCMU_FRAME_TICKS: u32 = 160;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80; 12];
    write_rtp_header(&mut v, pt, seq, ts, ssrc);
    v.extend_from_slice(&[0xd5; 160]);
    v
}

/// An SR (no report blocks) followed by an SDES chunk: a minimal valid compound.
fn sr(ssrc: u32, ts: u32) -> Vec<u8> {
    let mut v = vec![0x80, 200, 0, 6];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&[0x81, 202, 0, 2]);
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&[1, 0, 0, 0]);
    v
}

fn field_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn field_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn pcmu() -> Vec<Codec> {
    vec![
        Codec::new(0, "PCMU", 8000),
        Codec::new(101, "telephone-event", 8000),
    ]
}

fn pair(rtp: u16, mux: bool) -> PortPair {
    PortPair {
        rtp,
        rtcp: (!mux).then_some(rtp + 1),
    }
}

const A_PORT: u16 = 20000;
const B_PORT: u16 = 20002;

/// A call: A signalled 10.0.0.1:4000 but really sends from a NAT, B is public.
fn call(t0: Instant, mux_a: bool, mux_b: bool, config: RelayConfig) -> RelaySession {
    let a = LegConfig {
        ports: pair(A_PORT, mux_a),
        remote_rtp: Some(addr("10.0.0.1:4000")),
        remote_rtcp: None,
        codecs: pcmu(),
    };
    let b = LegConfig {
        ports: pair(B_PORT, mux_b),
        remote_rtp: Some(addr("198.51.100.20:5004")),
        remote_rtcp: None,
        codecs: pcmu(),
    };
    RelaySession::new(t0, config, a, b, 0xC0FFEE)
}

fn drain(s: &mut RelaySession) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn events(s: &mut RelaySession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Checks one outgoing stream: constant SSRC, sequence strictly +1, timestamp
/// advancing by the elapsed time × 8000 Hz within one frame.
#[derive(Default)]
struct StreamCheck {
    last: Option<(u32, u16, u32, Instant)>,
    packets: u64,
}

impl StreamCheck {
    fn check(&mut self, now: Instant, bytes: &[u8]) {
        let (ssrc, seq, ts) = (
            field_u32(bytes, 8),
            field_u16(bytes, 2),
            field_u32(bytes, 4),
        );
        if let Some((lssrc, lseq, lts, lt)) = self.last {
            assert_eq!(
                ssrc, lssrc,
                "outgoing SSRC changed at packet {}",
                self.packets
            );
            assert_eq!(
                seq,
                lseq.wrapping_add(1),
                "sequence not +1 at packet {}",
                self.packets
            );
            let expect = (now - lt).as_micros() as i64 * 8 / 1000;
            let got = i64::from(ts.wrapping_sub(lts));
            assert!(
                (got - expect).abs() <= i64::from(PCMU_FRAME_TICKS),
                "ts delta {got}, expected {expect}"
            );
        }
        self.last = Some((ssrc, seq, ts, now));
        self.packets += 1;
    }
}

#[test]
fn three_hour_call_with_exact_counters() {
    let t0 = Instant::now();
    let nat_a = addr("203.0.113.10:40000");
    let nat_a_rtcp = addr("203.0.113.10:40001");
    let b = addr("198.51.100.20:5004");
    let b_rtcp = addr("198.51.100.20:5005");
    let mut s = call(t0, false, false, RelayConfig::default());
    let (mut to_a, mut to_b) = (StreamCheck::default(), StreamCheck::default());
    let frames: u32 = 3 * 3600 * 50;
    let mut rtcp_each = 0u64;
    for i in 0..frames {
        let now = t0 + FRAME * i;
        assert!(s.poll_timeout().is_some_and(|d| d > now));
        s.handle_timeout(now);
        let seq = (1000 + i) as u16;
        s.handle_packet(now, A_PORT, nat_a, &rtp(0, seq, i * 160, 0xA))
            .unwrap();
        s.handle_packet(
            now,
            B_PORT,
            b,
            &rtp(0, seq.wrapping_add(0x5a5a), 77 + i * 160, 0xB),
        )
        .unwrap();
        if i % 250 == 0 {
            s.handle_packet(now, A_PORT + 1, nat_a_rtcp, &sr(0xA, i * 160))
                .unwrap();
            s.handle_packet(now, B_PORT + 1, b_rtcp, &sr(0xB, i * 160))
                .unwrap();
            rtcp_each += 1;
        }
        for tx in drain(&mut s) {
            match (tx.from_port, tx.to) {
                (B_PORT, to) if to == b => to_b.check(now, &tx.bytes),
                (A_PORT, to) if to == nat_a => to_a.check(now, &tx.bytes),
                (p, to) if p == B_PORT + 1 && to == b_rtcp => {
                    assert_eq!(field_u32(&tx.bytes, 4), s.outgoing_ssrc(Leg::A));
                }
                (p, to) if p == A_PORT + 1 && to == nat_a_rtcp => {
                    assert_eq!(field_u32(&tx.bytes, 4), s.outgoing_ssrc(Leg::B));
                }
                other => panic!("unexpected transmit {other:?}"),
            }
        }
    }
    assert_eq!(
        (to_a.packets, to_b.packets),
        (u64::from(frames), u64::from(frames))
    );
    for leg in [Leg::A, Leg::B] {
        let st = s.stats(leg);
        assert_eq!(st.rtp_packets, u64::from(frames));
        assert_eq!(st.rtp_bytes, u64::from(frames) * 172);
        assert_eq!(st.rtcp_packets, rtcp_each);
        assert_eq!(st.rtcp_bytes, rtcp_each * 40);
        assert_eq!(
            st.dropped_malformed + st.dropped_source + st.dropped_payload_type,
            0
        );
        assert_eq!(st.last_packet, Some(t0 + FRAME * (frames - 1)));
    }
    let ev = events(&mut s);
    assert!(ev.contains(&Event::Latched {
        leg: Leg::A,
        component: Component::Rtp,
        addr: nat_a
    }));
    assert!(ev.iter().all(|e| !matches!(e, Event::Inactive { .. })));
}

#[test]
fn latches_to_nat_source_not_sdp_address() {
    let t0 = Instant::now();
    let cfg = RelayConfig::default();
    let mut s = call(t0, true, true, cfg);
    let b = addr("198.51.100.20:5004");
    // Before A has sent anything, B's media goes to A's SDP address.
    s.handle_packet(t0, B_PORT, b, &rtp(0, 1, 0, 0xB)).unwrap();
    assert_eq!(drain(&mut s)[0].to, addr("10.0.0.1:4000"));
    let nat = addr("203.0.113.10:40000");
    s.handle_packet(t0, A_PORT, nat, &rtp(0, 1, 0, 0xA))
        .unwrap();
    drain(&mut s);
    s.handle_packet(t0 + FRAME, B_PORT, b, &rtp(0, 2, 160, 0xB))
        .unwrap();
    assert_eq!(drain(&mut s)[0].to, nat);
    assert_eq!(s.rtp_destination(Leg::A), Some(nat));
    // The SDP address (or an attacker) is now an unexpected source.
    let t1 = t0 + FRAME * 2;
    assert_eq!(
        s.handle_packet(t1, A_PORT, addr("10.0.0.1:4000"), &rtp(0, 9, 0, 0xA)),
        Err(DropReason::UnexpectedSource)
    );
    assert_eq!(s.stats(Leg::A).dropped_source, 1);
    // After the latched source is silent for relatch_after, a new one takes over.
    let moved = addr("203.0.113.10:40002");
    let t2 = t0 + cfg.relatch_after;
    s.handle_packet(t2, A_PORT, moved, &rtp(0, 2, 160, 0xA))
        .unwrap();
    drain(&mut s);
    assert_eq!(s.rtp_destination(Leg::A), Some(moved));
    let ev = events(&mut s);
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(
        ev[2],
        Event::Latched {
            leg: Leg::A,
            component: Component::Rtp,
            addr: moved
        }
    );
}

/// Feeds B's packets from `src` with the given SSRC / seq / ts origin for `n`
/// frames starting at `start`, returns the time after the last frame.
#[allow(clippy::too_many_arguments)]
fn feed_b(
    s: &mut RelaySession,
    check: &mut StreamCheck,
    start: Instant,
    n: u32,
    src: SocketAddr,
    ssrc: u32,
    seq0: u16,
    ts0: u32,
) -> Instant {
    for i in 0..n {
        let now = start + FRAME * i;
        s.handle_packet(
            now,
            B_PORT,
            src,
            &rtp(
                0,
                seq0.wrapping_add(i as u16),
                ts0.wrapping_add(i * 160),
                ssrc,
            ),
        )
        .unwrap();
        for tx in drain(s) {
            assert_eq!(tx.from_port, A_PORT);
            check.check(now, &tx.bytes);
        }
    }
    start + FRAME * n
}

#[test]
fn source_switch_keeps_ssrc_seq_and_timestamp_continuous() {
    let t0 = Instant::now();
    let mut s = call(t0, true, true, RelayConfig::default());
    let mut check = StreamCheck::default();
    let b = addr("198.51.100.20:5004");
    let t = feed_b(
        &mut s,
        &mut check,
        t0,
        100,
        b,
        0x1111,
        65500,
        u32::MAX - 5000,
    );
    // re-INVITE: B's media moves to another endpoint with a new SSRC, a jumped
    // sequence and timestamp, after 1 s of silence.
    s.update_leg(Leg::B, Some(addr("198.51.100.99:7000")), None, pcmu());
    let t = feed_b(
        &mut s,
        &mut check,
        t + Duration::from_secs(1),
        100,
        addr("198.51.100.99:7000"),
        0x2222,
        12,
        3_000_000_000,
    );
    // Same SSRC restarting its sequence (RFC 3550 A.1 dropout): still continuous.
    let t = feed_b(
        &mut s,
        &mut check,
        t,
        50,
        addr("198.51.100.99:7000"),
        0x2222,
        40_000,
        5,
    );
    assert_eq!(check.packets, 250);
    assert_eq!(check.last.unwrap().0, s.outgoing_ssrc(Leg::B));
    // The checker itself catches a jump: feed a raw jump and expect a panic.
    let caught = std::panic::catch_unwind(move || {
        let mut c = StreamCheck::default();
        c.check(t, &rtp(0, 1, 0, 1));
        c.check(t + FRAME, &rtp(0, 3, 160, 1));
    });
    assert!(caught.is_err());
}

#[test]
fn forked_early_media_relatch_to_answering_branch() {
    let t0 = Instant::now();
    let mut s = call(t0, true, true, RelayConfig::default());
    let mut check = StreamCheck::default();
    let (br1, br2) = (addr("198.51.100.31:6000"), addr("198.51.100.32:6000"));
    // Two 183s: both branches send early media at once; the first latches.
    let mut t = t0;
    for i in 0..50u32 {
        s.handle_packet(t, B_PORT, br1, &rtp(8, i as u16, i * 160, 0x31))
            .unwrap_err(); // PCMA not negotiated
        s.handle_packet(t, B_PORT, br1, &rtp(0, i as u16, i * 160, 0x31))
            .unwrap();
        let r = s.handle_packet(t, B_PORT, br2, &rtp(0, 9000 + i as u16, 7 + i * 160, 0x32));
        assert_eq!(r, Err(DropReason::UnexpectedSource));
        for tx in drain(&mut s) {
            check.check(t, &tx.bytes);
        }
        t += FRAME;
    }
    // Branch 2 answers: the B2BUA re-latches B; branch 2's media now wins.
    s.relatch(Leg::B);
    for i in 50..100u32 {
        s.handle_packet(t, B_PORT, br2, &rtp(0, 9000 + i as u16, 7 + i * 160, 0x32))
            .unwrap();
        let r = s.handle_packet(t, B_PORT, br1, &rtp(0, i as u16, i * 160, 0x31));
        assert_eq!(r, Err(DropReason::UnexpectedSource));
        for tx in drain(&mut s) {
            check.check(t, &tx.bytes);
        }
        t += FRAME;
    }
    assert_eq!(check.packets, 100);
    let st = s.stats(Leg::B);
    assert_eq!(
        (st.rtp_packets, st.dropped_source, st.dropped_payload_type),
        (100, 100, 50)
    );
    let latched: Vec<_> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Latched {
                leg: Leg::B, addr, ..
            } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(latched, [br1, br2]);
}

#[test]
fn rtcp_mux_and_non_mux_in_all_combinations() {
    for (mux_a, mux_b) in [(false, false), (true, true), (true, false), (false, true)] {
        let t0 = Instant::now();
        let mut s = call(t0, mux_a, mux_b, RelayConfig::default());
        let a = addr("203.0.113.10:40000");
        let a_rtcp = if mux_a { a } else { addr("203.0.113.10:40001") };
        let b = addr("198.51.100.20:5004");
        let b_rtcp = if mux_b { b } else { addr("198.51.100.20:5005") };
        let a_rtcp_port = if mux_a { A_PORT } else { A_PORT + 1 };
        let b_rtcp_port = if mux_b { B_PORT } else { B_PORT + 1 };
        s.handle_packet(t0, A_PORT, a, &rtp(0, 1, 1000, 0xA))
            .unwrap();
        s.handle_packet(t0, B_PORT, b, &rtp(0, 1, 2000, 0xB))
            .unwrap();
        drain(&mut s);
        s.handle_packet(t0, a_rtcp_port, a_rtcp, &sr(0xA, 1000))
            .unwrap();
        s.handle_packet(t0, b_rtcp_port, b_rtcp, &sr(0xB, 2000))
            .unwrap();
        let tx = drain(&mut s);
        assert_eq!(tx.len(), 2);
        assert_eq!(
            (tx[0].from_port, tx[0].to),
            (b_rtcp_port, b_rtcp),
            "mux {mux_a}/{mux_b}"
        );
        assert_eq!(
            (tx[1].from_port, tx[1].to),
            (a_rtcp_port, a_rtcp),
            "mux {mux_a}/{mux_b}"
        );
        assert_eq!(field_u32(&tx[0].bytes, 4), s.outgoing_ssrc(Leg::A));
        assert_eq!(field_u32(&tx[1].bytes, 4), s.outgoing_ssrc(Leg::B));
        assert_eq!(
            &tx[0].bytes[28..],
            &sr(0xA, 1000)[28..],
            "SDES passes unchanged"
        );
        assert_eq!(
            (s.stats(Leg::A).rtcp_packets, s.stats(Leg::B).rtcp_packets),
            (1, 1)
        );
        // On a non-muxed RTP port, RTCP-looking packets are still demultiplexed.
        if !mux_a {
            s.handle_packet(t0, A_PORT, a, &sr(0xA, 1000)).unwrap();
            assert_eq!(drain(&mut s)[0].from_port, b_rtcp_port);
        }
    }
}

#[test]
fn payload_type_mapping_per_direction() {
    let t0 = Instant::now();
    let a = LegConfig {
        ports: pair(A_PORT, true),
        remote_rtp: Some(addr("192.0.2.1:4000")),
        remote_rtcp: None,
        codecs: vec![
            Codec::new(111, "G722", 8000),
            Codec::new(0, "PCMU", 8000),
            Codec::new(126, "telephone-event", 8000),
            Codec::new(127, "opus", 48000),
            Codec::new(98, "iLBC", 8000),
        ],
    };
    let b = LegConfig {
        ports: pair(B_PORT, true),
        remote_rtp: Some(addr("192.0.2.2:4000")),
        remote_rtcp: None,
        codecs: vec![
            Codec::new(9, "G722", 8000),
            Codec::new(0, "PCMU", 8000),
            Codec::new(101, "telephone-event", 8000),
        ],
    };
    let mut s = RelaySession::new(t0, RelayConfig::default(), a, b, 1);
    let (pa, pb) = (addr("192.0.2.1:4000"), addr("192.0.2.2:4000"));
    for (from_pt, to_pt) in [(111u8, 9u8), (0, 0), (126, 101)] {
        s.handle_packet(t0, A_PORT, pa, &rtp(from_pt, 1, 1, 1))
            .unwrap();
        assert_eq!(drain(&mut s)[0].bytes[1] & 0x7f, to_pt);
    }
    for (from_pt, to_pt) in [(9u8, 111u8), (0, 0), (101, 126)] {
        let mut p = rtp(from_pt, 1, 1, 1);
        p[1] |= 0x80; // marker survives the mapping
        s.handle_packet(t0, B_PORT, pb, &p).unwrap();
        assert_eq!(drain(&mut s)[0].bytes[1], 0x80 | to_pt);
    }
    // A codec B lacks but the relay can decode is transcoded (to B's first
    // codec, G.722); one it cannot decode is dropped.
    assert_eq!(s.handle_packet(t0, A_PORT, pa, &rtp(127, 2, 2, 1)), Ok(()));
    assert_eq!(
        s.handle_packet(t0, A_PORT, pa, &rtp(98, 3, 3, 1)),
        Err(DropReason::UnknownPayloadType(98))
    );
    assert_eq!(
        s.handle_packet(t0, B_PORT, pb, &rtp(111, 2, 2, 1)),
        Err(DropReason::UnknownPayloadType(111))
    );
    assert_eq!(
        (
            s.stats(Leg::A).dropped_payload_type,
            s.stats(Leg::B).dropped_payload_type
        ),
        (1, 1)
    );
}

#[test]
fn inactivity_fires_at_the_exact_instant_and_not_on_hold() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(30);
    let cfg = RelayConfig {
        inactivity_timeout: timeout,
        relatch_after: Duration::from_secs(2),
    };
    let mut s = call(t0, true, true, cfg);
    let a = addr("203.0.113.10:40000");
    let mut last = t0;
    for i in 0..500u32 {
        last = t0 + FRAME * i;
        s.handle_packet(last, A_PORT, a, &rtp(0, i as u16, i * 160, 0xA))
            .unwrap();
    }
    drain(&mut s);
    events(&mut s);
    // Virtual clock: jump to each deadline the session asks for.
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, last + timeout);
    s.handle_timeout(deadline - Duration::from_nanos(1));
    assert_eq!(s.poll_event(), None);
    s.handle_timeout(deadline);
    assert_eq!(s.poll_event(), Some(Event::Inactive { since: last }));
    assert_eq!(s.poll_timeout(), None);
    // Media resumes: the timer re-arms; then hold suspends it for hours.
    let t1 = deadline + Duration::from_secs(1);
    s.handle_packet(t1, A_PORT, a, &rtp(0, 600, 600 * 160, 0xA))
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(t1 + timeout));
    s.set_on_hold(t1, true);
    for h in 1..=3 {
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(t1 + Duration::from_secs(3600 * h));
    }
    assert_eq!(s.poll_event(), None);
    let t2 = t1 + Duration::from_secs(3 * 3600);
    s.set_on_hold(t2, false);
    let d = s.poll_timeout().unwrap();
    assert_eq!(d, t2 + timeout);
    s.handle_timeout(d);
    assert_eq!(events(&mut s), [Event::Inactive { since: t2 }]);
}

/// Deterministic xorshift64 (the core draws no randomness; tests bring their own).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn port_allocator_ten_thousand_sessions_leak_free() {
    let t0 = Instant::now();
    // 499 pairs: an odd count, so a call can get its first pair but not its second.
    let mut ports = PortAllocator::new(20000, 20997, false).unwrap();
    assert_eq!(ports.capacity(), 499);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut live: Vec<RelaySession> = Vec::new();
    let mut taken: HashSet<u16> = HashSet::new();
    let (mut created, mut exhausted, mut half_failed) = (0u32, 0u32, 0u32);
    let take = |taken: &mut HashSet<u16>, p: PortPair| {
        assert!(taken.insert(p.rtp), "port {} handed out twice", p.rtp);
        assert!(taken.insert(p.rtcp.unwrap()), "port handed out twice");
    };
    while created < 10_000 {
        if rng.next() % 100 < 55 {
            // Call set-up needs two pairs; if the second fails the first is released (503).
            let a = match ports.allocate() {
                Ok(a) => a,
                Err(e) => {
                    assert_eq!(e, MediaError::PortsExhausted { capacity: 499 });
                    assert_eq!(e.sip_status(), 503);
                    exhausted += 1;
                    continue;
                }
            };
            let Ok(b) = ports.allocate() else {
                assert!(ports.release(a));
                half_failed += 1;
                continue;
            };
            take(&mut taken, a);
            take(&mut taken, b);
            let leg = |p| LegConfig {
                ports: p,
                remote_rtp: None,
                remote_rtcp: None,
                codecs: pcmu(),
            };
            live.push(RelaySession::new(
                t0,
                RelayConfig::default(),
                leg(a),
                leg(b),
                u64::from(created),
            ));
            created += 1;
        } else if !live.is_empty() {
            // Any kind of call end (BYE, CANCEL, timeout) ends in into_ports.
            let i = (rng.next() % live.len() as u64) as usize;
            for p in live.swap_remove(i).into_ports() {
                assert!(ports.release(p));
                assert!(!ports.release(p), "double release is harmless");
                taken.remove(&p.rtp);
                taken.remove(&p.rtcp.unwrap());
            }
        }
        assert_eq!(ports.in_use(), live.len() * 2);
    }
    assert!(
        half_failed > 0,
        "exhaustion paths exercised: {exhausted} {half_failed}"
    );
    for s in live.drain(..) {
        for p in s.into_ports() {
            assert!(ports.release(p));
        }
    }
    assert_eq!(ports.in_use(), 0);
    // Everything is free again: exactly capacity allocations, all distinct.
    let all: HashSet<u16> = (0..499).map(|_| ports.allocate().unwrap().rtp).collect();
    assert_eq!(all.len(), 499);
    assert_eq!(
        ports.allocate(),
        Err(MediaError::PortsExhausted { capacity: 499 })
    );
}

fn sample_packets() -> Vec<Vec<u8>> {
    // RTP with 2 CSRCs, a header extension and padding.
    let mut full = vec![0xb2, 0x80, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    full.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 10, 0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
    full.extend_from_slice(&[7; 20]);
    full.extend_from_slice(&[0, 0, 0, 4]);
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 0xA];
    rr.extend_from_slice(&[0; 24]);
    vec![rtp(0, 1, 1, 1), full, sr(1, 1), rr]
}

#[test]
fn no_panic_on_truncated_and_mutated_packets() {
    let t0 = Instant::now();
    let mut rng = XorShift(42);
    let src = addr("192.0.2.7:7000");
    for mux in [false, true] {
        let (mut fed, mut ok) = (0u64, 0u64);
        let mut s = call(t0, mux, mux, RelayConfig::default());
        let ports = [A_PORT, A_PORT + 1, B_PORT, B_PORT + 1, 9];
        let mut feed = |s: &mut RelaySession, bytes: &[u8], port: u16| {
            fed += 1;
            if s.handle_packet(t0, port, src, bytes).is_ok() {
                ok += 1;
            }
            drain(s);
        };
        for p in sample_packets() {
            for port in ports {
                for cut in 0..=p.len() {
                    feed(&mut s, &p[..cut], port);
                }
                for _ in 0..2000 {
                    let mut m = p.clone();
                    for _ in 0..1 + rng.next() % 4 {
                        let i = (rng.next() % m.len() as u64) as usize;
                        m[i] ^= rng.next() as u8;
                    }
                    let cut = (rng.next() % (m.len() as u64 + 1)) as usize;
                    feed(&mut s, &m[..cut], port);
                }
            }
        }
        for _ in 0..5000 {
            let len = (rng.next() % 80) as usize;
            let g: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            feed(&mut s, &g, ports[(rng.next() % 5) as usize]);
        }
        // Every packet is accounted for exactly once.
        let counted: u64 = [Leg::A, Leg::B]
            .iter()
            .map(|&l| {
                let st = s.stats(l);
                st.rtp_packets
                    + st.rtcp_packets
                    + st.dropped_malformed
                    + st.dropped_source
                    + st.dropped_payload_type
                    + st.dropped_no_destination
            })
            .sum::<u64>()
            + s.unknown_port_drops();
        assert_eq!(counted, fed, "every packet counted once (mux {mux})");
        let relayed: u64 = [Leg::A, Leg::B]
            .iter()
            .map(|&l| s.stats(l).rtp_packets + s.stats(l).rtcp_packets)
            .sum();
        assert_eq!(relayed, ok);
        assert!(relayed > 0, "some mutations stay valid and are relayed");
        assert!(s.stats(Leg::A).dropped_malformed > 1000);
    }
}

/// RR from A with one report block about `about`, extended highest seq `ext_seq`.
fn rr_about(ssrc: u32, about: u32, ext_seq: u32) -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&about.to_be_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&ext_seq.to_be_bytes());
    v.extend_from_slice(&[0; 12]);
    v
}

#[test]
fn rtcp_follows_the_rewritten_streams_across_a_source_switch() {
    let t0 = Instant::now();
    let mut s = call(t0, true, true, RelayConfig::default());
    let (a, b) = (addr("203.0.113.10:40000"), addr("198.51.100.20:5004"));
    let mut check = StreamCheck::default();
    let t = feed_b(&mut s, &mut check, t0, 10, b, 0x1111, 100, 0);
    s.relatch(Leg::B);
    let b2 = addr("198.51.100.21:5004");
    let t = feed_b(&mut s, &mut check, t, 10, b2, 0x2222, 5000, 1_000_000);
    let (_, last_seq, last_ts, _) = check.last.unwrap();
    assert_eq!(last_seq, 119);
    // A reports on the stream it receives (our SSRC, our sequence space) ...
    s.handle_packet(
        t,
        A_PORT,
        a,
        &rr_about(
            0xA,
            s.outgoing_ssrc(Leg::B),
            0x0001_0000 | u32::from(last_seq),
        ),
    )
    .unwrap();
    let tx = drain(&mut s).pop().unwrap();
    assert_eq!((tx.from_port, tx.to), (B_PORT, b2));
    // ... and B sees a report about its own SSRC, in its own sequence space.
    assert_eq!(field_u32(&tx.bytes, 8), 0x2222);
    assert_eq!(field_u32(&tx.bytes, 16), 0x0001_0000 | 5009);
    // B's SR gets our SSRC and a timestamp in the stream's rewritten time base.
    s.handle_packet(t, B_PORT, b2, &sr(0x2222, 1_000_000 + 9 * 160))
        .unwrap();
    let tx = drain(&mut s).pop().unwrap();
    assert_eq!((tx.from_port, tx.to), (A_PORT, a));
    assert_eq!(field_u32(&tx.bytes, 4), s.outgoing_ssrc(Leg::B));
    assert_eq!(field_u32(&tx.bytes, 16), last_ts);
}
