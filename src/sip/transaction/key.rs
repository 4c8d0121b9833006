//! Transaction matching keys.
//!
//! - Client side, RFC 3261 §17.1.3: a response matches the client
//!   transaction whose request had the same top-Via `branch` and whose method
//!   equals the response's CSeq method (so a CANCEL and its INVITE, which
//!   share a branch, are distinct transactions).
//! - Server side, RFC 3261 §17.2.3: a request with an RFC 3261 branch
//!   (`z9hG4bK` plus something) matches on branch + sent-by + method, with
//!   ACK mapped to INVITE. Otherwise (RFC 2543 peers, and RFC 4475 §3.2.1's
//!   bare cookie) the fallback compares Request-URI, From tag, Call-ID, CSeq
//!   number and the top Via; the To-tag check for ACK is done by the endpoint
//!   against the tag of the final response it sent.
//!
//! Branches and hosts are compared case-insensitively (RFC 3261 §7.3.1:
//! parameter values are case-insensitive unless stated otherwise).

use std::hash::{Hash, Hasher};

use bytes::Bytes;

use crate::sip::message::{Message, Method, ViaRef, text};

/// Bytes [`LowerBytes`] keeps without a heap allocation.
const INLINE: usize = 62;

/// Lower-cased key bytes, inline up to [`INLINE`] bytes. Branches and
/// sent-by hosts of ordinary traffic fit, so computing a key (for every
/// request and response matched, not only for the transactions created)
/// allocates nothing, and comparing a stored key reads no second cache line
/// behind a pointer.
#[derive(Clone)]
pub(super) enum LowerBytes {
    /// Short keys: the first `len` bytes of `buf`.
    Inline { len: u8, buf: [u8; INLINE] },
    /// Longer ones.
    Heap(Box<[u8]>),
}

impl LowerBytes {
    /// The concatenation of `parts`, lower-cased.
    fn of(parts: &[&[u8]]) -> LowerBytes {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > INLINE {
            let mut v = parts.concat();
            v.make_ascii_lowercase();
            return LowerBytes::Heap(v.into_boxed_slice());
        }
        let mut buf = [0u8; INLINE];
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        buf[..at].make_ascii_lowercase();
        // at = total <= INLINE < 256.
        LowerBytes::Inline { len: at as u8, buf }
    }

    /// The key bytes.
    fn as_slice(&self) -> &[u8] {
        match self {
            LowerBytes::Inline { len, buf } => &buf[..usize::from(*len)],
            LowerBytes::Heap(b) => b,
        }
    }
}

impl PartialEq for LowerBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for LowerBytes {}

impl Hash for LowerBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl std::fmt::Debug for LowerBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// Index key of a client transaction (§17.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    branch: LowerBytes,
    method: Method,
}

impl ClientKey {
    /// Key of a request the TU sends (its own Via is on top).
    pub fn of_request(req: &Message) -> Option<ClientKey> {
        let via = req.top_via_ref()?;
        Some(ClientKey {
            branch: LowerBytes::of(&[via.branch()?]),
            method: req.method()?.clone(),
        })
    }

    /// Key of a received response: top-Via branch and CSeq method.
    pub fn of_response(resp: &Message) -> Option<ClientKey> {
        let via = resp.top_via_ref()?;
        Some(ClientKey {
            branch: LowerBytes::of(&[via.branch()?]),
            method: resp.cseq()?.method,
        })
    }
}

/// Index key of a server transaction (§17.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum ServerKey {
    /// RFC 3261 matching.
    Branch {
        /// Lower-cased branch, a space, and the lower-cased sent-by host (a
        /// space is in neither).
        branch_host: LowerBytes,
        /// sent-by port as written.
        port: Option<u16>,
        /// Request method, ACK mapped to INVITE.
        method: Method,
    },
    /// RFC 2543 fallback matching (§17.2.3, last paragraphs).
    Legacy {
        /// Request-URI bytes.
        uri: Bytes,
        /// Call-ID.
        call_id: Bytes,
        /// From tag.
        from_tag: Option<Bytes>,
        /// CSeq number.
        cseq: u32,
        /// Top Via identity: transport, host, port, branch (lower-cased);
        /// `received`/`rport` stamps are left out so a stamped and an
        /// unstamped copy still match.
        via: Bytes,
        /// Request method, ACK mapped to INVITE.
        method: Method,
    },
}

impl ServerKey {
    /// The key of a received request. `as_method` overrides the method (a
    /// CANCEL looks up its INVITE, §9.2); ACK is always mapped to INVITE.
    pub fn of_request(req: &Message, as_method: Option<Method>) -> Option<ServerKey> {
        let via = req.top_via_ref()?;
        let method = match as_method {
            Some(m) => m,
            None => match req.method()? {
                Method::Ack => Method::Invite,
                m => m.clone(),
            },
        };
        if via.has_rfc3261_branch() {
            return Some(ServerKey::Branch {
                branch_host: LowerBytes::of(&[via.branch()?, b" ", via.host]),
                port: via.port,
                method,
            });
        }
        Some(ServerKey::Legacy {
            uri: req.uri()?.raw().clone(),
            call_id: Bytes::copy_from_slice(req.call_id()),
            from_tag: req.from_tag(),
            cseq: req.cseq()?.seq,
            via: legacy_via(&via),
            method,
        })
    }

    /// True for RFC 2543 fallback keys.
    pub fn is_legacy(&self) -> bool {
        matches!(self, ServerKey::Legacy { .. })
    }
}

