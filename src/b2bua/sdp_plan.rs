//! The SDP each leg sees: pure functions from what one leg sent to what the
//! other leg gets (RFC 3264 offer/answer across a B2BUA).
//!
//! ```text
//!   leg A offer ──anchor(pB)──filter/order(trunk codecs)──strip(plain RTP)──o=(leg B)──▶ leg B
//!   leg A      ◀──o=(leg A)──PTs renumbered to A's offer──anchor(pA)──────────────────── leg B answer
//! ```
//!
//! Only the first audio stream is anchored; every other m-line is refused
//! (port 0) toward the far leg, so the answer coming back refuses it too.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;

use crate::dialplan::TrunkPolicy;
use crate::media;
use crate::sdp::{self, Attribute, Direction, Sdp, SdpError};
use crate::sip::message::{HeaderName, Message};

/// The `o=` username the gateway puts in every SDP it writes.
pub(crate) const ORIGIN_USER: &str = "callgate";

/// The SDP body of `msg`, if it has one (RFC 3261 §20.15: no Content-Type
/// with a body is treated as SDP, which is what every peer means by it).
pub(crate) fn body_sdp(msg: &Message) -> Result<Option<Arc<Sdp>>, SdpError> {
    if msg.body.is_empty() {
        return Ok(None);
    }
    let is_sdp = msg.header(HeaderName::ContentType).is_none_or(|h| {
        let v = h.value();
        v.len() >= 15 && v[..15].eq_ignore_ascii_case(b"application/sdp")
    });
    if !is_sdp {
        return Ok(None);
    }
    Sdp::parse_shared(&msg.body).map(|s| Some(Arc::new(s)))
}

/// Index of the stream the gateway handles: the first audio m-line with a port.
pub(crate) fn audio_index(sdp: &Sdp) -> Option<usize> {
    sdp.media()
        .iter()
        .position(|m| m.media_line().media == "audio" && m.media_line().port != 0)
}

/// Where the leg that wrote `sdp` receives RTP (None for a hold or a refusal).
pub(crate) fn rtp_addr(sdp: &Sdp) -> Option<SocketAddr> {
    let i = audio_index(sdp)?;
    let c = sdp.media_connection(i)?;
    if c.is_hold() {
        return None;
    }
    Some(SocketAddr::new(c.ip()?, sdp.media()[i].media_line().port))
}

/// Where the leg that wrote `sdp` receives RTCP, when `a=rtcp` says (RFC 3605).
pub(crate) fn rtcp_addr(sdp: &Sdp) -> Option<SocketAddr> {
    let i = audio_index(sdp)?;
    let rtp = rtp_addr(sdp)?;
    sdp.media()[i].attributes().find_map(|a| match a {
        Attribute::Rtcp { port, connection } => {
            let ip = connection.as_ref().and_then(|c| c.ip()).unwrap_or(rtp.ip());
            Some(SocketAddr::new(ip, *port))
        }
        _ => None,
    })
}

/// The codecs of the handled stream, as the relay maps payload types, with
/// their `a=fmtp` and the stream's `a=ptime` (what the writer of `sdp` wants
/// to receive: the media plane encodes toward a leg by them).
pub(crate) fn codecs(sdp: &Sdp) -> Vec<media::Codec> {
    let Some(i) = audio_index(sdp) else {
        return Vec::new();
    };
    let m = &sdp.media()[i];
    let ptime = m.attributes().find_map(|a| match a {
        Attribute::Ptime(ms) => Some(*ms),
        _ => None,
    });
    m.payload_types()
        .iter()
        .map(|p| {
            media::Codec::new(p.pt, &p.encoding, p.clock_rate)
                .with_fmtp(p.fmtp.as_deref().unwrap_or(""))
                .with_ptime(ptime)
        })
        .collect()
}

/// The codecs of `ours` (an SDP we sent a leg) with the `a=fmtp` and
/// `a=ptime` the leg's own SDP (`peer`) gave for the same payload type: what
/// the media plane encodes toward that leg must follow the peer's
/// parameters (e.g. Opus `useinbandfec`, ptime 30), not our echo of them.
pub(crate) fn codecs_for_peer(ours: &Sdp, peer: &Sdp) -> Vec<media::Codec> {
    let theirs = codecs(peer);
    codecs(ours)
        .into_iter()
        .map(
            |c| match theirs.iter().find(|t| t.payload_type == c.payload_type) {
                Some(t) => {
                    let ptime = t.ptime.or(c.ptime);
                    c.with_fmtp(&t.fmtp).with_ptime(ptime)
                }
                None => c,
            },
        )
        .collect()
}

