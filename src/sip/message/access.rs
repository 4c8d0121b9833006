//! Typed read-only views of a [`Message`]: the headers a proxy and a
//! transaction layer need, parsed on demand from the raw lines.

use bytes::Bytes;

use super::headers::HeaderName;
use super::method::Method;
use super::name_addr::{self, NameAddr};
use super::scan;
use super::uri::Uri;
use super::via::{Via, ViaRef};
use super::{Header, Message, StartLine};

/// The CSeq header (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (fits 32 bits, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method named in CSeq.
    pub method: Method,
}

impl Message {
    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI, `None` for a response.
    pub fn uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, `None` for a request.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first header of a kind.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name == name)
    }

    /// All headers of a kind, in order.
    pub fn headers_of(&self, name: HeaderName) -> impl Iterator<Item = &Header> {
        self.headers.iter().filter(move |h| h.name == name)
    }

    /// Every comma-separated value of a list header across all its lines, in order.
    pub fn list_values(&self, name: HeaderName) -> Vec<(Bytes, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        for h in self.headers_of(name) {
            let owner = h.value_bytes();
            if let Ok(items) = scan::split_list(&owner) {
                for it in items {
                    let (a, b) = scan::range_in(&owner, it);
                    out.push((owner.clone(), a..b));
                }
            }
        }
        out
    }

    /// Call-ID value (empty when absent).
    pub fn call_id(&self) -> &[u8] {
        self.header(HeaderName::CallId)
            .map_or(&[][..], |h| h.value())
    }

    /// The CSeq header, parsed; `None` when absent or malformed.
    pub fn cseq(&self) -> Option<CSeq> {
        let v = self.header(HeaderName::CSeq)?.value();
        let digits_end = v
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(v.len());
        let seq = scan::parse_u32(&v[..digits_end])?;
        let method = scan::trim_lws(&v[digits_end..]);
        if digits_end == v.len() || !scan::is_lws(v[digits_end]) || method.is_empty() {
            return None;
        }
        if !method.iter().all(|&b| scan::is_token(b)) {
            return None;
        }
        Some(CSeq {
            seq,
            method: Method::from_bytes(method),
        })
    }

    /// Max-Forwards (RFC 3261 §20.22), `None` when absent or not in 0..=255.
    pub fn max_forwards(&self) -> Option<u8> {
        let v = self.header(HeaderName::MaxForwards)?.value();
        scan::parse_u32(v).and_then(|n| u8::try_from(n).ok())
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Option<Via> {
        let h = self.header(HeaderName::Via)?;
        let owner = h.value_bytes();
        Via::parse(&owner, scan::first_list_item(&owner)?).ok()
    }

    /// The top Via borrowed from the message ([`Message::top_via`] without
    /// reference-counted copies): for matching and routing on every message.
    /// Its parameters' syntax is not checked again: parsing the message did
    /// (see [`ViaRef::parse_validated`]).
    pub fn top_via_ref(&self) -> Option<ViaRef<'_>> {
        let h = self.header(HeaderName::Via)?;
        ViaRef::parse_validated(scan::first_list_item(h.value())?).ok()
    }

    /// Every Via value in order (unparseable ones skipped).
    pub fn vias(&self) -> Vec<Via> {
        self.list_values(HeaderName::Via)
            .into_iter()
            .filter_map(|(owner, r)| Via::parse(&owner, &owner[r]).ok())
            .collect()
    }

    fn name_addr(&self, name: HeaderName) -> Option<NameAddr> {
        let owner = self.header(name)?.value_bytes();
        NameAddr::parse(&owner, &owner).ok()
    }

    /// The From header.
    pub fn from_hdr(&self) -> Option<NameAddr> {
        self.name_addr(HeaderName::From)
    }

    /// The To header.
    pub fn to_hdr(&self) -> Option<NameAddr> {
        self.name_addr(HeaderName::To)
    }

    /// The `tag` of a From/To header without parsing its URI (the parser
    /// has validated both headers; this runs on every message, several times).
    fn tag_ref_of(&self, name: HeaderName) -> Option<&[u8]> {
        let params = name_addr::header_params_of(self.header(name)?.value())?;
        scan::find_param_in(params, "tag").flatten()
    }

    fn tag_of(&self, name: HeaderName) -> Option<Bytes> {
        self.tag_ref_of(name).map(Bytes::copy_from_slice)
    }

    /// The From tag, borrowed: for lookups and hashes that do not keep it.
    pub fn from_tag_ref(&self) -> Option<&[u8]> {
        self.tag_ref_of(HeaderName::From)
    }

    /// The To tag, borrowed: for lookups and hashes that do not keep it.
    pub fn to_tag_ref(&self) -> Option<&[u8]> {
        self.tag_ref_of(HeaderName::To)
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<Bytes> {
        self.tag_of(HeaderName::From)
    }

    /// The To tag (present on in-dialog requests and most responses).
    pub fn to_tag(&self) -> Option<Bytes> {
        self.tag_of(HeaderName::To)
    }

    fn name_addr_list(&self, name: HeaderName) -> Vec<NameAddr> {
        self.list_values(name)
            .into_iter()
            .filter_map(|(owner, r)| NameAddr::parse(&owner, &owner[r]).ok())
            .collect()
    }

    /// Route values in order (RFC 3261 §20.34).
    pub fn routes(&self) -> Vec<NameAddr> {
        self.name_addr_list(HeaderName::Route)
    }

    /// Record-Route values in order (RFC 3261 §20.30).
    pub fn record_routes(&self) -> Vec<NameAddr> {
        self.name_addr_list(HeaderName::RecordRoute)
    }

    /// Contact values in order (a `*` Contact is skipped).
    pub fn contacts(&self) -> Vec<NameAddr> {
        self.name_addr_list(HeaderName::Contact)
    }

    /// The first of [`Message::contacts`], found without building the list
    /// (a dialog's remote target, on every response that sets one).
    pub fn first_contact(&self) -> Option<NameAddr> {
        self.headers_of(HeaderName::Contact).find_map(|h| {
            let v = h.value();
            // As `list_values`: a header whose list is malformed is skipped.
            if scan::list_items(v).any(|item| item.is_err()) {
                return None;
            }
            let owner = h.value_bytes();
            scan::list_items(v)
                .flatten()
                .find_map(|item| NameAddr::parse(&owner, item).ok())
        })
    }

    /// Option tags of a list header such as Require or Proxy-Require.
    pub fn option_tags(&self, name: HeaderName) -> Vec<Bytes> {
        self.list_values(name)
            .into_iter()
            .map(|(o, r)| o.slice(r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Limits, parse_datagram};
    use super::*;

    #[test]
    fn first_contact_is_the_first_of_contacts() {
        let with = |contacts: &str| {
            let raw = format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
                 To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n{contacts}Content-Length: 0\r\n\r\n"
            );
            parse_datagram(Bytes::from(raw), &Limits::default()).unwrap()
        };
        for contacts in [
            "",
            "Contact: <sip:u@h1>\r\n",
            "m: \"A, B\" <sip:u@h2;transport=tcp>;q=0.5, <sip:v@h3>\r\n",
            "Contact: *\r\nContact: <sip:u@h4>\r\n",
            "Contact: <sip:u@h5>, <sip:v@h6>\r\nContact: <sip:w@h7>\r\n",
        ] {
            let m = with(contacts);
            let all = m.contacts();
            assert_eq!(
                m.first_contact().map(|c| c.uri),
                all.first().map(|c| c.uri.clone()),
                "{contacts:?}"
            );
        }
        assert_eq!(
            with("Contact: *\r\nContact: <sip:u@h4>\r\n")
                .first_contact()
                .unwrap()
                .uri
                .as_bytes(),
            b"sip:u@h4"
        );
    }

    #[test]
    fn views_of_a_folded_message() {
        let raw = "INVITE sip:bob@example.com SIP/2.0\r\n\
            v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n\
            f: <sip:alice@example.com>;tag=1\r\nt: sip:bob@example.com\r\ni: x@y\r\n\
            CSeq: 0009\r\n  INVITE\r\nMax-Forwards: 0068\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nl: 0\r\n\r\n";
        let m = parse_datagram(Bytes::from(raw), &Limits::default()).unwrap();
        assert_eq!(m.vias().len(), 3);
        assert_eq!(&m.top_via().unwrap().host[..], b"a.example.com");
        assert_eq!(
            m.cseq().unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert_eq!(m.max_forwards(), Some(68));
        assert_eq!(m.from_tag().as_deref(), Some(&b"1"[..]));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.routes().len(), 2);
        assert_eq!(m.call_id(), b"x@y");
    }
}
