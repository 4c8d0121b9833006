//! Properties checked by the fuzz targets; shared with `tests/parse_rfc4475.rs`,
//! which runs them over the RFC 4475 torture messages and their truncations
//! as a plain `cargo test`. Each includer uses only some of these.
#![allow(dead_code)]

use bytes::Bytes;
use callgate::sip::message::{Limits, parse_datagram, parse_stream_message};
use callgate::sip::transport::{FramingError, StreamFramer};

/// `parse_datagram` never panics; a message it accepts serializes to bytes
/// that parse again with the same number of header lines, and its typed
/// views never panic.
pub fn parse_datagram_roundtrip(data: &[u8]) {
    let limits = Limits::default();
    let Ok(msg) = parse_datagram(Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    let _ = (msg.top_via(), msg.vias(), msg.cseq(), msg.call_id());
    let _ = msg.max_forwards();
    // The fast tag and top-Via paths agree with the full parses.
    assert_eq!(
        msg.from_tag().as_deref(),
        msg.from_hdr().as_ref().and_then(|a| a.tag()),
        "From tag"
    );
    assert_eq!(
        msg.to_tag().as_deref(),
        msg.to_hdr().as_ref().and_then(|a| a.tag()),
        "To tag"
    );
    assert_eq!(
        msg.top_via().map(|v| v.branch().map(<[u8]>::to_vec)),
        msg.vias().first().map(|v| v.branch().map(<[u8]>::to_vec)),
        "top Via"
    );
    let _ = (msg.routes(), msg.record_routes(), msg.contacts());
    let again = match parse_datagram(msg.to_bytes(), &limits) {
        Ok(m) => m,
        Err(e) => panic!("serialized message does not re-parse: {:?}", e.error),
    };
    assert_eq!(
        again.headers.len(),
        msg.headers.len(),
        "header count changed"
    );
    assert_eq!(again.body, msg.body, "body changed");
}

/// Small limit so the size checks are reachable by the fuzzer.
const FRAMING_LIMIT: usize = 4096;

/// Everything a framer yields for `chunks` fed in order.
fn frame_all(chunks: &[&[u8]]) -> (Vec<Bytes>, Option<FramingError>) {
    let limits = Limits {
        max_message: FRAMING_LIMIT,
        ..Limits::default()
    };
    let mut f = StreamFramer::new(limits);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        loop {
            match f.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// The framer never panics, yields the same messages however the stream is
/// split (first byte picks the split point), never yields a message over the
/// limit or starting with CR/LF, and each framed message parses or fails
/// without panicking.
pub fn stream_framing(data: &[u8]) {
    let (whole, err_whole) = frame_all(&[data]);
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (split, err_split) = frame_all(&[&data[..cut], &data[cut..]]);
    if err_whole.is_none() && err_split.is_none() {
        assert_eq!(whole, split, "split at {cut} changed the framing");
    } else {
        // An error may be detected earlier or later, but the messages framed
        // before it agree.
        let n = whole.len().min(split.len());
        assert_eq!(whole[..n], split[..n], "split at {cut} changed the framing");
    }
    let limits = Limits::default();
    for m in &whole {
        assert!(m.len() <= FRAMING_LIMIT, "framed message over the limit");
        assert!(
            !matches!(m.first(), Some(b'\r' | b'\n')),
            "keep-alive not skipped"
        );
        let _ = parse_stream_message(m.clone(), &limits);
    }
}

/// The SDP parser never panics; an SDP it accepts re-parses from its own
/// serialization to the same bytes, and the rewrites a B2BUA applies to it
/// never panic.
pub fn sdp_roundtrip(data: &[u8]) {
    let Ok(sdp) = callgate::sdp::Sdp::parse(data) else {
        return;
    };
    let bytes = sdp.to_bytes();
    let again = match callgate::sdp::Sdp::parse(&bytes) {
        Ok(s) => s,
        Err(e) => panic!("serialized SDP does not re-parse: {e:?}"),
    };
    assert_eq!(again.to_bytes(), bytes, "SDP serialization is not stable");
    let stripped = callgate::sdp::strip_for_plain_rtp_trunk(&sdp);
    let _ = callgate::sdp::negotiated(&sdp, &stripped);
    let _ = callgate::sdp::filter_codecs(&sdp, |pt| pt.pt < 96);
}

/// The RTP and RTCP header parsers never panic on any packet.
pub fn rtp_headers(data: &[u8]) {
    let _ = callgate::media::rtp::parse_rtp(data);
    let _ = callgate::media::rtp::parse_rtcp(data);
    let _ = callgate::media::rtp::is_rtcp(data);
}

/// Loading a dial plan never panics, whatever the operator typed.
pub fn dialplan_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = callgate::dialplan::DialPlan::check_yaml_str(&text, "fuzz.yaml");
}

/// A transcoding media session (Opus/48000 + telephone-event/48000 on leg A,
/// PCMU + telephone-event/8000 on leg B, in-band DTMF detection on B) never
/// panics on any datagram on any of its ports, whatever the RTP header,
/// payload type, sequence, timestamp or payload says; timers keep running.
/// The first byte picks the port and the time step. Returns how many
/// datagrams the session sent (so callers can see it did work).
pub fn media_session(data: &[u8]) -> usize {
    use callgate::media::{
        Codec, DtmfMode, Leg, LegConfig, MediaCommand, MediaHost, PortPair, RelayConfig,
    };
    use std::time::{Duration, Instant};
    let Some((&ctl, rest)) = data.split_first() else {
        return 0;
    };
    let t0 = Instant::now();
    let mut sent = 0;
    let mut host = MediaHost::new();
    let leg = |rtp: u16, remote: &str, codecs: Vec<Codec>| LegConfig {
        ports: PortPair {
            rtp,
            rtcp: Some(rtp + 1),
        },
        remote_rtp: remote.parse().ok(),
        remote_rtcp: None,
        codecs,
    };
    let a = leg(
        20000,
        "10.0.0.1:4000",
        vec![
            Codec::new(111, "opus", 48000).with_fmtp("useinbandfec=1"),
            Codec::new(110, "telephone-event", 48000),
        ],
    );
    let b = leg(
        20002,
        "10.0.0.2:6000",
        vec![
            Codec::new(0, "PCMU", 8000),
            Codec::new(101, "telephone-event", 8000),
        ],
    );
    let _ = host.apply(
        t0,
        MediaCommand::Open {
            session: 1,
            a,
            b,
            ssrc_seed: 7,
            config: RelayConfig::default(),
        },
    );
    let _ = host.apply(
        t0,
        MediaCommand::SetDtmfMode {
            session: 1,
            leg: Leg::B,
            mode: DtmfMode::Inband,
        },
    );
    let port = [20000u16, 20001, 20002, 20003][usize::from(ctl & 3)];
    let from = if ctl & 4 == 0 {
        "10.0.0.1:4000"
    } else {
        "10.0.0.2:6000"
    };
    let Ok(from) = from.parse() else { return 0 };
    let mut now = t0;
    // The input as several packets: split on 0xFF 0xFF, each sent 20 ms apart.
    for chunk in rest.split(|&b| b == 0xFF).take(64) {
        now += Duration::from_millis(u64::from(ctl >> 3) + 1);
        let _ = host.handle_packet(now, port, from, chunk);
        host.handle_timeout(now);
        while host.poll_transmit().is_some() {
            sent += 1;
        }
        while host.poll_event().is_some() {}
    }
    host.handle_timeout(now + Duration::from_secs(60));
    let _ = host.apply(now, MediaCommand::Close { session: 1 });
    sent
}

/// SIP INFO DTMF bodies and RFC 4733 event payloads never panic; an INFO
/// body we build parses back to its digit.
pub fn dtmf_payloads(data: &[u8]) {
    for ct in ["application/dtmf-relay", "application/dtmf", "text/plain"] {
        let _ = callgate::dtmf::info::parse(ct, data);
    }
    let _ = callgate::dtmf::event::EventPayload::parse(data);
    if let Some(d) = data
        .first()
        .and_then(|b| callgate::dtmf::Digit::from_event(b % 16))
    {
        let body = callgate::dtmf::info::build_relay(d, 160);
        let back = callgate::dtmf::info::parse("application/dtmf-relay", body.as_bytes());
        assert_eq!(back.map(|i| i.digit).ok(), Some(d));
    }
}

/// SRTP/SRTCP unprotect never panics on any datagram (first byte: suite,
/// RTP or RTCP, and which byte to flip). The rest, when it is a valid RTP
/// header + payload (or RTCP), is also protected and must come back
/// unchanged, while a copy with one byte flipped or cut short must be
/// refused.
pub fn srtp_unprotect(data: &[u8]) {
    use callgate::media::srtp::{Context, MasterKey, Suite};
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(ctl & 1)];
    let rtcp = ctl & 2 != 0;
    let key = MasterKey::from_bytes(&[0x5a; 30]);
    let mut rx = Context::new(suite, &key);
    let unprotect = |c: &mut Context, p: &mut Vec<u8>| {
        if rtcp {
            c.unprotect_rtcp(p)
        } else {
            c.unprotect_rtp(p)
        }
    };
    // Arbitrary bytes: refused or accepted, never a panic.
    let mut any = rest.to_vec();
    if unprotect(&mut rx, &mut any).is_ok() {
        assert!(any.len() < rest.len(), "a tag was removed");
    }
    // Our own protection of the same bytes round-trips; tampering fails.
    let mut tx = Context::new(suite, &key);
    let mut p = rest.to_vec();
    let protected = if rtcp {
        tx.protect_rtcp(&mut p)
    } else {
        tx.protect_rtp(&mut p)
    };
    if protected.is_err() {
        return;
    }
    let mut flipped = p.clone();
    let at = usize::from(ctl >> 2) * 7 % flipped.len();
    flipped[at] ^= 0x01;
    let mut rx = Context::new(suite, &key);
    assert!(
        unprotect(&mut rx, &mut flipped).is_err(),
        "flipped byte {at} accepted"
    );
    let mut short = p[..p.len() - 1].to_vec();
    assert!(
        unprotect(&mut rx, &mut short).is_err(),
        "truncated packet accepted"
    );
    let mut ok = p.clone();
    unprotect(&mut rx, &mut ok).expect("our own packet unprotects");
    assert_eq!(ok, rest, "round trip");
    assert!(unprotect(&mut rx, &mut p).is_err(), "replay accepted");
}
