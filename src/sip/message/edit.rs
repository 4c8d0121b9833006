//! Edits a proxy makes (RFC 3261 §16.6): push/pop Via, pop Route, add
//! Record-Route, decrement Max-Forwards. Every other line stays as received.

use bytes::Bytes;

use super::headers::HeaderName;
use super::scan;
use super::{Header, Message, StartLine, Uri};

impl Message {
    /// Insert a header line before the first line of the same kind, or at
    /// the top when there is none (RFC 3261 §16.6 step 8 for Via).
    pub fn push_front(&mut self, header: Header) {
        let kind = header.name;
        let at = self
            .headers
            .iter()
            .position(|h| h.name == kind)
            .unwrap_or(0);
        self.headers.insert(at, header);
    }

    /// Remove the first value of a list header (the top Via or top Route);
    /// a line holding several values keeps the rest. Returns the removed value.
    pub fn pop_first_value(&mut self, kind: HeaderName) -> Option<Bytes> {
        let idx = self.headers.iter().position(|h| h.name == kind)?;
        let owner = self.headers[idx].value_bytes();
        let mut items = scan::list_items(&owner);
        let first = owner.slice_ref(items.next()?.ok()?);
        match items.next() {
            None => {
                self.headers.remove(idx);
            }
            Some(second) => {
                let rest_start = scan::range_in(&owner, second.ok()?).0;
                let line =
                    Header::with_name_bytes(self.headers[idx].raw_name(), &owner[rest_start..]);
                self.headers[idx] = line;
            }
        }
        Some(first)
    }

    /// Replace every line of a kind with one new line at the position of the
    /// first (or append when absent).
    pub fn set_header(&mut self, header: Header) {
        let kind = header.name;
        match self.headers.iter().position(|h| h.name == kind) {
            Some(i) => {
                self.headers[i] = header;
                let mut seen = false;
                self.headers.retain(|h| {
                    if h.name != kind {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.headers.push(header),
        }
    }

    /// Remove every line of a kind.
    pub fn remove_headers(&mut self, kind: HeaderName) {
        self.headers.retain(|h| h.name != kind);
    }

    /// Decrement Max-Forwards, or add `Max-Forwards: 70` when absent
    /// (RFC 3261 §16.6 step 3).
    pub fn decrement_max_forwards(&mut self) {
        let next = self.max_forwards().map_or(70, |n| n.saturating_sub(1));
        self.set_header(Header::new(HeaderName::MaxForwards, next.to_string()));
    }

    /// Replace the Request-URI (requests only).
    pub fn set_uri(&mut self, new_uri: Uri) {
        if let StartLine::Request { uri, .. } = &mut self.start {
            *uri = new_uri;
        }
    }

    /// Replace the body and keep Content-Length true.
    pub fn set_body(&mut self, body: Bytes, content_type: Option<&str>) {
        // The usual two (no body; an SDP) come from static buffers.
        self.set_header(if body.is_empty() {
            Header::content_length_zero()
        } else {
            Header::build(HeaderName::ContentLength, |v| {
                // Writing into a Vec cannot fail.
                let _ = std::io::Write::write_fmt(v, format_args!("{}", body.len()));
            })
        });
        match content_type {
            Some("application/sdp") => self.set_header(Header::content_type_sdp()),
            Some(ct) => self.set_header(Header::new(HeaderName::ContentType, ct)),
            None => {}
        }
        self.body = body;
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Limits, parse_datagram};
    use super::*;

    fn msg(s: &str) -> Message {
        parse_datagram(Bytes::copy_from_slice(s.as_bytes()), &Limits::default()).unwrap()
    }

    #[test]
    fn set_body_writes_length_and_type() {
        let mut m = msg(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        );
        m.set_body(Bytes::from_static(b"v=0\r\n"), Some("application/sdp"));
        assert_eq!(m.header(HeaderName::ContentLength).unwrap().value(), b"5");
        assert_eq!(
            m.header(HeaderName::ContentType).unwrap().value(),
            b"application/sdp"
        );
        m.set_body(Bytes::from_static(b"1"), Some("application/dtmf-relay"));
        assert_eq!(m.header(HeaderName::ContentLength).unwrap().value(), b"1");
        assert_eq!(
            m.header(HeaderName::ContentType).unwrap().value(),
            b"application/dtmf-relay"
        );
        m.set_body(Bytes::new(), None);
        assert_eq!(m.header(HeaderName::ContentLength).unwrap().value(), b"0");
        let text = String::from_utf8(m.to_bytes().to_vec()).unwrap();
        assert!(text.contains("\r\nContent-Length: 0\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }

    #[test]
    fn pop_via_from_a_multi_value_line() {
        let mut m = msg(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bKa , SIP/2.0/UDP ua;branch=z9hG4bKb\r\n\
            From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let top = m.pop_first_value(HeaderName::Via).unwrap();
        assert_eq!(&top[..], b"SIP/2.0/UDP gw;branch=z9hG4bKa");
        assert_eq!(&m.top_via().unwrap().host[..], b"ua");
        assert_eq!(
            m.headers[0].raw_line(),
            b"Via: SIP/2.0/UDP ua;branch=z9hG4bKb"
        );
        m.pop_first_value(HeaderName::Via).unwrap();
        assert!(m.top_via().is_none());
    }

    #[test]
    fn push_via_and_max_forwards() {
        let mut m = msg(
            "OPTIONS sip:x@y SIP/2.0\r\nTo: <sip:x@y>\r\nFrom: <sip:a@b>;tag=1\r\nCall-ID: c\r\n\
            CSeq: 1 OPTIONS\r\nVia: SIP/2.0/UDP ua;branch=z9hG4bKb\r\nl: 0\r\n\r\n",
        );
        m.push_front(Header::new(
            HeaderName::Via,
            "SIP/2.0/UDP gw;branch=z9hG4bKnew",
        ));
        assert_eq!(m.vias().len(), 2);
        assert_eq!(
            m.headers[4].raw_line(),
            b"Via: SIP/2.0/UDP gw;branch=z9hG4bKnew"
        );
        m.decrement_max_forwards();
        assert_eq!(m.max_forwards(), Some(70));
        m.decrement_max_forwards();
        assert_eq!(m.max_forwards(), Some(69));
    }
}
