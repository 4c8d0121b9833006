//! Reading an offer/answer pair (RFC 3264 §6, §7): per stream, the codec and
//! payload type each side uses, directions, receive addresses and DTMF.

use std::net::SocketAddr;

use super::codec::PayloadType;
use super::model::{MediaSection, Sdp};
use super::offer_answer::offered_direction;
use super::view::Direction;

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
    use super::super::{AnswerParams, Codec, answer_for};
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 111 0 8 13 101 100\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\na=rtpmap:101 telephone-event/48000\r\na=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\na=rtcp-mux\r\na=sendonly\r\nm=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    fn offer() -> Sdp {
        Sdp::parse(OFFER.as_bytes()).unwrap()
    }

    fn params() -> AnswerParams {
        AnswerParams::new("198.51.100.7".parse().unwrap(), vec![7000, 7002])
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

    #[test]
    fn renumbered_answer_maps_both_sides() {
        let answer = answer_for(&offer(), &[Codec::opus()], params()).unwrap();
        let map = std::collections::HashMap::from([(111, 96)]);
        let answer = super::super::renumber_payload_types(&answer, &map);
        let s = &negotiated(&offer(), &answer)[0];
        assert_eq!((s.offer_pt, s.answer_pt), (Some(111), Some(96)));
        assert!(
            negotiated(
                &offer(),
                &Sdp::parse(b"v=0\no=- 1 1 IN IP4 1.1.1.1\n").unwrap()
            )
            .iter()
            .all(|s| !s.accepted)
        );
    }
}
