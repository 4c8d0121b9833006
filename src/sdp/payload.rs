//! Pure payload-type rewrites: filter, reorder and renumber the formats of
//! RTP m-lines together with their `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines.

use std::collections::{HashMap, HashSet};

use super::codec::{Codec, PayloadType};
use super::model::{Line, MediaSection, Sdp};
use super::view::{Attribute, MediaLine};

fn map_media(sdp: &Sdp, f: impl Fn(&MediaSection) -> MediaSection) -> Sdp {
    Sdp {
        session: sdp.session.clone(),
        media: sdp.media.iter().map(f).collect(),
    }
}

/// RTP profiles carry payload type numbers in the format list (RFC 3551 §6).
fn is_rtp(section: &MediaSection) -> bool {
    section.desc.proto.contains("RTP/")
}

/// The payload type an attribute line refers to, for `rtpmap`/`fmtp`/`rtcp-fb`.
fn line_pt(line: &Line) -> Option<u8> {
    match line.attribute()? {
        Attribute::Rtpmap { pt, .. } => Some(*pt),
        Attribute::Fmtp { fmt, .. } | Attribute::RtcpFb { fmt, .. } => fmt.parse().ok(),
        _ => None,
    }
}

/// Removes the payload types `keep` rejects from every RTP m-line, with their
/// `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines. Formats we cannot resolve
/// (dynamic without rtpmap) are kept. When nothing would be left, the stream
/// is disabled instead (port 0, formats kept, RFC 3264 §6/§8.2) because an
/// m-line needs at least one format.
pub fn filter_codecs(sdp: &Sdp, keep: impl Fn(&PayloadType) -> bool) -> Sdp {
    map_media(sdp, |section| {
        if !is_rtp(section) {
            return section.clone();
        }
        let removed: HashSet<u8> = section
            .payload_types()
            .into_iter()
            .filter(|p| !keep(p))
            .map(|p| p.pt)
            .collect();
        if removed.is_empty() {
            return section.clone();
        }
        let fmts: Vec<String> = section
            .desc
            .fmts
            .iter()
            .filter(|f| f.parse().map_or(true, |pt: u8| !removed.contains(&pt)))
            .cloned()
            .collect();
        let mut out = section.clone();
        if fmts.is_empty() {
            out.set_media_line(MediaLine {
                port: 0,
                ..section.desc.clone()
            });
            return out;
        }
        out.lines
            .retain(|l| line_pt(l).is_none_or(|pt| !removed.contains(&pt)));
        out.set_media_line(MediaLine {
            fmts,
            ..section.desc.clone()
        });
        out
    })
}

/// Reorders the formats of every RTP m-line so that encodings named in
/// `prefer` (case-insensitive, in that order) come first; the rest keep their
/// relative order. Only the `m=` line changes (RFC 3264 §5.1: order is preference).
pub fn order_codecs(sdp: &Sdp, prefer: &[&str]) -> Sdp {
    map_media(sdp, |section| {
        if !is_rtp(section) {
            return section.clone();
        }
        let rank = |fmt: &String| {
            let pt = fmt.parse().ok().and_then(|pt| section.payload_type(pt));
            pt.and_then(|p| {
                prefer
                    .iter()
                    .position(|e| e.eq_ignore_ascii_case(&p.encoding))
            })
            .unwrap_or(prefer.len())
        };
        let mut fmts = section.desc.fmts.clone();
        fmts.sort_by_key(rank);
        let mut out = section.clone();
        out.set_media_line(MediaLine {
            fmts,
            ..section.desc.clone()
        });
        out
    })
}

/// Appends `codecs` to the format list of m-line `index` (an RTP stream),
/// each with `a=rtpmap` (and `a=fmtp` when it has parameters): the RFC 3551
/// static number for PCMU/PCMA/G722/G729, else the first free dynamic one
/// (96–127). Codecs the stream already has (same encoding, clock rate and
/// channels) are skipped. A transcoding B2BUA uses it to offer a trunk the
/// codecs it can convert to (RFC 3264 §5.1).
pub fn add_codecs(sdp: &Sdp, index: usize, codecs: &[Codec]) -> Sdp {
    let mut out = sdp.clone();
    let Some(section) = out.media.get_mut(index) else {
        return out;
    };
    if !is_rtp(section) {
        return out;
    }
    let mut fmts = section.desc.fmts.clone();
    let mut used: HashSet<u8> = fmts.iter().filter_map(|f| f.parse().ok()).collect();
    let existing = section.payload_types();
    let mut new_lines = Vec::new();
    for codec in codecs {
        if existing.iter().any(|p| p.matches(codec)) {
            continue;
        }
        let fixed = match (
            codec.encoding.to_ascii_uppercase().as_str(),
            codec.clock_rate,
        ) {
            ("PCMU", 8000) => Some(0),
            ("PCMA", 8000) => Some(8),
            ("G722", 8000) => Some(9),
            ("G729", 8000) => Some(18),
            _ => None,
        };
        let pt = match fixed {
            Some(pt) if !used.contains(&pt) => pt,
            Some(_) => continue,
            None => match (96u8..=127).find(|pt| !used.contains(pt)) {
                Some(pt) => pt,
                None => continue,
            },
        };
        used.insert(pt);
        fmts.push(pt.to_string());
        new_lines.push(Line::attr(Attribute::Rtpmap {
            pt,
            encoding: codec.encoding.clone(),
            clock_rate: codec.clock_rate,
            params: codec.channels.map(|c| c.to_string()),
        }));
        if let Some(params) = &codec.fmtp {
            new_lines.push(Line::attr(Attribute::Fmtp {
                fmt: pt.to_string(),
                params: params.clone(),
            }));
        }
    }
    if new_lines.is_empty() {
        return out;
    }
    // After the last rtpmap/fmtp line, else right after the m= line.
    let at = section
        .lines
        .iter()
        .rposition(|l| line_pt(l).is_some())
        .map_or(0, |i| i + 1);
    section.lines.splice(at..at, new_lines);
    let desc = MediaLine {
        fmts,
        ..section.desc.clone()
    };
    section.set_media_line(desc);
    out
}