/// The parts of a Via that identify the hop, lower-cased.
fn legacy_via(via: &ViaRef<'_>) -> Bytes {
    let mut v = Vec::with_capacity(via.host.len() + 32);
    v.extend_from_slice(via.transport);
    v.push(b' ');
    v.extend_from_slice(via.host);
    if let Some(p) = via.port {
        v.push(b':');
        text::push_dec(&mut v, u64::from(p));
    }
    if let Some(b) = via.branch() {
        v.extend_from_slice(b";branch=");
        v.extend_from_slice(b);
    }
    v.make_ascii_lowercase();
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, parse_datagram};

    fn msg(first: &str, via: &str, cseq: &str) -> Message {
        let s = format!(
            "{first}\r\nVia: {via}\r\nTo: <sip:b@x>\r\nFrom: <sip:a@y>;tag=f1\r\n\
             Call-ID: cid\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        );
        parse_datagram(Bytes::from(s), &Limits::default()).unwrap()
    }

    #[test]
    fn server_keys() {
        let inv = msg(
            "INVITE sip:b@x SIP/2.0",
            "SIP/2.0/UDP h:5060;branch=z9hG4bKabc",
            "1 INVITE",
        );
        let ack = msg(
            "ACK sip:b@x SIP/2.0",
            "SIP/2.0/UDP H:5060;branch=z9hG4bKABC;received=1.2.3.4",
            "1 ACK",
        );
        let cancel = msg(
            "CANCEL sip:b@x SIP/2.0",
            "SIP/2.0/UDP h:5060;branch=z9hG4bKabc",
            "1 CANCEL",
        );
        let k = ServerKey::of_request(&inv, None).unwrap();
        assert!(!k.is_legacy());
        assert_eq!(ServerKey::of_request(&ack, None), Some(k.clone()));
        assert_ne!(ServerKey::of_request(&cancel, None), Some(k.clone()));
        assert_eq!(
            ServerKey::of_request(&cancel, Some(Method::Invite)),
            Some(k.clone())
        );
        let other_port = msg(
            "INVITE sip:b@x SIP/2.0",
            "SIP/2.0/UDP h:5070;branch=z9hG4bKabc",
            "1 INVITE",
        );
        assert_ne!(ServerKey::of_request(&other_port, None), Some(k));
    }

    #[test]
    fn legacy_keys() {
        let inv = msg("INVITE sip:b@x SIP/2.0", "SIP/2.0/UDP h", "7 INVITE");
        let ack = msg(
            "ACK sip:b@x SIP/2.0",
            "SIP/2.0/UDP h;received=9.9.9.9",
            "7 ACK",
        );
        let k = ServerKey::of_request(&inv, None).unwrap();
        assert!(k.is_legacy());
        assert_eq!(ServerKey::of_request(&ack, None), Some(k.clone()));
        let bare = msg(
            "INVITE sip:b@x SIP/2.0",
            "SIP/2.0/UDP h;branch=z9hG4bK",
            "7 INVITE",
        );
        assert!(ServerKey::of_request(&bare, None).unwrap().is_legacy());
        let next = msg("INVITE sip:b@x SIP/2.0", "SIP/2.0/UDP h", "8 INVITE");
        assert_ne!(ServerKey::of_request(&next, None), Some(k));
    }

    #[test]
    fn client_keys() {
        let inv = msg(
            "INVITE sip:b@x SIP/2.0",
            "SIP/2.0/UDP me;branch=z9hG4bKq",
            "1 INVITE",
        );
        let resp = parse_datagram(
            Bytes::from_static(
                b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP me;branch=z9hG4bKq\r\nTo: <sip:b@x>;tag=t\r\n\
                  From: <sip:a@y>;tag=f1\r\nCall-ID: cid\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            ),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(ClientKey::of_request(&inv), ClientKey::of_response(&resp));
        let cancel = msg(
            "CANCEL sip:b@x SIP/2.0",
            "SIP/2.0/UDP me;branch=z9hG4bKq",
            "1 CANCEL",
        );
        assert_ne!(
            ClientKey::of_request(&cancel),
            ClientKey::of_response(&resp)
        );
    }

    #[test]
    fn long_branches_match_case_insensitively_past_the_inline_size() {
        let long = format!("z9hG4bK{}", "Ab".repeat(40));
        let inv = msg(
            "INVITE sip:b@x SIP/2.0",
            &format!("SIP/2.0/UDP h:5060;branch={long}"),
            "1 INVITE",
        );
        let ack = msg(
            "ACK sip:b@x SIP/2.0",
            &format!("SIP/2.0/UDP H:5060;branch=z9hG4bK{}", "aB".repeat(40)),
            "1 ACK",
        );
        let k = ServerKey::of_request(&inv, None).unwrap();
        assert_eq!(ServerKey::of_request(&ack, None), Some(k));
        let a = LowerBytes::of(&[long.as_bytes()]);
        assert!(matches!(a, LowerBytes::Heap(_)));
        assert_eq!(a, LowerBytes::of(&[long.to_uppercase().as_bytes()]));
        let short = LowerBytes::of(&[b"z9hG4bKq", b" ", b"Host"]);
        assert!(matches!(short, LowerBytes::Inline { .. }));
        assert_eq!(short.as_slice(), b"z9hg4bkq host");
        // Exactly at the inline limit, and one past it.
        let at = "x".repeat(INLINE);
        assert!(matches!(
            LowerBytes::of(&[at.as_bytes()]),
            LowerBytes::Inline { .. }
        ));
        let past = "x".repeat(INLINE + 1);
        assert!(matches!(
            LowerBytes::of(&[past.as_bytes()]),
            LowerBytes::Heap(_)
        ));
    }
}
