//! The RFC 3264 offer/answer model: building an answer from local codec
//! capabilities, and reading what an offer/answer pair agreed on.

use std::net::IpAddr;

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
    /// Our SDES master key||salt, base64 (30 bytes for the AES_CM_128 suites),
    /// drawn by the caller's seeded RNG. Without it SDES-SRTP streams
    /// (`RTP/SAVP(F)`) are rejected (RFC 4568 §7.1.1).
    pub srtp_key: Option<String>,
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
            srtp_key: None,
        }
    }
}

/// The offerer's effective direction: an old-style `c=0.0.0.0` hold means it
/// receives nothing (RFC 3264 §8.4).
pub(crate) fn offered_direction(offer: &Sdp, index: usize) -> Direction {
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

/// SDES suites we answer, all with a 30-byte key||salt (RFC 4568 §6.2, RFC 3711).
const SDES_SUITES: &[&str] = &["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"];

/// The security an offered stream needs from the answer.
enum Security {
    /// Plain RTP.
    Plain,
    /// SDES-SRTP: the `a=crypto` answering the first acceptable offered one,
    /// with the offer's tag and suite (RFC 4568 §7.1.1), so no downgrade.
    Sdes(Attribute),
    /// A profile or suite we cannot answer (DTLS-SRTP, unknown suites, no key).
    Unsupported,
}

fn security(section: &MediaSection, key: Option<&str>) -> Security {
    let proto = section.desc.proto.as_str();
    if !proto.ends_with("SAVP") && !proto.ends_with("SAVPF") {
        return Security::Plain;
    }
    let (false, Some(key)) = (proto.starts_with("UDP/TLS"), key) else {
        return Security::Unsupported;
    };
    let offered = section.attributes().find_map(|a| match a {
        Attribute::Crypto { tag, suite, .. } if SDES_SUITES.contains(&suite.as_str()) => {
            Some((*tag, suite.clone()))
        }
        _ => None,
    });
    match offered {
        Some((tag, suite)) => Security::Sdes(Attribute::Crypto {
            tag,
            suite,
            key_params: format!("inline:{key}"),
            session_params: None,
        }),
        None => Security::Unsupported,
    }
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
/// `local`. The transport profile is echoed; an SDES-SRTP stream gets one
/// `a=crypto` with [`AnswerParams::srtp_key`] for the first offered suite we
/// support (RFC 4568 §7.1.1), else it is rejected, as is DTLS-SRTP.
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
        let crypto = match security(section, local.srtp_key.as_deref()) {
            _ if chosen.is_empty() => None,
            Security::Plain => None,
            Security::Sdes(attr) => Some(attr),
            Security::Unsupported => {
                media.push(rejected(section));
                continue;
            }
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
        if let Some(crypto) = crypto {
            lines.push(Line::attr(crypto));
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

#[cfg(test)]
mod tests {
    use super::super::negotiated;
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
    fn sdes_answer_keeps_the_offered_suite() {
        let savp = OFFER
            .replace("RTP/AVP 111", "RTP/SAVP 111")
            .replace("a=rtcp-mux\r\n", "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:x\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:y|2^31\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:z\r\n");
        let savp = Sdp::parse(savp.as_bytes()).unwrap();
        let keyed = AnswerParams {
            srtp_key: Some("S2V5".into()),
            ..params()
        };
        let answer = answer_for(&savp, &[Codec::pcmu()], keyed)
            .unwrap()
            .to_string();
        assert!(answer.contains("m=audio 7000 RTP/SAVP 0\r\n"), "{answer}");
        assert!(answer.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:S2V5\r\n"));
        assert_eq!(
            answer_for(&savp, &[Codec::pcmu()], params()),
            Err(NegotiationError::NoCommonCodec)
        );
        let dtls = Sdp::parse(
            OFFER
                .replace("RTP/AVP 111", "UDP/TLS/RTP/SAVPF 111")
                .as_bytes(),
        )
        .unwrap();
        let keyed = AnswerParams {
            srtp_key: Some("S2V5".into()),
            ..params()
        };
        assert_eq!(
            answer_for(&dtls, &[Codec::pcmu()], keyed),
            Err(NegotiationError::NoCommonCodec)
        );
    }
}