/// Renumbers payload types per `map` (old → new) in every RTP m-line and its
/// `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines, telephone-event included
/// (RFC 3264 §6.1 lets each side use its own numbers). The caller keeps the
/// result free of duplicates; PT references inside fmtp values (RED) are not
/// rewritten.
pub fn renumber_payload_types(sdp: &Sdp, map: &HashMap<u8, u8>) -> Sdp {
    let new = |pt: u8| map.get(&pt).copied().unwrap_or(pt);
    map_media(sdp, |section| {
        if !is_rtp(section) {
            return section.clone();
        }
        let fmts = section
            .desc
            .fmts
            .iter()
            .map(|f| match f.parse::<u8>() {
                Ok(pt) => new(pt).to_string(),
                Err(_) => f.clone(),
            })
            .collect();
        let lines = section
            .lines
            .iter()
            .map(|line| {
                let Some(pt) = line_pt(line).filter(|pt| new(*pt) != *pt) else {
                    return line.clone();
                };
                let fmt = new(pt).to_string();
                match line.attribute().cloned() {
                    Some(Attribute::Rtpmap {
                        encoding,
                        clock_rate,
                        params,
                        ..
                    }) => Line::attr(Attribute::Rtpmap {
                        pt: new(pt),
                        encoding,
                        clock_rate,
                        params,
                    }),
                    Some(Attribute::Fmtp { params, .. }) => {
                        Line::attr(Attribute::Fmtp { fmt, params })
                    }
                    Some(Attribute::RtcpFb { value, .. }) => {
                        Line::attr(Attribute::RtcpFb { fmt, value })
                    }
                    _ => line.clone(),
                }
            })
            .collect();
        let mut out = MediaSection {
            lines,
            ..section.clone()
        };
        out.set_media_line(MediaLine {
            fmts,
            ..section.desc.clone()
        });
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 UDP/TLS/RTP/SAVPF 111 9 0 8 101\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=x-between:1\r\na=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-16\r\nm=application 5000 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    fn parse() -> Sdp {
        Sdp::parse(BODY.as_bytes()).unwrap()
    }

    #[test]
    fn filter_removes_pt_and_lines() {
        let out = filter_codecs(&parse(), |p| p.encoding != "opus").to_string();
        assert!(
            out.contains(
                "m=audio 4000 UDP/TLS/RTP/SAVPF 9 0 8 101\r\na=x-between:1\r\na=rtpmap:101"
            )
        );
        assert!(!out.contains("111"));
        assert!(out.contains("m=application 5000 UDP/DTLS/SCTP webrtc-datachannel"));
    }

    #[test]
    fn filter_everything_disables_stream() {
        let out = filter_codecs(&parse(), |_| false);
        assert_eq!(out.media()[0].media_line().port, 0);
        assert_eq!(out.media()[0].media_line().fmts.len(), 5);
        assert_eq!(filter_codecs(&parse(), |_| true), parse());
    }

    #[test]
    fn order_puts_preferred_first() {
        let out = order_codecs(&parse(), &["PCMA", "pcmu"]);
        assert_eq!(
            out.media()[0].media_line().fmts,
            ["8", "0", "111", "9", "101"]
        );
        assert_eq!(out.media()[0].lines(), parse().media()[0].lines());
    }

    #[test]
    fn renumber_rewrites_every_reference() {
        let map = HashMap::from([(111, 96), (101, 100)]);
        let out = renumber_payload_types(&parse(), &map).to_string();
        assert!(out.contains("m=audio 4000 UDP/TLS/RTP/SAVPF 96 9 0 8 100\r\na=rtpmap:96 opus/48000/2\r\na=rtcp-fb:96 transport-cc\r\na=fmtp:96 minptime=10;useinbandfec=1\r\na=x-between:1\r\na=rtpmap:100 telephone-event/48000\r\na=fmtp:100 0-16\r\n"));
    }
}
