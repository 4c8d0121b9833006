//! Stream framing (RFC 3261 §18.3).

use bytes::{Bytes, BytesMut};

use crate::sip::message::Limits;

/// Why a stream cannot be framed; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// The header section or the whole message exceeds `Limits::max_message`.
    TooLarge {
        /// Bytes seen or declared.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Content-Length is malformed or appears twice.
    BadContentLength,
}

/// Splits a byte stream into SIP messages by Content-Length.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
}

impl StreamFramer {
    /// A framer enforcing `limits.max_message`.
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
        }
    }

    /// Append bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, FramingError> {
        let _ = &self.limits;
        todo!()
    }
}
