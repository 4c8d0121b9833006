//! Transport rules: stream framing, RFC 3261 §18 datagram rules, RFC 3581 rport.
//!
//! Everything here is pure: the runtime owns the sockets and hands bytes in;
//! these types describe where a message came from and where it goes.

mod framer;
mod rules;

pub use framer::{FramingError, StreamFramer};
pub use rules::{add_received_rport, response_target};

use std::net::SocketAddr;

use bytes::Bytes;

use super::transaction::TxId;

/// Index of the local listener (socket) a message came in on or goes out of.
pub type ListenerId = usize;

/// The transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Unreliable datagrams: transactions retransmit (RFC 3261 §17).
    Udp,
    /// Reliable stream: no retransmission timers, framing by Content-Length.
    Tcp,
}

impl Transport {
    /// True for reliable transports (RFC 3261 §17.1.1.2: Timer A not started).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The transport token used in a Via header (`UDP`, `TCP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// A path between a local listener and a remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The local listener.
    pub listener: ListenerId,
    /// Protocol of the listener.
    pub transport: Transport,
    /// The remote address.
    pub remote: SocketAddr,
    /// TCP connection id from the runtime, when known.
    pub conn: Option<u64>,
}

/// Bytes the runtime must send on a flow.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// Where to send.
    pub flow: Flow,
    /// The serialized message.
    pub bytes: Bytes,
    /// The client transaction that sent it, so the runtime can report
    /// transport errors (RFC 3261 §17.1.4) through
    /// [`super::transaction::Endpoint::handle_transport_error`].
    pub tx: Option<TxId>,
}
