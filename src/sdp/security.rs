//! The transport security of one media stream: its profile (`RTP/AVP`,
//! `RTP/SAVP`, …) and its SDES keys (`a=crypto`, RFC 4568), read and
//! rewritten for a B2BUA that terminates SRTP on one leg.

use super::model::{Line, Sdp};
use super::view::Attribute;

/// How a stream is protected, by its profile (RFC 4568 §5, RFC 5764 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `RTP/AVP`, `RTP/AVPF` (and anything else that is not SAVP).
    Plain,
    /// `RTP/SAVP`, `RTP/SAVPF`: SRTP keyed by `a=crypto` (SDES).
    Sdes,
    /// `UDP/TLS/RTP/SAVP(F)`: SRTP keyed by DTLS (RFC 5764).
    Dtls,
}

/// The profile of an `m=` line's proto.
pub fn profile(proto: &str) -> Profile {
    match proto {
        "RTP/SAVP" | "RTP/SAVPF" => Profile::Sdes,
        p if p.starts_with("UDP/TLS/RTP/SAVP") => Profile::Dtls,
        _ => Profile::Plain,
    }
}

/// `a=crypto` lines of stream `index`, in order, as (tag, suite, key
/// params, session params).
pub fn crypto_lines(sdp: &Sdp, index: usize) -> Vec<(u32, &str, &str, Option<&str>)> {
    let Some(m) = sdp.media.get(index) else {
        return Vec::new();
    };
    m.attributes()
        .filter_map(|a| match a {
            Attribute::Crypto {
                tag,
                suite,
                key_params,
                session_params,
            } => Some((
                *tag,
                suite.as_str(),
                key_params.as_str(),
                session_params.as_deref(),
            )),
            _ => None,
        })
        .collect()
}

/// Whether a line is key material or key agreement we must not forward:
/// `a=crypto`, `a=fingerprint`, `a=setup`.
fn is_keying(line: &Line) -> bool {
    matches!(
        line.attribute(),
        Some(Attribute::Crypto { .. } | Attribute::Fingerprint { .. } | Attribute::Setup(_))
    )
}

/// Stream `index` with profile `proto` and exactly the `crypto` lines
/// given (every other `a=crypto`, `a=fingerprint` and `a=setup` of the
/// stream and the session level removed; the new lines go last in the
/// stream). Other streams and lines are kept byte for byte.
pub fn set_security(sdp: &Sdp, index: usize, proto: &str, crypto: &[Attribute]) -> Sdp {
    let session = sdp
        .session
        .iter()
        .filter(|l| !is_keying(l))
        .cloned()
        .collect();
    let media = sdp
        .media
        .iter()
        .enumerate()
        .map(|(i, section)| {
            if i != index {
                return section.clone();
            }
            let mut lines: Vec<Line> = section
                .lines
                .iter()
                .filter(|l| !is_keying(l))
                .cloned()
                .collect();
            lines.extend(crypto.iter().cloned().map(Line::attr));
            section.with_lines_and_proto(lines, proto)
        })
        .collect();
    Sdp { session, media }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\na=fingerprint:sha-256 AB\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVPF 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc|2^20\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:def KDR=1\r\na=setup:actpass\r\na=sendrecv\r\nm=video 0 RTP/AVP 31\r\n";

    #[test]
    fn profiles() {
        assert_eq!(profile("RTP/AVP"), Profile::Plain);
        assert_eq!(profile("RTP/AVPF"), Profile::Plain);
        assert_eq!(profile("RTP/SAVP"), Profile::Sdes);
        assert_eq!(profile("RTP/SAVPF"), Profile::Sdes);
        assert_eq!(profile("UDP/TLS/RTP/SAVPF"), Profile::Dtls);
        assert_eq!(profile("UDP/TLS/RTP/SAVP"), Profile::Dtls);
    }

    #[test]
    fn reads_and_replaces_keys() {
        let sdp = Sdp::parse(SAVP.as_bytes()).unwrap();
        let lines = crypto_lines(&sdp, 0);
        assert_eq!(
            lines,
            vec![
                (1, "AES_CM_128_HMAC_SHA1_80", "inline:abc|2^20", None),
                (2, "AES_CM_128_HMAC_SHA1_32", "inline:def", Some("KDR=1")),
            ]
        );
        assert!(crypto_lines(&sdp, 1).is_empty() && crypto_lines(&sdp, 7).is_empty());
        let ours = Attribute::Crypto {
            tag: 2,
            suite: "AES_CM_128_HMAC_SHA1_32".into(),
            key_params: "inline:xyz".into(),
            session_params: None,
        };
        let out = set_security(&sdp, 0, "RTP/SAVP", &[ours]).to_string();
        assert!(
            out.contains(
                "m=audio 5000 RTP/SAVP 0\r\na=sendrecv\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:xyz\r\nm=video 0 RTP/AVP 31\r\n"
            ),
            "{out}"
        );
        assert!(!out.contains("fingerprint") && !out.contains("setup"));
        let plain = set_security(&sdp, 0, "RTP/AVP", &[]).to_string();
        assert!(
            plain.contains("m=audio 5000 RTP/AVP 0\r\na=sendrecv\r\nm=video"),
            "{plain}"
        );
        Sdp::parse(out.as_bytes()).unwrap();
    }
}