/// What a leg may send: the codecs of its answer (or our answer to it)
/// first, then any other codec of the offer exchanged on that leg. RFC 3264
/// says a side sends what the answer lists; peers that keep sending an
/// offered codec (SIPp's `uac_pcap` against a PCMU-only answer) are relayed
/// rather than silently dropped.
pub(crate) fn codecs_union(first: &Sdp, then: Option<&Sdp>) -> Vec<media::Codec> {
    let mut out = codecs(first);
    // An answer without telephone-event means no RFC 4733 on that leg
    // (the media plane then uses in-band tones or INFO): never add one back.
    let has_events = out.iter().any(media::Codec::is_telephone_event);
    for c in then.map(codecs).unwrap_or_default() {
        if c.is_telephone_event() && !has_events {
            continue;
        }
        if !out.iter().any(|o| o.payload_type == c.payload_type) {
            out.push(c);
        }
    }
    out
}

/// `PCMU/8000` style names of the handled stream (for `/calls`).
pub(crate) fn codec_names(sdp: &Sdp) -> Vec<String> {
    let Some(i) = audio_index(sdp) else {
        return Vec::new();
    };
    sdp.media()[i]
        .payload_types()
        .iter()
        .map(|p| format!("{}/{}", p.encoding, p.clock_rate))
        .collect()
}

/// Whether `sdp` puts the call on hold (sendonly, inactive, recvonly, or an
/// old-style `c=0.0.0.0`, RFC 3264 §8.4).
pub(crate) fn is_hold(sdp: &Sdp) -> bool {
    let Some(i) = audio_index(sdp) else {
        return false;
    };
    sdp.media_direction(i) != Direction::SendRecv
        || sdp.media_connection(i).is_some_and(|c| c.is_hold())
}

/// Our origin on one leg: a stable session id and the version of the last
/// SDP sent on that leg (RFC 3264 §8: +1 whenever the content changes).
#[derive(Debug, Clone)]
pub(crate) struct LegOrigin {
    pub sess_id: u64,
    pub last: Option<Sdp>,
}

impl LegOrigin {
    /// A leg whose `o=` session id is `sess_id`.
    pub fn new(sess_id: u64) -> LegOrigin {
        LegOrigin {
            sess_id,
            last: None,
        }
    }

    /// Stamps `sdp` with this leg's origin, bumping the version only when the
    /// content differs from the last SDP sent on the leg; remembers it.
    pub fn stamp(&mut self, sdp: &Sdp, addr: IpAddr) -> Sdp {
        let fresh = sdp::set_origin(sdp, ORIGIN_USER, self.sess_id, 1, addr);
        let out = match &self.last {
            Some(prev) => sdp::version_after(prev, &fresh),
            None => fresh,
        };
        self.last = Some(out.clone());
        out
    }
}

/// Refuses (port 0) every stream but the handled one.
fn only_audio(sdp: &Sdp, keep: Option<usize>) -> Sdp {
    let ports: Vec<u16> = sdp
        .media()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if Some(i) == keep {
                m.media_line().port
            } else {
                0
            }
        })
        .collect();
    sdp::set_ports(sdp, &ports)
}

/// Points the handled stream at `addr:port` and refuses the others.
pub(crate) fn anchored(sdp: &Sdp, addr: IpAddr, port: u16) -> Sdp {
    let keep = audio_index(sdp);
    let mut ports: Vec<u16> = sdp.media().iter().map(|m| m.media_line().port).collect();
    if let Some(i) = keep {
        ports[i] = port;
    }
    only_audio(&sdp::anchor(sdp, addr, &ports), keep)
}

