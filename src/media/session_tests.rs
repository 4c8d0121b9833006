//! Unit tests of [`super::RelaySession`]; the long simulated calls live in
//! `tests/media_relay.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use super::rtp::write_rtp_header;
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80; 12];
    write_rtp_header(&mut v, pt, seq, ts, ssrc);
    v.extend_from_slice(&[0xff; 160]);
    v
}

fn rr(ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 201, 0, 1];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v
}

fn session(t: std::time::Instant, mux: bool) -> RelaySession {
    let pair = |rtp: u16| PortPair {
        rtp,
        rtcp: (!mux).then_some(rtp + 1),
    };
    let pcmu = vec![Codec::new(0, "PCMU", 8000)];
    let a = LegConfig {
        ports: pair(20000),
        remote_rtp: Some(addr("10.0.0.1:4000")),
        remote_rtcp: None,
        codecs: pcmu.clone(),
    };
    let b = LegConfig {
        ports: pair(20002),
        remote_rtp: None,
        remote_rtcp: None,
        codecs: pcmu,
    };
    RelaySession::new(t, RelayConfig::default(), a, b, 1)
}

#[test]
fn routes_by_port_and_counts_drops() {
    let t = test_epoch();
    let mut s = session(t, false);
    assert_ne!(s.outgoing_ssrc(Leg::A), s.outgoing_ssrc(Leg::B));
    assert_eq!(
        s.handle_packet(t, 9999, addr("1.2.3.4:5"), &rtp(0, 1, 1, 1)),
        Err(DropReason::UnknownPort(9999))
    );
    assert_eq!(s.unknown_port_drops(), 1);
    // B has no SDP address and has not latched: A's media has nowhere to go.
    assert_eq!(
        s.handle_packet(t, 20000, addr("1.2.3.4:5"), &rtp(0, 1, 1, 1)),
        Err(DropReason::NoDestination)
    );
    assert_eq!(s.stats(Leg::A).dropped_no_destination, 1);
    assert_eq!(
        s.poll_event(),
        Some(Event::Latched {
            leg: Leg::A,
            component: Component::Rtp,
            addr: addr("1.2.3.4:5")
        })
    );
    // B sends: goes to A's latched address from A's port.
    s.handle_packet(t, 20002, addr("5.6.7.8:9"), &rtp(0, 7, 7, 7))
        .unwrap();
    let tx = s.poll_transmit().unwrap();
    assert_eq!((tx.from_port, tx.to), (20000, addr("1.2.3.4:5")));
    assert_eq!(&tx.bytes[8..12], &s.outgoing_ssrc(Leg::B).to_be_bytes());
    assert_eq!(s.stats(Leg::B).rtp_packets, 1);
    assert_eq!(s.stats(Leg::B).rtp_bytes, 172);
    assert_eq!(
        s.handle_packet(t, 20002, addr("5.6.7.8:9"), &[0x80, 0]),
        Err(DropReason::Malformed(Malformed::TooShort))
    );
    assert_eq!(
        s.handle_packet(t, 20002, addr("5.6.7.8:9"), &rtp(8, 8, 8, 7)),
        Err(DropReason::UnknownPayloadType(8))
    );
    assert_eq!(
        s.handle_packet(t, 20002, addr("5.6.7.8:1"), &rtp(0, 8, 8, 7)),
        Err(DropReason::UnexpectedSource)
    );
    let st = s.stats(Leg::B);
    assert_eq!(
        (
            st.dropped_malformed,
            st.dropped_payload_type,
            st.dropped_source
        ),
        (1, 1, 1)
    );
}

#[test]
fn rtcp_goes_port_plus_one_or_muxed() {
    let t = test_epoch();
    for mux in [false, true] {
        let mut s = session(t, mux);
        let a_rtcp = if mux { 20000 } else { 20001 };
        let b_rtcp = if mux { 20002 } else { 20003 };
        s.handle_packet(t, 20002, addr("5.6.7.8:9"), &rtp(0, 1, 1, 0x77))
            .unwrap();
        s.poll_transmit().unwrap();
        s.handle_packet(t, a_rtcp, addr("10.0.0.1:4001"), &rr(0x99))
            .unwrap();
        let tx = s.poll_transmit().unwrap();
        // Toward B from B's RTCP port; B's RTCP flow has not latched yet, so when
        // not muxed it goes to B's latched RTP address + 1 (RFC 3550 §11).
        let expect = if mux {
            addr("5.6.7.8:9")
        } else {
            addr("5.6.7.8:10")
        };
        assert_eq!((tx.from_port, tx.to), (b_rtcp, expect));
        assert_eq!(&tx.bytes[4..8], &s.outgoing_ssrc(Leg::A).to_be_bytes());
        assert_eq!(s.stats(Leg::A).rtcp_packets, 1);
    }
}

