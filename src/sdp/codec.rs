//! The typed codec view of a media section: payload types resolved from
//! `a=rtpmap`/`a=fmtp` or the RFC 3551 static table, and local codec capabilities.

use super::model::MediaSection;
use super::view::Attribute;

/// One payload type offered in an `m=` line, resolved (RFC 8866 §6.6, RFC 3551 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// RTP payload type number.
    pub pt: u8,
    /// Encoding name as written (`opus`, `PCMU`, `telephone-event`).
    pub encoding: String,
    /// RTP clock rate (G.722 is 8000 on the wire, RFC 3551 §4.5.2).
    pub clock_rate: u32,
    /// Channel count when given in `a=rtpmap`.
    pub channels: Option<u8>,
    /// `a=fmtp` parameters for this payload type, verbatim.
    pub fmtp: Option<String>,
}

impl PayloadType {
    /// RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// RFC 3389 comfort noise.
    pub fn is_comfort_noise(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("CN")
    }

    /// A media codec rather than DTMF events or comfort noise.
    pub fn is_media(&self) -> bool {
        !self.is_telephone_event() && !self.is_comfort_noise()
    }

    /// Same encoding (case-insensitive, RFC 8866 §6.6), clock rate and channel
    /// count (absent means 1, RFC 3551 §4.5) as `codec`.
    pub fn matches(&self, codec: &Codec) -> bool {
        self.encoding.eq_ignore_ascii_case(&codec.encoding)
            && self.clock_rate == codec.clock_rate
            && self.channels.unwrap_or(1) == codec.channels.unwrap_or(1)
    }

    /// Same codec as `other`, whatever the payload type numbers.
    pub fn same_codec(&self, other: &PayloadType) -> bool {
        self.matches(&Codec {
            encoding: other.encoding.clone(),
            clock_rate: other.clock_rate,
            channels: other.channels,
            fmtp: None,
        })
    }
}

/// The static audio payload types of RFC 3551 §6 table 4: `(encoding, clock rate)`.
pub fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// A codec the local side supports, used when answering (RFC 3264 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name (`PCMU`, `opus`, `telephone-event`).
    pub encoding: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channel count; `None` means 1.
    pub channels: Option<u8>,
    /// Our `a=fmtp` parameters; when `None` the answer echoes the offer's.
    pub fmtp: Option<String>,
}

impl Codec {
    /// A mono codec with no fmtp.
    pub fn new(encoding: &str, clock_rate: u32) -> Codec {
        Codec {
            encoding: encoding.to_string(),
            clock_rate,
            channels: None,
            fmtp: None,
        }
    }

    /// G.711 µ-law.
    pub fn pcmu() -> Codec {
        Codec::new("PCMU", 8000)
    }

    /// G.711 A-law.
    pub fn pcma() -> Codec {
        Codec::new("PCMA", 8000)
    }

    /// G.722 (RTP clock 8000, RFC 3551 §4.5.2).
    pub fn g722() -> Codec {
        Codec::new("G722", 8000)
    }

    /// Opus as signalled by RFC 7587 §7: `opus/48000/2`.
    pub fn opus() -> Codec {
        Codec {
            channels: Some(2),
            ..Codec::new("opus", 48000)
        }
    }

    /// RFC 4733 telephone-event at `clock_rate` with events 0-16.
    pub fn telephone_event(clock_rate: u32) -> Codec {
        Codec {
            fmtp: Some("0-16".into()),
            ..Codec::new("telephone-event", clock_rate)
        }
    }

    /// Whether this is telephone-event.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }
}

impl MediaSection {
    /// The payload types of the `m=` line in its order; static ones resolve
    /// without `a=rtpmap` (RFC 3551 §6), dynamic ones without `a=rtpmap` and
    /// non-numeric formats are left out.
    pub fn payload_types(&self) -> Vec<PayloadType> {
        self.desc
            .fmts
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter_map(|pt| self.payload_type(pt))
            .collect()
    }

    /// The resolved payload type `pt`, if the section defines it.
    pub fn payload_type(&self, pt: u8) -> Option<PayloadType> {
        let mut resolved = None;
        let mut fmtp = None;
        for attr in self.attributes() {
            match attr {
                Attribute::Rtpmap {
                    pt: p,
                    encoding,
                    clock_rate,
                    params,
                } if *p == pt => {
                    let channels = params.as_deref().and_then(|c| c.parse().ok());
                    resolved.get_or_insert((encoding.clone(), *clock_rate, channels));
                }
                Attribute::Fmtp { fmt, params } if fmt.parse() == Ok(pt) => {
                    fmtp.get_or_insert(params.clone());
                }
                _ => {}
            }
        }
        let (encoding, clock_rate, channels) =
            resolved.or_else(|| static_payload_type(pt).map(|(e, r)| (e.to_string(), r, None)))?;
        Some(PayloadType {
            pt,
            encoding,
            clock_rate,
            channels,
            fmtp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sdp;
    use super::*;

    const BODY: &str = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nm=audio 4000 RTP/AVP 111 9 0 101 13 99 18\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-16\r\n";

    #[test]
    fn payload_types_resolve() {
        let sdp = Sdp::parse(BODY.as_bytes()).unwrap();
        let pts = sdp.media()[0].payload_types();
        let names: Vec<_> = pts
            .iter()
            .map(|p| (p.pt, p.encoding.as_str(), p.clock_rate))
            .collect();
        assert_eq!(
            names,
            [
                (111, "opus", 48000),
                (9, "G722", 8000),
                (0, "PCMU", 8000),
                (101, "telephone-event", 48000),
                (13, "CN", 8000),
                (18, "G729", 8000)
            ]
        );
        assert_eq!(pts[0].channels, Some(2));
        assert_eq!(pts[0].fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
        assert_eq!(pts[3].fmtp.as_deref(), Some("0-16"));
        assert!(pts[3].is_telephone_event() && !pts[3].is_media());
        assert!(pts[4].is_comfort_noise());
        assert!(sdp.media()[0].payload_type(99).is_none());
    }

    #[test]
    fn matching() {
        let sdp = Sdp::parse(BODY.as_bytes()).unwrap();
        let pts = sdp.media()[0].payload_types();
        assert!(pts[0].matches(&Codec::opus()));
        assert!(!pts[0].matches(&Codec::new("opus", 48000)));
        assert!(pts[2].matches(&Codec::new("pcmu", 8000)));
        assert!(pts[1].matches(&Codec::g722()));
        assert!(pts[3].matches(&Codec::telephone_event(48000)));
        assert!(!pts[3].matches(&Codec::telephone_event(8000)));
        assert!(pts[2].same_codec(&pts[2]) && !pts[2].same_codec(&pts[1]));
        assert!(Codec::telephone_event(8000).is_telephone_event());
        assert_eq!(Codec::pcma().encoding, "PCMA");
    }

    #[test]
    fn static_table() {
        assert_eq!(static_payload_type(9), Some(("G722", 8000)));
        assert_eq!(static_payload_type(96), None);
    }
}