/// Applies a trunk's codec list (filter + order; telephone-event and comfort
/// noise always kept) and, for plain-RTP trunks, strips ICE/SRTP/DTLS.
pub(crate) fn for_trunk(sdp: &Sdp, policy: &TrunkPolicy) -> Sdp {
    let mut out = sdp.clone();
    if !policy.codecs.is_empty() {
        out = sdp::filter_codecs(&out, |p| {
            !p.is_media()
                || policy
                    .codecs
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(&p.encoding))
        });
        let prefer: Vec<&str> = policy.codecs.iter().map(String::as_str).collect();
        out = sdp::order_codecs(&out, &prefer);
    }
    if policy.plain_rtp {
        out = sdp::strip_for_plain_rtp_trunk(&out);
    }
    out
}

/// Whether the gateway's media plane can decode and encode this codec.
fn transcodable(p: &sdp::PayloadType) -> bool {
    matches!(
        (p.encoding.to_ascii_uppercase().as_str(), p.clock_rate),
        ("PCMU", 8000) | ("PCMA", 8000) | ("G722", 8000) | ("OPUS", 48000)
    )
}

fn codec_named(name: &str) -> Option<sdp::Codec> {
    Some(match name.to_ascii_uppercase().as_str() {
        "PCMU" => sdp::Codec::pcmu(),
        "PCMA" => sdp::Codec::pcma(),
        "G722" => sdp::Codec::g722(),
        "OPUS" => sdp::Codec::opus(),
        _ => return None,
    })
}

/// The offer toward a trunk on an anchored call: the trunk's codec list
/// applied as [`for_trunk`] does, after adding the codecs the gateway can
/// transcode to that the caller lacks — the trunk's list, or G.711 when the
/// trunk has none and the caller offered no G.711 — plus
/// telephone-event/8000. The trunk then picks: a codec the caller offered
/// means pure relay, another one means transcoding (issue: "no common codec
/// → transcode instead of 488").
pub(crate) fn for_trunk_transcoding(sdp: &Sdp, policy: &TrunkPolicy) -> Sdp {
    let Some(i) = audio_index(sdp) else {
        return for_trunk(sdp, policy);
    };
    let offered = sdp.media()[i].payload_types();
    let mut add = Vec::new();
    if offered.iter().any(|p| p.is_media() && transcodable(p)) {
        if policy.codecs.is_empty() {
            let has_g711 = offered.iter().any(|p| {
                p.encoding.eq_ignore_ascii_case("PCMU") || p.encoding.eq_ignore_ascii_case("PCMA")
            });
            if !has_g711 {
                add.extend([sdp::Codec::pcmu(), sdp::Codec::pcma()]);
            }
        } else {
            add.extend(policy.codecs.iter().filter_map(|n| codec_named(n)));
        }
        if !offered
            .iter()
            .any(|p| p.is_telephone_event() && p.clock_rate == 8000)
        {
            add.push(sdp::Codec::telephone_event(8000));
        }
    }
    for_trunk(&sdp::add_codecs(sdp, i, &add), policy)
}

/// `sdp` plus the first media codec (and telephone-event) of `current`,
/// the SDP last sent on that leg, when missing (re-offers on a transcoded call).
pub(crate) fn with_codecs_of(sdp: &Sdp, current: &Sdp) -> Sdp {
    let (Some(i), Some(ci)) = (audio_index(sdp), audio_index(current)) else {
        return sdp.clone();
    };
    let add: Vec<sdp::Codec> = current.media()[ci]
        .payload_types()
        .into_iter()
        .filter(|p| transcodable(p) || p.is_telephone_event())
        .map(|p| sdp::Codec {
            encoding: p.encoding,
            clock_rate: p.clock_rate,
            channels: p.channels,
            fmtp: p.fmtp,
        })
        .collect();
    sdp::add_codecs(sdp, i, &add)
}

/// Whether leg B's answer kept a media codec the caller offered (relay) or
/// picked one only the gateway added (transcode).
pub(crate) fn shares_codec(answer: &Sdp, offer: &Sdp) -> bool {
    let (Some(ai), Some(oi)) = (audio_index(answer), audio_index(offer)) else {
        return true;
    };
    let offered = offer.media()[oi].payload_types();
    answer.media()[ai]
        .payload_types()
        .iter()
        .filter(|p| p.is_media())
        .take(1)
        .all(|p| offered.iter().any(|o| o.same_codec(p)))
}

