//! The SIP stack: lossless message model, transport rules and RFC 3261 §17 transactions.

pub mod message;
pub mod transaction;
pub mod transport;
