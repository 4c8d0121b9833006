//! Serialization and locally generated responses (RFC 3261 §8.2.6).

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::{BufMut, Bytes, BytesMut};

use super::headers::HeaderName;
use super::{Header, Message, StartLine};

impl Message {
    /// Write the message: start line, each header line as received (or as
    /// regenerated), empty line, body.
    pub fn write_to(&self, out: &mut BytesMut) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.put_slice(method.as_bytes());
                out.put_u8(b' ');
                out.put_slice(uri.as_bytes());
                out.put_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.put_slice(b"SIP/2.0 ");
                out.put_slice(super::text::dec(u64::from(*code), &mut [0u8; 20]));
                out.put_u8(b' ');
                out.put_slice(reason);
                out.put_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            out.put_slice(h.raw_line());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
    }

    /// The serialized message.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(
            64 + self.body.len()
                + self
                    .headers
                    .iter()
                    .map(|h| h.raw_line().len() + 2)
                    .sum::<usize>(),
        );
        self.write_to(&mut out);
        out.freeze()
    }
}

/// A deterministic To tag for a response the gateway generates itself, so a
/// retransmitted request gets the same tag (no randomness in the core).
pub fn tag_for(seed: &[u8]) -> String {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    format!("cg{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Build a response from a request's header lines (RFC 3261 §8.2.6.2): Via
/// lines, From, To (with a tag added when missing and code > 100), Call-ID
/// and CSeq are copied as received.
pub fn error_response_from_headers(
    headers: &[Header],
    code: u16,
    reason: &str,
    extra: Vec<Header>,
) -> Message {
    response_from_headers(headers, code, reason, extra, || {
        let seed: Vec<u8> = headers
            .iter()
            .filter(|x| {
                matches!(
                    x.name,
                    HeaderName::CallId | HeaderName::Via | HeaderName::CSeq
                )
            })
            .flat_map(|x| x.value().to_vec())
            .collect();
        tag_for(&seed)
    })
}

/// A response to `request` whose To gets `to_tag` when it has none (a UA
/// answering in its own dialog, RFC 3261 §8.2.6.2 / §12.1.1).
pub fn response_with_tag(
    request: &Message,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: Vec<Header>,
) -> Message {
    response_from_headers(&request.headers, code, reason, extra, || to_tag)
}

/// Via lines, From, Call-ID and CSeq copied as received; To copied, with
/// `to_tag()` added when it has none and `code` > 100; then `extra` and
/// `Content-Length: 0`.
fn response_from_headers<T: AsRef<str> + Default>(
    headers: &[Header],
    code: u16,
    reason: &str,
    extra: Vec<Header>,
    to_tag: impl FnOnce() -> T,
) -> Message {
    let mut to_tag = Some(to_tag);
    let mut out: Vec<Header> = Vec::with_capacity(8 + extra.len());
    for h in headers {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                out.push(h.clone())
            }
            HeaderName::To => {
                // The header parameters alone (the To of a parsed request
                // was validated); unreadable ones count as tagged, as before.
                let has_tag = super::name_addr::header_params_of(h.value())
                    .is_none_or(|p| super::scan::find_param_in(p, "tag").flatten().is_some());
                if has_tag || code == 100 {
                    out.push(h.clone());
                } else {
                    let tag = to_tag.take().map(|f| f()).unwrap_or_default();
                    out.push(Header::build_with_name_bytes(h.raw_name(), |v| {
                        v.extend_from_slice(h.value());
                        v.extend_from_slice(b";tag=");
                        v.extend_from_slice(tag.as_ref().as_bytes());
                    }));
                }
            }
            _ => {}
        }
    }
    out.extend(extra);
    out.push(Header::content_length_zero());
    Message {
        start: StartLine::Response {
            code,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
        },
        headers: out,
        body: Bytes::new(),
    }
}

/// Build a response to a parsed request.
pub fn response_to(request: &Message, code: u16, reason: &str, extra: Vec<Header>) -> Message {
    error_response_from_headers(&request.headers, code, reason, extra)
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Limits, parse_datagram};
    use super::*;

    fn request_with_to(to: &str) -> Message {
        let raw = format!(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=f\r\n\
             {to}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        parse_datagram(Bytes::from(raw), &Limits::default()).unwrap()
    }

    fn to_of(m: &Message) -> String {
        String::from_utf8(m.header(HeaderName::To).unwrap().raw_line().to_vec()).unwrap()
    }

    #[test]
    fn to_tag_added_only_when_missing() {
        let cases = [
            ("To: <sip:b@h>", "To: <sip:b@h>;tag=t1"),
            (
                "t: \"B;tag=no\" <sip:b@h;tag=no>",
                "t: \"B;tag=no\" <sip:b@h;tag=no>;tag=t1",
            ),
            ("To: sip:b@h;tag", "To: sip:b@h;tag;tag=t1"),
            ("To: <sip:b@h>;tag=x", "To: <sip:b@h>;tag=x"),
            ("To: sip:b@h ; TAG = y", "To: sip:b@h ; TAG = y"),
        ];
        for (to, want) in cases {
            let resp = response_with_tag(&request_with_to(to), 200, "OK", "t1", Vec::new());
            assert_eq!(to_of(&resp), want, "{to}");
            let trying = response_with_tag(&request_with_to(to), 100, "Trying", "t1", Vec::new());
            assert_eq!(to_of(&trying), to, "100 keeps To as received");
        }
    }
}
