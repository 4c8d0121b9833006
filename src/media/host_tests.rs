//! Unit tests of [`super::MediaHost`]; a whole call lives in `tests/media_host.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::rtp::write_rtp_header;
use super::super::{Codec, LegConfig, PortPair, RelayConfig, test_epoch};
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut v = vec![0x80; 12];
    write_rtp_header(&mut v, 0, seq, u32::from(seq) * 160, 42);
    v.extend_from_slice(&[0xff; 160]);
    v
}

fn leg(rtp: u16, mux: bool, remote: Option<&str>) -> LegConfig {
    LegConfig {
        ports: PortPair {
            rtp,
            rtcp: (!mux).then_some(rtp + 1),
        },
        remote_rtp: remote.map(addr),
        remote_rtcp: None,
        codecs: vec![Codec::new(0, "PCMU", 8000)],
    }
}

fn open(session: SessionId, a: u16, b: u16, mux: bool) -> MediaCommand {
    MediaCommand::Open {
        session,
        a: leg(a, mux, Some("10.0.0.1:4000")),
        b: leg(b, mux, Some("10.0.0.2:4000")),
        ssrc_seed: session,
        config: RelayConfig::default(),
    }
}

fn changes(h: &mut MediaHost) -> Vec<PortChange> {
    std::iter::from_fn(|| h.poll_port_change()).collect()
}

#[test]
fn open_binds_and_close_unbinds_every_port() {
    let t = test_epoch();
    let mut h = MediaHost::new();
    h.apply(t, open(1, 30000, 30002, false)).unwrap();
    use PortChange::*;
    assert_eq!(
        changes(&mut h),
        [Bind(30000), Bind(30001), Bind(30002), Bind(30003)]
    );
    h.apply(t, open(2, 30004, 30005, true)).unwrap();
    assert_eq!(changes(&mut h), [Bind(30004), Bind(30005)]);
    assert_eq!((h.sessions(), h.ports_in_use()), (2, 6));
    h.apply(t, MediaCommand::Close { session: 1 }).unwrap();
    assert_eq!(
        changes(&mut h),
        [Unbind(30000), Unbind(30001), Unbind(30002), Unbind(30003)]
    );
    assert_eq!(h.session_ids().collect::<Vec<_>>(), [2]);
    assert_eq!(h.ports_in_use(), 2);
    assert!(h.stats(1).is_none() && h.stats(2).is_some());
}

#[test]
fn bad_commands_are_ignored_and_counted() {
    let t = test_epoch();
    let mut h = MediaHost::new();
    let close = |session| MediaCommand::Close { session };
    assert_eq!(
        h.apply(t, close(9)),
        Err(CommandRejected::UnknownSession(9))
    );
    let hold = MediaCommand::Hold {
        session: 9,
        on_hold: true,
    };
    assert_eq!(h.apply(t, hold), Err(CommandRejected::UnknownSession(9)));
    h.apply(t, open(1, 30000, 30002, false)).unwrap();
    assert_eq!(
        h.apply(t, open(1, 30010, 30012, false)),
        Err(CommandRejected::DuplicateSession(1))
    );
    assert_eq!(
        h.apply(t, open(2, 30002, 30010, false)),
        Err(CommandRejected::PortInUse(30002))
    );
    assert_eq!(
        h.apply(t, open(3, 30010, 30010, true)),
        Err(CommandRejected::PortInUse(30010)),
        "both legs on one port"
    );
    assert_eq!(h.totals().ignored_commands, 5);
    assert_eq!((h.sessions(), h.ports_in_use()), (1, 4));
    assert!(CommandRejected::PortInUse(7).to_string().contains('7'));
}

#[test]
fn packets_route_by_port_and_totals_survive_close() {
    let t = test_epoch();
    let mut h = MediaHost::new();
    h.apply(t, open(1, 30000, 30002, true)).unwrap();
    h.apply(t, open(2, 30004, 30006, true)).unwrap();
    let from = addr("192.0.2.1:5000");
    h.handle_packet(t, 30000, from, &rtp(1)).unwrap();
    let tx = h.poll_transmit().unwrap();
    assert_eq!((tx.from_port, tx.to), (30002, addr("10.0.0.2:4000")));
    assert_eq!(
        h.poll_event(),
        Some((
            1,
            Event::Latched {
                leg: Leg::A,
                component: super::super::Component::Rtp,
                addr: from
            }
        ))
    );
    h.handle_packet(t, 30006, addr("192.0.2.9:1"), &rtp(1))
        .unwrap();
    assert_eq!(h.poll_transmit().unwrap().from_port, 30004);
    assert_eq!(
        h.handle_packet(t, 30099, from, &rtp(2)),
        Err(DropReason::UnknownPort(30099))
    );
    assert!(h.handle_packet(t, 30000, from, b"junk").is_err());
    let [ab, ba] = h.stats(1).unwrap();
    assert_eq!(
        (ab.rtp_packets, ab.rtp_bytes, ab.dropped_malformed),
        (1, 172, 1)
    );
    assert_eq!(ba.rtp_packets, 0);
    h.apply(t, MediaCommand::Close { session: 1 }).unwrap();
    let tot = h.totals();
    assert_eq!((tot.rtp_packets, tot.rtp_bytes), (2, 344));
    assert_eq!((tot.dropped_unknown_port, tot.dropped_malformed), (1, 1));
    // Late packets of the closed session.
    assert_eq!(
        h.handle_packet(t, 30000, from, &rtp(3)),
        Err(DropReason::UnknownPort(30000))
    );
    assert_eq!(h.totals().dropped_unknown_port, 2);
}

