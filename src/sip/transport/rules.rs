//! RFC 3261 §18.2 server transport rules and RFC 3581 `rport`.

use std::net::SocketAddr;

use super::Flow;
use crate::sip::message::Message;

/// RFC 3261 §18.2.1 / RFC 3581 §4: add `received` (and fill `rport`) on the
/// top Via of a request received from `source`.
pub fn add_received_rport(msg: &mut Message, source: SocketAddr) {
    let _ = (msg, source);
    todo!()
}

/// RFC 3261 §18.2.2 / RFC 3581 §4: where a response to `msg` (a request
/// received on `flow`) is sent. With `symmetric`, always the request source.
pub fn response_target(msg: &Message, flow: Flow, symmetric: bool) -> Flow {
    let _ = (msg, symmetric);
    flow
}
