//! A whole anchored call through `MediaHost`, in simulated time, as the B2BUA
//! drives it: open with leg B's address unknown (early offer), answer
//! (UpdateLeg), RTP/RTCP both ways, hold and resume, close — after which every
//! port the session asked for is unbound again.
#![allow(clippy::disallowed_methods)] // one real Instant as the origin of virtual time

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callgate::media::rtp::write_rtp_header;
use callgate::media::{
    Codec, DropReason, Event, Leg, LegConfig, MediaCommand, MediaHost, PortAllocator, PortChange,
    RelayConfig, Transmit,
};

const FRAME: Duration = Duration::from_millis(20);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80; 12];
    write_rtp_header(&mut v, pt, seq, u32::from(seq) * 160, ssrc);
    v.extend_from_slice(&[0xd5; 160]);
    v
}

/// A minimal receiver report (RFC 3550 §6.4.2), no report blocks.
fn rr(ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 201, 0, 1];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v
}

fn transmits(h: &mut MediaHost) -> Vec<Transmit> {
    std::iter::from_fn(|| h.poll_transmit()).collect()
}

/// Applies port changes to a simulated set of bound sockets, checking order.
fn apply_ports(h: &mut MediaHost, bound: &mut HashSet<u16>) {
    while let Some(c) = h.poll_port_change() {
        match c {
            PortChange::Bind(p) => assert!(bound.insert(p), "{p} bound twice"),
            PortChange::Unbind(p) => assert!(bound.remove(&p), "{p} unbound while not bound"),
        }
    }
}

