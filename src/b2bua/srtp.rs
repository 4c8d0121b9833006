//! SDES-SRTP termination per leg (RFC 4568 keys for RFC 3711 SRTP): which
//! leg speaks SRTP, the key it announced and the one we announced to it.
//!
//! ```text
//!   client offer RTP/SAVP + a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:K_c
//!     └─ leg A: remote K_c (unprotects what it sends), local K_g (fresh, ours)
//!   answer to the client: RTP/SAVP + a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:K_g
//!   offer to a plain trunk: RTP/AVP, no keys (sdp_plan::for_trunk)
//!   media: Srtp { leg: A, keys: { remote: K_c, local: K_g } } after Open/UpdateLeg
//! ```
//!
//! A leg toward a trunk marked `srtp: true` (or a non-plain trunk when the
//! caller spoke SDES) gets our own offer `RTP/SAVP` with our key; its answer
//! brings its key. DTLS-SRTP (`UDP/TLS/RTP/SAVP(F)`), `RTP/SAVP` without a
//! suite we implement, MKIs and session parameters are refused: an offer
//! we cannot key gets 488 (RFC 4568 §7.1.1, RFC 3264 §6).

use crate::media::srtp::{KeyParams, MasterKey, SrtpKeys, Suite};
use crate::media::{Leg, MediaCommand};
use crate::sdp::{self, Attribute, Profile, Sdp};

use super::B2bua;
use super::call::Call;
use super::sdp_plan;

/// The SDES state of one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegCrypto {
    /// The leg's profile, echoed in our SDP (`RTP/SAVP` or `RTP/SAVPF`).
    pub proto: String,
    /// The `a=crypto` tag in use on this leg.
    pub tag: u32,
    /// The suite in use.
    pub suite: Suite,
    /// Our key for this leg (we protect what we send it).
    pub local: MasterKey,
    /// The leg's key, once its SDP told us (it protects what it sends).
    pub remote: Option<MasterKey>,
}

impl LegCrypto {
    /// The relay's keys, once both are known.
    pub fn keys(&self) -> Option<SrtpKeys> {
        Some(SrtpKeys {
            suite: self.suite,
            remote: self.remote.clone()?,
            local: self.local.clone(),
        })
    }

    /// Our `a=crypto` line for this leg.
    pub fn attribute(&self) -> Attribute {
        Attribute::Crypto {
            tag: self.tag,
            suite: self.suite.name().into(),
            key_params: KeyParams::inline(&self.local),
            session_params: None,
        }
    }
}

/// What an SDP asks of the handled (first audio) stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Plain RTP (or no audio stream).
    Plain,
    /// SDES with the first `a=crypto` we can use.
    Sdes {
        proto: String,
        tag: u32,
        suite: Suite,
        key: MasterKey,
    },
    /// SRTP we cannot key: the reason, for a `Warning`.
    Refused(&'static str),
}

/// Reads the handled stream of `sdp` (an offer, or an answer to a plain
/// offer): the first `a=crypto` line with a suite we implement, an
/// `inline:` key without MKI and no session parameters (RFC 4568 §7.1.1:
/// the answerer picks one offered line it supports).
pub(crate) fn offered(sdp: &Sdp) -> Offered {
    let Some(i) = sdp_plan::audio_index(sdp) else {
        return Offered::Plain;
    };
    let proto = sdp.media()[i].media_line().proto.clone();
    match sdp::profile(&proto) {
        Profile::Plain => return Offered::Plain,
        Profile::Dtls => {
            return Offered::Refused(
                "DTLS-SRTP is not supported; offer SDES (RTP/SAVP with a=crypto) or RTP/AVP",
            );
        }
        Profile::Sdes => {}
    }
    for (tag, suite, key_params, session_params) in sdp::crypto_lines(sdp, i) {
        let Some(suite) = Suite::from_name(suite) else {
            continue;
        };
        if session_params.is_some() {
            continue; // e.g. KDR, UNENCRYPTED_SRTP: not implemented
        }
        if let Ok(k) = KeyParams::parse(key_params) {
            return Offered::Sdes {
                proto,
                tag,
                suite,
                key: k.key,
            };
        }
    }
    Offered::Refused(
        "no acceptable a=crypto: AES_CM_128_HMAC_SHA1_80/_32 with an inline key, no MKI, no session parameters",
    )
}

