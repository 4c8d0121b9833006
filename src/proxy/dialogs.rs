//! Dialogs the proxy has seen established through it, so in-dialog requests
//! that arrive without a usable Route (SIPp's built-in uac sends ACK and BYE
//! to the proxy's address) still reach the right peer.
//!
//! A dialog is keyed by Call-ID and the two tags (RFC 3261 §12); the tag of
//! the caller tells which way a request travels.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sip::transaction::PeerKeyMap;
use crate::sip::transport::Flow;

/// The two ends of a proxied dialog.
#[derive(Debug, Clone)]
pub struct DialogEnds {
    /// The caller's From tag.
    pub caller_tag: Bytes,
    /// Where the caller's requests came from.
    pub caller: Flow,
    /// Where we sent the dialog-creating request.
    pub callee: Flow,
    /// Confirmed by a 2xx (early dialogs are dropped on a failure response).
    pub confirmed: bool,
    /// Forget the dialog after this instant unless it sees traffic.
    pub expires: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    call_id: Bytes,
    low: Bytes,
    high: Bytes,
}

fn key(call_id: &[u8], a: &[u8], b: &[u8]) -> Key {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    Key {
        call_id: Bytes::copy_from_slice(call_id),
        low: Bytes::copy_from_slice(low),
        high: Bytes::copy_from_slice(high),
    }
}

/// The table of known dialogs, with idle expiry.
#[derive(Debug)]
pub struct DialogTable {
    map: PeerKeyMap<Key, DialogEnds>,
    idle: Duration,
}

impl DialogTable {
    /// A table forgetting dialogs idle for longer than `idle`.
    pub fn new(idle: Duration) -> DialogTable {
        DialogTable {
            map: PeerKeyMap::default(),
            idle,
        }
    }

    /// Record (or refresh) a dialog seen in a response with a To tag.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert(
        &mut self,
        now: Instant,
        call_id: &[u8],
        caller_tag: &[u8],
        callee_tag: &[u8],
        caller: Flow,
        callee: Flow,
        confirmed: bool,
    ) {
        let expires = now + self.idle;
        let entry = self
            .map
            .entry(key(call_id, caller_tag, callee_tag))
            .or_insert(DialogEnds {
                caller_tag: Bytes::copy_from_slice(caller_tag),
                caller,
                callee,
                confirmed,
                expires,
            });
        entry.confirmed |= confirmed;
        entry.expires = expires;
    }

    /// Find the dialog of an in-dialog request and the flow it should go to;
    /// refreshes the idle timer.
    pub fn target(
        &mut self,
        now: Instant,
        call_id: &[u8],
        from_tag: &[u8],
        to_tag: &[u8],
    ) -> Option<Flow> {
        let idle = self.idle;
        let d = self.map.get_mut(&key(call_id, from_tag, to_tag))?;
        d.expires = now + idle;
        Some(if d.caller_tag == from_tag {
            d.callee
        } else {
            d.caller
        })
    }

    /// Forget a dialog (BYE answered, or an early dialog that failed).
    pub fn remove(&mut self, call_id: &[u8], a: &[u8], b: &[u8]) {
        self.map.remove(&key(call_id, a, b));
    }

    /// Forget unconfirmed dialogs of a call whose INVITE failed.
    pub fn remove_early(&mut self, call_id: &[u8], caller_tag: &[u8]) {
        self.map
            .retain(|k, d| !(k.call_id == call_id && d.caller_tag == caller_tag && !d.confirmed));
    }

    /// Drop idle dialogs; returns how many were removed.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        self.map.retain(|_, d| d.expires > now);
        before - self.map.len()
    }

    /// Number of dialogs tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::Transport;

    fn flow(port: u16) -> Flow {
        Flow {
            listener: 0,
            transport: Transport::Udp,
            remote: ([127, 0, 0, 1], port).into(),
            conn: None,
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // tests need one real Instant as the origin
    fn direction_by_tag_and_expiry() {
        let t0 = Instant::now();
        let mut t = DialogTable::new(Duration::from_secs(60));
        t.upsert(t0, b"c1", b"caller", b"callee", flow(1), flow(2), true);
        assert_eq!(t.target(t0, b"c1", b"caller", b"callee"), Some(flow(2)));
        assert_eq!(t.target(t0, b"c1", b"callee", b"caller"), Some(flow(1)));
        assert_eq!(t.target(t0, b"c1", b"x", b"callee"), None);
        assert_eq!(t.expire(t0 + Duration::from_secs(61)), 1);
        assert_eq!(t.len(), 0);
    }
}