/// The answer to the caller's offer when leg B chose a codec the caller
/// lacks: the caller's first transcodable codec (and a telephone-event
/// matching its clock rate), on our port, with B's direction (RFC 3264 §6).
pub(crate) fn transcoding_answer(
    offer: &Sdp,
    b_answer: &Sdp,
    addr: IpAddr,
    port: u16,
) -> Option<Sdp> {
    let oi = audio_index(offer)?;
    // Answered as plain RTP here; the caller's SDES profile and our key
    // are put back by `srtp::secure`.
    let plain = sdp::set_security(offer, oi, "RTP/AVP", &[]);
    let offer = &plain;
    let chosen = offer.media()[oi]
        .payload_types()
        .into_iter()
        .find(|p| p.is_media() && transcodable(p))?;
    let caps = vec![
        sdp::Codec {
            encoding: chosen.encoding.clone(),
            clock_rate: chosen.clock_rate,
            channels: chosen.channels,
            fmtp: None,
        },
        sdp::Codec::telephone_event(8000),
        sdp::Codec::telephone_event(48000),
    ];
    let ports = (0..offer.media().len())
        .map(|i| if i == oi { port } else { 0 })
        .collect();
    let direction =
        audio_index(b_answer).map_or(Direction::SendRecv, |i| b_answer.media_direction(i));
    let params = sdp::AnswerParams {
        username: ORIGIN_USER.into(),
        direction,
        rtcp_mux: false,
        ..sdp::AnswerParams::new(addr, ports)
    };
    sdp::answer_for(offer, &caps, params).ok()
}

/// `answer` (to `offer`, already in the offer's numbering) plus the
/// offer's telephone-event when the far leg answered without one: the
/// caller keeps sending RFC 4733 digits and the media plane turns them into
/// whatever the trunk takes (in-band tones, SIP INFO). The offer's payload
/// type and the clock rate of the answer's codec are kept (RFC 4733 §7.1.1).
pub(crate) fn keep_offered_dtmf(answer: &Sdp, offer: &Sdp) -> Sdp {
    let (Some(ai), Some(oi)) = (audio_index(answer), audio_index(offer)) else {
        return answer.clone();
    };
    let answered = answer.media()[ai].payload_types();
    if answered.iter().any(|p| p.is_telephone_event()) {
        return answer.clone();
    }
    let rate = answered
        .iter()
        .find(|p| p.is_media())
        .map_or(8000, |p| p.clock_rate);
    let offered: Vec<_> = offer.media()[oi]
        .payload_types()
        .into_iter()
        .filter(|p| p.is_telephone_event())
        .collect();
    let Some(te) = offered
        .iter()
        .find(|p| p.clock_rate == rate)
        .or(offered.first())
    else {
        return answer.clone();
    };
    if answered.iter().any(|p| p.pt == te.pt) {
        return answer.clone();
    }
    let codec = sdp::Codec {
        encoding: te.encoding.clone(),
        clock_rate: te.clock_rate,
        channels: None,
        fmtp: te.fmtp.clone(),
    };
    let added = sdp::add_codecs(answer, ai, &[codec]);
    // add_codecs picked a free dynamic number: give it the offer's.
    let picked = added.media()[ai]
        .payload_types()
        .into_iter()
        .find(|p| p.is_telephone_event())
        .map(|p| p.pt);
    match picked {
        Some(pt) if pt != te.pt => {
            sdp::renumber_payload_types(&added, &HashMap::from([(pt, te.pt)]))
        }
        _ => added,
    }
}

/// Renumbers the payload types of `answer` to the numbers `offer` used for
/// the same codecs (each leg keeps its own numbering, RFC 3264 §6.1).
pub(crate) fn renumber_like(answer: &Sdp, offer: &Sdp) -> Sdp {
    let (Some(ai), Some(oi)) = (audio_index(answer), audio_index(offer)) else {
        return answer.clone();
    };
    let offered = offer.media()[oi].payload_types();
    let mut map = HashMap::new();
    for p in answer.media()[ai].payload_types() {
        if let Some(o) = offered.iter().find(|o| o.same_codec(&p)) {
            map.insert(p.pt, o.pt);
        }
    }
    sdp::renumber_payload_types(answer, &map)
}

