//! SDP (RFC 8866) for the B2BUA: a lossless model that keeps every line as
//! raw bytes with a typed view (unknown lines and attributes pass through
//! verbatim and in order), a typed codec view per media section, pure
//! rewrite functions, and the RFC 3264 offer/answer model.
//!
//! Sans-IO and pure: no clock, sockets or randomness; parsing never panics
//! and enforces [`SdpLimits`].

#![warn(missing_docs)]

mod attr;
mod codec;
mod direction;
mod error;
mod model;
mod negotiated;
mod offer_answer;
mod parse;
mod payload;
mod rewrite;
mod security;
mod view;

pub use codec::{Codec, PayloadType, static_payload_type};
pub use error::{NegotiationError, SdpError};
pub use model::{Line, MediaSection, Sdp};
pub use negotiated::{NegotiatedStream, negotiated};
pub use offer_answer::{AnswerParams, answer_for};
pub use parse::SdpLimits;
pub use payload::{add_codecs, filter_codecs, order_codecs, renumber_payload_types};
pub use rewrite::{
    StripOptions, anchor, set_origin, set_ports, strip_for_plain_rtp_trunk,
    strip_for_plain_rtp_trunk_with, version_after,
};
pub use security::{Profile, crypto_lines, profile, set_security};
pub use view::{Attribute, Bandwidth, Connection, Direction, MediaLine, Origin, View, addrtype};
