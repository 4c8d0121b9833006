//! The media plane with real UDP sockets on 127.0.0.1 (private ports 30740–30799):
//! relaying, events, bind failures and that closed sessions free their ports.

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

/// A plane with its control task running; events arrive on the receiver.
fn plane() -> (Arc<MediaPlane>, mpsc::UnboundedReceiver<(SessionId, Event)>) {
    let plane = MediaPlane::new(LOCAL);
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: EventSink = Arc::new(move |s, e| {
        let _ = tx.send((s, e));
    });
    tokio::spawn(plane.clone().run(sink));
    (plane, rx)
}

fn command(plane: &MediaPlane, cmd: MediaCommand) {
    assert!(plane.queue(std::iter::once(cmd)));
    plane.apply_pending();
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

#[tokio::test]
async fn relays_real_datagrams_and_frees_its_ports() {
    let (plane, mut events) = plane();
    let (a, b, b_rtcp) = (endpoint().await, endpoint().await, endpoint().await);
    let (pa, pb) = (30740u16, 30742u16);
    command(
        &plane,
        MediaCommand::Open {
            session: 1,
            a: leg(pa, false, a.local_addr().unwrap(), None),
            b: leg(
                pb,
                false,
                b.local_addr().unwrap(),
                Some(b_rtcp.local_addr().unwrap()),
            ),
            ssrc_seed: 5,
            config: RelayConfig::default(),
        },
    );
    wait_for("4 ports bound", || {
        plane.bound_ports() == [pa, pa + 1, pb, pb + 1]
    })
    .await;

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

#[tokio::test]
async fn bind_failure_is_counted_and_the_rest_works() {
    let (plane, _events) = plane();
    let taken = std::net::UdpSocket::bind((LOCAL, 30750)).unwrap();
    let peer = endpoint().await;
    let to = peer.local_addr().unwrap();
    command(
        &plane,
        MediaCommand::Open {
            session: 2,
            a: leg(30750, true, to, None),
            b: leg(30751, true, to, None),
            ssrc_seed: 1,
            config: RelayConfig::default(),
        },
    );
    wait_for("one port bound", || plane.bound_ports() == [30751]).await;
    assert_eq!(plane.counters().bind_errors, 1);
    // Relaying toward the unbound leg fails to send: counted, not fatal.
    peer.send_to(&rtp(1, 7), (LOCAL, 30751)).await.unwrap();
    wait_for("send error counted", || plane.counters().send_errors == 1).await;
    command(&plane, MediaCommand::Close { session: 2 });
    wait_for("ports closed", || plane.bound_ports().is_empty()).await;
    std::net::UdpSocket::bind((LOCAL, 30751)).expect("30751 free again");
    drop(taken);
    plane.close_all();
}

#[tokio::test]
async fn inactivity_reaches_the_sink_and_close_all_frees_everything() {
    let (plane, mut events) = plane();
    let peer = endpoint().await.local_addr().unwrap();
    let config = RelayConfig {
        inactivity_timeout: Duration::from_millis(150),
        relatch_after: Duration::from_millis(50),
    };
    command(
        &plane,
        MediaCommand::Open {
            session: 3,
            a: leg(30760, true, peer, None),
            b: leg(30761, true, peer, None),
            ssrc_seed: 1,
            config,
        },
    );
    let (s, e) = tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .expect("inactivity in time")
        .unwrap();
    assert_eq!(s, 3);
    assert!(matches!(e, Event::Inactive { .. }), "{e:?}");
    // Unknown sessions are ignored and counted.
    command(&plane, MediaCommand::Close { session: 99 });
    assert_eq!(plane.counters().totals.ignored_commands, 1);
    assert_eq!(plane.bound_ports(), [30760, 30761]);
    plane.close_all();
    assert!(plane.bound_ports().is_empty());
    // Aborted readers are dropped by the runtime shortly after.
    wait_for("ports free after close_all", || {
        (30760..=30761).all(|p| std::net::UdpSocket::bind((LOCAL, p)).is_ok())
    })
    .await;
}
