//! The media plane with real UDP sockets on 127.0.0.1 (private ports 30740–30799
//! with the tokio readers, 30840–30899 with io_uring): ports bound before
//! `apply_pending` returns, relaying, events, bind failures and that closed
//! sessions free their ports. Every test runs on both receive paths; the
//! planes sharing a driver thread (30890–30899) need io_uring.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::*;
use crate::media::rtp::write_rtp_header;
use crate::media::{Codec, Component, Leg, LegConfig, PortPair, RelayConfig};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80; 12];
    write_rtp_header(&mut v, 0, seq, u32::from(seq) * 160, ssrc);
    v.extend_from_slice(&[0xd5; 160]);
    v
}

fn leg(rtp: u16, mux: bool, remote: SocketAddr, rtcp: Option<SocketAddr>) -> LegConfig {
    LegConfig {
        ports: PortPair {
            rtp,
            rtcp: (!mux).then_some(rtp + 1),
        },
        remote_rtp: Some(remote),
        remote_rtcp: rtcp,
        codecs: vec![Codec::new(0, "PCMU", 8000)],
    }
}

/// Runs a test on the tokio path (ports as written) and on io_uring
/// (ports + 100).
macro_rules! both_paths {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn tokio() {
                super::$name(super::IoChoice::Tokio, 0).await;
            }
            #[tokio::test]
            async fn uring() {
                super::$name(super::IoChoice::Uring, 100).await;
            }
        }
    };
}

both_paths!(relays_real_datagrams_and_frees_its_ports);
both_paths!(ports_are_open_when_apply_pending_returns);
both_paths!(bind_failure_is_counted_and_the_rest_works);
both_paths!(inactivity_reaches_the_sink_and_close_all_frees_everything);
both_paths!(a_burst_larger_than_the_receive_buffers_is_relayed_in_order);

