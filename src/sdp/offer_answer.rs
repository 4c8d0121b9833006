//! The RFC 3264 offer/answer model: building an answer from local codec
//! capabilities, and reading what an offer/answer pair agreed on.

use std::net::{IpAddr, SocketAddr};

use super::codec::{Codec, PayloadType};
use super::error::NegotiationError;
use super::model::{Line, MediaSection, Sdp};
use super::view::{Attribute, Connection, Direction, MediaLine, Origin, View, addrtype};

/// The local side of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerParams {
    /// `o=` username.
    pub username: String,
    /// `o=` session id, stable for the dialog.
    pub sess_id: u64,
    /// `o=` session version.
    pub sess_version: u64,
    /// Address media is received on (`c=` and `o=`).
    pub addr: IpAddr,
    /// Receive port per offered m-line (only accepted streams need one).
    pub ports: Vec<u16>,
    /// What the local side is willing to do, intersected with the offer.
    pub direction: Direction,
    /// `a=ptime` to put in accepted streams.
    pub ptime: Option<u32>,
    /// Accept `a=rtcp-mux` when offered (RFC 5761 §5.1.1).
    pub rtcp_mux: bool,
}

impl AnswerParams {
    /// Sendrecv, no ptime, rtcp-mux accepted, origin `- 0 0`.
    pub fn new(addr: IpAddr, ports: Vec<u16>) -> AnswerParams {
        AnswerParams {
            username: "-".into(),
            sess_id: 0,
            sess_version: 0,
            addr,
            ports,
            direction: Direction::SendRecv,
            ptime: None,
            rtcp_mux: true,
        }
    }
}

/// The offerer's effective direction: an old-style `c=0.0.0.0` hold means it
/// receives nothing (RFC 3264 §8.4).
fn offered_direction(offer: &Sdp, index: usize) -> Direction {
    let dir = offer.media_direction(index);
    match offer.media_connection(index) {
        Some(c) if c.is_hold() => dir.intersect(Direction::SendOnly),
        _ => dir,
    }
}

/// The offered payload types we accept for one stream, in the offerer's
/// order with the offerer's numbers (RFC 3264 §6.1), each with our codec.
fn choose(offered: &[PayloadType], caps: &[Codec]) -> Vec<(PayloadType, Codec)> {
    let matched = |p: &PayloadType| caps.iter().find(|c| p.matches(c)).cloned();
    let media: Vec<_> = offered
        .iter()
        .filter(|p| p.is_media())
        .filter_map(|p| Some((p.clone(), matched(p)?)))
        .collect();
    let Some(rate) = media.first().map(|(p, _)| p.clock_rate) else {
        return Vec::new();
    };
    // RFC 4733 §7.1.1: telephone-event at the clock rate of the audio codec
    // when offered, else the first common one.
    let events: Vec<_> = offered
        .iter()
        .filter(|p| p.is_telephone_event())
        .filter_map(|p| Some((p.clone(), matched(p)?)))
        .collect();
    let event = events
        .iter()
        .find(|(p, _)| p.clock_rate == rate)
        .or(events.first())
        .cloned();
    // RFC 3389: comfort noise only at the codec's clock rate.
    let noise = offered
        .iter()
        .filter(|p| p.is_comfort_noise() && p.clock_rate == rate)
        .filter_map(|p| Some((p.clone(), matched(p)?)));
    media.into_iter().chain(noise).chain(event).collect()
}

fn rejected(section: &MediaSection) -> MediaSection {
    MediaSection::new(
        MediaLine {
            port: 0,
            num_ports: None,
            ..section.desc.clone()
        },
        Vec::new(),
    )
}

