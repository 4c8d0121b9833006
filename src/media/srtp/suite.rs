//! The SDES crypto suites we implement (RFC 4568 §6.2): AES in counter mode
//! with a 128-bit key and a 112-bit salt, HMAC-SHA1 authentication.

use std::fmt;

/// A crypto suite of `a=crypto` (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80`: 80-bit tags on SRTP and SRTCP (§6.2.1).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: 32-bit SRTP tags, 80-bit SRTCP tags (§6.2.2).
    AesCm128HmacSha1_32,
}

/// Master key length of both suites, in bytes (128 bits).
pub const KEY_LEN: usize = 16;
/// Master salt length of both suites, in bytes (112 bits).
pub const SALT_LEN: usize = 14;
/// Session authentication key length (160 bits, RFC 3711 §4.2.1).
pub const AUTH_KEY_LEN: usize = 20;

impl Suite {
    /// Every suite, in the order we prefer them.
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    /// The name as written in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite named `name` (names are case-sensitive, RFC 4568 §9.2).
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// SRTP authentication tag length in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// SRTCP authentication tag length in bytes: 80 bits for both suites
    /// (RFC 4568 §6.2.2).
    pub fn rtcp_tag_len(self) -> usize {
        10
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
        }
        assert_eq!(Suite::from_name("aes_cm_128_hmac_sha1_80"), None);
        assert_eq!(Suite::from_name("AES_256_CM_HMAC_SHA1_80"), None);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtp_tag_len(), 4);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtcp_tag_len(), 10);
    }
}