/// A plane on `io` with its control task running; events arrive on the
/// receiver. io_uring must really be used where the kernel allows it.
fn plane(io: IoChoice) -> (Arc<MediaPlane>, mpsc::UnboundedReceiver<(SessionId, Event)>) {
    let plane = MediaPlane::with_io(LOCAL, tokio::runtime::Handle::current(), io);
    if io == IoChoice::Uring && uring_enabled() {
        assert!(plane.uses_uring(), "io_uring is enabled here");
    }
    if io == IoChoice::Tokio {
        assert!(!plane.uses_uring());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: EventSink = Arc::new(move |s, e| {
        let _ = tx.send((s, e));
    });
    tokio::spawn(plane.clone().run(sink));
    (plane, rx)
}

/// Queue and apply one command; returns the ports that could not be bound.
fn command(plane: &Arc<MediaPlane>, cmd: MediaCommand) -> Vec<u16> {
    assert!(plane.queue(std::iter::once(cmd)));
    plane.apply_pending()
}

fn open(session: SessionId, a: LegConfig, b: LegConfig) -> MediaCommand {
    MediaCommand::Open {
        session,
        a,
        b,
        ssrc_seed: 5,
        config: RelayConfig::default(),
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("datagram relayed in time")
        .unwrap();
    (buf[..n].to_vec(), from)
}

async fn endpoint() -> UdpSocket {
    UdpSocket::bind((LOCAL, 0)).await.unwrap()
}

async fn relays_real_datagrams_and_frees_its_ports(io: IoChoice, off: u16) {
    let (plane, mut events) = plane(io);
    let (a, b, b_rtcp) = (endpoint().await, endpoint().await, endpoint().await);
    let (pa, pb) = (30740 + off, 30742 + off);
    let failed = command(
        &plane,
        open(
            1,
            leg(pa, false, a.local_addr().unwrap(), None),
            leg(
                pb,
                false,
                b.local_addr().unwrap(),
                Some(b_rtcp.local_addr().unwrap()),
            ),
        ),
    );
    assert!(failed.is_empty());
    assert_eq!(plane.bound_ports(), [pa, pa + 1, pb, pb + 1]);

    for seq in 1..=3 {
        a.send_to(&rtp(seq, 0xAAAA), (LOCAL, pa)).await.unwrap();
        let (bytes, from) = recv(&b).await;
        assert_eq!(
            from,
            SocketAddr::new(LOCAL, pb),
            "symmetric: sent from B's port"
        );
        assert_eq!(bytes.len(), 172);
        assert_ne!(&bytes[8..12], &0xAAAAu32.to_be_bytes(), "SSRC rewritten");
    }
    b.send_to(&rtp(9, 0xBBBB), (LOCAL, pb)).await.unwrap();
    let (_, from) = recv(&a).await;
    assert_eq!(from, SocketAddr::new(LOCAL, pa));
    let mut rr = vec![0x80, 201, 0, 1];
    rr.extend_from_slice(&0xAAAAu32.to_be_bytes());
    a.send_to(&rr, (LOCAL, pa + 1)).await.unwrap();
    let (_, from) = recv(&b_rtcp).await;
    assert_eq!(
        from,
        SocketAddr::new(LOCAL, pb + 1),
        "RTCP from B's RTCP port"
    );

    let [ab, ba] = plane.stats(1).unwrap();
    assert_eq!((ab.rtp_packets, ab.rtp_bytes, ab.rtcp_packets), (3, 516, 1));
    assert_eq!(ba.rtp_packets, 1);
    let (s, e) = events.recv().await.unwrap();
    assert_eq!(s, 1);
    assert_eq!(
        e,
        Event::Latched {
            leg: Leg::A,
            component: Component::Rtp,
            addr: a.local_addr().unwrap()
        }
    );

    command(&plane, MediaCommand::Close { session: 1 });
    wait_for("ports closed", || plane.bound_ports().is_empty()).await;
    for port in pa..=pb + 1 {
        std::net::UdpSocket::bind((LOCAL, port))
            .unwrap_or_else(|e| panic!("port {port} still bound: {e}"));
    }
    let c = plane.counters();
    assert_eq!((c.totals.rtp_packets, c.totals.rtcp_packets), (4, 1));
    assert_eq!((c.ports_in_use, c.bind_errors, c.send_errors), (0, 0, 0));
    plane.close_all();
}

/// The shard applies the commands, then transmits the SIP message whose SDP
/// names the ports; a peer may send RTP the instant it reads it. So the
/// ports must be open when `apply_pending` returns, also when it runs on a
/// SIP reader thread outside any tokio runtime. (When the control task bound
/// them later, this first packet met a closed port and was lost.)
async fn ports_are_open_when_apply_pending_returns(io: IoChoice, off: u16) {
    let (plane, _events) = plane(io);
    let (a, b) = (endpoint().await, endpoint().await);
    let (pa, pb) = (30770 + off, 30772 + off);
    let cmd = open(
        4,
        leg(pa, false, a.local_addr().unwrap(), None),
        leg(pb, false, b.local_addr().unwrap(), None),
    );
    let p = plane.clone();
    // Neither the control task nor any reader runs until this test awaits.
    let failed = std::thread::spawn(move || {
        let failed = command(&p, cmd);
        // Sent at once from this thread, as a peer would on reading the SDP.
        let peer = std::net::UdpSocket::bind((LOCAL, 0)).unwrap();
        let first = rtp(1, 0xAAAA);
        peer.send_to(&first, (LOCAL, pa)).unwrap();
        peer.send_to(&rtp(2, 0xAAAA), (LOCAL, pa)).unwrap();
        failed
    })
    .join()
    .unwrap();
    assert!(failed.is_empty());
    assert_eq!(plane.bound_ports(), [pa, pa + 1, pb, pb + 1]);
    for seq in 1..=2u16 {
        let (bytes, from) = recv(&b).await;
        assert_eq!(from, SocketAddr::new(LOCAL, pb));
        assert_eq!(
            &bytes[2..4],
            &seq.to_be_bytes(),
            "packet {seq} relayed, in order"
        );
    }
    assert_eq!(plane.stats(4).unwrap()[0].rtp_packets, 2);
    // Closing and at once reopening the same ports (a new call taking them)
    // works even while the closed readers still hold their sockets.
    command(&plane, MediaCommand::Close { session: 4 });
    let failed = command(
        &plane,
        open(
            5,
            leg(pa, false, a.local_addr().unwrap(), None),
            leg(pb, false, b.local_addr().unwrap(), None),
        ),
    );
    assert!(failed.is_empty(), "{failed:?}");
    a.send_to(&rtp(3, 0xAAAA), (LOCAL, pa)).await.unwrap();
    let (bytes, _) = recv(&b).await;
    assert_eq!(&bytes[2..4], &3u16.to_be_bytes());
    assert_eq!(plane.stats(5).unwrap()[0].rtp_packets, 1);
    command(&plane, MediaCommand::Close { session: 5 });
    wait_for("ports closed", || plane.bound_ports().is_empty()).await;
    assert_eq!(plane.counters().bind_errors, 0);
    plane.close_all();
}

async fn bind_failure_is_counted_and_the_rest_works(io: IoChoice, off: u16) {
    let (plane, mut events) = plane(io);
    let taken = std::net::UdpSocket::bind((LOCAL, 30750 + off)).unwrap();
    let peer = endpoint().await;
    let to = peer.local_addr().unwrap();
    let failed = command(
        &plane,
        open(
            2,
            leg(30750 + off, true, to, None),
            leg(30751 + off, true, to, None),
        ),
    );
    assert_eq!(
        failed,
        [(30750 + off)],
        "reported to the caller of apply_pending"
    );
    assert_eq!(plane.bound_ports(), [(30751 + off)]);
    assert_eq!(plane.counters().bind_errors, 1);
    // The session hears of it, so the B2BUA can end the call.
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s");
    assert_eq!(
        event,
        Some((2, Event::PortUnavailable { port: 30750 + off })),
        "the unbindable port reaches the sink"
    );
    // Relaying toward the unbound leg fails to send: counted, not fatal.
    peer.send_to(&rtp(1, 7), (LOCAL, 30751 + off))
        .await
        .unwrap();
    wait_for("send error counted", || plane.counters().send_errors == 1).await;
    command(&plane, MediaCommand::Close { session: 2 });
    wait_for("ports closed", || plane.bound_ports().is_empty()).await;
    std::net::UdpSocket::bind((LOCAL, 30751 + off)).expect("port free again");
    drop(taken);
    plane.close_all();
}

async fn inactivity_reaches_the_sink_and_close_all_frees_everything(io: IoChoice, off: u16) {
    let (plane, mut events) = plane(io);
    let peer = endpoint().await.local_addr().unwrap();
    let config = RelayConfig {
        inactivity_timeout: Duration::from_millis(150),
        relatch_after: Duration::from_millis(50),
    };
    command(
        &plane,
        MediaCommand::Open {
            session: 3,
            a: leg(30760 + off, true, peer, None),
            b: leg(30761 + off, true, peer, None),
            ssrc_seed: 1,
            config,
        },
    );
    assert_eq!(plane.bound_ports(), [(30760 + off), (30761 + off)]);
    let (s, e) = tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .expect("inactivity in time")
        .unwrap();
    assert_eq!(s, 3);
    assert!(matches!(e, Event::Inactive { .. }), "{e:?}");
    // Unknown sessions are ignored and counted.
    command(&plane, MediaCommand::Close { session: 99 });
    assert_eq!(plane.counters().totals.ignored_commands, 1);
    assert_eq!(plane.bound_ports(), [(30760 + off), (30761 + off)]);
    plane.close_all();
    assert!(plane.bound_ports().is_empty());
    // Aborted readers are dropped by the runtime shortly after.
    wait_for("ports free after close_all", || {
        (30760 + off..=30761 + off).all(|p| std::net::UdpSocket::bind((LOCAL, p)).is_ok())
    })
    .await;
}

/// 300 packets sent back to back on one port: more than the io_uring
/// driver's receive buffers (8 in unit tests), so its receive ends with
/// ENOBUFS and is re-armed mid-burst; every packet is relayed, in order.
async fn a_burst_larger_than_the_receive_buffers_is_relayed_in_order(io: IoChoice, off: u16) {
    let (plane, _events) = plane(io);
    let (a, b) = (endpoint().await, endpoint().await);
    socket2::SockRef::from(&b)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let (pa, pb) = (30780 + off, 30781 + off);
    let failed = command(
        &plane,
        open(
            6,
            leg(pa, true, a.local_addr().unwrap(), None),
            leg(pb, true, b.local_addr().unwrap(), None),
        ),
    );
    assert!(failed.is_empty());
    let sender = std::net::UdpSocket::bind((LOCAL, 0)).unwrap();
    const N: u16 = 300;
    for seq in 1..=N {
        sender.send_to(&rtp(seq, 0xAAAA), (LOCAL, pa)).unwrap();
    }
    let mut last = 0u16;
    for _ in 0..N {
        let (bytes, _) = recv(&b).await;
        let seq = u16::from_be_bytes([bytes[2], bytes[3]]);
        assert_eq!(seq, last + 1, "in order, none lost");
        last = seq;
    }
    let c = plane.counters();
    assert_eq!((c.totals.rtp_packets, c.send_errors), (u64::from(N), 0));
    plane.close_all();
}

fn uring_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "0")
}

