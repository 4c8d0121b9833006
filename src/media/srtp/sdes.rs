//! The key parameter of `a=crypto` (RFC 4568 §6.1, §9.2):
//! `inline:<base64 key||salt>[|lifetime][|MKI:length]`.
//!
//! We take exactly one key without MKI: an MKI, or several `;`-separated
//! keys, is refused with [`SrtpError::MkiUnsupported`] so the B2BUA can pick
//! another `a=crypto` line or answer 488.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::SrtpError;
use super::suite::{KEY_LEN, SALT_LEN};

/// A master key and master salt (RFC 3711 §3.2.1).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// The master key (128 bits).
    pub key: [u8; KEY_LEN],
    /// The master salt (112 bits).
    pub salt: [u8; SALT_LEN],
}

impl MasterKey {
    /// A key from 30 bytes of key||salt (e.g. fresh random bytes).
    pub fn from_bytes(bytes: &[u8; KEY_LEN + SALT_LEN]) -> MasterKey {
        let mut key = [0; KEY_LEN];
        let mut salt = [0; SALT_LEN];
        key.copy_from_slice(&bytes[..KEY_LEN]);
        salt.copy_from_slice(&bytes[KEY_LEN..]);
        MasterKey { key, salt }
    }

    /// key||salt.
    pub fn to_bytes(&self) -> [u8; KEY_LEN + SALT_LEN] {
        let mut out = [0; KEY_LEN + SALT_LEN];
        out[..KEY_LEN].copy_from_slice(&self.key);
        out[KEY_LEN..].copy_from_slice(&self.salt);
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// One `inline:` key parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParams {
    /// The master key and salt.
    pub key: MasterKey,
    /// The key lifetime in packets (`|2^31`), if given. We do not rekey when
    /// it runs out; the context stops at the RFC 3711 §9.2 limits.
    pub lifetime: Option<u64>,
}

impl KeyParams {
    /// Parses the key parameters of an `a=crypto` line (RFC 4568 §9.2).
    pub fn parse(text: &str) -> Result<KeyParams, SrtpError> {
        let text = text.trim();
        if text.contains(';') {
            // Several keys only make sense with MKIs (RFC 4568 §6.1).
            return Err(SrtpError::MkiUnsupported);
        }
        let info = text
            .strip_prefix("inline:")
            .ok_or(SrtpError::BadKeyParams)?;
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        let raw = STANDARD.decode(b64).map_err(|_| SrtpError::BadKeyParams)?;
        let bytes: [u8; KEY_LEN + SALT_LEN] =
            raw.try_into().map_err(|_| SrtpError::BadKeyParams)?;
        let mut lifetime = None;
        for (i, part) in parts.enumerate() {
            if part.contains(':') {
                return Err(SrtpError::MkiUnsupported);
            }
            if i > 0 || lifetime.is_some() {
                return Err(SrtpError::BadKeyParams);
            }
            lifetime = Some(parse_lifetime(part)?);
        }
        Ok(KeyParams {
            key: MasterKey::from_bytes(&bytes),
            lifetime,
        })
    }

    /// Our key parameter for `key`: `inline:<base64>` (no lifetime: the
    /// RFC 3711 default of 2^48 SRTP / 2^31 SRTCP packets applies).
    pub fn inline(key: &MasterKey) -> String {
        format!("inline:{}", STANDARD.encode(key.to_bytes()))
    }
}

/// `2^n` (n ≤ 63) or a decimal count (RFC 4568 §9.2 lifetime).
fn parse_lifetime(s: &str) -> Result<u64, SrtpError> {
    let all_digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    match s.strip_prefix("2^") {
        Some(exp) if all_digits(exp) => match exp.parse::<u32>() {
            Ok(n) if n < 64 => Ok(1u64 << n),
            _ => Err(SrtpError::BadLifetime),
        },
        None if all_digits(s) => s.parse().map_err(|_| SrtpError::BadLifetime),
        _ => Err(SrtpError::BadLifetime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §9.1 example key.
    const RFC_KEY: &str = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4";

    #[test]
    fn parses_key_salt_and_lifetime() {
        let p = KeyParams::parse("inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20").unwrap();
        assert_eq!(&p.key.key, b"YS___semctl () {");
        assert_eq!(&p.key.salt, b"\t220;}\n}\nunles");
        assert_eq!(p.lifetime, Some(1 << 20));
        let p = KeyParams::parse("inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1000").unwrap();
        assert_eq!(p.lifetime, Some(1000));
        let p = KeyParams::parse(" inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz").unwrap();
        assert_eq!(p.lifetime, None);
    }

    #[test]
    fn refuses_mki_and_bad_keys() {
        assert_eq!(KeyParams::parse(RFC_KEY), Err(SrtpError::MkiUnsupported));
        assert_eq!(
            KeyParams::parse("inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:4"),
            Err(SrtpError::MkiUnsupported)
        );
        let two = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz;inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        assert_eq!(KeyParams::parse(two), Err(SrtpError::MkiUnsupported));
        for bad in [
            "",
            "inline:",
            "uri:https://example.com/key",
            "inline:c2hvcnQ=",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzAAAA",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV!",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|2^20",
        ] {
            assert!(KeyParams::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["2^", "2^64", "x", "2^x", "-1", "99999999999999999999999"] {
            let t = format!("inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|{bad}");
            assert_eq!(KeyParams::parse(&t), Err(SrtpError::BadLifetime), "{bad}");
        }
    }

    #[test]
    fn inline_round_trips_and_hides_keys_in_debug() {
        let key = MasterKey::from_bytes(&[7; 30]);
        let text = KeyParams::inline(&key);
        assert_eq!(text.len(), "inline:".len() + 40);
        assert_eq!(KeyParams::parse(&text).unwrap().key, key);
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
    }
}
