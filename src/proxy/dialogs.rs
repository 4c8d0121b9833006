//! Dialogs the proxy has seen established through it, so in-dialog requests
//! that arrive without a usable Route (SIPp's built-in uac sends ACK and BYE
//! to the proxy's address) still reach the right peer.
//!
//! A dialog is keyed by Call-ID and the two tags (RFC 3261 §12); the tag of
//! the caller tells which way a request travels.

use std::time::{Duration, Instant};

use std::hash::{Hash, Hasher};

use crate::sip::transport::Flow;
use hashbrown::{Equivalent, HashMap};

/// The two ends of a proxied dialog.
#[derive(Debug, Clone)]
pub struct DialogEnds {
    /// The caller's From tag is the lower of the key's two tags (which way a
    /// request travels: toward the callee when its From tag is the caller's).
    pub caller_is_low: bool,
    /// Where the caller's requests came from.
    pub caller: Flow,
    /// Where we sent the dialog-creating request.
    pub callee: Flow,
    /// Confirmed by a 2xx (early dialogs are dropped on a failure response).
    pub confirmed: bool,
    /// Forget the dialog after this instant unless it sees traffic.
    pub expires: Instant,
}

/// A stored dialog key: Call-ID and the two tags, the lower one first (so
/// either direction finds it), in one allocation: `bytes` is the three
/// concatenated, split at `call_id_len` and `call_id_len + low_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    bytes: Box<[u8]>,
    call_id_len: usize,
    low_len: usize,
}

impl Key {
    /// Call-ID, lower tag, higher tag.
    fn parts(&self) -> [&[u8]; 3] {
        let (call_id, tags) = self.bytes.split_at(self.call_id_len);
        let (low, high) = tags.split_at(self.low_len);
        [call_id, low, high]
    }
}

/// A dialog key borrowed from a message: lookups build this, not a [`Key`]
/// (three copies per lookup were 8 % of the proxy's allocations).
#[derive(Clone, Copy)]
struct KeyRef<'a> {
    call_id: &'a [u8],
    low: &'a [u8],
    high: &'a [u8],
}

fn key<'a>(call_id: &'a [u8], a: &'a [u8], b: &'a [u8]) -> KeyRef<'a> {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    KeyRef { call_id, low, high }
}

impl KeyRef<'_> {
    fn to_owned(self) -> Key {
        Key {
            bytes: [self.call_id, self.low, self.high]
                .concat()
                .into_boxed_slice(),
            call_id_len: self.call_id.len(),
            low_len: self.low.len(),
        }
    }
}

/// [`Key`] and [`KeyRef`] hash the same parts the same way.
fn hash_parts<H: Hasher>(parts: [&[u8]; 3], state: &mut H) {
    for p in parts {
        p.hash(state);
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.parts(), state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts([self.call_id, self.low, self.high], state);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        [self.call_id, self.low, self.high] == k.parts()
    }
}

/// The table of known dialogs, with idle expiry.
#[derive(Debug)]
pub struct DialogTable {
    /// Seeded hasher: Call-IDs and tags are peer-chosen.
    map: HashMap<Key, DialogEnds, foldhash::fast::RandomState>,
    idle: Duration,
}

impl DialogTable {
    /// A table forgetting dialogs idle for longer than `idle`.
    pub fn new(idle: Duration) -> DialogTable {
        DialogTable {
            map: HashMap::default(),
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
        let k = key(call_id, caller_tag, callee_tag);
        if let Some(entry) = self.map.get_mut(&k) {
            entry.confirmed |= confirmed;
            entry.expires = expires;
            return;
        }
        self.map.insert(
            k.to_owned(),
            DialogEnds {
                caller_is_low: k.low == caller_tag,
                caller,
                callee,
                confirmed,
                expires,
            },
        );
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
        let k = key(call_id, from_tag, to_tag);
        let d = self.map.get_mut(&k)?;
        d.expires = now + idle;
        Some(if (k.low == from_tag) == d.caller_is_low {
            d.callee
        } else {
            d.caller
        })
    }

    /// Forget a dialog (BYE answered, or an early dialog that failed).
    pub fn remove(&mut self, call_id: &[u8], a: &[u8], b: &[u8]) {
        self.map.remove(&key(call_id, a, b));
    }

    /// Forget the early dialog `call_id`/`caller_tag`/`callee_tag` of an
    /// INVITE that failed, unless a 2xx confirmed it meanwhile. O(1): the
    /// proxy remembers which early dialogs an INVITE created (a scan of the
    /// whole table per failed call was O(active calls)).
    pub fn remove_early(&mut self, call_id: &[u8], caller_tag: &[u8], callee_tag: &[u8]) {
        let k = key(call_id, caller_tag, callee_tag);
        if self.map.get(&k).is_some_and(|d| !d.confirmed) {
            self.map.remove(&k);
        }
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

    #[test]
    #[allow(clippy::disallowed_methods)] // tests need one real Instant as the origin
    fn remove_early_spares_confirmed_and_other_dialogs() {
        let t0 = Instant::now();
        let mut t = DialogTable::new(Duration::from_secs(60));
        t.upsert(t0, b"c1", b"caller", b"fork1", flow(1), flow(2), false);
        t.upsert(t0, b"c1", b"caller", b"fork2", flow(1), flow(3), false);
        t.upsert(t0, b"c1", b"caller", b"fork2", flow(1), flow(3), true);
        t.upsert(t0, b"c2", b"caller", b"fork1", flow(1), flow(2), false);
        t.remove_early(b"c1", b"caller", b"fork1");
        t.remove_early(b"c1", b"caller", b"fork2");
        assert_eq!(
            t.target(t0, b"c1", b"caller", b"fork1"),
            None,
            "early one gone"
        );
        assert_eq!(
            t.target(t0, b"c1", b"caller", b"fork2"),
            Some(flow(3)),
            "confirmed kept"
        );
        assert_eq!(
            t.target(t0, b"c2", b"caller", b"fork1"),
            Some(flow(2)),
            "other call kept"
        );
        assert_eq!(t.len(), 2);
    }
}