/// The key of an answer to our SDES offer on a leg: the `a=crypto` line
/// with our tag and suite (RFC 4568 §7.1.2). `None` when the answer has
/// none (`Some(None)`: it answered plain RTP).
pub(crate) fn answered_key(answer: &Sdp, ours: &LegCrypto) -> Option<Option<MasterKey>> {
    let i = sdp_plan::audio_index(answer)?;
    let proto = &answer.media()[i].media_line().proto;
    if sdp::profile(proto) == Profile::Plain {
        return Some(None);
    }
    sdp::crypto_lines(answer, i)
        .into_iter()
        .find(|(tag, suite, _, params)| {
            *tag == ours.tag && *suite == ours.suite.name() && params.is_none()
        })
        .and_then(|(_, _, key_params, _)| KeyParams::parse(key_params).ok())
        .map(|k| Some(k.key))
}

/// Our SDP toward a leg, fit for its security: for an SDES leg the handled
/// stream gets the leg's profile and our one `a=crypto` (anything keyed for
/// the other leg removed); for a plain leg a `RTP/AVP` profile without keys.
pub(crate) fn secure(sdp: &Sdp, crypto: Option<&LegCrypto>) -> Sdp {
    let Some(i) = sdp_plan::audio_index(sdp) else {
        return sdp.clone();
    };
    match crypto {
        Some(c) => sdp::set_security(sdp, i, &c.proto, &[c.attribute()]),
        None if sdp::profile(&sdp.media()[i].media_line().proto) != Profile::Plain => {
            sdp::set_security(sdp, i, "RTP/AVP", &[])
        }
        None => sdp.clone(),
    }
}

impl B2bua {
    /// 30 fresh bytes of key||salt from the runtime's entropy, or `None`
    /// when this B2BUA was given none (then SDES offers get 488).
    pub(crate) fn fresh_key(&mut self) -> Option<MasterKey> {
        use rand::Rng;
        let rng = self.srtp_rng.as_mut()?;
        let mut bytes = [0u8; 30];
        rng.fill_bytes(&mut bytes);
        Some(MasterKey::from_bytes(&bytes))
    }

