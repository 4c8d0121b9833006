//! SDES-SRTP termination (RFC 3711 SRTP/SRTCP, RFC 4568 keys): the relay
//! decrypts what an SRTP leg sends and encrypts what it sends to that leg, so
//! a client speaking RTP/SAVP can talk to a plain-RTP trunk.
//!
//! ```text
//!   a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<key||salt>   (sdes: KeyParams)
//!        │ master key + salt
//!        ▼
//!   kdf: AES-CM PRF (§4.3.1) ─▶ session cipher key, salt, auth key (SRTP and SRTCP)
//!        ▼
//!   Context (one per direction of a leg; per-SSRC state inside)
//!     unprotect_rtp:  index estimate (§3.3.1, App. A) ─ replay window (§3.3.2)
//!                     ─ HMAC-SHA1 tag check (constant time) ─ AES-CM decrypt
//!     protect_rtp:    ROC from our own sequence numbers ─ encrypt ─ tag
//!     (un)protect_rtcp: E-bit + 31-bit SRTCP index (§3.4), 80-bit tag
//! ```
//!
//! * [`suite`]: the crypto suites (RFC 4568 §6.2): `AES_CM_128_HMAC_SHA1_80`
//!   and `AES_CM_128_HMAC_SHA1_32`.
//! * [`sdes`]: the `inline:` key parameter, parsed and written (base64
//!   key||salt, optional lifetime; MKI refused).
//! * `kdf` (private): session key derivation (§4.3).
//! * `replay` (private): the replay window.
//! * [`context`]: [`Context`], protect/unprotect for SRTP and SRTCP.
//! * [`LegSrtp`]: the two contexts of one relay leg (what it sends us, what
//!   we send it), rekeyed without resetting a context whose key is unchanged.
//!
//! Sans-IO like the rest of `media`: no clock and no randomness — the keys
//! are passed in (the B2BUA draws ours from the runtime's entropy). MKI is
//! not supported, the key derivation rate is 0 (RFC 4568 default) and there
//! is no AEAD suite; a packet that fails any check is dropped with an
//! [`SrtpError`], never a panic.

pub mod context;
mod kdf;
mod replay;
pub mod sdes;
pub mod suite;

#[cfg(test)]
mod tests;

use std::fmt;

pub use context::Context;
pub use sdes::{KeyParams, MasterKey};
pub use suite::Suite;

/// Errors of SRTP: a packet that cannot be protected or unprotected, or
/// `a=crypto` key parameters we cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    /// Shorter than its header plus the authentication tag (and SRTCP index).
    TooShort,
    /// Not RTP/RTCP version 2, or a header (CSRC list, extension) running
    /// past the end of the packet.
    BadHeader,
    /// The authentication tag does not match (RFC 3711 §3.3 step 5).
    AuthFailed,
    /// Already received, or older than the replay window (§3.3.2).
    Replayed,
    /// The key was used for 2^48 SRTP / 2^31 SRTCP packets (§9.2): no more.
    KeyExhausted,
    /// `a=crypto` key parameters that are not `inline:` with a well-formed
    /// base64 key||salt of the suite's length.
    BadKeyParams,
    /// A lifetime that is not `2^n` or a decimal number of packets.
    BadLifetime,
    /// An MKI (`|value:length`) or several keys: we use one key without MKI.
    MkiUnsupported,
    /// A crypto suite we do not implement.
    UnsupportedSuite,
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SrtpError::TooShort => "SRTP packet too short",
            SrtpError::BadHeader => "SRTP packet with a bad RTP/RTCP header",
            SrtpError::AuthFailed => "SRTP authentication failed",
            SrtpError::Replayed => "SRTP packet replayed or too old",
            SrtpError::KeyExhausted => "SRTP key used for too many packets",
            SrtpError::BadKeyParams => "SRTP key parameters are not inline:<base64 key||salt>",
            SrtpError::BadLifetime => "SRTP key lifetime is not 2^n or a number",
            SrtpError::MkiUnsupported => "SRTP MKI or multiple keys are not supported",
            SrtpError::UnsupportedSuite => "SRTP crypto suite not supported",
        })
    }
}

impl std::error::Error for SrtpError {}

/// The keys of one SRTP leg, as the B2BUA negotiated them (RFC 4568): the
/// suite, the key the leg announced in its SDP (it protects what it sends
/// us) and the key we announced to it (we protect what we send it).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite of the accepted `a=crypto` line.
    pub suite: Suite,
    /// The leg's own key: unprotects what it sends.
    pub remote: MasterKey,
    /// Our key for this leg: protects what we send it.
    pub local: MasterKey,
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (logs, test failures).
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The SRTP state of one relay leg: the inbound context (the leg's key) and
/// the outbound one (ours).
#[derive(Debug)]
pub struct LegSrtp {
    keys: SrtpKeys,
    inbound: Context,
    outbound: Context,
}

impl LegSrtp {
    /// Contexts for `keys`.
    pub fn new(keys: SrtpKeys) -> LegSrtp {
        LegSrtp {
            inbound: Context::new(keys.suite, &keys.remote),
            outbound: Context::new(keys.suite, &keys.local),
            keys,
        }
    }

    /// New keys after a re-offer (RFC 4568 §7.1.4): a context whose suite and
    /// key are unchanged keeps its state (rollover counters, SRTCP index,
    /// replay window); restarting it would reuse keystream.
    pub fn rekey(&mut self, keys: SrtpKeys) {
        let same_suite = keys.suite == self.keys.suite;
        if !same_suite || keys.remote != self.keys.remote {
            self.inbound = Context::new(keys.suite, &keys.remote);
        }
        if !same_suite || keys.local != self.keys.local {
            self.outbound = Context::new(keys.suite, &keys.local);
        }
        self.keys = keys;
    }

    /// The keys in use.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// Authenticates and decrypts an SRTP packet from the leg, in place.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.inbound.unprotect_rtp(packet)
    }

    /// Authenticates and decrypts an SRTCP packet from the leg, in place.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.inbound.unprotect_rtcp(packet)
    }

    /// Encrypts and authenticates an RTP packet toward the leg, in place.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.outbound.protect_rtp(packet)
    }

    /// Encrypts and authenticates an RTCP packet toward the leg, in place.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.outbound.protect_rtcp(packet)
    }
}