#[test]
fn inactivity_and_hold() {
    let t0 = test_epoch();
    let mut s = session(t0, true);
    let timeout = RelayConfig::default().inactivity_timeout;
    assert_eq!(s.poll_timeout(), Some(t0 + timeout));
    s.handle_timeout(t0 + timeout - Duration::from_nanos(1));
    assert!(s.poll_event().is_none());
    s.set_on_hold(t0, true);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + timeout * 10);
    assert!(s.poll_event().is_none());
    let t1 = t0 + timeout * 10;
    s.set_on_hold(t1, false);
    s.handle_timeout(t1 + timeout);
    assert_eq!(s.poll_event(), Some(Event::Inactive { since: t1 }));
    assert_eq!(s.poll_timeout(), None, "fires once");
}

#[test]
fn huge_timeout_means_never_not_a_panic() {
    let t = test_epoch();
    let pair = PortPair {
        rtp: 20000,
        rtcp: None,
    };
    let leg = LegConfig {
        ports: pair,
        remote_rtp: None,
        remote_rtcp: None,
        codecs: vec![],
    };
    let cfg = RelayConfig {
        inactivity_timeout: Duration::MAX,
        relatch_after: Duration::MAX,
    };
    let mut s = RelaySession::new(
        t,
        cfg,
        leg.clone(),
        LegConfig {
            ports: PortPair {
                rtp: 20001,
                rtcp: None,
            },
            ..leg
        },
        0,
    );
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t + Duration::from_secs(86_400 * 365));
    assert_eq!(s.poll_event(), None);
    // relatch_after = MAX: a latched source is never replaced without relatch().
    s.handle_packet(t, 20000, addr("192.0.2.1:1"), &rtp(0, 1, 1, 1))
        .unwrap_err();
    assert_eq!(
        s.handle_packet(
            t + Duration::from_secs(3600),
            20000,
            addr("192.0.2.2:1"),
            &rtp(0, 1, 1, 1)
        ),
        Err(DropReason::UnexpectedSource)
    );
    s.relatch(Leg::A);
    assert_eq!(
        s.handle_packet(t, 20000, addr("192.0.2.2:1"), &rtp(0, 1, 1, 1)),
        Err(DropReason::UnknownPayloadType(0)),
        "latched, then dropped: no codecs negotiated"
    );
}

/// Leg A speaks SDES-SRTP, leg B plain RTP: A's packets reach B decrypted,
/// B's reach A encrypted under our key for A (RTP and muxed RTCP); forged,
/// replayed and plain packets from A are dropped and counted.
#[test]
fn srtp_leg_is_terminated_both_ways() {
    use super::srtp::{Context, MasterKey, SrtpError, SrtpKeys, Suite};
    let t = test_epoch();
    let mut s = session(t, true);
    let suite = Suite::AesCm128HmacSha1_80;
    let (theirs, ours) = (
        MasterKey::from_bytes(&[1; 30]),
        MasterKey::from_bytes(&[2; 30]),
    );
    s.set_srtp(
        Leg::A,
        Some(SrtpKeys {
            suite,
            remote: theirs.clone(),
            local: ours.clone(),
        }),
    );
    s.update_leg(
        Leg::B,
        Some(addr("10.0.0.2:6000")),
        None,
        vec![Codec::new(0, "PCMU", 8000)],
    );
    let mut client_tx = Context::new(suite, &theirs);
    let mut client_rx = Context::new(suite, &ours);
    let from_a = addr("10.0.0.1:4000");
    for seq in 1..=3u16 {
        let plain = rtp(0, seq, u32::from(seq) * 160, 0xaaaa);
        let mut p = plain.clone();
        client_tx.protect_rtp(&mut p).unwrap();
        s.handle_packet(t, 20000, from_a, &p).unwrap();
        let out = s.poll_transmit().unwrap();
        assert_eq!(out.to, addr("10.0.0.2:6000"));
        assert_eq!(out.bytes.len(), plain.len(), "tag removed");
        assert_eq!(out.bytes[12..], plain[12..], "payload decrypted");
        if seq == 3 {
            assert_eq!(
                s.handle_packet(t, 20000, from_a, &p),
                Err(DropReason::Srtp(SrtpError::Replayed))
            );
        }
    }
    assert_eq!(
        s.handle_packet(t, 20000, from_a, &rtp(0, 9, 9, 0xaaaa)),
        Err(DropReason::Srtp(SrtpError::AuthFailed)),
        "plain RTP from an SRTP leg"
    );
    assert_eq!(s.stats(Leg::A).dropped_srtp, 2);
    // B → A: protected with our key; the client decrypts it.
    let plain = rtp(0, 50, 8000, 0xbbbb);
    s.handle_packet(t, 20002, addr("10.0.0.2:6000"), &plain)
        .unwrap();
    let out = s.poll_transmit().unwrap();
    assert_eq!(out.to, from_a);
    assert_eq!(out.bytes.len(), plain.len() + 10);
    let mut p = out.bytes.to_vec();
    client_rx.unprotect_rtp(&mut p).unwrap();
    assert_eq!(p[12..], plain[12..]);
    // Muxed RTCP both ways: SRTCP from A arrives as RTCP at B, RTCP from B
    // reaches A as SRTCP.
    let mut c = rr(0xaaaa);
    client_tx.protect_rtcp(&mut c).unwrap();
    s.handle_packet(t, 20000, from_a, &c).unwrap();
    let out = s.poll_transmit().unwrap();
    assert_eq!(out.bytes.len(), 8);
    assert_eq!(out.bytes[1], 201);
    s.handle_packet(t, 20002, addr("10.0.0.2:6000"), &rr(0xbbbb))
        .unwrap();
    let mut p = s.poll_transmit().unwrap().bytes.to_vec();
    client_rx.unprotect_rtcp(&mut p).unwrap();
    assert_eq!(p.len(), 8);
    // Plain again: packets pass untouched.
    s.set_srtp(Leg::A, None);
    assert!(s.srtp_keys(Leg::A).is_none());
    s.handle_packet(t, 20000, from_a, &rtp(0, 10, 1600, 0xaaaa))
        .unwrap();
    assert_eq!(s.poll_transmit().unwrap().bytes.len(), 172);
}

