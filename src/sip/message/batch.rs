//! Several headers the gateway writes, built in one buffer.
//!
//! Each [`Header`] owns its line as a [`Bytes`]; built one by one (with
//! [`Header::build`] or [`Header::new`]), every line is an allocation of its
//! own. A B2BUA request (Via, Max-Forwards, From, To, Call-ID, CSeq,
//! Contact, …) took about ten. A [`HeaderBatch`] writes the lines into one
//! buffer and hands out headers sharing it: two allocations for the lot.

use bytes::Bytes;

use super::{Header, HeaderName};

/// Headers written into one shared buffer. Call [`HeaderBatch::add`] per
/// header, then [`HeaderBatch::finish_into`].
#[derive(Debug, Default)]
pub struct HeaderBatch {
    buf: Vec<u8>,
    /// Per header: kind, line start, name end, value end (offsets in `buf`).
    spans: Vec<(HeaderName, usize, usize, usize)>,
}

impl HeaderBatch {
    /// An empty batch with room for `headers` lines of typical length.
    pub fn with_capacity(headers: usize) -> HeaderBatch {
        HeaderBatch {
            buf: Vec::with_capacity(headers * 64),
            spans: Vec::with_capacity(headers),
        }
    }

    /// Append a header with the canonical name of `name`; `write` appends
    /// its value.
    pub fn add(&mut self, name: HeaderName, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(name.canonical().as_bytes());
        let name_end = self.buf.len();
        self.buf.extend_from_slice(b": ");
        write(&mut self.buf);
        self.spans.push((name, start, name_end, self.buf.len()));
    }

    /// Append a header whose value is `value`.
    pub fn add_value(&mut self, name: HeaderName, value: &[u8]) {
        self.add(name, |v| v.extend_from_slice(value));
    }

    /// Push the headers, in the order added, onto `out`.
    pub fn finish_into(self, out: &mut Vec<Header>) {
        let buf = Bytes::from(self.buf);
        out.extend(self.spans.into_iter().map(|(name, start, name_end, end)| {
            let raw = buf.slice(start..end);
            let name_end = name_end - start;
            Header {
                name,
                raw,
                name_end,
                value: (name_end + 2, end - start),
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_headers_equal_the_ones_built_alone() {
        let mut b = HeaderBatch::with_capacity(3);
        b.add_value(HeaderName::CallId, b"abc@host");
        b.add(HeaderName::CSeq, |v| {
            super::super::text::push_dec(v, 7);
            v.extend_from_slice(b" INVITE");
        });
        b.add_value(HeaderName::MaxForwards, b"70");
        let mut out = vec![Header::new(HeaderName::To, "<sip:b@x>")];
        b.finish_into(&mut out);
        let alone = [
            Header::new(HeaderName::To, "<sip:b@x>"),
            Header::new(HeaderName::CallId, "abc@host"),
            Header::new(HeaderName::CSeq, "7 INVITE"),
            Header::new(HeaderName::MaxForwards, "70"),
        ];
        assert_eq!(out, alone);
        for (h, a) in out.iter().zip(&alone) {
            assert_eq!(h.name, a.name);
            assert_eq!(h.raw_name(), a.raw_name());
            assert_eq!(h.value(), a.value());
            assert_eq!(h.raw_line(), a.raw_line());
        }
    }

    #[test]
    fn static_content_length_zero_equals_a_built_one() {
        let built = Header::new(HeaderName::ContentLength, "0");
        let fixed = Header::content_length_zero();
        assert_eq!(fixed, built);
        assert_eq!(fixed.value(), b"0");
        assert_eq!(fixed.raw_name(), b"Content-Length");
        let built = Header::new(HeaderName::ContentType, "application/sdp");
        let fixed = Header::content_type_sdp();
        assert_eq!(fixed, built);
        assert_eq!(fixed.value(), b"application/sdp");
        assert_eq!(fixed.raw_name(), b"Content-Type");
    }
}