#[test]
fn whole_call_open_update_relay_hold_close() {
    let t0 = Instant::now();
    let mut alloc = PortAllocator::new(30000, 30099, false).unwrap();
    let mut h = MediaHost::new();
    let mut bound = HashSet::new();
    let pcmu = vec![
        Codec::new(0, "PCMU", 8000),
        Codec::new(101, "telephone-event", 8000),
    ];
    let (pa, pb) = (alloc.allocate().unwrap(), alloc.allocate().unwrap());
    let a_nat = addr("203.0.113.10:40000");
    let trunk = addr("198.51.100.20:5004");
    let config = RelayConfig {
        inactivity_timeout: Duration::from_secs(30),
        relatch_after: Duration::from_secs(2),
    };
    // INVITE from A (offer known), forwarded to the trunk: B's address unknown yet.
    h.apply(
        t0,
        MediaCommand::Open {
            session: 7,
            a: LegConfig {
                ports: pa,
                remote_rtp: Some(addr("10.0.0.1:4000")),
                remote_rtcp: None,
                codecs: pcmu.clone(),
            },
            b: LegConfig {
                ports: pb,
                remote_rtp: None,
                remote_rtcp: None,
                codecs: pcmu.clone(),
            },
            ssrc_seed: 99,
            config,
        },
    )
    .unwrap();
    apply_ports(&mut h, &mut bound);
    let expect: HashSet<u16> = [pa.rtp, pa.rtcp_port(), pb.rtp, pb.rtcp_port()].into();
    assert_eq!(bound, expect);
    assert_eq!(h.ports_in_use(), 4);

    // Early RTP from A has nowhere to go yet (counted, latched anyway).
    assert_eq!(
        h.handle_packet(t0, pa.rtp, a_nat, &rtp(0, 1, 0xA)),
        Err(DropReason::NoDestination)
    );
    assert_eq!(
        h.poll_event(),
        Some((
            7,
            Event::Latched {
                leg: Leg::A,
                component: callgate::media::Component::Rtp,
                addr: a_nat
            }
        ))
    );

    // 200 OK from the trunk: B's SDP.
    let t1 = t0 + Duration::from_secs(3);
    h.apply(
        t1,
        MediaCommand::UpdateLeg {
            session: 7,
            leg: Leg::B,
            remote_rtp: Some(trunk),
            remote_rtcp: None,
            codecs: pcmu,
        },
    )
    .unwrap();

    // 10 s of conversation at 50 packets/s each way, one RR each way a second.
    let mut now = t1;
    let (mut to_trunk, mut to_a) = (0u64, 0u64);
    for i in 0..500u16 {
        now += FRAME;
        h.handle_packet(now, pa.rtp, a_nat, &rtp(0, 2 + i, 0xA))
            .unwrap();
        h.handle_packet(now, pb.rtp, trunk, &rtp(0, 1000 + i, 0xB))
            .unwrap();
        if i % 50 == 0 {
            h.handle_packet(now, pa.rtcp_port(), addr("203.0.113.10:40001"), &rr(0xA))
                .unwrap();
            h.handle_packet(now, pb.rtcp_port(), addr("198.51.100.20:5005"), &rr(0xB))
                .unwrap();
        }
        for t in transmits(&mut h) {
            if t.to.ip() == trunk.ip() {
                assert_eq!(
                    t.from_port,
                    if t.to == trunk {
                        pb.rtp
                    } else {
                        pb.rtcp_port()
                    }
                );
                to_trunk += 1;
            } else {
                assert_eq!(t.to.ip(), a_nat.ip());
                assert_eq!(
                    t.from_port,
                    if t.to == a_nat {
                        pa.rtp
                    } else {
                        pa.rtcp_port()
                    }
                );
                to_a += 1;
            }
        }
        h.handle_timeout(now);
    }
    assert_eq!((to_trunk, to_a), (510, 510));
    let [ab, ba] = h.stats(7).unwrap();
    assert_eq!((ab.rtp_packets, ab.rtp_bytes), (500, 500 * 172));
    assert_eq!((ba.rtp_packets, ba.rtcp_packets), (500, 10));
    assert_eq!(ab.dropped_no_destination, 1);
    assert!(
        std::iter::from_fn(|| h.poll_event())
            .all(|(s, e)| s == 7 && matches!(e, Event::Latched { .. })),
        "only latching so far"
    );

    // Hold for ten minutes: silence is no inactivity.
    h.apply(
        now,
        MediaCommand::Hold {
            session: 7,
            on_hold: true,
        },
    )
    .unwrap();
    assert_eq!(h.poll_timeout().map(|t| t > now), Some(true));
    let resume = now + Duration::from_secs(600);
    h.handle_timeout(resume);
    assert!(!h.has_events());
    assert_eq!(h.poll_timeout(), None);
    h.apply(
        resume,
        MediaCommand::Hold {
            session: 7,
            on_hold: false,
        },
    )
    .unwrap();
    // Nobody speaks after resuming: inactivity after exactly the timeout.
    let deadline = h.poll_timeout().unwrap();
    assert_eq!(deadline, resume + config.inactivity_timeout);
    h.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!h.has_events());
    h.handle_timeout(deadline);
    assert_eq!(h.poll_event(), Some((7, Event::Inactive { since: resume })));

    // The B2BUA sends BYEs, releases its ports and closes the session.
    for p in [pa, pb] {
        assert!(alloc.release(p));
    }
    h.apply(deadline, MediaCommand::Close { session: 7 })
        .unwrap();
    apply_ports(&mut h, &mut bound);
    assert!(bound.is_empty(), "still bound: {bound:?}");
    assert_eq!((h.sessions(), h.ports_in_use()), (0, 0));
    h.handle_timeout(deadline + config.inactivity_timeout);
    assert_eq!(h.poll_timeout(), None);
    assert!(!h.has_events());
    let tot = h.totals();
    assert_eq!((tot.rtp_packets, tot.rtcp_packets), (1000, 20));
    assert_eq!(tot.rtp_bytes, 1000 * 172);
    assert_eq!(tot.ignored_commands, 0);
    // A late packet of the finished call is dropped, not relayed.
    assert_eq!(
        h.handle_packet(deadline, pa.rtp, a_nat, &rtp(0, 9, 0xA)),
        Err(DropReason::UnknownPort(pa.rtp))
    );
    assert!(h.poll_transmit().is_none());
}