#[test]
fn inactivity_fires_once_per_silence_and_hold_suspends_it() {
    let t0 = test_epoch();
    let limit = RelayConfig::default().inactivity_timeout;
    let mut h = MediaHost::new();
    assert_eq!(h.poll_timeout(), None);
    h.apply(t0, open(1, 30000, 30002, true)).unwrap();
    h.apply(t0 + limit / 2, open(2, 30004, 30006, true))
        .unwrap();
    assert_eq!(h.poll_timeout(), Some(t0 + limit));
    // Session 1 gets RTP: its deadline moves later, the heap entry stays early.
    let t1 = t0 + Duration::from_secs(10);
    h.handle_packet(t1, 30000, addr("192.0.2.1:5000"), &rtp(1))
        .unwrap();
    assert!(matches!(h.poll_event(), Some((1, Event::Latched { .. }))));
    h.handle_timeout(t0 + limit);
    assert!(!h.has_events(), "session 1 was active");
    assert_eq!(
        h.poll_timeout(),
        Some(t1 + limit),
        "re-armed at its deadline"
    );
    h.handle_timeout(t1 + limit);
    assert!(matches!(h.poll_event(), Some((1, Event::Inactive { .. }))));
    assert_eq!(h.poll_timeout(), Some(t0 + limit / 2 + limit));
    h.handle_timeout(t0 + limit / 2 + limit);
    assert!(matches!(h.poll_event(), Some((2, Event::Inactive { .. }))));
    assert_eq!(h.poll_timeout(), None, "fired sessions wait for RTP");
    // RTP again re-arms session 2; hold suspends it; resume restarts it.
    let t2 = t1 + limit * 2;
    h.handle_packet(t2, 30004, addr("192.0.2.5:5000"), &rtp(1))
        .unwrap();
    assert!(matches!(h.poll_event(), Some((2, Event::Latched { .. }))));
    assert_eq!(h.poll_timeout(), Some(t2 + limit));
    let hold = |on_hold| MediaCommand::Hold {
        session: 2,
        on_hold,
    };
    h.apply(t2, hold(true)).unwrap();
    h.handle_timeout(t2 + limit * 10);
    assert!(!h.has_events());
    assert_eq!(h.poll_timeout(), None);
    let t3 = t2 + limit * 11;
    h.apply(t3, hold(false)).unwrap();
    assert_eq!(h.poll_timeout(), Some(t3 + limit));
    // Closing leaves a stale entry that is discarded silently.
    h.apply(t3, MediaCommand::Close { session: 2 }).unwrap();
    h.handle_timeout(t3 + limit);
    assert!(!h.has_events());
    assert_eq!(h.poll_timeout(), None);
}

#[test]
fn reopened_id_is_not_fired_by_the_old_timer() {
    let t0 = test_epoch();
    let limit = RelayConfig::default().inactivity_timeout;
    let mut h = MediaHost::new();
    h.apply(t0, open(1, 30000, 30002, true)).unwrap();
    h.apply(t0, MediaCommand::Close { session: 1 }).unwrap();
    let t1 = t0 + limit / 2;
    h.apply(t1, open(1, 30000, 30002, true)).unwrap();
    h.handle_timeout(t0 + limit);
    assert!(!h.has_events(), "old generation's entry ignored");
    h.handle_timeout(t1 + limit);
    assert!(matches!(h.poll_event(), Some((1, Event::Inactive { .. }))));
}