/// An RR from `reporter` with one block about `about`, `lost`/256 lost.
fn rr_about(reporter: u32, about: u32, lost: u8) -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7];
    v.extend_from_slice(&reporter.to_be_bytes());
    v.extend_from_slice(&about.to_be_bytes());
    v.push(lost);
    v.extend_from_slice(&[0; 19]);
    v
}

/// RFC 3550 §6.4.1 reports from the Opus leg steer its encoder: no loss →
/// CELT frames (no in-band FEC to carry), 10 % lost → SILK/hybrid frames,
/// which carry FEC (RFC 6716 §2.1.7); the loss decays when reports clear.
#[test]
fn receiver_reports_turn_opus_fec_on_and_off() {
    use super::codec::g711::ulaw_encode;
    let t = test_epoch();
    let mux = |rtp: u16| PortPair { rtp, rtcp: None };
    let a = LegConfig {
        ports: mux(20000),
        remote_rtp: Some(addr("10.0.0.1:4000")),
        remote_rtcp: None,
        codecs: vec![Codec::new(111, "opus", 48000).with_fmtp("useinbandfec=1")],
    };
    let b = LegConfig {
        ports: mux(20002),
        remote_rtp: Some(addr("10.0.0.2:5000")),
        remote_rtcp: None,
        codecs: vec![Codec::new(0, "PCMU", 8000)],
    };
    let mut s = RelaySession::new(t, RelayConfig::default(), a, b, 7);
    let toward_a = s.outgoing_ssrc(Leg::B);
    let (from_a, from_b) = (addr("10.0.0.1:4000"), addr("10.0.0.2:5000"));
    let mut seq = 0u16;
    // 20 ms of a 440 Hz tone from B per call; the Opus packets sent to A.
    let mut frames_to_a = |s: &mut RelaySession, n: usize| -> Vec<bool> {
        let mut celt = Vec::new();
        for _ in 0..n {
            let now = t + Duration::from_millis(20 * u64::from(seq));
            let mut p = rtp(0, seq, u32::from(seq) * 160, 0xb0b);
            p.truncate(12);
            p.extend((0..160).map(|i| {
                let x = f64::from(u32::from(seq) * 160 + i) / 8000.0;
                ulaw_encode((8000.0 * (std::f64::consts::TAU * 440.0 * x).sin()) as i16)
            }));
            s.handle_packet(now, 20002, from_b, &p).unwrap();
            s.handle_timeout(now);
            seq += 1;
            while let Some(out) = s.poll_transmit() {
                if out.to == from_a && !super::rtp::is_rtcp(&out.bytes) {
                    // TOC configurations 16–31 are CELT-only (RFC 6716 §3.1).
                    celt.push(out.bytes[12] >> 3 >= 16);
                }
            }
        }
        celt
    };
    assert!(frames_to_a(&mut s, 10).iter().all(|&c| c));
    let now = t + Duration::from_millis(200);
    // A report about another source changes nothing.
    s.handle_packet(now, 20000, from_a, &rr_about(0xa, 0x1234, 128))
        .unwrap();
    assert!(frames_to_a(&mut s, 5).iter().all(|&c| c));
    s.handle_packet(now, 20000, from_a, &rr_about(0xa, toward_a, 26))
        .unwrap();
    let lossy = frames_to_a(&mut s, 10);
    assert!(lossy[2..].iter().all(|&c| !c), "{lossy:?}");
    // Clean reports: 10 % → 5 → 2 → 1 → 0, then CELT again.
    for _ in 0..3 {
        s.handle_packet(now, 20000, from_a, &rr_about(0xa, toward_a, 0))
            .unwrap();
    }
    assert!(frames_to_a(&mut s, 5).iter().all(|&c| !c));
    s.handle_packet(now, 20000, from_a, &rr_about(0xa, toward_a, 0))
        .unwrap();
    let clean = frames_to_a(&mut s, 10);
    assert!(clean[2..].iter().all(|&c| c), "{clean:?}");
}