/// Three planes (shards) on two io_uring driver threads (`--media-threads
/// 2`): planes 0 and 2 share the first, plane 1 has the second.
#[tokio::test]
async fn planes_are_spread_over_the_driver_threads() {
    let handle = tokio::runtime::Handle::current();
    let planes: Vec<_> = (0..3)
        .map(|_| MediaPlane::new(LOCAL, handle.clone()))
        .collect();
    start_io(&planes, 2, IoChoice::Uring);
    if uring_enabled() {
        let d: Vec<_> = planes.iter().map(|p| p.driver().unwrap()).collect();
        assert_eq!(
            (d[0].0, d[0].1),
            (d[2].0, 0),
            "planes 0 and 2 share a thread"
        );
        assert_eq!(d[2].1, 1);
        assert_ne!(d[1].0, d[0].0, "plane 1 on the other thread");
        assert_eq!(d[1].1, 0);
    }
    for p in &planes {
        p.close_all();
    }
}

/// Two planes on one io_uring driver thread (`--media-threads 1`, the
/// default): each relays its own session through its own host, and closing
/// one plane cancels only its receives: the other keeps relaying, and every
/// port is free once both are closed.
#[tokio::test]
async fn two_planes_share_one_driver_thread() {
    let handle = tokio::runtime::Handle::current();
    let planes = [
        MediaPlane::new(LOCAL, handle.clone()),
        MediaPlane::new(LOCAL, handle),
    ];
    start_io(&planes, 1, IoChoice::Uring);
    if uring_enabled() {
        let (d0, d1) = (planes[0].driver().unwrap(), planes[1].driver().unwrap());
        assert_eq!(
            (d0.0, d0.1, d1.1),
            (d1.0, 0, 1),
            "one thread, plane indices 0 and 1"
        );
    }
    for p in &planes {
        let sink: EventSink = Arc::new(|_, _| {});
        tokio::spawn(p.clone().run(sink));
    }
    let (a, b, c, d) = (
        endpoint().await,
        endpoint().await,
        endpoint().await,
        endpoint().await,
    );
    let addr = |s: &UdpSocket| s.local_addr().unwrap();
    for (plane, session, port, x, y) in [
        (&planes[0], 1, 30890, &a, &b),
        (&planes[1], 2, 30892, &c, &d),
    ] {
        let failed = command(
            plane,
            open(
                session,
                leg(port, true, addr(x), None),
                leg(port + 1, true, addr(y), None),
            ),
        );
        assert!(failed.is_empty());
    }
    // Each plane relays its own session, from its own port.
    a.send_to(&rtp(1, 0xA), (LOCAL, 30890)).await.unwrap();
    c.send_to(&rtp(1, 0xC), (LOCAL, 30892)).await.unwrap();
    assert_eq!(recv(&b).await.1, SocketAddr::new(LOCAL, 30891));
    assert_eq!(recv(&d).await.1, SocketAddr::new(LOCAL, 30893));
    assert_eq!(planes[0].stats(1).unwrap()[0].rtp_packets, 1);
    assert_eq!(planes[1].stats(2).unwrap()[0].rtp_packets, 1);
    assert!(planes[0].stats(2).is_none() && planes[1].stats(1).is_none());

    // Plane 0 closes (its ports come free); plane 1 still relays.
    planes[0].close_all();
    wait_for("plane 0's ports free", || {
        (30890..=30891).all(|p| std::net::UdpSocket::bind((LOCAL, p)).is_ok())
    })
    .await;
    for seq in 2..=3 {
        d.send_to(&rtp(seq, 0xD), (LOCAL, 30893)).await.unwrap();
        assert_eq!(recv(&c).await.1, SocketAddr::new(LOCAL, 30892));
    }
    assert_eq!(planes[1].stats(2).unwrap()[1].rtp_packets, 2);
    planes[1].close_all();
    wait_for("plane 1's ports free", || {
        (30892..=30893).all(|p| std::net::UdpSocket::bind((LOCAL, p)).is_ok())
    })
    .await;
}