/// Builds the answer to `offer` (RFC 3264 §6): the same m-lines in the same
/// order; streams without a common codec (or with port 0, or not RTP) are
/// rejected with port 0; accepted ones list the common codecs in the
/// offerer's order with the offerer's payload types, one telephone-event
/// matched by clock rate, the reversed direction (§6.1) and `c=`/ports from
/// `local`. The transport profile is echoed; SRTP keys are the caller's to add.
pub fn answer_for(
    offer: &Sdp,
    local_caps: &[Codec],
    local: AnswerParams,
) -> Result<Sdp, NegotiationError> {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut accepted = 0;
    for (index, section) in offer.media.iter().enumerate() {
        let chosen = match section.desc.port {
            0 => Vec::new(),
            _ if !section.desc.proto.contains("RTP/") => Vec::new(),
            _ => choose(&section.payload_types(), local_caps),
        };
        if chosen.is_empty() {
            media.push(rejected(section));
            continue;
        }
        let port = *local
            .ports
            .get(index)
            .ok_or(NegotiationError::MissingPort { index })?;
        accepted += 1;
        let mut lines = Vec::new();
        for (pt, codec) in &chosen {
            let params = pt.channels.map(|c| c.to_string());
            lines.push(Line::attr(Attribute::Rtpmap {
                pt: pt.pt,
                encoding: pt.encoding.clone(),
                clock_rate: pt.clock_rate,
                params,
            }));
            if let Some(params) = codec.fmtp.clone().or_else(|| pt.fmtp.clone()) {
                lines.push(Line::attr(Attribute::Fmtp {
                    fmt: pt.pt.to_string(),
                    params,
                }));
            }
        }
        if let Some(ms) = local.ptime {
            lines.push(Line::attr(Attribute::Ptime(ms)));
        }
        if local.rtcp_mux && section.has_attribute("rtcp-mux") {
            lines.push(Line::attr(Attribute::RtcpMux));
        }
        let direction = offered_direction(offer, index)
            .reversed()
            .intersect(local.direction);
        lines.push(Line::attr(Attribute::Direction(direction)));
        let fmts = chosen.iter().map(|(p, _)| p.pt.to_string()).collect();
        media.push(MediaSection::new(
            MediaLine {
                port,
                num_ports: None,
                fmts,
                ..section.desc.clone()
            },
            lines,
        ));
    }
    if !offer.media.is_empty() && accepted == 0 {
        return Err(NegotiationError::NoCommonCodec);
    }
    let origin = Origin {
        username: local.username.clone(),
        sess_id: local.sess_id.to_string(),
        sess_version: local.sess_version,
        nettype: "IN".into(),
        addrtype: addrtype(local.addr).into(),
        address: local.addr.to_string(),
    };
    let session = vec![
        Line::from_view(View::Version(0)),
        Line::from_view(View::Origin(origin)),
        Line::from_view(View::SessionName("-".into())),
        Line::from_view(View::Connection(Connection::for_ip(local.addr))),
        Line::from_view(View::Timing(0, 0)),
    ];
    Ok(Sdp { session, media })
}

/// What one stream of an offer/answer exchange agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedStream {
    /// Index of the m-line.
    pub index: usize,
    /// `audio`, `video`…
    pub media: String,
    /// Both sides gave a non-zero port.
    pub accepted: bool,
    /// The first media codec of the answer (what is sent first, RFC 3264 §6.1).
    pub codec: Option<PayloadType>,
    /// Its payload type in the offer.
    pub offer_pt: Option<u8>,
    /// Its payload type in the answer.
    pub answer_pt: Option<u8>,
    /// Direction in effect for the offerer (a `c=0.0.0.0` hold counts as sendonly).
    pub offer_direction: Direction,
    /// Direction declared by the answerer.
    pub answer_direction: Direction,
    /// Where the offerer receives: its `c=` in effect and m-line port.
    pub offerer_addr: Option<SocketAddr>,
    /// Where the answerer receives.
    pub answerer_addr: Option<SocketAddr>,
    /// telephone-event payload type in the offer (same clock rate as the answer's).
    pub offer_dtmf_pt: Option<u8>,
    /// telephone-event payload type in the answer.
    pub answer_dtmf_pt: Option<u8>,
    /// telephone-event clock rate (8000 or 48000).
    pub dtmf_clock_rate: Option<u32>,
}

