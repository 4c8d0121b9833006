//! Session keys (RFC 3711 §4.3) and the AES counter-mode keystream they
//! drive (§4.1.1).
//!
//! With a key derivation rate of 0 (RFC 4568's default, the only one we
//! take) each session key is derived once: `x = (label << 48) XOR salt`,
//! `key = AES-CM_master_key(x · 2^16)` truncated to the length needed.

use aes::Aes128;
use aes::cipher::{self, InnerIvInit, KeyInit, StreamCipher};
use ctr::{CtrCore, flavors};
use hmac::Hmac;
use sha1::Sha1;

use super::sdes::MasterKey;
use super::suite::{AUTH_KEY_LEN, KEY_LEN, SALT_LEN};

/// AES-128 in counter mode with a 128-bit big-endian counter: the block
/// counter of AES-CM occupies the low 16 bits of the IV (§4.1.1).
type Aes128Ctr = cipher::StreamCipherCoreWrapper<CtrCore<Aes128, flavors::Ctr128BE>>;

/// Labels of §4.3.1 (SRTP) and §4.3.2 (SRTCP): cipher key, auth key, salt.
pub(crate) const SRTP_LABELS: [u8; 3] = [0x00, 0x01, 0x02];
pub(crate) const SRTCP_LABELS: [u8; 3] = [0x03, 0x04, 0x05];

/// The session keys of one direction of SRTP or SRTCP.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    /// AES with the session cipher key (key schedule done once).
    cipher: Aes128,
    /// Session salt k_s.
    salt: [u8; SALT_LEN],
    /// HMAC-SHA1 keyed with the session auth key (inner/outer pads
    /// hashed once; cloned per packet).
    pub(crate) mac: Hmac<Sha1>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// The AES-CM PRF (§4.3.3): the keystream of `master` at IV `x · 2^16`.
pub(crate) fn prf(master: &[u8; KEY_LEN], x: &[u8; SALT_LEN], out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(x);
    out.fill(0);
    let mut c = Aes128Ctr::from_core(CtrCore::inner_iv_init(
        Aes128::new(master.into()),
        &iv.into(),
    ));
    c.apply_keystream(out);
}

/// One session key: `x = key_id XOR master_salt` with `key_id = label ||
/// r` (r = 0 at KDR 0), right-aligned in 112 bits (§4.3.1).
fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut x = master.salt;
    x[SALT_LEN - 7] ^= label;
    prf(&master.key, &x, out);
}

impl SessionKeys {
    /// The session keys for `labels` (SRTP or SRTCP) of `master`.
    pub(crate) fn derive(master: &MasterKey, labels: [u8; 3]) -> SessionKeys {
        let mut key = [0u8; KEY_LEN];
        let mut auth = [0u8; AUTH_KEY_LEN];
        let mut salt = [0u8; SALT_LEN];
        derive(master, labels[0], &mut key);
        derive(master, labels[1], &mut auth);
        derive(master, labels[2], &mut salt);
        SessionKeys {
            cipher: Aes128::new(&key.into()),
            salt,
            #[allow(clippy::expect_used)]
            // HMAC takes keys of any length: new_from_slice cannot fail.
            mac: <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(&auth)
                .expect("HMAC accepts any key length"),
        }
    }

    /// XORs `data` with the AES-CM keystream for `ssrc` and packet `index`
    /// (§4.1.1: IV = (k_s · 2^16) XOR (SSRC · 2^64) XOR (i · 2^16)).
    pub(crate) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let mut c = Aes128Ctr::from_core(CtrCore::inner_iv_init(self.cipher.clone(), &iv.into()));
        c.apply_keystream(data);
    }
}

#[cfg(test)]
pub(crate) fn session_key_bytes(master: &MasterKey, label: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    derive(master, label, &mut out);
    out
}

#[cfg(test)]
pub(crate) fn keystream_at(key: &[u8; KEY_LEN], iv: &[u8; 16], blocks: u64) -> Vec<u8> {
    use cipher::StreamCipherSeek;
    let mut c = Aes128Ctr::from_core(CtrCore::inner_iv_init(
        Aes128::new(key.into()),
        &(*iv).into(),
    ));
    c.seek(blocks * 16);
    let mut out = vec![0u8; 16];
    c.apply_keystream(&mut out);
    out
}