#[test]
fn update_and_relatch_reach_the_session() {
    let t = test_epoch();
    let mut h = MediaHost::new();
    let mut cmd = open(1, 30000, 30002, true);
    if let MediaCommand::Open { b, .. } = &mut cmd {
        b.remote_rtp = None;
    }
    h.apply(t, cmd).unwrap();
    let a_src = addr("192.0.2.1:5000");
    assert_eq!(
        h.handle_packet(t, 30000, a_src, &rtp(1)),
        Err(DropReason::NoDestination)
    );
    h.apply(
        t,
        MediaCommand::UpdateLeg {
            session: 1,
            leg: Leg::B,
            remote_rtp: Some(addr("198.51.100.1:6000")),
            remote_rtcp: None,
            codecs: vec![Codec::new(0, "PCMU", 8000)],
        },
    )
    .unwrap();
    h.handle_packet(t, 30000, a_src, &rtp(2)).unwrap();
    assert_eq!(h.poll_transmit().unwrap().to, addr("198.51.100.1:6000"));
    // A new source on A is refused until a Relatch.
    let other = addr("192.0.2.2:5000");
    assert_eq!(
        h.handle_packet(t, 30000, other, &rtp(3)),
        Err(DropReason::UnexpectedSource)
    );
    h.apply(
        t,
        MediaCommand::Relatch {
            session: 1,
            leg: Leg::A,
        },
    )
    .unwrap();
    h.handle_packet(t, 30000, other, &rtp(4)).unwrap();
    assert_eq!(h.session(1).unwrap().rtp_destination(Leg::A), Some(other));
}

#[test]
fn a_thousand_sessions_keep_the_heap_small() {
    let t0 = test_epoch();
    let mut h = MediaHost::new();
    for i in 0..1000u16 {
        h.apply(t0, open(u64::from(i), 30000 + 2 * i, 30001 + 2 * i, true))
            .unwrap();
    }
    // 50 packets/s each for 10 s: the heap never grows past one entry a session.
    for tick in 0..500u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(tick));
        for i in 0..1000u16 {
            let from = addr("192.0.2.1:5000");
            h.handle_packet(now, 30000 + 2 * i, from, &rtp(tick))
                .unwrap();
        }
        while h.poll_transmit().is_some() {}
        h.handle_timeout(now);
    }
    assert!(h.timers.len() <= 1000, "heap has {}", h.timers.len());
    assert_eq!(h.totals().rtp_packets, 500_000);
}

#[test]
fn interworking_commands_play_through_the_timer_heap() {
    use crate::dtmf::RingbackPlan;
    let t = test_epoch();
    let mut h = MediaHost::new();
    h.apply(t, open(1, 30000, 30002, true)).unwrap();
    h.apply(t, open(2, 30004, 30006, true)).unwrap();
    // B of session 1 takes its digits in-band (it has no telephone-event
    // anyway); ringback toward A of session 2.
    h.apply(
        t,
        MediaCommand::SetDtmfMode {
            session: 1,
            leg: Leg::B,
            mode: crate::media::DtmfMode::Inband,
        },
    )
    .unwrap();
    h.apply(
        t,
        MediaCommand::SendDtmf {
            session: 1,
            leg: Leg::B,
            digit: '5',
            duration_ms: 100,
        },
    )
    .unwrap();
    h.apply(
        t,
        MediaCommand::Ringback {
            session: 2,
            leg: Leg::A,
            plan: Some(RingbackPlan::Eu),
        },
    )
    .unwrap();
    // Both start at once: one packet each, from the right ports.
    let first: Vec<Transmit> = std::iter::from_fn(|| h.poll_transmit()).collect();
    assert_eq!(first.len(), 2);
    assert!(
        first
            .iter()
            .any(|x| x.from_port == 30002 && x.to == addr("10.0.0.2:4000"))
    );
    assert!(
        first
            .iter()
            .any(|x| x.from_port == 30004 && x.to == addr("10.0.0.1:4000"))
    );
    // Then every 20 ms from the timer heap: the digit (100 ms + 40 ms gap),
    // the ringback until stopped.
    let mut per_port = std::collections::HashMap::new();
    let mut now = t;
    while let Some(next) = h
        .poll_timeout()
        .filter(|&n| n <= t + Duration::from_millis(400))
    {
        now = next;
        h.handle_timeout(now);
        while let Some(x) = h.poll_transmit() {
            *per_port.entry(x.from_port).or_insert(0) += 1;
        }
    }
    assert_eq!(
        per_port.get(&30002),
        Some(&6),
        "140 ms of tone and gap after the first"
    );
    assert_eq!(per_port.get(&30004), Some(&20), "ringback every 20 ms");
    h.apply(
        now,
        MediaCommand::Ringback {
            session: 2,
            leg: Leg::A,
            plan: None,
        },
    )
    .unwrap();
    h.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(h.poll_transmit(), None, "stopped");
    assert!(
        h.poll_timeout()
            .is_none_or(|d| d >= now + Duration::from_secs(20)),
        "only inactivity timers left"
    );
    let totals = h.totals();
    assert_eq!(totals.generated_packets, 2 + 6 + 20);
    assert_eq!(
        h.apply(
            now,
            MediaCommand::SendDtmf {
                session: 9,
                leg: Leg::A,
                digit: '1',
                duration_ms: 100
            }
        ),
        Err(CommandRejected::UnknownSession(9))
    );
}