/// The offer the gateway makes itself when the caller sent none (late offer,
/// RFC 3261 §13.2.1; carriers refuse delayed offer): the trunk's codecs, or
/// PCMU and PCMA, plus telephone-event/8000.
pub(crate) fn own_offer(addr: IpAddr, port: u16, policy: Option<&TrunkPolicy>) -> Sdp {
    let mut names: Vec<String> = policy.map(|p| p.codecs.clone()).unwrap_or_default();
    names.retain(|n| !n.eq_ignore_ascii_case("telephone-event"));
    if names.is_empty() {
        names = vec!["PCMU".into(), "PCMA".into()];
    }
    let mut fmts = Vec::new();
    let mut attrs = String::new();
    let mut next_dynamic = 96u8;
    for name in &names {
        let (pt, rtpmap) = match name.to_ascii_uppercase().as_str() {
            "PCMU" => (0, "PCMU/8000".to_string()),
            "PCMA" => (8, "PCMA/8000".to_string()),
            "G722" => (9, "G722/8000".to_string()),
            "G729" => (18, "G729/8000".to_string()),
            "OPUS" => {
                next_dynamic += 1;
                (next_dynamic - 1, "opus/48000/2".to_string())
            }
            _ => continue,
        };
        fmts.push(pt.to_string());
        attrs.push_str(&format!("a=rtpmap:{pt} {rtpmap}\r\n"));
    }
    fmts.push("101".into());
    attrs.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    let ip4 = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let text = format!(
        "v=0\r\no={ORIGIN_USER} 0 0 IN {ip4} {addr}\r\ns=callgate\r\nc=IN {ip4} {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {}\r\n{attrs}a=ptime:20\r\na=sendrecv\r\n",
        fmts.join(" ")
    );
    // The text is built from known-good parts above; a parse failure would be
    // a bug in this function, so fall back to the minimal PCMU offer.
    Sdp::parse(text.as_bytes()).unwrap_or_else(|_| minimal_offer(addr, port))
}

fn minimal_offer(addr: IpAddr, port: u16) -> Sdp {
    let ip4 = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let text = format!(
        "v=0\r\no=- 0 0 IN {ip4} {addr}\r\ns=-\r\nc=IN {ip4} {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
    );
    #[allow(clippy::expect_used)]
    // A fixed, valid SDP template: parsing cannot fail.
    Sdp::parse(text.as_bytes()).expect("minimal SDP template parses")
}

/// The SDP as a body.
pub(crate) fn to_body(sdp: &Sdp) -> Bytes {
    Bytes::from(sdp.to_bytes())
}