fn receive_addr(sdp: &Sdp, index: usize) -> Option<SocketAddr> {
    let port = sdp.media.get(index)?.desc.port;
    let ip = sdp.media_connection(index)?.ip()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// Reads an offer and its answer stream by stream (RFC 3264 §6/§7): the
/// codec and payload type each side uses, directions, addresses and DTMF.
pub fn negotiated(offer: &Sdp, answer: &Sdp) -> Vec<NegotiatedStream> {
    offer
        .media
        .iter()
        .enumerate()
        .map(|(index, o)| {
            let a = answer.media.get(index);
            let accepted = o.desc.port != 0 && a.is_some_and(|a| a.desc.port != 0);
            let answer_pts = a.map(MediaSection::payload_types).unwrap_or_default();
            let offer_pts = o.payload_types();
            let codec = answer_pts
                .iter()
                .find(|p| p.is_media())
                .cloned()
                .filter(|_| accepted);
            let offer_pt = codec
                .as_ref()
                .and_then(|c| offer_pts.iter().find(|p| p.same_codec(c)))
                .map(|p| p.pt);
            let dtmf = answer_pts
                .iter()
                .find(|p| p.is_telephone_event())
                .filter(|_| accepted);
            let offer_dtmf = dtmf.and_then(|d| {
                offer_pts
                    .iter()
                    .find(|p| p.is_telephone_event() && p.clock_rate == d.clock_rate)
            });
            NegotiatedStream {
                index,
                media: o.desc.media.clone(),
                accepted,
                answer_pt: codec.as_ref().map(|c| c.pt),
                codec,
                offer_pt,
                offer_direction: offered_direction(offer, index),
                answer_direction: answer.media_direction(index),
                offerer_addr: receive_addr(offer, index),
                answerer_addr: receive_addr(answer, index),
                offer_dtmf_pt: offer_dtmf.map(|p| p.pt),
                answer_dtmf_pt: dtmf.map(|p| p.pt),
                dtmf_clock_rate: dtmf.map(|p| p.clock_rate),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 111 0 8 13 101 100\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\na=rtpmap:101 telephone-event/48000\r\na=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\na=rtcp-mux\r\na=sendonly\r\nm=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    fn offer() -> Sdp {
        Sdp::parse(OFFER.as_bytes()).unwrap()
    }

    fn params() -> AnswerParams {
        AnswerParams {
            ptime: Some(20),
            ..AnswerParams::new("198.51.100.7".parse().unwrap(), vec![7000, 7002])
        }
    }

    #[test]
    fn answer_mirrors_offer() {
        let caps = [
            Codec::pcmu(),
            Codec::new("CN", 8000),
            Codec::telephone_event(8000),
            Codec::telephone_event(48000),
        ];
        let answer = answer_for(&offer(), &caps, params()).unwrap();
        let text = answer.to_string();
        assert!(text.starts_with(
            "v=0\r\no=- 0 0 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        ));
        assert!(text.contains("m=audio 7000 RTP/AVP 0 13 100\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-16\r\na=ptime:20\r\na=rtcp-mux\r\na=recvonly\r\n"), "{text}");
        assert!(text.ends_with("m=video 0 RTP/AVP 96\r\n"));
        Sdp::parse(text.as_bytes()).unwrap();
    }

    #[test]
    fn opus_picks_48k_events() {
        let caps = [
            Codec::opus(),
            Codec::telephone_event(8000),
            Codec::telephone_event(48000),
        ];
        let answer = answer_for(&offer(), &caps, params()).unwrap();
        assert_eq!(answer.media()[0].media_line().fmts, ["111", "101"]);
        let s = &negotiated(&offer(), &answer)[0];
        assert_eq!(
            (s.offer_dtmf_pt, s.answer_dtmf_pt, s.dtmf_clock_rate),
            (Some(101), Some(101), Some(48000))
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            answer_for(&offer(), &[Codec::g722()], params()),
            Err(NegotiationError::NoCommonCodec)
        );
        let p = AnswerParams {
            ports: vec![],
            ..params()
        };
        assert_eq!(
            answer_for(&offer(), &[Codec::pcmu()], p),
            Err(NegotiationError::MissingPort { index: 0 })
        );
    }

    #[test]
    fn hold_by_address() {
        let hold = OFFER
            .replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0")
            .replace("a=sendonly\r\n", "");
        let hold = Sdp::parse(hold.as_bytes()).unwrap();
        let answer = answer_for(&hold, &[Codec::pcmu()], params()).unwrap();
        assert_eq!(answer.media_direction(0), Direction::RecvOnly);
        let s = &negotiated(&hold, &answer)[0];
        assert_eq!(s.offer_direction, Direction::SendOnly);
        assert_eq!(s.offerer_addr, Some("0.0.0.0:5000".parse().unwrap()));
    }

    #[test]
    fn negotiated_reports_each_stream() {
        let answer = answer_for(
            &offer(),
            &[Codec::pcma(), Codec::telephone_event(8000)],
            params(),
        )
        .unwrap();
        let streams = negotiated(&offer(), &answer);
        assert_eq!(streams.len(), 2);
        let s = &streams[0];
        assert!(s.accepted);
        assert_eq!(s.codec.as_ref().unwrap().encoding, "PCMA");
        assert_eq!((s.offer_pt, s.answer_pt), (Some(8), Some(8)));
        assert_eq!(
            (s.offer_direction, s.answer_direction),
            (Direction::SendOnly, Direction::RecvOnly)
        );
        assert_eq!(s.offerer_addr, Some("192.0.2.1:5000".parse().unwrap()));
        assert_eq!(s.answerer_addr, Some("198.51.100.7:7000".parse().unwrap()));
        assert_eq!(
            (s.offer_dtmf_pt, s.dtmf_clock_rate),
            (Some(100), Some(8000))
        );
        assert!(!streams[1].accepted && streams[1].codec.is_none());
    }
}
