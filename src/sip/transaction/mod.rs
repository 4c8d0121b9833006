//! RFC 3261 §17 transactions (sans-IO) with the RFC 6026 corrections.
//!
//! One module per machine — `ict` (Figure 5), `nict` (Figure 6),
//! `ist` (Figure 7), `nist` (Figure 8) — each with its state diagram;
//! the [`Endpoint`] matches messages to transactions and owns the timers.
//! Nothing here reads the clock: every input takes `now`, outputs are
//! drained with [`Endpoint::poll_output`], and [`Endpoint::poll_timeout`]
//! says when to call [`Endpoint::handle_timeout`].

mod endpoint;
mod ict;
mod index;
mod ist;
mod key;
mod nict;
mod nist;
mod slab;
mod timers;
mod tx;

pub use endpoint::Endpoint;

use std::time::Duration;

use crate::sip::message::Message;
use crate::sip::transport::{Flow, Transmit};

/// Identifies a transaction inside one [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// Hasher for maps keyed by [`TxId`]: the ids are our own counter, never
/// chosen by a peer, so the DoS-resistant (and slower) SipHash buys nothing;
/// a multiply-shift spreads them over the buckets (SipHash was ~3 % of the
/// proxy core's CPU under `perf`).
#[derive(Default, Clone, Copy)]
pub struct TxIdHasher(u64);

impl std::hash::Hasher for TxIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

/// A map keyed by bytes a peer chose (branches, Call-IDs, tags): foldhash
/// with a random per-map seed. SipHash (std's default) was 2–3 % of the
/// proxy's CPU in `perf`; foldhash is several times faster on short keys and
/// still seeded, so a peer cannot precompute colliding keys.
pub type PeerKeyMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A map keyed by transaction id (see [`TxIdHasher`]).
pub type TxMap<V> = std::collections::HashMap<TxId, V, std::hash::BuildHasherDefault<TxIdHasher>>;

/// The RFC 3261 §17.1.1.1 timer base values, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum duration a message remains in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What the endpoint asks its owner to do.
#[derive(Debug)]
pub enum Output {
    /// Send bytes.
    Transmit(Transmit),
    /// A new request for the TU: `tx` is its server transaction, `None` for an
    /// ACK to a 2xx (no transaction, RFC 3261 §17.2.3 / RFC 6026).
    Request {
        /// The server transaction, if any.
        tx: Option<TxId>,
        /// Where it came from.
        flow: Flow,
        /// The request.
        msg: Message,
    },
    /// A response from a client transaction: every provisional, the final,
    /// and (RFC 6026 Accepted) 2xx retransmissions of an INVITE.
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        msg: Message,
    },
    /// A response matching no client transaction (RFC 3261 §16.7 / §16.11).
    StrayResponse {
        /// Where it came from.
        flow: Flow,
        /// The response.
        msg: Message,
    },
    /// Timer B or F fired: the TU treats it as a 408 (RFC 3261 §17.1.1.2, §17.1.2.2).
    Timeout {
        /// The client transaction.
        tx: TxId,
    },
    /// A transport failure ended a client transaction (RFC 3261 §17.1.4).
    TransportError {
        /// The client transaction.
        tx: TxId,
    },
    /// Timer H fired: no ACK arrived for a non-2xx final (RFC 3261 §17.2.1).
    ServerTimeout {
        /// The server transaction.
        tx: TxId,
    },
    /// A transaction was removed (reported exactly once per transaction).
    Terminated {
        /// The transaction.
        tx: TxId,
    },
}

/// Transaction states of RFC 3261 Figures 5–8 and RFC 6026.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxState {
    /// ICT waiting for any response.
    Calling,
    /// NICT waiting for any response, or NIST waiting for the TU.
    Trying,
    /// A provisional response was sent or received.
    Proceeding,
    /// A final response was sent or received; absorbing retransmissions.
    Completed,
    /// IST: the ACK for a non-2xx final arrived.
    Confirmed,
    /// RFC 6026: a 2xx was sent or received for an INVITE.
    Accepted,
    /// Finished (transient: the transaction is removed right after).
    Terminated,
}

/// A fixed instant for unit tests (the only clock read in this module tree).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}

#[cfg(test)]
mod tests;