/// The body that carries `out`: the received `body` itself when `out` is
/// the very SDP parsed from it (`parsed`, the same allocation: forwarded
/// untouched, as `media: bypass` does), else `out` serialised. Saves a
/// serialisation per forwarded SDP; the bytes are the received ones.
pub(crate) fn body_for(out: &Arc<Sdp>, parsed: Option<&Arc<Sdp>>, body: &Bytes) -> Bytes {
    match parsed {
        Some(p) if Arc::ptr_eq(out, p) && !body.is_empty() => body.clone(),
        _ => to_body(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Sdp {
        Sdp::parse(s.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    const OFFER: &str = "v=0\no=alice 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 8 101\na=rtpmap:101 telephone-event/8000\na=x-unknown:keep me\nm=video 4002 RTP/AVP 96\na=rtpmap:96 VP8/90000\n";

    #[test]
    fn forwarded_sdp_goes_out_as_the_received_bytes() {
        let raw = Bytes::from(OFFER.replace('\n', "\r\n"));
        let parsed = Arc::new(Sdp::parse(&raw).unwrap());
        // The very SDP parsed from `raw` (bypass): the received buffer itself.
        let out = body_for(&parsed, Some(&parsed), &raw);
        assert_eq!(out, raw);
        assert_eq!(out.as_ptr(), raw.as_ptr(), "not re-serialised");
        // An equal copy is not known to be untouched: serialised.
        let copy = Arc::new(Sdp::clone(&parsed));
        let out = body_for(&copy, Some(&parsed), &raw);
        assert_ne!(out.as_ptr(), raw.as_ptr());
        assert_eq!(out, to_body(&copy));
        // A rewritten SDP never takes the received bytes.
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let rewritten = Arc::new(anchored(&parsed, ip, 30000));
        assert_eq!(
            body_for(&rewritten, Some(&parsed), &raw),
            to_body(&rewritten)
        );
        assert_eq!(body_for(&parsed, None, &raw), to_body(&parsed));
    }

    #[test]
    fn anchoring_keeps_audio_refuses_video_and_unknown_lines() {
        let o = parse(OFFER);
        let a = anchored(&o, "192.0.2.1".parse().unwrap(), 20000);
        assert_eq!(rtp_addr(&a), Some("192.0.2.1:20000".parse().unwrap()));
        assert_eq!(a.media()[1].media_line().port, 0);
        let text = String::from_utf8(a.to_bytes()).unwrap();
        assert!(text.contains("a=x-unknown:keep me"), "{text}");
        assert_eq!(codecs(&a).len(), 3);
    }

    #[test]
    fn trunk_codecs_filter_and_order() {
        let o = parse(OFFER);
        let policy = TrunkPolicy {
            codecs: vec!["PCMA".into()],
            ..TrunkPolicy::default()
        };
        let t = for_trunk(&o, &policy);
        let names = codec_names(&t);
        assert_eq!(names, vec!["PCMA/8000", "telephone-event/8000"]);
    }

    #[test]
    fn answer_renumbered_to_offer_numbers() {
        let offer = parse(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 100\na=rtpmap:100 telephone-event/8000\n",
        );
        let answer = parse(
            "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n",
        );
        let r = renumber_like(&answer, &offer);
        let pts: Vec<u8> = codecs(&r).iter().map(|c| c.payload_type).collect();
        assert_eq!(pts, vec![0, 100]);
    }

    #[test]
    fn origin_version_bumps_only_on_change() {
        let mut o = LegOrigin::new(42);
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let s = parse(OFFER);
        let first = o.stamp(&s, addr);
        let again = o.stamp(&s, addr);
        assert_eq!(first.origin().unwrap().sess_version, 1);
        assert_eq!(again.origin().unwrap().sess_version, 1);
        let held = anchored(&s, "0.0.0.0".parse().unwrap(), 20000);
        let third = o.stamp(&held, addr);
        assert_eq!(third.origin().unwrap().sess_version, 2);
        assert_eq!(third.origin().unwrap().sess_id, "42");
    }

    #[test]
    fn codecs_toward_a_leg_follow_its_own_fmtp_and_ptime() {
        let peer = parse(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 111\na=rtpmap:111 opus/48000/2\na=fmtp:111 useinbandfec=1;stereo=0\na=ptime:40\n",
        );
        let ours = parse(
            "v=0\no=- 2 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 20000 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n",
        );
        let c = codecs_for_peer(&ours, &peer);
        assert_eq!(c[0].fmtp, "useinbandfec=1;stereo=0");
        assert_eq!(c[0].ptime, Some(40));
    }

    #[test]
    fn offered_telephone_event_is_kept_when_the_trunk_answered_without() {
        let offer = parse(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n",
        );
        let answer = parse(
            "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 0\n",
        );
        let kept = keep_offered_dtmf(&answer, &offer);
        assert_eq!(
            codec_names(&kept),
            vec!["PCMU/8000", "telephone-event/8000"]
        );
        let pts: Vec<u8> = codecs(&kept).iter().map(|c| c.payload_type).collect();
        assert_eq!(pts, vec![0, 101]);
        let text = String::from_utf8(kept.to_bytes()).unwrap();
        assert!(text.contains("a=fmtp:101 0-16"), "{text}");
        // Nothing to add when the answer has one, or the offer had none.
        assert_eq!(keep_offered_dtmf(&offer, &offer), offer);
        assert_eq!(keep_offered_dtmf(&answer, &answer), answer);
    }

    #[test]
    fn own_offer_parses_with_trunk_codecs() {
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        let s = own_offer(addr, 20002, None);
        assert_eq!(
            codec_names(&s),
            vec!["PCMU/8000", "PCMA/8000", "telephone-event/8000"]
        );
        let p = TrunkPolicy {
            codecs: vec!["opus".into(), "PCMA".into()],
            ..TrunkPolicy::default()
        };
        let s = own_offer(addr, 20002, Some(&p));
        assert_eq!(
            codec_names(&s),
            vec!["opus/48000", "PCMA/8000", "telephone-event/8000"]
        );
        assert_eq!(rtp_addr(&s), Some("127.0.0.1:20002".parse().unwrap()));
        assert!(!is_hold(&s));
    }
}