    /// Whether we can take `sdp` as an offer on an anchored leg: plain, or
    /// SDES we can key. `Err` carries the 488's warning text.
    pub(crate) fn check_offer(&self, sdp: &Sdp) -> Result<(), &'static str> {
        match offered(sdp) {
            Offered::Plain => Ok(()),
            Offered::Sdes { .. } if self.srtp_rng.is_some() => Ok(()),
            Offered::Sdes { .. } => Err("SRTP termination is not available"),
            Offered::Refused(why) => Err(why),
        }
    }

    /// `leg` offered (or, answering our plain offer, answered) `sdp`: take
    /// its key. Our key is kept while the suite stays the same (RFC 4568
    /// §7.1.4 lets either side keep its key), else a fresh one is drawn.
    pub(crate) fn take_offer_crypto(&mut self, call: &mut Call, leg: Leg, sdp: &Sdp) {
        let new = match offered(sdp) {
            Offered::Sdes {
                proto,
                tag,
                suite,
                key,
            } => {
                let keep = call.media.srtp[leg as usize]
                    .as_ref()
                    .filter(|c| c.suite == suite)
                    .map(|c| c.local.clone());
                keep.or_else(|| self.fresh_key()).map(|local| LegCrypto {
                    proto,
                    tag,
                    suite,
                    local,
                    remote: Some(key),
                })
            }
            Offered::Plain | Offered::Refused(_) => None,
        };
        self.set_leg_crypto(call, leg, new);
    }

    /// `leg` answered our SDES offer with `answer`: its key, or plain RTP.
    /// An answer without our tag leaves the keys as they were.
    pub(crate) fn take_answer_crypto(&mut self, call: &mut Call, leg: Leg, answer: &Sdp) {
        let Some(ours) = call.media.srtp[leg as usize].clone() else {
            // We offered plain RTP: a keyed answer is refused by the peer
            // itself (RFC 3264 §6: the answer keeps the offer's profile).
            return;
        };
        match answered_key(answer, &ours) {
            Some(Some(key)) => {
                let new = LegCrypto {
                    remote: Some(key),
                    ..ours
                };
                self.set_leg_crypto(call, leg, Some(new));
            }
            Some(None) => {
                tracing::warn!(call = call.id, ?leg, "SDES offer answered with plain RTP");
                self.set_leg_crypto(call, leg, None);
            }
            None => {
                tracing::warn!(call = call.id, ?leg, "SDES answer without our a=crypto tag");
            }
        }
    }

    /// Records `leg`'s crypto and tells the media plane when it changed.
    pub(crate) fn set_leg_crypto(&mut self, call: &mut Call, leg: Leg, new: Option<LegCrypto>) {
        let old = std::mem::replace(&mut call.media.srtp[leg as usize], new);
        let keys = |c: &Option<LegCrypto>| c.as_ref().and_then(LegCrypto::keys);
        let (before, after) = (keys(&old), keys(&call.media.srtp[leg as usize]));
        if before != after
            && let Some(session) = call.media.session
        {
            self.media_out.push_back(MediaCommand::Srtp {
                session,
                leg,
                keys: after,
            });
        }
    }

    /// Our SDES state for a leg we offer to first (a trunk that takes
    /// SRTP): tag 1, `suite`, a fresh key; its key comes with the answer.
    pub(crate) fn offer_crypto(&mut self, suite: Suite) -> Option<LegCrypto> {
        Some(LegCrypto {
            proto: "RTP/SAVP".into(),
            tag: 1,
            suite,
            local: self.fresh_key()?,
            remote: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Sdp {
        Sdp::parse(s.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    const KEY: &str = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    fn offer(proto: &str, crypto: &str) -> Sdp {
        parse(&format!(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 {proto} 0\n{crypto}"
        ))
    }

    #[test]
    fn picks_the_first_usable_crypto_line() {
        assert_eq!(offered(&offer("RTP/AVP", "")), Offered::Plain);
        let o = offer(
            "RTP/SAVPF",
            &format!(
                "a=crypto:1 AES_256_CM_HMAC_SHA1_80 {KEY}\na=crypto:2 AES_CM_128_HMAC_SHA1_80 {KEY}|1:4\na=crypto:3 AES_CM_128_HMAC_SHA1_80 {KEY} KDR=2\na=crypto:4 AES_CM_128_HMAC_SHA1_32 {KEY}|2^31\n"
            ),
        );
        match offered(&o) {
            Offered::Sdes {
                proto, tag, suite, ..
            } => {
                assert_eq!((proto.as_str(), tag), ("RTP/SAVPF", 4));
                assert_eq!(suite, Suite::AesCm128HmacSha1_32);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            offer("RTP/SAVP", ""),
            offer(
                "RTP/SAVP",
                &format!("a=crypto:1 F8_128_HMAC_SHA1_80 {KEY}\n"),
            ),
            offer(
                "UDP/TLS/RTP/SAVPF",
                &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\na=fingerprint:sha-256 AB\n"),
            ),
        ] {
            assert!(matches!(offered(&bad), Offered::Refused(_)), "{bad}");
        }
    }

    #[test]
    fn secure_sets_profile_and_our_key_only() {
        let c = LegCrypto {
            proto: "RTP/SAVP".into(),
            tag: 7,
            suite: Suite::AesCm128HmacSha1_80,
            local: MasterKey::from_bytes(&[3; 30]),
            remote: None,
        };
        assert_eq!(c.keys(), None, "no relay keys before the leg's own key");
        let plain = offer("RTP/AVP", "a=sendrecv\n");
        let s = secure(&plain, Some(&c)).to_string();
        let ours = KeyParams::inline(&c.local);
        assert!(
            s.contains(&format!("m=audio 4000 RTP/SAVP 0\r\na=sendrecv\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 {ours}\r\n")),
            "{s}"
        );
        let keyed = offer(
            "RTP/SAVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\n"),
        );
        let s = secure(&keyed, None).to_string();
        assert!(
            s.contains("m=audio 4000 RTP/AVP 0\r\n") && !s.contains("crypto"),
            "{s}"
        );
        assert_eq!(secure(&plain, None), plain);
        // The answer to our offer: our tag and suite, or plain.
        let answer = offer(
            "RTP/SAVP",
            &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 {KEY}\n"),
        );
        let key = answered_key(&answer, &c).unwrap().unwrap();
        assert_eq!(KeyParams::inline(&key), KEY);
        assert_eq!(answered_key(&plain, &c), Some(None));
        let other_tag = offer(
            "RTP/SAVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\n"),
        );
        assert_eq!(answered_key(&other_tag, &c), None);
    }
}
