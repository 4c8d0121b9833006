//! Counters the proxy keeps; the runtime exports them as Prometheus metrics.
//! Plain atomics: updating them is neither I/O nor clock access.

use std::sync::atomic::{AtomicU64, Ordering};

/// Methods counted individually; everything else is `other`.
pub const METHODS: [&str; 10] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO", "other",
];

/// Index into [`METHODS`] for a method token.
pub fn method_index(m: &[u8]) -> usize {
    METHODS[..9]
        .iter()
        .position(|x| x.as_bytes() == m)
        .unwrap_or(9)
}

/// Shared counters of one proxy shard.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Requests received, by method index.
    pub requests_in: [AtomicU64; 10],
    /// Requests sent (forwarded or generated), by method index.
    pub requests_out: [AtomicU64; 10],
    /// Responses received, by class 1..=6 (index 0 unused).
    pub responses_in: [AtomicU64; 7],
    /// Responses sent, by class.
    pub responses_out: [AtomicU64; 7],
    /// Messages that failed to parse.
    pub parse_errors: AtomicU64,
    /// New calls (initial INVITEs accepted for routing).
    pub calls: AtomicU64,
    /// Transactions alive right now (gauge).
    pub active_transactions: AtomicU64,
    /// Proxied requests still waiting for a final response (gauge; drain waits for 0).
    pub pending_requests: AtomicU64,
    /// Dialogs tracked right now (gauge).
    pub active_dialogs: AtomicU64,
    /// Panics caught by the runtime around the proxy (should stay 0).
    pub internal_errors: AtomicU64,
    /// Branches moved to the next trunk (failover).
    pub failovers: AtomicU64,
    /// B2BUA calls alive right now (gauge).
    pub active_calls: AtomicU64,
    /// Media ports (pairs) the B2BUA has allocated (gauge).
    pub media_ports_in_use: AtomicU64,
}

impl ProxyStats {
    /// Add one to a counter.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
