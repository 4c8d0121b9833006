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

use bytes::Bytes;

use crate::sip::message::{Message, Method, Via};

/// Lower-cased copy of `b`.
fn lower(b: &[u8]) -> Bytes {
    Bytes::from(b.to_ascii_lowercase())
}

/// Index key of a client transaction (§17.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    branch: Bytes,
    method: Method,
}

impl ClientKey {
    /// Key of a request the TU sends (its own Via is on top).
    pub fn of_request(req: &Message) -> Option<ClientKey> {
        let via = req.top_via()?;
        Some(ClientKey {
            branch: lower(via.branch()?),
            method: req.method()?.clone(),
        })
    }

    /// Key of a received response: top-Via branch and CSeq method.
    pub fn of_response(resp: &Message) -> Option<ClientKey> {
        let via = resp.top_via()?;
        Some(ClientKey {
            branch: lower(via.branch()?),
            method: resp.cseq()?.method,
        })
    }
}

/// Index key of a server transaction (§17.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum ServerKey {
    /// RFC 3261 matching.
    Branch {
        /// Lower-cased branch.
        branch: Bytes,
        /// Lower-cased sent-by host.
        host: Bytes,
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
        let via = req.top_via()?;
        let method = match as_method {
            Some(m) => m,
            None => match req.method()? {
                Method::Ack => Method::Invite,
                m => m.clone(),
            },
        };
        if via.has_rfc3261_branch() {
            return Some(ServerKey::Branch {
                branch: lower(via.branch()?),
                host: lower(&via.host),
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
fn legacy_via(via: &Via) -> Bytes {
    let mut v = Vec::with_capacity(via.host.len() + 32);
    v.extend_from_slice(&via.transport);
    v.push(b' ');
    v.extend_from_slice(&via.host);
    if let Some(p) = via.port {
        v.extend_from_slice(format!(":{p}").as_bytes());
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
}
