//! The transaction endpoint: routes messages to transactions.

use std::time::Instant;

use super::{Output, TimerConfig, TxId, TxState};
use crate::sip::message::Message;
use crate::sip::transport::Flow;

/// Owns every client and server transaction of one SIP element.
#[derive(Debug)]
pub struct Endpoint {
    cfg: TimerConfig,
}

impl Endpoint {
    /// A new endpoint with the given timer values.
    pub fn new(cfg: TimerConfig) -> Endpoint {
        Endpoint { cfg }
    }

    /// A parsed message arrived on `flow`.
    pub fn handle_message(&mut self, now: Instant, flow: Flow, msg: Message) {
        let _ = (now, flow, msg, self.cfg);
        todo!()
    }

    /// The TU sends a request through a new client transaction.
    pub fn send_request(&mut self, now: Instant, flow: Flow, req: Message) -> TxId {
        let _ = (now, flow, req);
        todo!()
    }

    /// The TU answers a server transaction.
    pub fn send_response(&mut self, now: Instant, tx: TxId, resp: Message) -> bool {
        let _ = (now, tx, resp);
        todo!()
    }

    /// Send without a transaction.
    pub fn send_stateless(&mut self, flow: Flow, msg: Message) {
        let _ = (flow, msg);
        todo!()
    }

    /// A transmit of client transaction `tx` could not be delivered.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        let _ = (now, tx);
        todo!()
    }

    /// Fire due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The earliest instant `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Drain outputs.
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!()
    }

    /// The INVITE server transaction a CANCEL refers to.
    pub fn find_invite_server_tx(&self, cancel: &Message) -> Option<TxId> {
        let _ = cancel;
        todo!()
    }

    /// The original request of a transaction.
    pub fn request_of(&self, tx: TxId) -> Option<&Message> {
        let _ = tx;
        todo!()
    }

    /// State of a transaction.
    pub fn state_of(&self, tx: TxId) -> Option<TxState> {
        let _ = tx;
        todo!()
    }

    /// Number of live transactions.
    pub fn active_transactions(&self) -> usize {
        todo!()
    }
}
